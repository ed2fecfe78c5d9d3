# Sourced by the scripts that need an S3-compatible object store of their own.
#
#   s3_server_bin
#       prints the path of `s3s-fs` (a real S3 protocol server, from
#       crates.io), building it with `cargo install --locked` into cargo's
#       bin directory the first time (2 min 10 s cold on 2 cores); later
#       runs, and CI runs in fresh clones on the same machine, reuse it.
#   start_s3 DIR BUCKET
#       starts it on a free loopback port with data in DIR/s3, creates
#       BUCKET, and sets `s3_pid` and exports AWS_ENDPOINT_URL,
#       AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_REGION for it.
#   stop_s3
#       stops it by its pid.

S3S_FS_VERSION=0.14.1
s3_pid=""

s3_server_bin() {
    local home_bin="${CARGO_HOME:-$HOME/.cargo}/bin/s3s-fs"
    local local_bin="${CARGO_TARGET_DIR:-target}/s3s-fs/bin/s3s-fs"
    local b
    for b in "$home_bin" "$local_bin"; do
        if "$b" --version 2>/dev/null | grep -q "$S3S_FS_VERSION"; then
            realpath "$b"
            return 0
        fi
    done
    # Installed into cargo's bin directory, which outlives a fresh clone
    # (CI), so only the first run on a machine pays the build.
    echo "-- building s3s-fs $S3S_FS_VERSION into ${home_bin%/s3s-fs} (once per machine)" >&2
    cargo install --quiet --locked s3s-fs --version "$S3S_FS_VERSION" --features binary \
        --target-dir "${CARGO_TARGET_DIR:-target}/s3s-fs-build" >&2 || return 1
    realpath "$home_bin"
}

start_s3() {
    local dir=$1 bucket=$2 bin port
    bin="$(s3_server_bin)" || return 1
    mkdir -p "$dir/s3/$bucket"
    port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    export AWS_ACCESS_KEY_ID="simtrack-test"
    AWS_SECRET_ACCESS_KEY="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
    export AWS_SECRET_ACCESS_KEY
    export AWS_REGION=us-east-1
    export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
    "$bin" --host 127.0.0.1 --port "$port" --access-key "$AWS_ACCESS_KEY_ID" \
        --secret-key "$AWS_SECRET_ACCESS_KEY" "$dir/s3" </dev/null >"$dir/s3.log" 2>&1 &
    s3_pid=$!
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        kill -0 "$s3_pid" 2>/dev/null || break
        sleep 0.05
    done
    cat "$dir/s3.log"
    echo "s3s-fs did not start" >&2
    return 1
}

stop_s3() {
    if [ -n "$s3_pid" ]; then
        kill "$s3_pid" 2>/dev/null || true
        wait "$s3_pid" 2>/dev/null || true
        s3_pid=""
    fi
}
