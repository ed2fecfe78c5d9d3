#!/usr/bin/env bash
# Cost per point of simtrack_log_many (bench/c_log_many.c), offline into a
# temporary spool, for one or more builds of the library side by side:
#   bench/log-many.sh [LIBDIR...]
# Each LIBDIR holds a libsimtrack.so (default: cargo's release build of this
# tree, built first). ROUNDS (default 3) rounds, the builds alternating
# within each round; K (default "10 30") metrics per call; BLOCKS (default
# 200) timed blocks of 1000 calls per line.
set -euo pipefail
cd "$(dirname "$0")/.."
libs=("$@")
if [ ${#libs[@]} -eq 0 ]; then
  cargo build --release --locked -p simtrack >&2
  libs=("$PWD/target/release")
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for i in "${!libs[@]}"; do
  lib=$(cd "${libs[$i]}" && pwd)
  libs[$i]=$lib
  cc -O2 -Wall -Wextra -Werror -Iinclude bench/c_log_many.c -L"$lib" -lsimtrack -Wl,-rpath,"$lib" \
    -o "$out/c_log_many_$i"
done
export SIMTRACK_MODE=offline SIMTRACK_RESOURCES_INTERVAL=0
unset SIMTRACK_URL SIMTRACK_TOKEN
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "${ROUNDS:-3}"); do
  for i in "${!libs[@]}"; do
    echo "== round $r, library ${libs[$i]}"
    for k in ${K:-10 30}; do
      SIMTRACK_OFFLINE_DIR="$out/spool" "$out/c_log_many_$i" "$k" "${BLOCKS:-200}"
      rm -rf "$out/spool"
    done
  done
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
