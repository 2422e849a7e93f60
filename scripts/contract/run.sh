#!/usr/bin/env bash
# The API contract check (`make contract`, run by CI): schemathesis (PyPI) generates requests from
# the OpenAPI document the service serves, valid and invalid ones, sends them to a started API and
# fails on any server error, undocumented status or content type, answer that breaks its schema,
# valid request refused, invalid request accepted, or authentication ignored.
#
# It runs twice over every operation: once with a backend token and once with an operator token
# (the two roles whose answers differ most; a viewer answers like an operator on reads and 403
# on writes). The service runs `vendorflow api` on a database of its own
# (`vendorflow_contract`, created afresh on the cluster DATABASE_URL names), so nothing touches
# `make run`'s data; no worker runs, so enqueued runs just wait.
#
# schemathesis is installed into .data/contract/venv at the pinned version below. Settings:
#   CONTRACT_EXAMPLES   test cases per operation and phase (default 40)
#   CONTRACT_SEED       the generator's seed (default fixed, so that CI is reproducible; set
#                       another to explore further)
#   CONTRACT_PORT       the API's port (default 58081)
# Reports (JUnit, and the failing requests as a pytest file) go to .data/contract/report-<role>/.
# hooks.py, beside this script, generates the document's own string formats (il-id, il-phone).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

SCHEMATHESIS_VERSION="4.32.5"
# The generated client's check: openapi-python-client generates, mypy --strict type-checks.
CLIENT_TOOLS=(openapi-python-client==0.29.1 mypy==1.18.2 ruff==0.17.6)
WORK="$ROOT/.data/contract"
VENV="$WORK/venv"
EXAMPLES="${CONTRACT_EXAMPLES:-40}"
SEED="${CONTRACT_SEED:-20261208}"
PORT="${CONTRACT_PORT:-58081}"
BASE="http://127.0.0.1:$PORT"

: "${DATABASE_URL:?DATABASE_URL must name the cluster (make contract sets it)}"
mkdir -p "$WORK"

# schemathesis and the client tools, at the pinned versions (reinstalled when a pin changes).
PINS="schemathesis==$SCHEMATHESIS_VERSION ${CLIENT_TOOLS[*]}"
if [ "$(cat "$VENV/pins" 2>/dev/null)" != "$PINS" ]; then
  echo "contract: installing $PINS into $VENV" >&2
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  # shellcheck disable=SC2086 # the pins are words
  "$VENV/bin/pip" install --quiet --disable-pip-version-check $PINS
  echo "$PINS" >"$VENV/pins"
fi

# The binary.
cargo build --quiet --bin vendorflow
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/vendorflow"

# A database of its own, created afresh.
ADMIN_URL="${DATABASE_URL%/*}/postgres"
CONTRACT_URL="${DATABASE_URL%/*}/vendorflow_contract"
PSQL="$(command -v psql || ls -d /usr/lib/postgresql/*/bin/psql 2>/dev/null | sort -V | tail -n 1)"
PGOPTIONS="--client-min-messages=warning" "$PSQL" -q "$ADMIN_URL" -c 'DROP DATABASE IF EXISTS vendorflow_contract WITH (FORCE)' \
  -c 'CREATE DATABASE vendorflow_contract' >/dev/null

export VENDORFLOW_DATABASE_URL="$CONTRACT_URL"
VENDORFLOW_MASTER_KEY="$("$BIN" keys generate)"
export VENDORFLOW_MASTER_KEY
export VENDORFLOW_LISTEN="127.0.0.1:$PORT"
export VENDORFLOW_LOG="${VENDORFLOW_LOG:-warn}"
# The API never calls the provider (workers do, and none runs here), but its settings are
# required at start; they point at a port where nothing listens.
export VENDORFLOW_PROVIDER_URL="http://127.0.0.1:9" VENDORFLOW_PROVIDER_COMPANY_ID=1
export VENDORFLOW_PROVIDER_API_KEY="contract-check-unused"
"$BIN" migrate >/dev/null
MARKETPLACE="$("$BIN" marketplaces create "contract check")"
BACKEND_TOKEN="$("$BIN" tokens create --marketplace "$MARKETPLACE" --role backend --name contract-backend 2>/dev/null)"
OPERATOR_TOKEN="$("$BIN" tokens create --marketplace "$MARKETPLACE" --role operator --name contract-operator 2>/dev/null)"

