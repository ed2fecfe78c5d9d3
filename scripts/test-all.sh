#!/usr/bin/env bash
# Runs every test of the project: the gates (cargo fmt --check, clippy with
# warnings as errors), Rust (library, C API, server), then the CMake/CTest
# suite (C, C++, Fortran with gfortran and flang, MPI, install smoke tests),
# then the official simvue client against our server, the web UI, a real
# one-node SLURM (40-slurm.sh) and the release tarball under Lmod (50-package.sh).
# This is the README's test command; .ci/run calls it after installing the
# system packages.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all --check

echo "== cargo clippy (workspace, all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo test (workspace)"
cargo test --workspace --locked

for part in scripts/test.d/*.sh; do
    [ -e "$part" ] || continue
    echo "== $part"
    bash "$part"
done
