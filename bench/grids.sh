#!/usr/bin/env bash
# Array-metric benchmark: builds the release library and server, starts the
# server (SQLite, temporary data directory), runs bench/grids_log_array.c
# (1,000,000-element real64 field, 20 steps by default) online against it,
# then reports the server's storage per element (grid_values blobs and the
# database file) and the time to read one step back (JSON as the simvue
# client reads it, and raw f64), median of 5 reads.
#   bench/grids.sh [elements] [steps]
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
n=${1:-1000000}
steps=${2:-20}
cargo build --release --locked -p simtrack -p simtrack-server
bin="$root/target/release/simtrack"
data=$(mktemp -d)
log="$data/server.log"
source "$root/scripts/lib/server.sh"
trap 'stop_server; rm -rf "$data"' EXIT
cc -O2 -Wall -Wextra -Werror -Iinclude bench/grids_log_array.c -Ltarget/release -lsimtrack \
   -Wl,-rpath,"$root/target/release" -lm -o "$data/bench"
token="$("$bin" token create --data "$data/store" --name bench)"
start_server "$bin" "$data/store" "$log"
db0=$(stat -c %s "$data/store/simtrack.db")
SIMTRACK_URL="$url" SIMTRACK_TOKEN="$token" SIMTRACK_OFFLINE_DIR="$data/spool" "$data/bench" "$n" "$steps" | tee "$data/out"
run=$(awk '/^run /{print $2}' "$data/out")
python3 - "$data/store/simtrack.db" "$db0" <<'PY'
import sqlite3, sys, os
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
blob, elems, rows = db.execute("SELECT sum(length(data)), sum(count), count(*) FROM grid_values").fetchone()
print(f"server storage: {blob / elems:.3f} bytes/element in the value blobs ({rows} rows, {blob} bytes for {elems} elements)")
wal = sys.argv[1] + "-wal"
size = os.path.getsize(sys.argv[1]) + (os.path.getsize(wal) if os.path.exists(wal) else 0)
print(f"server storage: {(size - int(sys.argv[2])) / elems:.3f} bytes/element of database growth (incl. WAL)")
PY
server_run=$(curl -s -H "Authorization: Bearer $token" "$url/api/runs" | python3 -c 'import sys,json; print([r["id"] for r in json.load(sys.stdin)["data"] if r["name"]=="bench-grids"][-1])')
for fmt in json f64; do
  q="step=$((steps / 2))"; [ "$fmt" = f64 ] && q="$q&format=f64"
  times=$(for _ in 1 2 3 4 5; do
    curl -s -o "$data/read" -w '%{time_total}\n' -H "Authorization: Bearer $token" "$url/api/runs/$server_run/metrics/u/values?$q"
  done | sort -n)
  echo "read one step ($fmt, $(stat -c %s "$data/read") bytes): median $(echo "$times" | sed -n 3p) s (all: $(echo $times))"
done
