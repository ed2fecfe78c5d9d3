#!/usr/bin/env bash
# Server benchmarks (release build), run by hand:
#   1. end-to-end ingest: one C solver -> libsimtrack -> simtrack server, from
#      simtrack_init until every point is queryable through the API;
#   2. the server's peak memory (VmHWM) while ingesting;
#   3. reading the 10M-point series downsampled to 2000 points (median of 20);
#   4. the server alone: pre-encoded batches over one connection (needs a
#      python with msgpack and requests, e.g. a simvue venv: PYTHON=...).
# POINTS (default 10000000) sets the series length. STORAGE sets the
# server's storage arguments (default: --data in a temporary directory), e.g.
#   STORAGE="--database postgres://USER:PASS@HOST:PORT/DB --blobs /tmp/blobs"
set -euo pipefail
cd "$(dirname "$0")/.."
points=${POINTS:-10000000}
target="${CARGO_TARGET_DIR:-target}"
cargo build --release --locked -p simtrack -p simtrack-server
lib="$(realpath "$target/release")"
out=$(mktemp -d)
server_pid=""
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -rf "$out"; }
trap cleanup EXIT
cc -O2 -Wall -Wextra -Werror -Iinclude bench/server_ingest.c -L"$lib" -lsimtrack -Wl,-rpath,"$lib" -o "$out/ingest"

storage=${STORAGE:---data $out/data}
# shellcheck disable=SC2086 # one argument per word
token=$("$lib/simtrack" token create $storage)
# shellcheck disable=SC2086
"$lib/simtrack" server $storage --listen 127.0.0.1:0 >"$out/log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do grep -q http "$out/log" && break; sleep 0.05; done
url=$(grep -o 'http://[0-9.:]*' "$out/log" | head -n1)
echo "server $url, $points points"

count() {
    curl -s -H "Authorization: Bearer $token" "$url/api/runs?filters=%5B%22name%20%3D%3D%20ingest%22%5D" |
        python3 -c 'import json,sys; d=json.load(sys.stdin)["data"]; print(d[0]["metrics"].get("residual",{}).get("count",0) if d else 0)'
}
t0=$(date +%s.%N)
SIMTRACK_URL="$url" SIMTRACK_TOKEN="$token" SIMTRACK_OFFLINE_DIR="$out/spool" SIMTRACK_FINISH_TIMEOUT=300 \
    "$out/ingest" ingest "$points"
while [ "$(count)" != "$points" ]; do sleep 0.05; done
t1=$(date +%s.%N)
python3 -c "t=$t1-$t0; print(f'end-to-end ingest: {$points/t:,.0f} points/s ({t:.2f} s until queryable)')"
echo "server peak RSS while ingesting: $(grep VmHWM /proc/$server_pid/status | awk '{printf "%.0f MiB", $2/1024}')"

run=$(curl -s -H "Authorization: Bearer $token" "$url/api/runs?filters=%5B%22name%20%3D%3D%20ingest%22%5D" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["data"][0]["id"])')
q="$url/api/metrics?runs=%5B%22$run%22%5D&metrics=%5B%22residual%22%5D&xaxis=step&aggregate=False&max_points=2000"
for _ in $(seq 20); do
    curl -s -o "$out/m.json" -w '%{time_total}\n' -H "Authorization: Bearer $token" "$q"
done | sort -n | awk '{a[NR]=$1} END {printf "downsampled read (%d -> 2000 points): median %.1f ms, max %.1f ms\n", '"$points"', a[int((NR+1)/2)]*1000, a[NR]*1000}'
python3 -c "import json; d=json.load(open('$out/m.json')); print('points returned:', len(d['$run']['residual']))"

python="${PYTHON:-python3}"
if "$python" -c 'import msgpack, requests' 2>/dev/null; then
    "$python" bench/server_ingest_http.py "$url" "$token" 100
else
    echo "server-only ingest: skipped (set PYTHON to a python with msgpack and requests)"
fi
