#!/usr/bin/env bash
# The cost of `simtrack run` on a program printing LINES lines (default
# 1,000,000) as fast as it can (server/tests/wrap/residuals.c in burst mode):
# wall time with and without the wrapper, and the CPU the wrapper adds per
# 1,000 lines. Output goes to /dev/null in both cases (through the wrapper's
# pass-through in the wrapped case). Configurations:
#   bare     the program alone, writing to /dev/null (the original baseline)
#   pipe     the program writing into a pipe read by `cat >/dev/null`, as
#            it writes into the wrapper's pipe (a second, fairer baseline)
#   floor    the program writing into a 1 MiB pipe read as the wrapper reads
#            it, by a minimal C reader that discards it (bench/pipe_floor.c):
#            the least any wrapper reading the output costs the program
#   file     the program writing to a file, as a batch job's stdout usually
#            is (a third baseline)
#   offline  simtrack run, every line an event in the local spool
#   offline>file  the same with the wrapper's output going to a file, as a
#            batch job's does: compare with `file`
#   direct>file  the same with --direct: the program writes the file itself
#            and the wrapper reads it back (docs/run.md)
#   online   simtrack run against a local `simtrack server`, until the
#            wrapper exits: the spool synced and the final status on the
#            server; a backlog over 1 MB is uploaded by the background
#            `simtrack sync --run ID` the wrapper starts (docs/run.md)
#   online>file  the same with the wrapper's output going to a file
# Each is run REPS times (default 5); the median is printed. With
# CHILD_TIME=1, "child" is the wall time of the program itself (GNU time
# inside the wrapper): whether the wrapper slows the program down, apart from
# the wait for delivery at the end (else it repeats the wall time).
# The wrapper's added wall time and CPU are printed against each baseline;
# "true" is the fixed cost: `simtrack run -- true` offline, median of REPS
# rounds of 10 runs, per run.
set -euo pipefail
cd "$(dirname "$0")/.."
# SIMTRACK_BIN measures another build (e.g. an older one, to compare).
if [ -n "${SIMTRACK_BIN:-}" ]; then
  bin=$SIMTRACK_BIN
else
  cargo build --release --locked -p simtrack-server >&2
  bin="$PWD/target/release/simtrack"
fi
lines=${LINES_OUT:-1000000}
reps=${REPS:-5}
tmp=$(mktemp -d)
# CHILD_TIME=1: also time the program inside the wrapper (GNU time, 10 ms
# steps; its fork and exec add about a millisecond to the wrapped cases).
inner=()
if [ "${CHILD_TIME:-0}" = 1 ]; then inner=(/usr/bin/time -f %e -o "$tmp/inner"); fi
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror \
   server/tests/wrap/residuals.c -o "$tmp/prog"
cc -O2 -std=c11 -Wall -Wextra -Werror bench/pipe_floor.c -o "$tmp/floor"

# One measurement: "wall user+sys" in seconds (GNU time, children included).
# Output goes to $out (/dev/null unless a case sets it).
out=/dev/null
# Wall time from the clock in ns (GNU time's %e has 10 ms steps).
measure() {
  local t0 t1
  t0=$(date +%s%N)
  /usr/bin/time -f '%U %S' -o "$tmp/t" "$@" >"$out" 2>"$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
  t1=$(date +%s%N)
  awk -v ns=$((t1 - t0)) '{printf "%.4f %.3f\n", ns / 1e9, $1 + $2}' "$tmp/t"
}
median() { sort -n | awk '{a[NR]=$0} END {print a[int((NR+1)/2)]}'; }

