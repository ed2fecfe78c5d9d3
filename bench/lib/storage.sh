# Sourced by the event benches (bench/events_ingest.sh, events_upgrade.sh),
# from the repository's root: SIMTRACK_BIN (a release build of this tree
# unless set), a temporary directory $out, the storage arguments
# ${storage[@]} (SQLite in $out/data; with PG=1 a database on a PostgreSQL
# started here, scripts/lib/postgres.sh), and `serve BIN`, which starts
# BIN's server on loopback and sets server_pid and url. Everything is
# stopped and removed at exit.
if [ -z "${SIMTRACK_BIN:-}" ]; then
    cargo build --release --locked -p simtrack-server >&2
    SIMTRACK_BIN="$PWD/target/release/simtrack"
fi
out=$(mktemp -d)
server_pid=""
source scripts/lib/postgres.sh
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    stop_postgres
    rm -rf "$out"
}
trap cleanup EXIT
if [ "${PG:-0}" = 1 ]; then
    start_postgres "$out"
    psql -X -q "$pg_url/postgres" -c "CREATE DATABASE bench" >/dev/null
    storage=(--database "$pg_url/bench" --blobs "$out/blobs")
    echo "PostgreSQL"
else
    storage=(--data "$out/data")
    echo "SQLite"
fi
serve() {
    "$1" server "${storage[@]}" --listen 127.0.0.1:0 >"$out/log" 2>&1 &
    server_pid=$!
    for _ in $(seq 200); do grep -q http "$out/log" && break; sleep 0.05; done
    url=$(grep -o 'http://[0-9.:]*' "$out/log" | head -n1)
}
