# Sourced by the scripts that need a running `simtrack server`.
#
#   start_server BIN STORE LOG [LISTEN [ARGS...]]
#       starts `BIN server --data STORE --listen LISTEN ARGS...` in the
#       background (LISTEN defaults to 127.0.0.1:0, a free port), waits until
#       it announces its URL, and sets `server_pid` and `url`. If it exits or
#       stays silent for 5 s, prints its log and returns 1.
#   stop_server
#       stops it (TERM, then waits), if it was started.

server_pid=""
url=""

start_server() {
    local bin=$1 store=$2 log=$3 listen=${4:-127.0.0.1:0}
    shift $(($# < 4 ? $# : 4))
    "$bin" server --data "$store" --listen "$listen" "$@" >"$log" 2>&1 &
    server_pid=$!
    url=""
    for _ in $(seq 1 100); do
        url="$(grep -o 'http://[0-9.]*:[0-9]*' "$log" | head -n1 || true)"
        [ -n "$url" ] && return 0
        kill -0 "$server_pid" 2>/dev/null || { cat "$log"; echo "simtrack server exited" >&2; return 1; }
        sleep 0.05
    done
    cat "$log"
    echo "simtrack server did not announce its URL" >&2
    return 1
}

stop_server() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
}
