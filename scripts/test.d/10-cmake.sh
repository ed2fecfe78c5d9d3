#!/usr/bin/env bash
# The CMake/CTest part of the test suite, once per Fortran compiler:
#   build/ci-gfortran   gfortran (+ the MPI example under mpirun -np 4)
#   build/ci-flang      LLVM flang (flang-19 / flang-new-19)
# Each tree runs: the Fortran module tests (offline, against a live
# `simtrack server`, offline + `simtrack sync`), the C, C++, Fortran and MPI
# examples (MPI also against the live server), and the install smoke tests
# (find_package, pkg-config shared and --static, FetchContent). Both trees
# share one cargo target directory (the one `cargo test` just used), so the
# Rust library and the server are compiled once.
#
# Environment: CARGO_TARGET_DIR (default: <repo>/target), FC_FLANG (the flang
# to use), SIMTRACK_CMAKE_BUILD_TYPE (default Debug: the profile `cargo test`
# already built).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
build_type=${SIMTRACK_CMAKE_BUILD_TYPE:-Debug}
jobs=${SIMTRACK_JOBS:-2}

flang=${FC_FLANG:-}
if [ -z "$flang" ]; then
    for candidate in flang-19 flang-new-19 flang flang-new; do
        if command -v "$candidate" >/dev/null; then flang=$(command -v "$candidate"); break; fi
    done
fi
if [ -z "$flang" ]; then
    echo "10-cmake: LLVM flang not found (apt-get install flang-19, or set FC_FLANG)" >&2
    exit 1
fi

# The live-server tests need the `simtrack` binary; `cargo test --workspace`
# usually left it there already. Missing live tests fail instead of skipping.
server=$CARGO_TARGET_DIR/debug/simtrack
if [ "$build_type" != Debug ]; then server=$CARGO_TARGET_DIR/release/simtrack; fi
if [ ! -x "$server" ]; then
    echo "== cargo build -p simtrack-server (for the live-server tests)"
    profile=(); [ "$build_type" != Debug ] && profile=(--release)
    cargo build --locked -p simtrack-server "${profile[@]}"
fi
export SIMTRACK_LIVE_REQUIRED=1

run_tree() {
    local name=$1 fc=$2
    local dir=build/ci-$name
    echo "== cmake: $name ($fc), $build_type, cargo target dir $CARGO_TARGET_DIR"
    cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE="$build_type" -DCMAKE_Fortran_COMPILER="$fc" \
        -DSIMTRACK_WARNINGS_AS_ERRORS=ON -DSIMTRACK_SERVER_EXECUTABLE="$server"
    cmake --build "$dir" -j "$jobs"
    ctest --test-dir "$dir" -j "$jobs" --output-on-failure --no-tests=error
}

run_tree gfortran gfortran
# The MPI example must not be silently skipped where MPI is installed.
# (grep without -q reads all of ctest's output: no SIGPIPE under pipefail.)
if command -v mpirun >/dev/null && ! ctest --test-dir build/ci-gfortran -N | grep example_mpi >/dev/null; then
    echo "10-cmake: mpirun is installed but the MPI example was not configured" >&2
    exit 1
fi
run_tree flang "$flang"
