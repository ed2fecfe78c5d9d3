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

# Each part says how long it took, so a CI log shows where the time goes.
part() {
    local name=$1 start=$SECONDS
    shift
    echo "== $name"
    "$@"
    echo "== $name: passed in $((SECONDS - start)) s"
}

part "cargo fmt --check" cargo fmt --all --check
part "cargo clippy (workspace, all targets, warnings are errors)" \
    cargo clippy --workspace --all-targets --locked -- -D warnings
part "cargo test (workspace)" cargo test --workspace --locked
for script in scripts/test.d/*.sh; do
    [ -e "$script" ] || continue
    part "$script" bash "$script"
done
echo "== every test passed in $SECONDS s"
