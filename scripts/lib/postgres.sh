# Sourced by the scripts that need a PostgreSQL server of their own.
#
#   start_postgres DIR
#       creates a cluster in DIR/pg (initdb from Debian's packages, as the
#       unprivileged user `nobody` when run as root), starts it on a free
#       loopback port with password authentication for TCP, and sets
#       `pg_pid` and `pg_url` (postgres://simtrack:PASSWORD@127.0.0.1:PORT,
#       without a database name). Run again on the same DIR after a stop,
#       it restarts that cluster on the same port. Returns 1 with the log
#       when it fails.
#   stop_postgres
#       stops it (SIGINT: fast shutdown) by its pid and waits.

pg_pid=""
pg_url=""
pg_dir=""

pg_bin() {
    local d
    d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)"
    [ -n "$d" ] || { echo "PostgreSQL is not installed (apt-get install postgresql)" >&2; return 1; }
    printf '%s\n' "$d"
}

# Runs a command as the unprivileged owner of the cluster.
pg_as_owner() {
    if [ "$(id -u)" = 0 ]; then
        setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"
    else
        "$@"
    fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_postgres() {
    local dir=$1 bin port password
    bin="$(pg_bin)" || return 1
    pg_dir="$dir/pg"
    if [ ! -d "$pg_dir/data" ]; then
        mkdir -p "$pg_dir"
        chmod 755 "$dir"
        (umask 077; od -An -N12 -tx1 /dev/urandom | tr -d ' \n' >"$dir/pg-password")
        free_port >"$dir/pg-port"
        cp "$dir/pg-password" "$pg_dir/pwfile"
        [ "$(id -u)" = 0 ] && chown -R nobody:nogroup "$pg_dir"
        pg_as_owner "$bin/initdb" -D "$pg_dir/data" -U simtrack --pwfile="$pg_dir/pwfile" \
            --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --no-sync >"$pg_dir/initdb.log" 2>&1 \
            || { cat "$pg_dir/initdb.log"; return 1; }
        rm -f "$pg_dir/pwfile"
    fi
    password="$(cat "$dir/pg-password")"
    port="$(cat "$dir/pg-port")"
    # Sized for tests and benchmarks on a small machine; durability
    # (fsync) stays on, as in production.
    # Started directly (setpriv execs it), so $! is the postmaster's pid.
    local as_owner=()
    [ "$(id -u)" = 0 ] && as_owner=(setpriv --reuid=nobody --regid=nogroup --clear-groups --)
    "${as_owner[@]}" "$bin/postgres" -D "$pg_dir/data" -k "$pg_dir" -h 127.0.0.1 -p "$port" \
        -c max_connections=300 -c shared_buffers=128MB -c logging_collector=off \
        </dev/null >>"$pg_dir/server.log" 2>&1 &
    pg_pid=$!
    for _ in $(seq 1 200); do
        if "$bin/pg_isready" -q -h 127.0.0.1 -p "$port"; then
            pg_url="postgres://simtrack:$password@127.0.0.1:$port"
            return 0
        fi
        kill -0 "$pg_pid" 2>/dev/null || break
        sleep 0.05
    done
    cat "$pg_dir/server.log"
    echo "PostgreSQL did not start" >&2
    return 1
}

stop_postgres() {
    if [ -n "$pg_pid" ]; then
        kill -INT "$pg_pid" 2>/dev/null || true
        wait "$pg_pid" 2>/dev/null || true
        # Not our child when started by another shell: wait for it to go.
        while kill -0 "$pg_pid" 2>/dev/null; do sleep 0.05; done
        pg_pid=""
    fi
}
