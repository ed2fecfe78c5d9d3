#!/usr/bin/env bash
# Log cost and thread scaling of the hot path, offline into a temporary spool:
#   bench/log-scaling.sh [LIBDIR]
# LIBDIR holds the libsimtrack.so to measure (default: cargo's release build,
# built first), so two builds can be compared on the same machine in one go.
# REPS (default 3) repetitions of each line; each line is a median over
# 1000-call blocks (see bench/c_log.c, bench/c_threads.c, bench/fortran_*.f90).
# Prints:
#   - simtrack_log of 1 metric, simtrack_log_many of 10 (per call; /10 = per point)
#   - Fortran run%log (gfortran, or $FC)
#   - C pthreads and Fortran OpenMP with 1, 2, 4, 8 threads on one run
set -euo pipefail
cd "$(dirname "$0")/.."
lib=${1:-}
if [ -z "$lib" ]; then
  cargo build --release --locked -p simtrack >&2
  lib=$PWD/target/release
fi
lib=$(cd "$lib" && pwd)
reps=${REPS:-3}
fc=${FC:-gfortran}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
link=(-L"$lib" -lsimtrack -Wl,-rpath,"$lib")
cc -O2 -Wall -Iinclude bench/c_log.c "${link[@]}" -o "$out/c_log"
cc -O2 -Wall -pthread -Iinclude bench/c_threads.c "${link[@]}" -o "$out/c_threads"
(cd "$out" && "$fc" -O2 -c "$OLDPWD/fortran/simtrack_c.f90" "$OLDPWD/fortran/simtrack.f90")
"$fc" -O2 -J"$out" "$out/simtrack_c.o" "$out/simtrack.o" bench/fortran_log.f90 "${link[@]}" -o "$out/fortran_log"
"$fc" -O2 -fopenmp -J"$out" "$out/simtrack_c.o" "$out/simtrack.o" bench/fortran_omp.f90 "${link[@]}" -o "$out/fortran_omp"

export SIMTRACK_MODE=offline SIMTRACK_OFFLINE_DIR="$out/spool" SIMTRACK_RESOURCES_INTERVAL=0
unset SIMTRACK_URL SIMTRACK_TOKEN
echo "library: $lib"
for r in $(seq "$reps"); do
  echo "== repetition $r"
  "$out/c_log" "${SAMPLES:-5000}" "${POINTS:-2000000}" | grep -E "simtrack_log|points logged"
  "$out/fortran_log" | grep -E "run%log|raw"
  for t in 1 2 4 8; do
    "$out/c_threads" "$t" "${TSAMPLES:-1000}" own
  done
  "$out/c_threads" 8 "${TSAMPLES:-1000}" shared
  for t in 1 2 4 8; do
    OMP_NUM_THREADS=$t "$out/fortran_omp"
  done
  rm -rf "$out/spool"
done
