#!/bin/sh
# The SIMTRACK_TEST_BACKEND command for the PostgreSQL backend (see
# docs/storage-backends.md): for the test scratch directory $1, prints
#   --database $SIMTRACK_TEST_PG_URL/t_<hash of $1> --blobs $1/blobs
# creating that database, empty, on first use. SIMTRACK_TEST_PG_URL is a
# server URL without a database name (scripts/lib/postgres.sh sets one up).
# With SIMTRACK_TEST_S3_BUCKET set, blobs go to the object store instead:
#   --blobs s3://$SIMTRACK_TEST_S3_BUCKET/t_<hash of $1>
# (endpoint and credentials from AWS_*, as scripts/lib/s3.sh exports them).
set -eu
dir=$1
: "${SIMTRACK_TEST_PG_URL:?set SIMTRACK_TEST_PG_URL to postgres://USER:PASS@HOST:PORT}"
db="t_$(printf '%s' "$dir" | sha256sum | cut -c1-20)"
exists="$(psql -X -q -t -A "$SIMTRACK_TEST_PG_URL/postgres" \
    -c "SELECT 1 FROM pg_database WHERE datname = '$db'")"
if [ "$exists" != 1 ]; then
    # Another test process may create it at the same moment.
    psql -X -q "$SIMTRACK_TEST_PG_URL/postgres" -c "CREATE DATABASE $db" >/dev/null 2>&1 || \
        [ "$(psql -X -q -t -A "$SIMTRACK_TEST_PG_URL/postgres" \
            -c "SELECT 1 FROM pg_database WHERE datname = '$db'")" = 1 ]
fi
if [ -n "${SIMTRACK_TEST_S3_BUCKET:-}" ]; then
    blobs="s3://$SIMTRACK_TEST_S3_BUCKET/$db"
else
    blobs="$dir/blobs"
fi
printf '%s\n' "--database $SIMTRACK_TEST_PG_URL/$db --blobs $blobs"
