#!/usr/bin/env bash
# simtrack and its peers measured side by side, in one run, loopback only.
#
#   bench/peers/run.sh            the full run (≤ 15 min on a 2-core machine);
#                                 prints the table and writes docs/performance.md
#   bench/peers/run.sh --smoke    simtrack (C, Fortran) and simvue offline only,
#                                 small sizes, debug build, no report (< 2 min);
#                                 run by scripts/test.d/60-peers-smoke.sh
#
# Installs the peers from PyPI at pinned versions into private venvs under
# target/ (bench/peers/venvs.sh, once), builds the release library and server,
# compiles the C and Fortran workloads, starts `simtrack server` (SQLite, temp
# dir) and MLflow's tracking server (SQLite) on loopback, runs
# bench/peers/peers.py (the method is in its docstring and in the report) and
# stops both servers. NOTE="..." adds a line to the report (e.g. that the
# machine was shared).
set -euo pipefail
cd "$(dirname "$0")/../.."
root="$(pwd)"
smoke=0
[ "${1:-}" = "--smoke" ] && smoke=1
target="${CARGO_TARGET_DIR:-target}"
FC=${FC:-gfortran}

if [ "$smoke" = 1 ]; then
    bench/peers/venvs.sh simvue
else
    bench/peers/venvs.sh
fi
# The smoke run checks that the bench works, not its figures: it uses the
# debug build the test suite already made instead of a release build.
if [ "$smoke" = 1 ]; then
    cargo build --locked --quiet -p simtrack -p simtrack-server
    lib="$(realpath "$target/debug")"
else
    cargo build --release --locked --quiet -p simtrack -p simtrack-server
    lib="$(realpath "$target/release")"
fi

