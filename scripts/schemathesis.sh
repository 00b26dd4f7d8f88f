#!/usr/bin/env bash
# Runs schemathesis (PyPI) against a real gateway's admin API, from the OpenAPI document the
# gateway serves. Passes when no request gets a 5xx and every response matches the
# documented status codes, content type and schema.
#
#   scripts/schemathesis.sh [path/to/hookgate]      # default: target/debug/hookgate (built if missing)
#
# Installs schemathesis into target/schemathesis-venv on first use.
set -euo pipefail
cd "$(dirname "$0")/.."

binary=${1:-target/debug/hookgate}
if [ ! -x "$binary" ]; then
  cargo build -q -p hookgate
fi
binary=$(realpath "$binary")

venv=target/schemathesis-venv
if [ ! -x "$venv/bin/st" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "schemathesis==4.32.5"
fi

work=$(mktemp -d)
server=""
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
token="schemathesis-operator-$(python3 -c 'import secrets; print(secrets.token_hex(8))')"
cat > "$work/hookgate.toml" <<TOML
[server]
listen = "127.0.0.1:$port"
[store]
url = "sqlite://$work/data/hookgate.db"
[admin]
token = "$token"
read_token = "$token-read"
[[source]]
name = "gh"
path = "/gh"
preset = "github"
secret = "schemathesis-secret"
[[destination]]
name = "archive"
kind = "file"
path = "archive.jsonl"
[[destination]]
name = "nowhere"
kind = "http"
url = "http://127.0.0.1:9/"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
max_attempts = 1
[[route]]
to = ["archive", "nowhere"]
TOML

"$binary" serve --config "$work/hookgate.toml" 2> "$work/serve.log" &
server=$!
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
  sleep 0.1
done
# Some data to list, show and replay: accepted events, a duplicate, refusals.
for i in 1 2 3 4 5; do
  "$binary" send "http://127.0.0.1:$port/gh" --preset github --secret schemathesis-secret >/dev/null
done
"$binary" send "http://127.0.0.1:$port/gh" --preset github --secret wrong-secret >/dev/null 2>&1 || true

status=0
"$venv/bin/st" run "http://127.0.0.1:$port/api/v1/openapi.json" \
  --header "Authorization: Bearer $token" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --max-examples 50 --seed 1 --no-color || status=$?
if [ "$status" -ne 0 ]; then
  echo "schemathesis failed; the gateway's log:"; tail -50 "$work/serve.log"
fi
exit "$status"
