#!/usr/bin/env bash
# Does a dead mail server slow ingest? Run by hand. Three servers in turn,
# each ingesting the same JSON batches (bench/notify_ingest.py: each batch
# turns an alert with notification "email" critical on its own run, so
# every batch queues a delivery):
#   1. the run's owner has no notification channel;
#   2. an email channel, the SMTP port refusing connections;
#   3. an email channel, the SMTP port accepting and never answering
#      (every delivery attempt hangs until its timeout).
# Prints the ingest rate of each and the outbox state at the end.
# BATCHES (default 400), POINTS (per batch, default 200); BUILD=debug uses
# the debug binary instead of building a release one.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
target="${CARGO_TARGET_DIR:-target}"
batches=${BATCHES:-400}
points=${POINTS:-200}
if [ "${BUILD:-release}" = debug ]; then
    cargo build --quiet --locked -p simtrack-server
    bin="$(realpath "$target/debug/simtrack")"
else
    cargo build --quiet --release --locked -p simtrack-server
    bin="$(realpath "$target/release/simtrack")"
fi
out=$(mktemp -d)
server_pid=""
hole_pid=""
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null
    [ -n "$hole_pid" ] && kill "$hole_pid" 2>/dev/null
    rm -rf "$out"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

bench() { # NAME CHANNEL(yes/no) SMTP_PORT
    local name=$1 channel=$2 port=$3 data="$out/$1" token url
    token=$("$bin" token create --data "$data" --name bench)
    [ "$channel" = yes ] && "$bin" notify add --data "$data" --user bench --email bench@example.org \
        >/dev/null
    "$bin" server --data "$data" --listen 127.0.0.1:0 --smtp-host 127.0.0.1 --smtp-port "$port" \
        --smtp-starttls never --notify-retry-secs 0.5 --notify-retry-max-secs 1 >"$out/$name.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 100); do grep -q http "$out/$name.log" && break; sleep 0.05; done
    url=$(grep -o 'http://[0-9.:]*' "$out/$name.log" | head -n1)
    printf '%-28s ' "$name:"
    python3 "$root/bench/notify_ingest.py" "$url" "$token" "$batches" "$points"
    curl -s -H "Authorization: Bearer $token" "$url/api/ui/notifications" | python3 -c '
import collections, json, sys
d = json.load(sys.stdin)["deliveries"]["data"]
print("%28s outbox (newest 50): %s" % ("", dict(collections.Counter(x["status"] for x in d))))'
    kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""
}

bench no-channel no "$(free_port)"
bench smtp-refusing yes "$(free_port)"
hole=$(free_port)
python3 -c 'import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1024)
held = []
while True:
    c, _ = s.accept(); held.append(c)' "$hole" &
hole_pid=$!
sleep 0.3
bench smtp-blackholed yes "$hole"