"$BIN" api >"$WORK/api.log" 2>&1 &
API_PID=$!
trap 'kill "$API_PID" 2>/dev/null || true; wait "$API_PID" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -fsS "$BASE/healthz" >/dev/null 2>&1 && break
  kill -0 "$API_PID" 2>/dev/null || { cat "$WORK/api.log" >&2; echo "contract: the API did not start" >&2; exit 1; }
  sleep 0.2
done

# One clearing vendor and its onboarding run, so that operations on a vendor or a run reach their
# logic instead of answering 404 to random ids (schemathesis still sends random ones in its
# negative cases). Its corporate number is the document's example, so generated onboardings that
# reuse it meet the duplicate check (409).
answer="$(curl -fsS -X POST "$BASE/v1/onboardings" \
  -H "Authorization: Bearer $BACKEND_TOKEN" -H 'Content-Type: application/json' \
  -d '{"vendor": {"external_id": "contract-fixture", "legal_name": "Contract Fixture Ltd",
       "corporate_number": "515555555", "business_type": "company",
       "email": "fixture@example.co.il", "phone": "052-123-4567", "mode": "clearing",
       "bank_account": {"bank": 12, "branch": 571, "account": "041116"}}}')"
VENDOR_ID="$(sed -E 's/.*"vendor_id":"([^"]+)".*/\1/' <<<"$answer")"
RUN_ID="$(sed -E 's/.*"run_id":"([^"]+)".*/\1/' <<<"$answer")"
cat >"$WORK/schemathesis.toml" <<TOML
[[operations]]
include-path-regex = "^/v1/(admin/)?vendors/\\\\{id\\\\}"
parameters = { "path.id" = "$VENDOR_ID" }

[[operations]]
include-path-regex = "^/v1/(admin/)?runs/\\\\{id\\\\}"
parameters = { "path.id" = "$RUN_ID" }
TOML

echo "contract: schemathesis $SCHEMATHESIS_VERSION against $BASE, seed $SEED, $EXAMPLES cases per operation and phase" >&2
status=0
for role in backend operator; do
  token="$BACKEND_TOKEN"
  [ "$role" = operator ] && token="$OPERATOR_TOKEN"
  echo "contract: as the $role token" >&2
  if ! PYTHONPATH="$ROOT/scripts/contract" SCHEMATHESIS_HOOKS=hooks "$VENV/bin/schemathesis" --config-file "$WORK/schemathesis.toml" run "$BASE/openapi.json" \
    --checks all \
    --header "Authorization: Bearer $token" \
    --max-examples "$EXAMPLES" --continue-on-failure ${CONTRACT_ARGS:-} \
    --seed "$SEED" \
    --workers 1 \
    --phases examples,coverage,fuzzing \
    --suppress-health-check all \
    --report junit,pytest \
    --report-dir "$WORK/report-$role"; then
    status=1
  fi
done
# A client generated from the served document, without hand edits, must type-check.
echo "contract: generating a Python client (openapi-python-client) and type-checking it (mypy --strict)" >&2
curl -fsS "$BASE/openapi.json" >"$WORK/openapi.json"
rm -rf "$WORK/client"
cat >"$WORK/mypy.ini" <<'INI'
[mypy]
strict = True
cache_dir = mypy-cache

# The generator's own httpx wrapper (client.py, the same for every document, not made from ours)
# trips httpx's current type stubs; everything generated from the document is checked strictly.
[mypy-client.client]
ignore_errors = True
INI
if ! PATH="$VENV/bin:$PATH" "$VENV/bin/openapi-python-client" generate --path "$WORK/openapi.json" \
  --meta none --output-path "$WORK/client" --fail-on-warning >"$WORK/client.log" 2>&1; then
  cat "$WORK/client.log" >&2
  echo "contract: the client generator refused the document" >&2
  status=1
elif ! (cd "$WORK" && "$VENV/bin/mypy" --config-file mypy.ini client >&2); then
  echo "contract: the generated client does not type-check" >&2
  status=1
fi
if grep -q 'panicked' "$WORK/api.log"; then
  echo "contract: the API logged a panic (see $WORK/api.log)" >&2
  status=1
fi
[ "$status" -eq 0 ] && echo "contract: no findings" >&2
exit "$status"