work="$(mktemp -d)"
server_pid=""
mlflow_pid=""
cleanup() {
    for p in $server_pid $mlflow_pid; do
        kill "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

cc -O2 -Wall -Wextra -Werror -Iinclude bench/peers/c_workload.c -L"$lib" -lsimtrack -Wl,-rpath,"$lib" \
    -o "$work/c_workload"
mkdir -p "$work/mod"
"$FC" -O2 -J"$work/mod" fortran/simtrack_c.f90 fortran/simtrack.f90 bench/peers/f_workload.f90 \
    -L"$lib" -lsimtrack -Wl,-rpath,"$lib" -o "$work/f_workload"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Our server.
token="$("$lib/simtrack" token create --data "$work/store")"
"$lib/simtrack" server --data "$work/store" --listen 127.0.0.1:0 >"$work/server.log" 2>&1 &
server_pid=$!
url=""
for _ in $(seq 200); do
    url="$(grep -o 'http://[0-9.]*:[0-9]*' "$work/server.log" | head -n1 || true)"
    [ -n "$url" ] && break
    sleep 0.05
done
[ -n "$url" ] || { cat "$work/server.log"; echo "simtrack server did not start" >&2; exit 1; }

venv() { bench/peers/venvs.sh --path "$1"; }
mlflow_url=""
if [ "$smoke" = 0 ]; then
    port="$(free_port)"
    "$(venv mlflow)/bin/mlflow" server --backend-store-uri "sqlite:///$work/mlflow.db" \
        --default-artifact-root "$work/mlflow-artifacts" --host 127.0.0.1 --port "$port" --workers 1 \
        >"$work/mlflow.log" 2>&1 &
    mlflow_pid=$!
    mlflow_url="http://127.0.0.1:$port"
    for _ in $(seq 600); do
        curl -sf "$mlflow_url/health" >/dev/null 2>&1 && break
        kill -0 "$mlflow_pid" 2>/dev/null || { cat "$work/mlflow.log"; echo "mlflow server exited" >&2; exit 1; }
        sleep 0.1
    done
    curl -sf "$mlflow_url/health" >/dev/null || { tail -n 30 "$work/mlflow.log"; echo "mlflow server did not start" >&2; exit 1; }
    # MLflow's server answers /health while its worker is still starting:
    # a subject run then shares the CPU with it (the first row of the table
    # once came out 3.5x slower than the same subject run last). Wait until
    # its process tree has used under 2% of a CPU over a second.
    python3 - "$mlflow_pid" <<'PY'
import os, sys, time
def tree_cpu(root):
    kids, own = {}, {}
    for p in filter(str.isdigit, os.listdir("/proc")):
        try:
            f = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        own[int(p)] = int(f[11]) + int(f[12])
        kids.setdefault(int(f[1]), []).append((int(p), own[int(p)]))
    total, todo = own.get(int(root), 0), [int(root)]
    while todo:
        for pid, ticks in kids.get(todo.pop(), []):
            total += ticks
            todo.append(pid)
    return total / os.sysconf("SC_CLK_TCK")
start = time.monotonic()
last = tree_cpu(sys.argv[1])
while time.monotonic() - start < 120:
    time.sleep(1)
    now = tree_cpu(sys.argv[1])
    if now - last < 0.02:
        break
    last = now
print(f"-- mlflow server idle after {time.monotonic() - start:.1f} s", file=sys.stderr)
PY
fi

ver() { grep -o "^${1}_VERSION=[0-9.]*" bench/peers/venvs.sh | cut -d= -f2; }
python3 - "$work/config.json" <<EOF
import json, sys
smoke = $smoke
subjects = [
    dict(label="simtrack C offline", kind="c", online=False, size="full", ref="simtrack C offline"),
    dict(label="simtrack Fortran offline", kind="fortran", online=False, size="full", ref="simtrack C offline"),
    dict(label="simtrack C online", kind="c", online=True, size="full", ref="simtrack C online"),
    dict(label="simtrack Fortran online", kind="fortran", online=True, size="full", ref="simtrack C online"),
    dict(label="simvue offline", kind="python", peer="simvue-offline", venv="simvue", online=False, size="peer", ref="simtrack C offline"),
    dict(label="simvue online (our server)", kind="python", peer="simvue-online", venv="simvue", online=True, size="peer", ref="simtrack C online"),
    dict(label="wandb offline", kind="python", peer="wandb-offline", venv="wandb", online=False, size="peer", ref="simtrack C offline"),
    dict(label="mlflow local file store", kind="python", peer="mlflow-file", venv="mlflow", online=False, size="slow", ref="simtrack C offline"),
    dict(label="mlflow tracking server (SQLite)", kind="python", peer="mlflow-server", venv="mlflow", online=False, size="slowest", ref="simtrack C online"),
    dict(label="aim local repository", kind="python", peer="aim", venv="aim", online=False, size="slow", ref="simtrack C offline"),
]
if smoke:
    subjects = [s for s in subjects if s.get("peer", "simvue-offline") == "simvue-offline" and s["kind"] != "fortran" or s["label"] == "simtrack Fortran offline"]
    sizes = dict(full=dict(n=10000, points=100000, reps=1), peer=dict(n=200, points=10000, reps=1), slow=dict(n=50, points=1000, reps=1), slowest=dict(n=20, points=1000, reps=1))
else:
    sizes = dict(
        full=dict(n=${N_SIMTRACK:-1000000}, points=${POINTS:-1000000}, reps=${REPS:-3}),
        peer=dict(n=${N_PEER:-1000}, points=${POINTS_PEER:-${POINTS:-1000000}}, reps=${REPS_PEER:-1}),
        slow=dict(n=${N_SLOW:-100}, points=${POINTS_SLOW:-100000}, reps=${REPS_PEER:-1}),
        slowest=dict(n=${N_SLOWEST:-50}, points=${POINTS_SLOWEST:-10000}, reps=${REPS_PEER:-1}),
    )
venvs = dict(simvue="$(venv simvue)", wandb="$(venv wandb)", mlflow="$(venv mlflow)", aim="$(venv aim)")
cfg = dict(
    subjects=subjects, sizes=sizes, blocks=5 if not smoke else 3, workdir="$work/w",
    c_workload="$work/c_workload", f_workload="$work/f_workload",
    peer_worker="$root/bench/peers/peer_worker.py", venvs=venvs,
    simtrack_url="$url", simtrack_token="$token", mlflow_url="$mlflow_url",
    versions=dict(simvue="$(ver SIMVUE)", wandb="$(ver WANDB)", mlflow="$(ver MLFLOW)", aim="$(ver AIM)"),
    command="bench/peers/run.sh", note="""${NOTE:-}""",
    report="" if smoke else "$root/docs/performance.md",
    again_at_end=not smoke,
    timeout=${TIMEOUT:-600},
)
json.dump(cfg, open(sys.argv[1], "w"), indent=1)
EOF
# The build's dirty pages go to disk now, not during the first subject.
sync
python3 bench/peers/peers.py "$work/config.json"
kill -0 "$server_pid" 2>/dev/null || { echo "the simtrack server died during the bench" >&2; tail -n 30 "$work/server.log"; exit 1; }
