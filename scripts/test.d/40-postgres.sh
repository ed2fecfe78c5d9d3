#!/usr/bin/env bash
# The scale-out backend against real services this script starts itself:
# PostgreSQL from Debian's packages (initdb + postgres in a temporary
# directory, as `nobody` when run as root, on a free loopback port) and the
# S3 protocol server s3s-fs (from crates.io, built once into the cargo target
# dir, see scripts/lib/s3.sh). With SIMTRACK_TEST_BACKEND set to
# scripts/pg-backend.sh (one fresh database per test) it runs:
#   1. PostgreSQL + blob directory: the server's black-box HTTP suite and the
#      C library against the server (server/tests/api.rs, c_library.rs);
#   2. PostgreSQL + S3 with --blobs-stream-through (artifact bytes streamed
#      through the server to the object store): the same suites, the
#      PostgreSQL-only checks (server/tests/postgres.rs: concurrent
#      migrations, hashed tokens, database down at start and lost mid-run,
#      two replicas behind haproxy with one SIGKILLed, migrate, presigned
#      URLs: scope, expiry, checks, stream-through) and the web UI in
#      Chromium (scripts/test.d/30-ui.sh);
#   3. PostgreSQL + S3 with presigned URLs (the default): the C library
#      against the server and the official simvue client
#      (scripts/test.d/20-simvue-conformance.sh), each checking that no
#      artifact byte passed through the server; then checks that the
#      artifact bytes are in the object store's own directory.
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

echo "-- PostgreSQL + blob directory"
cargo test --locked -p simtrack-server --test api --test c_library --test notify --test users --test grids --test runs_query

start_s3 "$work" simtrack
echo "-- s3s-fs on $AWS_ENDPOINT_URL (pid $s3_pid)"
export SIMTRACK_TEST_S3_BUCKET=simtrack SIMTRACK_TEST_S3_DIR="$work/s3"
echo "-- PostgreSQL + S3, artifact bytes streamed through the server (--blobs-stream-through)"
SIMTRACK_BLOBS_STREAM_THROUGH=1 \
    cargo test --locked -p simtrack-server --test api --test c_library --test grids --test postgres \
    -- --skip artifact_bytes_go_straight
SIMTRACK_BLOBS_STREAM_THROUGH=1 bash "$root/scripts/test.d/30-ui.sh"
echo "-- PostgreSQL + S3, artifact bytes through presigned URLs (the default)"
# The C library and the simvue client upload to presigned forms at the store
# and download through redirects to it; both check that the server's
# /api/health counted no artifact byte.
export SIMTRACK_TEST_S3_DIRECT=1
cargo test --locked -p simtrack-server --test c_library
cargo test --locked -p simtrack-server --test postgres artifact_bytes_go_straight
bash "$root/scripts/test.d/20-simvue-conformance.sh"
bash "$root/scripts/test.d/25-grids.sh"

objects="$(find "$work/s3/simtrack" -type f | wc -l)"
echo "-- $objects artifact objects in the object store"
[ "$objects" -gt 0 ] || { echo "no artifact reached the object store" >&2; exit 1; }