run_case() { # name, command...
  local name=$1; shift
  : > "$tmp/walls"; : > "$tmp/cpus"; : > "$tmp/inners"
  : > "$tmp/delivered"
  for _ in $(seq "$reps"); do
    rm -rf "$tmp/spool" "$tmp/inner" "$tmp/out"
    read -r wall cpu < <(measure "$@")
    # Online, the wrapper may leave the rest of the upload to a background
    # `simtrack sync`: wait for it (so it neither competes with the next
    # round nor loses its spool) and note when everything was delivered.
    local d0 d1
    d0=$(date +%s%N)
    while pgrep -f -- "--cache $tmp/spool" >/dev/null; do sleep 0.01; done
    d1=$(date +%s%N)
    awk -v w="$wall" -v ns=$((d1 - d0)) 'BEGIN {printf "%.4f\n", w + ns / 1e9}' >> "$tmp/delivered"
    echo "$wall" >> "$tmp/walls"; echo "$cpu" >> "$tmp/cpus"
    if [ -s "$tmp/inner" ]; then tail -n1 "$tmp/inner" >> "$tmp/inners"; else echo "$wall" >> "$tmp/inners"; fi
  done
  local w c i
  w=$(median < "$tmp/walls"); c=$(median < "$tmp/cpus"); i=$(median < "$tmp/inners")
  echo "$name $w $c $i" >> "$tmp/results"
  if [ "${name#online}" != "$name" ]; then
    printf '%-13s everything on the server after %.4f s (median; the wrapper exits before, see docs/run.md)\n' "$name" "$(median < "$tmp/delivered")"
  fi
  printf '%-13s wall %7.4f s   child %6.3f s   cpu %6.3f s\n' "$name" "$w" "$i" "$c"
}

echo "== $lines lines, median of $reps (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
run_case bare "$tmp/prog" burst "$lines"
run_case pipe sh -c '"$1" burst "$2" | cat >/dev/null' sh "$tmp/prog" "$lines"
run_case floor "$tmp/floor" "$tmp/prog" burst "$lines"
run_case file sh -c '"$1" burst "$2" >"$3"' sh "$tmp/prog" "$lines" "$tmp/out"
rm -f "$tmp/out"
SIMTRACK_MODE=offline SIMTRACK_OFFLINE_DIR="$tmp/spool" SIMTRACK_RESOURCES_INTERVAL=0 \
  run_case offline "$bin" run --name bench -- "${inner[@]}" "$tmp/prog" burst "$lines"
out="$tmp/out"
SIMTRACK_MODE=offline SIMTRACK_OFFLINE_DIR="$tmp/spool" SIMTRACK_RESOURCES_INTERVAL=0 \
  run_case offline\>file "$bin" run --name bench -- "${inner[@]}" "$tmp/prog" burst "$lines"
SIMTRACK_MODE=offline SIMTRACK_OFFLINE_DIR="$tmp/spool" SIMTRACK_RESOURCES_INTERVAL=0 \
  run_case direct\>file "$bin" run --direct --name bench -- "${inner[@]}" "$tmp/prog" burst "$lines"
out=/dev/null
rm -f "$tmp/out"

# Fixed cost: the wrapper around a program that does nothing (each run timed
# alone, so the removal of the spool between runs is not counted).
: > "$tmp/fixed"
for _ in $(seq $((reps * 10))); do
  rm -rf "$tmp/spool"
  t0=$(date +%s%N)
  SIMTRACK_MODE=offline SIMTRACK_OFFLINE_DIR="$tmp/spool" SIMTRACK_RESOURCES_INTERVAL=0 \
    "$bin" run --name bench -- true >/dev/null
  echo $(( $(date +%s%N) - t0 )) >> "$tmp/fixed"
done
: > "$tmp/alone"
for _ in $(seq $((reps * 10))); do
  t0=$(date +%s%N)
  true_bin=$(command -v true)
  "$true_bin" >/dev/null
  echo $(( $(date +%s%N) - t0 )) >> "$tmp/alone"
done
printf 'true          offline %.1f ms per run (simtrack run -- true, median of %d); %.1f ms for true alone, timed the same way\n' \
  "$(median < "$tmp/fixed" | awk '{print $1 / 1e6}')" $((reps * 10)) "$(median < "$tmp/alone" | awk '{print $1 / 1e6}')"

