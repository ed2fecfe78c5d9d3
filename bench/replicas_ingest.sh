#!/usr/bin/env bash
# Scale-out ingest benchmark (release build), run by hand:
# SOLVERS (default 8) C solvers at once, each logging POINTS (default
# 10000000 / SOLVERS) points, end to end until every point is queryable:
#   1. through haproxy to two replicas on one PostgreSQL (started here,
#      as in scripts/test.d/40-postgres.sh);
#   2. to one embedded server (SQLite), for comparison.
# Needs PostgreSQL and haproxy from Debian's packages.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
solvers=${SOLVERS:-8}
points=${POINTS:-$((10000000 / solvers))}
target="${CARGO_TARGET_DIR:-target}"
cargo build --release --locked -p simtrack -p simtrack-server
lib="$(realpath "$target/release")"
out=$(mktemp -d)
source "$root/scripts/lib/postgres.sh"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    stop_postgres
    rm -rf "$out"
}
trap cleanup EXIT
cc -O2 -Wall -Wextra -Werror -Iinclude bench/server_ingest.c -L"$lib" -lsimtrack -Wl,-rpath,"$lib" -o "$out/ingest"

start_server() { # LOG ARGS... ; sets started_url
    local log=$1; shift
    "$lib/simtrack" server --listen 127.0.0.1:0 "$@" >"$log" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do grep -q http "$log" && break; sleep 0.05; done
    started_url=$(grep -o 'http://[0-9.:]*' "$log" | head -n1)
}

total() { # URL TOKEN
    curl -s -H "Authorization: Bearer $2" "$1/api/runs?filters=%5B%22name%20%3D%3D%20ingest%22%5D" |
        python3 -c 'import json,sys; print(sum(r["metrics"].get("residual",{}).get("count",0) for r in json.load(sys.stdin)["data"]))'
}

ingest() { # LABEL URL TOKEN
    local label=$1 url=$2 token=$3 want=$((solvers * points)) t0 t1 i
    t0=$(date +%s.%N)
    for i in $(seq "$solvers"); do
        SIMTRACK_URL="$url" SIMTRACK_TOKEN="$token" SIMTRACK_OFFLINE_DIR="$out/spool-$label-$i" \
            SIMTRACK_FINISH_TIMEOUT=600 "$out/ingest" ingest "$points" >"$out/solver-$label-$i.log" 2>&1 &
    done
    while [ "$(total "$url" "$token")" != "$want" ]; do sleep 0.1; done
    t1=$(date +%s.%N)
    python3 -c "t=$t1-$t0; print(f'$label: $solvers solvers x $points points: {$want/t:,.0f} points/s ({t:.2f} s until queryable)')"
}

start_postgres "$out"
db="$pg_url/postgres"
token=$("$lib/simtrack" token create --database "$db")
start_server "$out/a.log" --database "$db" --blobs "$out/blobs"
a=$started_url
start_server "$out/b.log" --database "$db" --blobs "$out/blobs"
b=$started_url
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$out/haproxy.cfg" <<CFG
global
    maxconn 2000
defaults
    mode http
    timeout connect 2s
    timeout client 600s
    timeout server 600s
frontend fe
    bind 127.0.0.1:$port
    default_backend be
backend be
    balance roundrobin
    server a ${a#http://}
    server b ${b#http://}
CFG
haproxy -db -f "$out/haproxy.cfg" >"$out/haproxy.log" 2>&1 &
pids+=($!)
sleep 0.5
ingest "postgres-2-replicas-haproxy" "http://127.0.0.1:$port" "$token"
# Where the CPU went: the replicas, PostgreSQL (all its processes), haproxy.
cpu() { awk -v t="$(getconf CLK_TCK)" '{printf "%.1f", ($14 + $15) / t}' "/proc/$1/stat" 2>/dev/null || echo 0; }
pg_cpu=$(for p in $pg_pid $(pgrep -P "$pg_pid" || true); do cpu "$p"; echo; done | awk '{s += $1} END {printf "%.1f", s}')
echo "CPU seconds: replicas $(cpu "${pids[0]}") + $(cpu "${pids[1]}"), PostgreSQL $pg_cpu, haproxy $(cpu "${pids[2]}")"

etoken=$("$lib/simtrack" token create --data "$out/data")
start_server "$out/e.log" --data "$out/data"
ingest "sqlite-1-server" "$started_url" "$etoken"
echo "CPU seconds: embedded server $(cpu "${pids[3]}")"
