#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for development and tests, from the system's binaries.
#
#   scripts/pg.sh start   start (creating it first if needed) the cluster under .data/pg
#   scripts/pg.sh stop    stop it
#   scripts/pg.sh url     print the DATABASE_URL of the `vendorflow` database
#   scripts/pg.sh status  say whether it runs
#   scripts/pg.sh reset   stop it and delete its data
#   scripts/pg.sh dump    print a plain-text pg_dump of the `vendorflow` database
#
# The cluster listens on 127.0.0.1 at $VENDORFLOW_PG_PORT (default 55432), keeps its data in
# $VENDORFLOW_PG_DIR (default .data/pg) and trusts local connections: it is a development
# cluster, never a production one. fsync is off, because tests and benchmarks create and drop
# many databases and nothing here must survive a crash; VENDORFLOW_PG_DURABLE=1 at creation
# keeps PostgreSQL's durable defaults instead (`vendorflow chaos` runs its own cluster so).
# initdb refuses to run as root, so as root the cluster is owned by the `postgres` user.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA_DIR="${VENDORFLOW_PG_DIR:-$ROOT/.data/pg}"
PORT="${VENDORFLOW_PG_PORT:-55432}"
DURABLE="${VENDORFLOW_PG_DURABLE:-0}"
DB_NAME="vendorflow"
DB_USER="postgres"

find_bin() {
  local name=$1
  if command -v "$name" >/dev/null 2>&1; then command -v "$name"; return 0; fi
  local candidate
  for candidate in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$candidate/$name" ]; then echo "$candidate/$name"; return 0; fi
  done
  return 1
}

need_postgres() {
  if ! INITDB="$(find_bin initdb)" || ! PG_CTL="$(find_bin pg_ctl)"; then
    cat >&2 <<'MSG'
PostgreSQL server binaries (initdb, pg_ctl) were not found on PATH or under /usr/lib/postgresql/*/bin.
Install them, then run the command again:
    Debian/Ubuntu:  make setup  (or: sudo apt-get update && sudo apt-get install -y postgresql)
    macOS:          brew install postgresql@16
MSG
    exit 1
  fi
  PSQL="$(find_bin psql || true)"
}

# Runs a command as the cluster's owner: ourselves, or `postgres` when we are root.
as_owner() {
  if [ "$(id -u)" = "0" ]; then
    if ! id postgres >/dev/null 2>&1; then
      useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
    fi
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

is_running() {
  [ -f "$DATA_DIR/PG_VERSION" ] && as_owner "$PG_CTL" -D "$DATA_DIR" status >/dev/null 2>&1
}

url() {
  echo "postgres://$DB_USER@127.0.0.1:$PORT/$DB_NAME"
}

start() {
  need_postgres
  mkdir -p "$(dirname "$DATA_DIR")"
  if [ "$(id -u)" = "0" ]; then
    # The postgres user must be able to reach the data folder: every folder above it that it
    # cannot pass through (a clone under /root, say) gets search permission for others (o+x,
    # which lists nothing), from the top down, and is named.
    as_owner true
    local dir dirs=() parent
    parent="$(cd "$(dirname "$DATA_DIR")" && pwd)"
    while [ "$parent" != / ]; do dirs=("$parent" "${dirs[@]}"); parent="$(dirname "$parent")"; done
    for dir in "${dirs[@]}"; do
      if ! as_owner test -x "$dir"; then
        chmod o+x "$dir"
        echo "postgres: gave others search permission (o+x) on $dir, for the postgres user" >&2
      fi
    done
  fi
  if [ ! -f "$DATA_DIR/PG_VERSION" ]; then
    mkdir -p "$DATA_DIR"
    [ "$(id -u)" = "0" ] && chown postgres: "$DATA_DIR"
    chmod 700 "$DATA_DIR"
    as_owner "$INITDB" -D "$DATA_DIR" -U "$DB_USER" --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$DATA_DIR/../initdb.log" 2>&1 \
      || { cat "$DATA_DIR/../initdb.log" >&2; exit 1; }
    cat >>"$DATA_DIR/postgresql.conf" <<CONF
# vendorflow development cluster
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$DATA_DIR'
max_connections = 300
shared_buffers = 256MB
CONF
    if [ "$DURABLE" != "1" ]; then
      cat >>"$DATA_DIR/postgresql.conf" <<CONF
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
    fi
  fi
  if is_running; then
    echo "postgres: already running at $(url)"
  else
    as_owner "$PG_CTL" -D "$DATA_DIR" -l "$DATA_DIR/server.log" -w -t 60 start >/dev/null \
      || { tail -n 30 "$DATA_DIR/server.log" >&2; exit 1; }
    echo "postgres: started at $(url)"
  fi
  # The application database; test databases are created next to it by the tests themselves.
  if ! as_owner "$PSQL" -h 127.0.0.1 -p "$PORT" -U "$DB_USER" -d postgres -tAc \
      "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'" | grep -q 1; then
    as_owner "$PSQL" -h 127.0.0.1 -p "$PORT" -U "$DB_USER" -d postgres -qc "CREATE DATABASE $DB_NAME" >/dev/null
  fi
}

stop() {
  need_postgres
  if is_running; then
    as_owner "$PG_CTL" -D "$DATA_DIR" -m fast -w stop >/dev/null
    echo "postgres: stopped"
  else
    echo "postgres: not running"
  fi
}

dump() {
  need_postgres
  local pg_dump
  pg_dump="$(find_bin pg_dump)" || { echo "pg_dump was not found" >&2; exit 1; }
  "$pg_dump" -h 127.0.0.1 -p "$PORT" -U "$DB_USER" --no-password "$DB_NAME"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  url) url ;;
  status) need_postgres; if is_running; then echo "running at $(url)"; else echo "stopped"; exit 3; fi ;;
  reset) stop; rm -rf "$DATA_DIR"; echo "postgres: data removed" ;;
  dump) dump ;;
  *) echo "usage: $0 start|stop|url|status|reset|dump" >&2; exit 2 ;;
esac
