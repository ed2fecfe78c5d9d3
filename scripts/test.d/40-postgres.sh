#!/usr/bin/env bash
# The scale-out backend against real services this script starts itself:
# PostgreSQL from Debian's packages (initdb + postgres in a temporary
# directory, as `nobody` when run as root, on a free loopback port) and the
# S3 protocol server s3s-fs (from crates.io, built once into the cargo target
# dir, see scripts/lib/s3.sh). With SIMTRACK_TEST_BACKEND set to
# scripts/pg-backend.sh (one fresh database per test) it runs:
#   1. PostgreSQL + blob directory: the server's black-box HTTP suite, the
#      C library against the server, notifications, users, grids and the run
#      list query (server/tests/api.rs, c_library.rs, notify.rs, users.rs,
#      grids.rs, runs_query.rs);
#   2. PostgreSQL + S3 with --blobs-stream-through (artifact bytes streamed
#      through the server to the object store): the tests of those suites
#      that store or read artifacts (the others do not touch the object
#      store, and ran in 1), the PostgreSQL-only checks
#      (server/tests/postgres.rs: concurrent migrations, hashed tokens,
#      database down at start and lost mid-run, two replicas behind haproxy
#      with one SIGKILLed, migrate, presigned URLs: scope, expiry, checks,
#      stream-through) and the web UI in Chromium (scripts/test.d/30-ui.sh);
#   3. PostgreSQL + S3 with presigned URLs (the default): the C library's
#      runs with files and the official simvue client
#      (scripts/test.d/20-simvue-conformance.sh), each checking that no
#      artifact byte passed through the server, and grid metrics end to end
#      (scripts/test.d/25-grids.sh); then checks that the artifact bytes are
#      in the object store's own directory.
# Every service is stopped by its pid. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
root="$(pwd)"

work="$(mktemp -d)"
source "$root/scripts/lib/postgres.sh"
source "$root/scripts/lib/s3.sh"
cleanup() {
    stop_s3
    stop_postgres
    rm -rf "$work"
}
trap cleanup EXIT

start_postgres "$work"
echo "-- PostgreSQL $(basename "$(dirname "$(pg_bin)")") on ${pg_url##*@} (pid $pg_pid)"
export SIMTRACK_TEST_PG_URL="$pg_url"
export SIMTRACK_TEST_BACKEND="sh $root/scripts/pg-backend.sh \"\$1\""

# The tests of api.rs and c_library.rs that store or read artifacts: the
# ones the object store stages below run again.
api_artifacts=(every_api_call_needs_a_valid_unexpired_token bad_input_gets_a_clear_4xx
    files_are_stored_by_content simvue_client_suite_differences)
c_artifacts=(heat_example_online_reads_back_everything offline_run_is_uploaded_by_sync)
# `cargo test ARGS`, which must pass exactly N tests: a test renamed must
# not drop out of a stage unnoticed.
cargo_test_n() {
    local n=$1 log passed
    shift
    log="$(mktemp)"
    cargo test "$@" 2>&1 | tee "$log"
    passed="$(awk '/^test result:/ { s += $4 } END { print s + 0 }' "$log")"
    rm -f "$log"
    [ "$passed" = "$n" ] || { echo "expected $n tests to pass, $passed did" >&2; return 1; }
}

echo "-- PostgreSQL + blob directory"
# (runs_query's SQLite twin ran in the workspace's cargo test.)
cargo test --locked -p simtrack-server --test api --test c_library --test notify --test users --test grids --test runs_query \
    -- --skip answer_as_the_scan_does_on_sqlite

start_s3 "$work" simtrack
echo "-- s3s-fs on $AWS_ENDPOINT_URL (pid $s3_pid)"
export SIMTRACK_TEST_S3_BUCKET=simtrack SIMTRACK_TEST_S3_DIR="$work/s3"
echo "-- PostgreSQL + S3, artifact bytes streamed through the server (--blobs-stream-through)"
SIMTRACK_BLOBS_STREAM_THROUGH=1 \
    cargo_test_n $((${#api_artifacts[@]} + ${#c_artifacts[@]})) --locked -p simtrack-server \
    --test api --test c_library -- "${api_artifacts[@]}" "${c_artifacts[@]}"
SIMTRACK_BLOBS_STREAM_THROUGH=1 \
    cargo test --locked -p simtrack-server --test postgres -- --skip artifact_bytes_go_straight
SIMTRACK_BLOBS_STREAM_THROUGH=1 bash "$root/scripts/test.d/30-ui.sh"
echo "-- PostgreSQL + S3, artifact bytes through presigned URLs (the default)"
# The C library and the simvue client upload to presigned forms at the store
# and download through redirects to it; both check that the server's
# /api/health counted no artifact byte.
export SIMTRACK_TEST_S3_DIRECT=1
cargo_test_n ${#c_artifacts[@]} --locked -p simtrack-server --test c_library -- "${c_artifacts[@]}"
cargo test --locked -p simtrack-server --test postgres artifact_bytes_go_straight
bash "$root/scripts/test.d/20-simvue-conformance.sh"
bash "$root/scripts/test.d/25-grids.sh"

objects="$(find "$work/s3/simtrack" -type f | wc -l)"
echo "-- $objects artifact objects in the object store"
[ "$objects" -gt 0 ] || { echo "no artifact reached the object store" >&2; exit 1; }
