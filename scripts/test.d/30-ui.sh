#!/usr/bin/env bash
# End-to-end tests of the web UI in headless Debian chromium (playwright-core
# from npm, no browser download): builds `simtrack` and the C library,
# compiles examples/c/heat.c (slowed down by server/ui/tests/slow_heat.h so
# a run lives long enough to watch and abort), starts the server on a free
# loopback port with a temporary data directory, creates a token, runs
# server/ui/tests (ui.test.mjs: the UI; xss.test.mjs: hostile artifact
# downloads run no script; users.test.mjs: password sign-in and the Tokens
# page), stops the server. Screenshots go to
# $target/ui-screenshots/. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
root="$(pwd)"
target="$(realpath -m "${CARGO_TARGET_DIR:-target}")"
chromium="${CHROMIUM:-$(command -v chromium || true)}"
[ -x "$chromium" ] || { echo "chromium not found (apt-get install chromium)"; exit 1; }
command -v npm >/dev/null && node -e 'process.exit(+process.versions.node.split(".")[0] >= 18 ? 0 : 1)' ||
    { echo "Node.js >= 18 with npm is needed (apt-get install nodejs npm)"; exit 1; }

(cd server/ui/tests && npm ci --no-audit --no-fund --loglevel=error)
cargo build --quiet --locked -p simtrack -p simtrack-server
bin="$target/debug/simtrack"

data="$(mktemp -d)"
log="$data/server.log"
source "$root/scripts/lib/server.sh"
cleanup() {
    stop_server
    rm -rf "$data"
}
trap cleanup EXIT

cc -Wall -Wextra -Werror -Iinclude -include server/ui/tests/slow_heat.h examples/c/heat.c \
    -L"$target/debug" -lsimtrack -Wl,-rpath,"$target/debug" -lm -o "$data/heat"

token="$("$bin" token create $(storage_args "$data/store") --name ui-tester)"
# A person who signs in with a password (users.test.mjs).
"$bin" user add ui-person --group ui $(storage_args "$data/store")
echo "ui person's password" | "$bin" user passwd ui-person $(storage_args "$data/store")
# notify.test.mjs's webhook receiver listens on loopback, which webhooks
# may reach only when allowed.
start_server "$bin" "$data/store" "$log" 127.0.0.1:0 --lost-check-secs 1 \
    --notify-allow-hosts 127.0.0.1
echo "-- server at $url"

status=0
(cd server/ui/tests && SIMTRACK_URL="$url" SIMTRACK_TOKEN="$token" \
    SIMTRACK_SIGNIN_USER=ui-person SIMTRACK_SIGNIN_PASSWORD="ui person's password" HEAT_BIN="$data/heat" REPO="$root" SIMTRACK_LIBDIR="$target/debug" \
    CHROMIUM="$chromium" SCREENSHOT_DIR="$target/ui-screenshots" \
    node --test --test-concurrency=1 --test-reporter=spec ${UI_TESTS:-ui.test.mjs xss.test.mjs defects.test.mjs features.test.mjs notify.test.mjs users.test.mjs grids.test.mjs ack_units.test.mjs}) || status=$?
if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "the server died during the UI tests"; cat "$log"; exit 1
fi
if [ "$status" -ne 0 ]; then
    echo "-- server log:"; tail -n 50 "$log"
else
    echo "-- screenshots in $target/ui-screenshots/"
fi
exit "$status"
