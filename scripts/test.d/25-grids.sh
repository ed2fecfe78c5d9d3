#!/usr/bin/env bash
# Grid (array) metrics end to end: builds the library and server, compiles
# examples/c/fields.c and examples/fortran/fields.f90, runs both online
# against a server started here (and the C one offline, delivered with
# `simtrack sync`), then server/tests/grids_e2e.py reads every value back
# through the REST API and the simvue 2.6.2 client and checks it equals the
# examples' closed forms. Honours SIMTRACK_TEST_BACKEND (40-postgres.sh runs
# it on PostgreSQL). About 20 s once built.
set -euo pipefail
cd "$(dirname "$0")/../.."
root="$(pwd)"

SIMVUE_VERSION=2.6.2
target="${CARGO_TARGET_DIR:-target}"
venv="$(realpath -m "${SIMTRACK_SIMVUE_VENV:-$target/simvue-venv-$SIMVUE_VERSION}")"
if ! "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('simvue') != '$SIMVUE_VERSION')" 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "simvue==$SIMVUE_VERSION"
fi

cargo build --quiet --locked -p simtrack-server
cargo build --quiet --locked --lib
bin="$(realpath "$target/debug/simtrack")"
lib="$(realpath "$target/debug")"

data="$(mktemp -d)"
log="$data/server.log"
source "$root/scripts/lib/server.sh"
cleanup() {
    stop_server
    rm -rf "$data"
}
trap cleanup EXIT

cc -Wall -Wextra -Werror -Iinclude examples/c/fields.c -L"$lib" -lsimtrack -Wl,-rpath,"$lib" -o "$data/fields-c"
(cd "$data" && gfortran -Wall -Werror -J"$data" "$root/fortran/simtrack_c.f90" "$root/fortran/simtrack.f90" \
    "$root/examples/fortran/fields.f90" -L"$lib" -lsimtrack -Wl,-rpath,"$lib" -o "$data/fields-f")

token="$("$bin" token create $(storage_args "$data/store") --name grids)"
start_server "$bin" "$data/store" "$log"
echo "-- server at $url"

steps=6
SIMTRACK_URL="$url" SIMTRACK_TOKEN="$token" SIMTRACK_OFFLINE_DIR="$data/spool" "$data/fields-c" "$steps"
SIMTRACK_URL="$url" SIMTRACK_TOKEN="$token" SIMTRACK_OFFLINE_DIR="$data/spool" "$data/fields-f" "$steps"
# Offline: recorded on disk, then carried to the server by `simtrack sync`.
mkdir -m 700 "$data/offline"
(cd "$data" && SIMTRACK_MODE=offline SIMTRACK_OFFLINE_DIR="$data/offline" "$data/fields-c" "$steps" | sed 's/^/offline /')
SIMTRACK_URL="$url" SIMTRACK_TOKEN="$token" SIMTRACK_OFFLINE_DIR="$data/offline" "$bin" sync

(cd "$data" && SIMVUE_URL="$url" SIMVUE_TOKEN="$token" SIMVUE_OFFLINE_DIRECTORY="$data/simvue-offline" \
    "$venv/bin/python" "$root/server/tests/grids_e2e.py" "$steps" fields-c fields-fortran)
# Two runs are named fields-c (online and synced): check the synced one too.
SIMVUE_URL="$url" SIMVUE_TOKEN="$token" "$venv/bin/python" - "$steps" <<'PY'
import os, sys, requests
url, h = os.environ["SIMVUE_URL"], {"Authorization": f"Bearer {os.environ['SIMVUE_TOKEN']}"}
runs = [r for r in requests.get(f"{url}/api/runs", headers=h).json()["data"] if r["name"] == "fields-c"]
assert len(runs) == 2, len(runs)
for r in runs:
    m = requests.get(f"{url}/api/runs/{r['id']}/metrics/", headers=h).json()["data"]
    assert sorted(x["count"] for x in m) == [int(sys.argv[1])] * 3, m
print("grids: the offline run arrived through simtrack sync with every step")
PY
kill -0 "$server_pid" 2>/dev/null || { echo "the server died"; cat "$log"; exit 1; }
