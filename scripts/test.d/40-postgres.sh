#!/usr/bin/env bash
# The scale-out backend: starts a PostgreSQL server of its own (Debian's
# packages; initdb + postgres in a temporary directory, as `nobody` when run
# as root, on a free loopback port), then runs against it
#   * the server's black-box HTTP suite and the C library against the server
#     (server/tests/api.rs, c_library.rs) with SIMTRACK_TEST_BACKEND set to
#     scripts/pg-backend.sh: one fresh database per test,
#   * the PostgreSQL-only checks (server/tests/postgres.rs: migrations under
#     concurrent starts, tokens stored as hashes, database down at start and
#     lost while running),
#   * the official simvue client (scripts/test.d/20-simvue-conformance.sh),
# and stops PostgreSQL by its pid. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
root="$(pwd)"

work="$(mktemp -d)"
source "$root/scripts/lib/postgres.sh"
cleanup() {
    stop_postgres
    rm -rf "$work"
}
trap cleanup EXIT

start_postgres "$work"
echo "-- PostgreSQL $(basename "$(dirname "$(pg_bin)")") on ${pg_url##*@} (pid $pg_pid)"

export SIMTRACK_TEST_PG_URL="$pg_url"
export SIMTRACK_TEST_PG_BIN="$(pg_bin)"
export SIMTRACK_TEST_BACKEND="sh $root/scripts/pg-backend.sh \"\$1\""

cargo test --locked -p simtrack-server --test api --test c_library --test postgres
bash "$root/scripts/test.d/20-simvue-conformance.sh"
