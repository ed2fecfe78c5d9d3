#!/usr/bin/env bash
# Many solvers, one server (release build): 1, 8 and 32 concurrent C solvers
# (bench/server_ingest.c) against one fresh local `simtrack server`.
#   bench/many_solvers.sh                 POINTS=8000000 total, K = 1 8 32
#   POINTS=2000000 bench/many_solvers.sh 8
# Prints per K: aggregate points/s until every point is queryable, server CPU
# seconds per million points, server peak RSS. STORAGE as in server_ingest.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
cargo build --release --locked --quiet -p simtrack -p simtrack-server
lib="$(realpath "$target/release")"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cc -O2 -Wall -Wextra -Werror -Iinclude bench/server_ingest.c -L"$lib" -lsimtrack -Wl,-rpath,"$lib" -o "$out/ingest"
# shellcheck disable=SC2068 # the solver counts, one per word
python3 bench/many_solvers.py "$lib/simtrack" "$out/ingest" "${POINTS:-8000000}" ${@:-1 8 32}
