#!/usr/bin/env bash
# Smoke run of the peer benchmark (bench/peers/run.sh --smoke): simtrack from C
# (offline and against a local server), from Fortran (offline) and the simvue
# client offline, small sizes. Fails if any subject fails, so the full bench
# cannot rot. Reuses the simvue venv of 20-simvue-conformance.sh and the
# debug build of `cargo test`; about 1 min once those exist.
set -euo pipefail
cd "$(dirname "$0")/../.."
bench/peers/run.sh --smoke
