# Sourced by the scripts that need a running `simtrack server`.
#
#   storage_args STORE
#       prints the storage arguments for `simtrack server` and `simtrack
#       token create`: `--data STORE` for the embedded backend (the default),
#       or, when SIMTRACK_TEST_BACKEND is set (and not `embedded`), what the
#       shell command in it prints when run with STORE as its argument (see
#       docs/storage-backends.md). Arguments must not contain blanks.
#   start_server BIN STORE LOG [LISTEN [ARGS...]]
#       starts `BIN server $(storage_args STORE) --listen LISTEN ARGS...` in the
#       background (LISTEN defaults to 127.0.0.1:0, a free port), waits until
#       it announces its URL, and sets `server_pid` and `url`. If it exits or
#       stays silent for 5 s, prints its log and returns 1.
#   stop_server
#       stops it (TERM, then waits), if it was started.

server_pid=""
url=""

storage_args() {
    local store=$1
    case "${SIMTRACK_TEST_BACKEND:-embedded}" in
        embedded) printf '%s\n' --data "$store" ;;
        *) sh -c "$SIMTRACK_TEST_BACKEND" backend "$store" ;;
    esac
}

start_server() {
    local bin=$1 store=$2 log=$3 listen=${4:-127.0.0.1:0}
    shift $(($# < 4 ? $# : 4))
    local storage
    storage="$(storage_args "$store")" || return 1
    # shellcheck disable=SC2086 # one argument per word, by contract
    "$bin" server $storage --listen "$listen" "$@" >"$log" 2>&1 &
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
