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
source "$root/scripts/lib/server.sh"
cleanup() {
    stop_server
    rm -rf "$data"
}
trap cleanup EXIT

token="$("$bin" token create $(storage_args "$data/store") --name conformance)"
# Two more users for the visibility checks: one in the same group, one not.
"$bin" user add conformance --group lab $(storage_args "$data/store")
"$bin" user add peer --group lab $(storage_args "$data/store")
"$bin" user add stranger --group elsewhere $(storage_args "$data/store")
peer_token="$("$bin" token create $(storage_args "$data/store") --user peer)"
stranger_token="$("$bin" token create $(storage_args "$data/store") --user stranger)"
start_server "$bin" "$data/store" "$log"
echo "-- server at $url"

status=0
(cd "$data" && SIMVUE_URL="$url" SIMVUE_TOKEN="$token" SIMVUE_OFFLINE_DIRECTORY="$data/offline" \
    PEER_TOKEN="$peer_token" STRANGER_TOKEN="$stranger_token" \
    "$venv/bin/python" "$root/server/tests/simvue_conformance.py") || status=$?
if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "the server died during the conformance test"; cat "$log"; exit 1
fi
if [ "$status" -ne 0 ]; then
    echo "-- server log:"; tail -n 50 "$log"
fi
# With an object store and presigned URLs (scripts/test.d/40-postgres.sh),
# the client's artifact bytes must have gone straight to the store: the
# server counts every artifact byte it receives or sends.
if [ "$status" -eq 0 ] && [ "${SIMTRACK_TEST_S3_DIRECT:-}" = 1 ]; then
    health="$(python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1] + "/api/health").read().decode())' "$url")"
    echo "-- /api/health: $health"
    python3 -c 'import json, sys; b = json.loads(sys.argv[1])["artifact_bytes"]; sys.exit(0 if b == {"received": 0, "sent": 0} else "artifact bytes passed through the server: %s" % b)' "$health" || status=1
fi
exit "$status"