# Paired rounds. This machine's speed drifts between cases run one after
# the other (the same case's median moves by 20-30 % between runs of this
# script), so the offline cost is also measured round by round: each round
# runs the baseline and the wrapped program back to back, in alternating
# order, and the median of the rounds' differences is printed with its
# quartiles. PAIRS sets the number of rounds (default 4 * REPS).
pairs=${PAIRS:-$((reps * 4))}
offline_env=(env SIMTRACK_MODE=offline SIMTRACK_OFFLINE_DIR="$tmp/spool" SIMTRACK_RESOURCES_INTERVAL=0)
paired() { # label, baseline's output, wrapped output; commands in base[@], wrapped[@]
  local label=$1 base_out=$2 wrapped_out=$3 a b r
  : > "$tmp/diffs"
  for r in $(seq "$pairs"); do
    rm -rf "$tmp/spool" "$tmp/out"
    if [ $((r % 2)) = 0 ]; then
      out=$base_out; a=$(measure "${base[@]}" | cut -d' ' -f1); rm -f "$tmp/out"
      out=$wrapped_out; b=$(measure "${wrapped[@]}" | cut -d' ' -f1)
    else
      out=$wrapped_out; b=$(measure "${wrapped[@]}" | cut -d' ' -f1); rm -rf "$tmp/out" "$tmp/spool"
      out=$base_out; a=$(measure "${base[@]}" | cut -d' ' -f1)
    fi
    awk -v a="$a" -v b="$b" 'BEGIN {printf "%.2f\n", 100 * (b - a) / a}' >> "$tmp/diffs"
  done
  out=/dev/null
  sort -n "$tmp/diffs" | awk -v label="$label" '{d[NR] = $1}
    END {printf "paired %-24s %+.1f %% (median of %d rounds; quartiles %+.1f %%, %+.1f %%)\n", label, d[int((NR + 1) / 2)], NR, d[int((NR + 3) / 4)], d[int((3 * NR + 1) / 4)]}'
}
base=(sh -c '"$1" burst "$2" >"$3"' sh "$tmp/prog" "$lines" "$tmp/out")
wrapped=("${offline_env[@]}" "$bin" run --name bench -- "$tmp/prog" burst "$lines")
paired "offline>file vs file" /dev/null "$tmp/out"
base=("$tmp/prog" burst "$lines")
paired "offline vs bare" /dev/null /dev/null
# What reading the output through a pipe costs by itself, against /dev/null.
wrapped=("$tmp/floor" "$tmp/prog" burst "$lines")
paired "floor vs bare" /dev/null /dev/null
rm -f "$tmp/out"

"$bin" token create --data "$tmp/data" --name bench > "$tmp/token"
# SERVER_NICE=19 runs the server at the lowest priority: the nearest this
# machine comes to a server elsewhere, whose work does not take the cores
# the program runs on.
nice -n "${SERVER_NICE:-0}" "$bin" server --data "$tmp/data" --listen 127.0.0.1:0 > "$tmp/server.out" 2>&1 &
server_pid=$!
for _ in $(seq 100); do grep -q http:// "$tmp/server.out" 2>/dev/null && break; sleep 0.1; done
url=$(grep -o 'http://[^ ]*' "$tmp/server.out" | head -1)
SIMTRACK_URL="$url" SIMTRACK_TOKEN=$(cat "$tmp/token") SIMTRACK_OFFLINE_DIR="$tmp/spool" \
  SIMTRACK_RESOURCES_INTERVAL=0 SIMTRACK_FINISH_TIMEOUT=300 \
  run_case online "$bin" run --name bench -- "${inner[@]}" "$tmp/prog" burst "$lines"
out="$tmp/out"
SIMTRACK_URL="$url" SIMTRACK_TOKEN=$(cat "$tmp/token") SIMTRACK_OFFLINE_DIR="$tmp/spool" \
  SIMTRACK_RESOURCES_INTERVAL=0 SIMTRACK_FINISH_TIMEOUT=300 \
  run_case online\>file "$bin" run --name bench -- "${inner[@]}" "$tmp/prog" burst "$lines"
out=/dev/null

awk -v lines="$lines" '
  $1 == "bare" || $1 == "pipe" || $1 == "floor" || $1 == "file" { bw[$1] = $2; bc[$1] = $3; next }
  { w[$1] = $2; c[$1] = $3; i[$1] = $4 }
  END {
    split("bare floor file", bases, " ")
    for (k in w) for (j = 1; j <= 3; j++) {
      b = bases[j]
      printf "%-13s wall %+.4f s (%+.1f%%) vs %s (child %+.3f s); wrapper CPU %.3f ms per 1,000 lines\n", k, w[k] - bw[b], 100 * (w[k] - bw[b]) / bw[b], b, i[k] - bw[b], 1000 * (c[k] - bc[b]) / (lines / 1000)
    }
  }' "$tmp/results"

