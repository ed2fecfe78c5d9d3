#!/usr/bin/env bash
# The runs table's requests on the server alone: for each server binary
# given, started in turn on the data directory DATA (one that
# bench/ui_bench.sh filled and kept: KEEP_DATA=DATA, 100,000 runs by
# default), the server's CPU time and the wall time per request, over 10
# requests each, of what the runs page asks for: the first page (newest
# first, archived runs left out), a status filter, a tag filter, and a sort
# by a metadata key. CPU time moves less than wall time on a busy machine:
# compare builds side by side (A/B) in one run.
#   KEEP_DATA=/tmp/ui-bench METRICS=1 POINTS=1000 COMPARE_RUNS=0 LIVE_EVENTS=0 bench/ui_bench.sh
#   bench/runs_list.sh /tmp/ui-bench old/simtrack target/release/simtrack
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 DATA BIN [BIN...]" >&2; exit 2; }
root="$(cd "$(dirname "$0")/.." && pwd)"
data=$1
shift
source "$root/scripts/lib/server.sh"
trap stop_server EXIT
token="$(cat "$data/token")"
enc() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$1"; }
tck="$(getconf CLK_TCK)"
cpu() { awk '{print $14 + $15}' "/proc/$server_pid/stat"; }
get() { curl -sf -o /dev/null -H "Authorization: Bearer $token" "$url$1"; }
measure() {
    local name=$1 path=$2 a b t0 t1
    get "$path"
    a="$(cpu)"
    t0="$(date +%s%N)"
    for _ in $(seq 1 10); do get "$path"; done
    t1="$(date +%s%N)"
    b="$(cpu)"
    printf '  %-22s server CPU %6.1f ms, wall %6.1f ms per request\n' "$name" \
        "$(echo "($b - $a) * 1000 / $tck / 10" | bc -l)" "$(echo "($t1 - $t0) / 10000000" | bc -l)"
}
live="$(enc '["has not tag.archived"]')"
newest="$(enc '[{"id": "created", "desc": true}]')"
for bin in "$@"; do
    start_server "$bin" "$data/store" "$data/runs_list.log"
    echo "$bin (load average $(cut -d' ' -f1-3 /proc/loadavg)):"
    measure "first page" "/api/ui/runs?filters=$live&count=50&sorting=$newest"
    measure "status == failed" "/api/ui/runs?filters=$(enc '["status == failed", "has not tag.archived"]')&count=50&sorting=$newest"
    measure "has tag.g7" "/api/ui/runs?filters=$(enc '["has tag.g7", "has not tag.archived"]')&count=50&sorting=$newest"
    measure "sorted by metadata.re" "/api/ui/runs?filters=$live&count=50&sorting=$(enc '[{"id": "metadata.re", "desc": false}]')"
    stop_server
    server_pid=""
done
