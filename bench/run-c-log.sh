#!/usr/bin/env bash
# Builds the release library and runs bench/c_log.c three ways:
#   offline      (the worker writes the spool)
#   server down  (SIMTRACK_URL points at a closed port: memory must stay bounded)
#   online       (only if SIMTRACK_URL and SIMTRACK_TOKEN are set in the environment)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p simtrack
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cc -O2 -Wall -Wextra -Werror -Iinclude bench/c_log.c -Ltarget/release -lsimtrack \
   -Wl,-rpath,"$PWD/target/release" -o "$out/c_log"
samples=${SAMPLES:-5000}
points=${POINTS:-10000000}

echo "== offline"
env -u SIMTRACK_URL -u SIMTRACK_TOKEN SIMTRACK_OFFLINE_DIR="$out/offline" "$out/c_log" "$samples" "$points"

echo "== server down (connection refused), finish deadline 2 s"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
SIMTRACK_URL="http://127.0.0.1:$port" SIMTRACK_TOKEN=x SIMTRACK_FINISH_TIMEOUT=2 \
  SIMTRACK_OFFLINE_DIR="$out/down" "$out/c_log" "$samples" "$points"

if [ -n "${SIMTRACK_URL:-}" ] && [ -n "${SIMTRACK_TOKEN:-}" ]; then
  echo "== online: $SIMTRACK_URL"
  SIMTRACK_OFFLINE_DIR="$out/online" "$out/c_log" "$samples" "$points"
fi
