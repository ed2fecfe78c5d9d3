#!/usr/bin/env bash
# Builds the Fortran logging benchmark in release mode and runs it offline into
# a temporary directory:
#   bench/fortran_log.sh [gfortran|flang-new-19|...]
# Uses $CARGO_TARGET_DIR if set (the Rust library is then shared with other
# build trees); the CMake build tree is build/bench-<compiler>.
set -euo pipefail
cd "$(dirname "$0")/.."
fc=${1:-gfortran}
bdir=build/bench-$(basename "$fc")
cmake -S . -B "$bdir" -DCMAKE_BUILD_TYPE=Release -DCMAKE_Fortran_COMPILER="$fc" \
    -DSIMTRACK_BUILD_TESTS=OFF -DSIMTRACK_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$bdir" --target bench_fortran_log -j2 >/dev/null
spool=$(mktemp -d)
trap 'rm -rf "$spool"' EXIT
SIMTRACK_MODE=offline SIMTRACK_OFFLINE_DIR=$spool "$bdir/bench/bench_fortran_log"
