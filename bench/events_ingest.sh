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
source bench/lib/storage.sh
token=$("$SIMTRACK_BIN" token create "${storage[@]}")
serve "$SIMTRACK_BIN"
if [ "${WHAT:-ingest}" = filter ]; then
    python3 bench/events_filter.py "$url" "$token" "${EVENTS:-1000000}"
else
    python3 bench/events_ingest.py "$url" "$token" "${BATCHES:-20}"
fi
