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
source bench/lib/storage.sh
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
