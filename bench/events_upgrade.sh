#!/usr/bin/env bash
# Upgrading a deployment whose runs hold many events, run by hand: an older
# build (OLD_BIN, required: e.g. a release build of a commit from before the
# event counts) stores EVENTS events (default 1,000,000) in one run through
# its server; then this build opens the same data (its first open applies
# the migrations and counts the events; `simtrack token create` is timed),
# opens it again (nothing left to do), serves it and deletes the run
# (DELETE /api/runs/ID timed). SQLite by default; PG=1 runs it on a
# PostgreSQL this script starts (scripts/lib/postgres.sh).
#
#     OLD_BIN=/path/to/old/simtrack [PG=1] bash bench/events_upgrade.sh
set -euo pipefail
cd "$(dirname "$0")/.."
: "${OLD_BIN:?set OLD_BIN to an older build of simtrack}"
if [ -z "${SIMTRACK_BIN:-}" ]; then
    cargo build --release --locked -p simtrack-server >&2
    SIMTRACK_BIN="$PWD/target/release/simtrack"
fi
out=$(mktemp -d)
server_pid=""
source scripts/lib/postgres.sh
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    stop_postgres
    rm -rf "$out"
}
trap cleanup EXIT
if [ "${PG:-0}" = 1 ]; then
    start_postgres "$out"
    psql -X -q "$pg_url/postgres" -c "CREATE DATABASE bench" >/dev/null
    storage=(--database "$pg_url/bench" --blobs "$out/blobs")
    echo "PostgreSQL"
else
    storage=(--data "$out/data")
    echo "SQLite"
fi
# Starts BIN's server; sets server_pid and url.
serve() {
    "$1" server "${storage[@]}" --listen 127.0.0.1:0 >"$out/log" 2>&1 &
    server_pid=$!
    for _ in $(seq 200); do grep -q http "$out/log" && break; sleep 0.05; done
    url=$(grep -o 'http://[0-9.:]*' "$out/log" | head -n1)
}
stop() { kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""; }
ms_of() { local t0; t0=$(date +%s%N); "$@" >/dev/null; echo $(( ($(date +%s%N) - t0) / 1000000 )); }

token=$("$OLD_BIN" token create "${storage[@]}")
serve "$OLD_BIN"
run=$(python3 bench/events_post.py "$url" "$token" "${EVENTS:-1000000}")
stop
echo "first open by this build (migrations, counting): $(ms_of "$SIMTRACK_BIN" token create "${storage[@]}") ms"
echo "second open (nothing to do): $(ms_of "$SIMTRACK_BIN" token create "${storage[@]}") ms"
serve "$SIMTRACK_BIN"
python3 - "$url" "$token" "$run" "${EVENTS:-1000000}" <<'EOF'
import json, sys, time
sys.path.insert(0, "bench")
from api_client import connect
url, token, run, events = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
call = connect(url, token, timeout=600)
page = json.loads(call("GET", f"/api/events?run={run}&count=1"))
assert page["count"] == events, (page["count"], events)
t = time.perf_counter()
call("DELETE", f"/api/runs/{run}")
print(f"DELETE of the run of {events:,} events: {time.perf_counter() - t:.2f} s")
EOF
