# Sourced by scripts/garage-check.sh: Garage (https://garagehq.deuxfleurs.fr),
# an S3-compatible object store from crates.io, as a single node.
#
#   garage_bin
#       prints the path of `garage` $GARAGE_VERSION, building it the first
#       time with `cargo install --locked --debug` into $GARAGE_CACHE
#       (default ${XDG_CACHE_HOME:-$HOME/.cache}/simtrack/garage-VERSION):
#       the binary in $GARAGE_CACHE/bin, the build in $GARAGE_CACHE/build.
#       Later runs reuse the binary; an interrupted build resumes where it
#       stopped. A CI cache keeps $GARAGE_CACHE/bin (the build directory
#       only speeds up a build that did not finish). A debug build without
#       debug info: optimising ~500 crates is the long part of the build
#       (a release build had not finished after 44 min on the shared test
#       machine), and a test store holding a few megabytes does not need
#       the speed (times in docs/scale-out.md).
#   start_garage DIR BUCKET
#       starts one node with its metadata and data in DIR/garage on free
#       loopback ports, gives it a layout, creates BUCKET and a key that
#       may read and write it, and sets `garage_pid` and exports
#       AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
#       AWS_REGION for it.
#   stop_garage
#       stops it by its pid.

GARAGE_VERSION=2.5.0
garage_pid=""
garage_conf=""

GARAGE_CACHE="${GARAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/simtrack/garage-$GARAGE_VERSION}"

garage_bin() {
    local b="$GARAGE_CACHE/bin/garage"
    if "$b" --version 2>/dev/null | grep -q "$GARAGE_VERSION"; then
        realpath "$b"
        return 0
    fi
    echo "-- building garage $GARAGE_VERSION into $GARAGE_CACHE (once; long, see docs/scale-out.md)" >&2
    mkdir -p "$GARAGE_CACHE"
    CARGO_PROFILE_DEV_DEBUG=0 cargo install --quiet --locked --debug garage \
        --version "$GARAGE_VERSION" --root "$GARAGE_CACHE" \
        --target-dir "$GARAGE_CACHE/build" >&2 || return 1
    realpath "$b"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_garage() {
    local dir=$1 bucket=$2 bin s3_port rpc_port admin_port node out
    bin="$(garage_bin)" || return 1
    mkdir -p "$dir/garage/meta" "$dir/garage/data"
    chmod 700 "$dir/garage"
    s3_port="$(free_port)"; rpc_port="$(free_port)"; admin_port="$(free_port)"
    garage_conf="$dir/garage/garage.toml"
    cat >"$garage_conf" <<EOT
metadata_dir = "$dir/garage/meta"
data_dir = "$dir/garage/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$rpc_port"
rpc_public_addr = "127.0.0.1:$rpc_port"
rpc_secret = "$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$s3_port"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:$admin_port"
EOT
    chmod 600 "$garage_conf"
    "$bin" -c "$garage_conf" server </dev/null >"$dir/garage.log" 2>&1 &
    garage_pid=$!
    for _ in $(seq 1 200); do
        if node="$("$bin" -c "$garage_conf" node id -q 2>/dev/null)"; then
            break
        fi
        kill -0 "$garage_pid" 2>/dev/null || break
        sleep 0.1
    done
    if [ -z "${node:-}" ]; then
        cat "$dir/garage.log"
        echo "garage did not start" >&2
        return 1
    fi
    node="${node%%@*}"
    "$bin" -c "$garage_conf" layout assign -z dc1 -c 1G "$node" >/dev/null
    "$bin" -c "$garage_conf" layout apply --version 1 >/dev/null
    "$bin" -c "$garage_conf" bucket create "$bucket" >/dev/null
    out="$("$bin" -c "$garage_conf" key create simtrack-test)"
    "$bin" -c "$garage_conf" bucket allow --read --write --owner "$bucket" --key simtrack-test >/dev/null
    AWS_ACCESS_KEY_ID="$(printf '%s\n' "$out" | awk -F': *' 'tolower($1) ~ /key id/ {print $2; exit}')"
    AWS_SECRET_ACCESS_KEY="$(printf '%s\n' "$out" | awk -F': *' 'tolower($1) ~ /secret key/ {print $2; exit}')"
    if [ -z "$AWS_ACCESS_KEY_ID" ] || [ -z "$AWS_SECRET_ACCESS_KEY" ]; then
        printf '%s\n' "$out"
        echo "cannot read the key garage created" >&2
        return 1
    fi
    export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
    export AWS_REGION=garage
    export AWS_ENDPOINT_URL="http://127.0.0.1:$s3_port"
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$s3_port") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "garage's S3 port did not open" >&2
    return 1
}

stop_garage() {
    if [ -n "$garage_pid" ]; then
        kill "$garage_pid" 2>/dev/null || true
        wait "$garage_pid" 2>/dev/null || true
        garage_pid=""
    fi
}
