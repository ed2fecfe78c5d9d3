#!/usr/bin/env bash
# UI benchmark: a release `simtrack server` with a fresh data directory, one
# run of METRICS x POINTS (default 50 x 1,000,000) loaded through
# libsimtrack by bench/ui_load.c, RUNS (default 10,000) runs created through
# the API, then bench/ui_bench.mjs measures in headless chromium:
#   - the run page: time until all charts are drawn;
#   - the runs page: time to first render and to apply a filter; with 5
#     metadata columns, first render and a sort by one of them;
#   - Compare: COMPARE_RUNS (default 20) runs x 10 metrics x COMPARE_POINTS
#     (default 100,000) points, time until the grid is drawn;
#   - a live run page with LIVE_EVENTS (default 100,000) events: bytes moved
#     per refresh in the steady state.
# Needs: chromium, node + npm (uses server/ui/tests/node_modules).
#   bench/ui_bench.sh                 # full size
#   METRICS=5 POINTS=100000 RUNS=1000 COMPARE_RUNS=3 COMPARE_POINTS=10000 LIVE_EVENTS=10000 bench/ui_bench.sh   # quick look
# Set KEEP_DATA=DIR to keep (and reuse) the data directory between runs;
# SIMTRACK_BIN=PATH to measure another server binary on it (A/B).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
target="$(realpath -m "${CARGO_TARGET_DIR:-target}")"
METRICS="${METRICS:-50}"
POINTS="${POINTS:-1000000}"
RUNS="${RUNS:-100000}"
COMPARE_RUNS="${COMPARE_RUNS:-20}"
COMPARE_POINTS="${COMPARE_POINTS:-100000}"
LIVE_EVENTS="${LIVE_EVENTS:-100000}"

(cd server/ui/tests && npm ci --no-audit --no-fund --loglevel=error)
# SIMTRACK_BIN=PATH measures another build of the server (an A/B against
# an older binary); libsimtrack still comes from this tree's release build.
[ -n "${SIMTRACK_BIN:-}" ] && [ -e "$target/release/libsimtrack.so" ] ||
    cargo build --quiet --release --locked -p simtrack -p simtrack-server
bin="${SIMTRACK_BIN:-$target/release/simtrack}"

if [ -n "${KEEP_DATA:-}" ]; then data="$KEEP_DATA"; mkdir -p "$data"; else data="$(mktemp -d)"; fi
log="$data/server.log"
source "$root/scripts/lib/server.sh"
cleanup() {
    stop_server
    [ -n "${KEEP_DATA:-}" ] || rm -rf "$data"
}
trap cleanup EXIT

cc -O2 -Wall -Wextra -Werror -Iinclude bench/ui_load.c -L"$target/release" -lsimtrack \
    -Wl,-rpath,"$target/release" -lm -o "$data/ui_load"
[ -s "$data/token" ] || "$bin" token create --data "$data/store" --name bench >"$data/token"
token="$(cat "$data/token")"
start_server "$bin" "$data/store" "$log"
echo "-- server at $url (data: $data)"

big="ui-bench-${METRICS}x${POINTS}"
if [ ! -e "$data/loaded-$big" ]; then
    echo "-- loading $METRICS metrics x $POINTS points"
    (cd "$data" && SIMTRACK_URL="$url" SIMTRACK_TOKEN="$token" SIMTRACK_OFFLINE_DIR="$data/offline" \
        ./ui_load "$big" "$METRICS" "$POINTS")
    touch "$data/loaded-$big"
fi
cmp="cmp-${COMPARE_POINTS}"
if [ "$COMPARE_RUNS" -gt 0 ] && [ ! -e "$data/loaded-$cmp-$COMPARE_RUNS" ]; then
    echo "-- loading $COMPARE_RUNS runs x 10 metrics x $COMPARE_POINTS points for Compare"
    for i in $(seq -w 1 "$COMPARE_RUNS"); do
        (cd "$data" && SIMTRACK_URL="$url" SIMTRACK_TOKEN="$token" SIMTRACK_OFFLINE_DIR="$data/offline" \
            ./ui_load "$cmp-$i" 10 "$COMPARE_POINTS" >/dev/null)
    done
    touch "$data/loaded-$cmp-$COMPARE_RUNS"
fi
mkdir -p "$target/ui-screenshots"
SIMTRACK_URL="$url" SIMTRACK_TOKEN="$token" BIG_RUN_NAME="$big" RUNS="$RUNS" LIVE_EVENTS="$LIVE_EVENTS" \
    COMPARE_PREFIX="$([ "$COMPARE_RUNS" -gt 0 ] && echo "$cmp-" || true)" \
    SCREENSHOT_DIR="$target/ui-screenshots" node bench/ui_bench.mjs
