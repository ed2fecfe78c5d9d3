#!/usr/bin/env bash
# The quick start's main job, on the embedded default: builds simtrack,
# starts `simtrack server` (SQLite + files under .simtrack-demo/), creates a
# token, runs the Fortran heat example against the server, prints where to
# look at the run, and keeps the server running until Ctrl-C.
#
#   scripts/demo.sh            # interactive: server stays up afterwards
#   scripts/demo.sh --no-wait  # stop the server once the run is shown
#
# Environment: SIMTRACK_DEMO_PORT (default 8800; 0 picks a free port),
# FC (the Fortran compiler; default gfortran).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
wait_at_end=1
[ "${1:-}" = "--no-wait" ] && wait_at_end=0

demo=$root/.simtrack-demo
mkdir -p "$demo"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}

echo "== building the library and the server (cargo, release)"
cargo build --release --locked -p simtrack -p simtrack-server
simtrack=$CARGO_TARGET_DIR/release/simtrack

echo "== building the Fortran heat example (cmake)"
cmake -S . -B "$demo/build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_Fortran_COMPILER="${FC:-gfortran}" \
    -DSIMTRACK_BUILD_TESTS=OFF -DSIMTRACK_BUILD_EXAMPLES=ON >"$demo/cmake.log" 2>&1 \
    || { cat "$demo/cmake.log"; exit 1; }
cmake --build "$demo/build" --target heat -j 2 >>"$demo/cmake.log" 2>&1 \
    || { tail -40 "$demo/cmake.log"; exit 1; }
heat=$(find "$demo/build" -type f -name heat -perm -u+x | head -n 1)

echo "== starting simtrack server"
source "$root/scripts/lib/server.sh"
trap stop_server EXIT
start_server "$simtrack" "$demo/data" "$demo/server.log" "127.0.0.1:${SIMTRACK_DEMO_PORT:-8800}"
token=$("$simtrack" token create --data "$demo/data" --name demo)

echo "== running the Fortran heat solver against $url"
mkdir -p "$demo/work"
(cd "$demo/work" && SIMTRACK_URL=$url SIMTRACK_TOKEN=$token SIMTRACK_OFFLINE_DIR=$demo/spool "$heat")

# The server's id of the run just made (the newest one).
run_id="<run id>"
if command -v curl >/dev/null && command -v python3 >/dev/null; then
    sorting=%5B%7B%22id%22%3A%22created%22%2C%22desc%22%3Atrue%7D%5D
    run_id=$(curl -s -H "Authorization: Bearer $token" "$url/api/runs?count=1&sorting=$sorting" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["data"][0]["id"])' || echo "<run id>")
fi

cat <<MSG

== done: the run is tracked by the server at $url
   (data in $demo/data; token saved in $demo/token)

   Look at it:
     export SIMTRACK_URL=$url SIMTRACK_TOKEN=\$(cat $demo/token)
     curl -s -H "Authorization: Bearer \$SIMTRACK_TOKEN" "\$SIMTRACK_URL/api/runs"
     curl -s -H "Authorization: Bearer \$SIMTRACK_TOKEN" "\$SIMTRACK_URL/api/metrics?runs=%5B%22$run_id%22%5D&metrics=%5B%22residual%22%5D&xaxis=step&max_points=20"
   or open $url in a browser and sign in with the token:
     $token
MSG
echo "$token" >"$demo/token"
chmod 600 "$demo/token"

if [ $wait_at_end = 1 ]; then
    echo "   The server keeps running: press Ctrl-C to stop it."
    wait $server_pid
fi
