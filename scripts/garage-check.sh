#!/usr/bin/env bash
# The S3 parts of the scale-out tests against Garage instead of s3s-fs (not
# part of scripts/test-all.sh: Garage's first build is long, see
# docs/scale-out.md). Starts PostgreSQL (scripts/lib/postgres.sh) and one
# Garage node (scripts/lib/garage.sh, building garage once with `cargo
# install`), then runs, with artifact bytes in Garage:
#   1. streamed through the server (--blobs-stream-through): the black-box
#      HTTP suite, the C library against the server, the PostgreSQL checks;
#   2. presigned URLs (the default): the presigned-URL test (scope, checks,
#      expiry, stream-through), the C library and the official simvue
#      client, each checking that no artifact byte passed the server.
# Every service is stopped by its pid. Exits non-zero on any failure.
# Usage: [GARAGE_CACHE=DIR] scripts/garage-check.sh (where garage is built
# and kept, see scripts/lib/garage.sh; times in docs/scale-out.md).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"

work="$(mktemp -d)"
source "$root/scripts/lib/postgres.sh"
source "$root/scripts/lib/garage.sh"
cleanup() {
    stop_garage
    stop_postgres
    rm -rf "$work"
}
trap cleanup EXIT

garage_bin >/dev/null
start_postgres "$work"
echo "-- PostgreSQL on ${pg_url##*@} (pid $pg_pid)"
start_garage "$work" simtrack
echo "-- garage $GARAGE_VERSION on $AWS_ENDPOINT_URL (pid $garage_pid)"
export SIMTRACK_TEST_PG_URL="$pg_url"
export SIMTRACK_TEST_BACKEND="sh $root/scripts/pg-backend.sh \"\$1\""
export SIMTRACK_TEST_S3_BUCKET=simtrack
unset SIMTRACK_TEST_S3_DIR

echo "-- PostgreSQL + Garage, bytes streamed through the server"
SIMTRACK_BLOBS_STREAM_THROUGH=1 \
    cargo test --locked -p simtrack-server --test api --test c_library --test postgres \
    -- --skip artifact_bytes_go_straight
echo "-- PostgreSQL + Garage, presigned URLs"
export SIMTRACK_TEST_S3_DIRECT=1
cargo test --locked -p simtrack-server --test postgres artifact_bytes_go_straight
cargo test --locked -p simtrack-server --test c_library
bash "$root/scripts/test.d/20-simvue-conformance.sh"
echo "-- garage: all passed"
