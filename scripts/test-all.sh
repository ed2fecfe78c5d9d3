#!/usr/bin/env bash
# Runs every test of the project: Rust (library, C API, server), then the
# CMake/CTest suite (C, C++, Fortran with gfortran and flang, MPI, install
# smoke tests), then the official simvue client against our server.
# This is the README's test command; .ci/run calls it after installing the
# system packages.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo test (workspace)"
cargo test --workspace --locked

for part in scripts/test.d/*.sh; do
    [ -e "$part" ] || continue
    echo "== $part"
    bash "$part"
done
