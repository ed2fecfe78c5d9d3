#!/usr/bin/env bash
# The official simvue Python client (pinned 2.6.2, from PyPI) against our
# server: builds `simtrack`, starts it on a free loopback port with a temporary
# data directory, creates a token, runs server/tests/simvue_conformance.py,
# stops the server. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
root="$(pwd)"

SIMVUE_VERSION=2.6.2
target="${CARGO_TARGET_DIR:-target}"
venv="$(realpath -m "${SIMTRACK_SIMVUE_VENV:-$target/simvue-venv-$SIMVUE_VERSION}")"

if ! "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('simvue') != '$SIMVUE_VERSION')" 2>/dev/null; then
    echo "-- creating $venv with simvue==$SIMVUE_VERSION"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "simvue==$SIMVUE_VERSION"
fi

cargo build --quiet --locked -p simtrack-server
bin="$(realpath "$target/debug/simtrack")"

data="$(mktemp -d)"
log="$data/server.log"
server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    rm -rf "$data"
}
trap cleanup EXIT

token="$("$bin" token create --data "$data/store" --name conformance)"
"$bin" server --data "$data/store" --listen 127.0.0.1:0 >"$log" 2>&1 &
server_pid=$!
url=""
for _ in $(seq 1 100); do
    url="$(grep -o 'http://127.0.0.1:[0-9]*' "$log" | head -n1 || true)"
    [ -n "$url" ] && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$log"; echo "server exited"; exit 1; }
    sleep 0.05
done
[ -n "$url" ] || { cat "$log"; echo "server did not announce its URL"; exit 1; }
echo "-- server at $url"

status=0
(cd "$data" && SIMVUE_URL="$url" SIMVUE_TOKEN="$token" SIMVUE_OFFLINE_DIRECTORY="$data/offline" \
    "$venv/bin/python" "$root/server/tests/simvue_conformance.py") || status=$?
if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "the server died during the conformance test"; cat "$log"; exit 1
fi
if [ "$status" -ne 0 ]; then
    echo "-- server log:"; tail -n 50 "$log"
fi
exit "$status"
