#!/usr/bin/env bash
# Server-side event ingest (release build), run by hand: a `simtrack server`
# on loopback, then bench/events_ingest.py posts BATCHES (default 20) batches
# of 16 000 events and reports events/s (and checks every event is stored
# once, in order). PG=1 runs it on a PostgreSQL this script starts
# (scripts/lib/postgres.sh) instead of SQLite. SIMTRACK_BIN runs another
# build of the server (e.g. an older one, to compare). WHAT=filter runs
# bench/events_filter.py instead: filtered event requests on a run of
# EVENTS (default 1,000,000) events.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
if [ -z "${SIMTRACK_BIN:-}" ]; then
    cargo build --release --locked -p simtrack-server >&2
    SIMTRACK_BIN="$root/target/release/simtrack"
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
token=$("$SIMTRACK_BIN" token create "${storage[@]}")
"$SIMTRACK_BIN" server "${storage[@]}" --listen 127.0.0.1:0 >"$out/log" 2>&1 &
server_pid=$!
for _ in $(seq 200); do grep -q http "$out/log" && break; sleep 0.05; done
url=$(grep -o 'http://[0-9.:]*' "$out/log" | head -n1)
if [ "${WHAT:-ingest}" = filter ]; then
    python3 bench/events_filter.py "$url" "$token" "${EVENTS:-1000000}"
else
    python3 bench/events_ingest.py "$url" "$token" "${BATCHES:-20}"
fi
