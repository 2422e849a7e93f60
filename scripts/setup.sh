#!/usr/bin/env bash
# Installs the system packages vendorflow's make targets need and this machine lacks.
#
#   scripts/setup.sh run    for `make run`, `make bench`, `make chaos`: PostgreSQL's server and
#                           client binaries, and CA certificates (TLS clients refuse to start
#                           without the system's CA store)
#   scripts/setup.sh test   for `make test`: the above, and Chromium and chromedriver, which drive
#                           the dashboard's browser tests
#   scripts/setup.sh contract  for `make contract`: the `run` set, and Python 3 with venv, into
#                           which scripts/contract/run.sh installs schemathesis (from PyPI)
#
# When everything is there it does nothing, in milliseconds. Otherwise it installs the missing
# Debian/Ubuntu packages with apt-get (`apt-get update` once, then one quiet install) when it can:
# as root, or through sudo when `sudo -n true` succeeds (no password prompt). When it cannot, it
# stops and prints the one command to run. Rust, git and a C compiler (build-essential) are not
# installed here: they are what a fresh machine needs before `make`.
set -euo pipefail

MODE="${1:-run}"
case "$MODE" in
  run | test | contract) ;;
  *) echo "usage: $0 run|test|contract" >&2; exit 2 ;;
esac

packages=() # Debian packages to install
what=()     # what is missing, for people

# PostgreSQL: scripts/pg.sh looks on PATH, then under /usr/lib/postgresql/*/bin (Debian's layout).
have_pg_bin() {
  command -v "$1" >/dev/null 2>&1 && return 0
  local bin
  for bin in /usr/lib/postgresql/*/bin/"$1"; do
    [ -x "$bin" ] && return 0
  done
  return 1
}
if ! have_pg_bin initdb || ! have_pg_bin pg_ctl || ! have_pg_bin psql || ! have_pg_bin pg_dump; then
  packages+=(postgresql)
  what+=("PostgreSQL (initdb, pg_ctl, psql, pg_dump)")
fi

# The system's CA store, where rustls-platform-verifier finds the roots that SUMIT's and webhook
# receivers' certificates chain to. SSL_CERT_FILE overrides it, as it does for the verifier.
have_ca_store() {
  local file
  for file in "${SSL_CERT_FILE:-}" /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt \
    /etc/ssl/ca-bundle.pem /etc/ssl/cert.pem; do
    [ -n "$file" ] && [ -s "$file" ] && return 0
  done
  [ "$(uname -s)" = Darwin ] # macOS verifies through its keychain
}
if ! have_ca_store; then
  packages+=(ca-certificates)
  what+=("CA certificates")
fi

# The dashboard's browser tests (crates/api/tests/admin_browser.rs) run these two, at these
# paths unless CHROMIUM and CHROMEDRIVER name others (which are never installed here).
need_browser_bin() { # variable, default path, Debian package, name
  local path="${!1:-$2}"
  [ -x "$path" ] && return 0
  if [ -n "${!1:-}" ]; then
    echo "setup: $1=$path is not an executable: fix $1 or unset it to use $2" >&2
    exit 1
  fi
  packages+=("$3")
  what+=("$4 ($2)")
}
if [ "$MODE" = test ]; then
  need_browser_bin CHROMIUM /usr/bin/chromium chromium Chromium
  need_browser_bin CHROMEDRIVER /usr/bin/chromedriver chromium-driver chromedriver
fi

# The API contract check (scripts/contract/run.sh) runs schemathesis in a virtual environment,
# and talks to the API it starts with curl.
if [ "$MODE" = contract ]; then
  if ! command -v curl >/dev/null 2>&1; then
    packages+=(curl)
    what+=("curl")
  fi
  if ! command -v python3 >/dev/null 2>&1; then
    packages+=(python3 python3-venv)
    what+=("Python 3 with venv")
  elif ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    packages+=(python3-venv)
    what+=("Python's venv module")
  fi
fi

[ ${#packages[@]} -eq 0 ] && exit 0

missing="${what[0]}"
for item in "${what[@]:1}"; do missing+=", $item"; done

if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup: missing $missing." >&2
  echo "setup: this script installs them only with apt-get (Debian/Ubuntu); the Debian packages are: ${packages[*]}" >&2
  exit 1
fi

if [ "$EUID" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  SUDO=(sudo)
else
  echo "setup: missing $missing. Install them with:" >&2
  echo "    sudo apt-get update && sudo apt-get install -y ${packages[*]}" >&2
  echo "then run the make command again." >&2
  exit 1
fi

echo "setup: installing $missing with apt-get (${packages[*]})…" >&2
log="$(mktemp "${TMPDIR:-/tmp}/vendorflow-setup.XXXXXX")"
apt() {
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=120 "$@" >>"$log" 2>&1
}
if ! apt update || ! apt install "${packages[@]}"; then
  tail -n 30 "$log" >&2
  echo "setup: apt-get failed (full log: $log)" >&2
  exit 1
fi
rm -f "$log"
echo "setup: installed ${packages[*]}" >&2
