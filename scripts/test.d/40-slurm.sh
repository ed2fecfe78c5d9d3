#!/usr/bin/env bash
# simtrack under a real SLURM (Debian's slurmctld, slurmd, slurm-client and
# munge), configured here as a one-node cluster on this machine, in a
# temporary directory, on free loopback ports; everything started here is
# stopped by pid at exit. Jobs report to a `simtrack server` started here.
#
#   heat        sbatch of the Fortran heat example          -> completed, SLURM metadata
#   wrapped     sbatch of `simtrack run` around a C program -> completed, metrics
#   direct      the same with --direct: the job's file and the run's events
#   array       a 3-task job array of `simtrack run`         -> 3 runs, array ids 1..3
#   mpi         sbatch -n 4 + srun --mpi=pmix -n 4 heat_mpi  -> exactly one run
#   timeout     --time=1, `simtrack run` around a sleeper    -> terminated (time limit), data delivered
#   timeout-lib --time=1, a C solver with SIMTRACK_SIGNALS   -> terminated, data delivered
#   scancel     scancel of a C solver with SIMTRACK_SIGNALS  -> terminated
#   scancel-run scancel of `simtrack run`                    -> terminated (cancelled)
#
# The two --time=1 jobs make this take about two minutes (SLURM's time limit
# is in minutes; KillWait here is 10 s).
#
# Environment: CARGO_TARGET_DIR (default <repo>/target).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
[ "$(id -u)" = 0 ] || { echo "40-slurm: slurmd must run as root (it starts jobs as their users)" >&2; exit 1; }
for tool in slurmctld slurmd sbatch munged gfortran mpif90; do
    command -v "$tool" >/dev/null || { echo "40-slurm: $tool not found (see .ci/run)" >&2; exit 1; }
done

cargo build --locked -p simtrack-server -p simtrack
bin=$CARGO_TARGET_DIR/debug/simtrack
lib=$CARGO_TARGET_DIR/debug

T=$(mktemp -d /tmp/simtrack-slurm.XXXXXX)
chmod 755 "$T"
pids=()
cleanup() {
    local f
    # Jobs first (their processes are not the daemons' children), then the
    # daemons, by the pids they wrote.
    if [ -n "${SLURM_CONF:-}" ]; then
        squeue -h -o %A 2>/dev/null | xargs -r scancel 2>/dev/null || true
        for _ in $(seq 50); do
            [ -z "$(squeue -h -o %A 2>/dev/null)" ] && break
            sleep 0.3
        done
    fi
    for f in "$T/slurmd.pid" "$T/slurmctld.pid" "$T/munge/munged.pid"; do
        [ -s "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
    done
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    sleep 1
    rm -rf "$T" 2>/dev/null || { sleep 3; rm -rf "$T"; }
}
trap cleanup EXIT

echo "== build the programs"
mkdir -p "$T/work" "$T/mod"
cc -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror server/tests/wrap/residuals.c -o "$T/work/residuals"
cc -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror -Iinclude server/tests/c/scheduler.c \
    -L"$lib" -lsimtrack -Wl,-rpath,"$lib" -o "$T/work/scheduler"
gfortran -J"$T/mod" fortran/simtrack_c.f90 fortran/simtrack.f90 examples/fortran/heat.f90 \
    -L"$lib" -lsimtrack -Wl,-rpath,"$lib" -o "$T/work/heat"
mpif90 -I"$T/mod" -J"$T/mod" fortran/simtrack_c.f90 fortran/simtrack.f90 examples/mpi/heat_mpi.F90 \
    -L"$lib" -lsimtrack -Wl,-rpath,"$lib" -o "$T/work/heat_mpi"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

echo "== munge"
mkdir -p "$T/munge" && chmod 700 "$T/munge"
dd if=/dev/urandom of="$T/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$T/munge/munge.key"
munged --key-file="$T/munge/munge.key" --socket="$T/munge/munge.sock" --pid-file="$T/munge/munged.pid" \
    --log-file="$T/munge/munged.log" --seed-file="$T/munge/seed" --force

echo "== slurmctld, slurmd"
node=$(hostname -s)
mkdir -p "$T/state" "$T/slurmd" "$T/log" "$T/tmp"
cat > "$T/slurm.conf" <<EOF
ClusterName=simtrack-test
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
AuthType=auth/munge
AuthInfo=socket=$T/munge/munge.sock
CredType=cred/munge
SlurmUser=$(id -un)
SlurmdUser=root
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/slurmd
TmpFS=$T/tmp
SlurmctldPidFile=$T/slurmctld.pid
SlurmdPidFile=$T/slurmd.pid
SlurmctldLogFile=$T/log/slurmctld.log
SlurmdLogFile=$T/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
SwitchType=switch/none
ReturnToService=2
KillWait=10
InactiveLimit=0
MinJobAge=600
SlurmdParameters=config_overrides
NodeName=$node NodeAddr=127.0.0.1 CPUs=16 RealMemory=2000 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
EOF
# PMIx's per-step directories inside $T, not in /tmp.
mkdir -p "$T/pmix"
echo "PMIxCliTmpDirBase=$T/pmix" > "$T/mpi.conf"
export SLURM_CONF=$T/slurm.conf
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF"
for _ in $(seq 100); do
    sinfo -h -o %t 2>/dev/null | grep -q idle && break
    sleep 0.2
done
sinfo -h -o %t | grep -q idle || { echo "40-slurm: the node did not come up"; cat "$T/log/"*; exit 1; }

echo "== simtrack server"
"$bin" token create --data "$T/data" --name slurm > "$T/token"
"$bin" server --data "$T/data" --listen 127.0.0.1:0 > "$T/server.log" 2>&1 &
pids+=($!)
url=
for _ in $(seq 100); do
    url=$(grep -so 'http://[0-9.]*:[0-9]*' "$T/server.log" | head -n1 || true)
    [ -n "$url" ] && break
    sleep 0.1
done
[ -n "$url" ] || { cat "$T/server.log"; exit 1; }
export SIMTRACK_URL=$url SIMTRACK_TOKEN=$(cat "$T/token")
export SIMTRACK_OFFLINE_DIR=$T/spool SIMTRACK_ABORT_POLL=0.5 SIMTRACK_HEARTBEAT_INTERVAL=2
# 4 ranks on 2 cores: Open MPI must yield when idle, or srun -n 4 crawls.
export OMPI_MCA_btl=self,vader OMPI_MCA_mpi_yield_when_idle=1

cd "$T/work"
submit() { sbatch --parsable -o "$T/work/%x-%A_%a.out" "$@"; }
rules="--metric 'residual=res=(\\S+)' --step-regex 'it=(\\d+)'"
printf '#!/bin/sh\ni=0\nwhile [ $i -lt 5 ]; do i=$((i+1)); echo "it=$i res=0.$i"; done\n' > "$T/work/five.sh"
chmod +x "$T/work/five.sh"

echo "== submit"
j_heat=$(submit -J heat-f --wrap ./heat)
j_wrap=$(submit -J wrapped --wrap "$bin run --name wrapped --rules $root/server/tests/wrap/table.toml -- ./residuals ok")
j_direct=$(submit -J direct --wrap "$bin run --direct --name direct --rules $root/server/tests/wrap/table.toml -- ./residuals ok")
j_array=$(submit -J arr --array=1-3 --wrap "$bin run --name arr-\$SLURM_ARRAY_TASK_ID $rules -- ./five.sh")
j_mpi=$(submit -J mpi -n 4 --wrap "srun --mpi=pmix -n 4 ./heat_mpi")
j_tl=$(submit -J timeout --time=1 --wrap "$bin run --name timeout -- ./residuals sleep")
j_tllib=$(submit -J timeout-lib --time=1 --export=ALL,SIMTRACK_SIGNALS=TERM --wrap "./scheduler timeout-lib env")
j_cancel=$(submit -J scancel --export=ALL,SIMTRACK_SIGNALS=TERM --wrap "./scheduler scancel env")
j_cancel_run=$(submit -J scancel-run --wrap "$bin run --name scancel-run -- ./residuals sleep")

fail() { echo "40-slurm: $*" >&2; echo "--- job outputs"; tail -n 5 "$T"/work/*.out >&2 || true; echo "--- slurmd log"; tail -n 15 "$T/log/slurmd.log" >&2; exit 1; }
state() { scontrol show job "$1" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | head -n1 | cut -d= -f2; }
wait_state() { # job, seconds: waits until the job (every array task) left PENDING/RUNNING
    local job=$1 secs=$2 s
    for _ in $(seq $((secs * 5))); do
        s=$(scontrol show job "$job" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | sort -u | tr '\n' ' ')
        case "$s" in *PENDING*|*RUNNING*|*COMPLETING*|*CONFIGURING*|"") sleep 0.2 ;; *) echo "$s"; return 0 ;; esac
    done
    fail "job $job still $s after $secs s"
}
# Runs are found through the API, by metadata the library recorded.
api() { python3 - "$url" "$SIMTRACK_TOKEN" "$@" <<'PY'
import json, sys, urllib.request, urllib.parse
url, token, what = sys.argv[1], sys.argv[2], sys.argv[3]
def get(path):
    req = urllib.request.Request(url + path, headers={"Authorization": "Bearer " + token})
    return json.load(urllib.request.urlopen(req))
def runs(filt):
    return get("/api/runs?filters=" + urllib.parse.quote(json.dumps(filt)))["data"]
args = sys.argv[4:]
if what == "runs":               # filter...: one line per run: name status job array_job task
    for r in runs(args):
        m = r.get("metadata", {})
        print(r["name"], r["status"], m.get("slurm_job_id"), m.get("slurm_array_job_id"),
              m.get("slurm_array_task_id"), m.get("slurm_time_limit_secs"),
              m.get("slurm_partition"), m.get("slurm_job_name"))
elif what == "points":           # run-name metric: number of points
    r = runs(["name == " + args[0]])[0]
    q = "/api/metrics?runs=%s&metrics=%s&xaxis=step&aggregate=False" % (
        urllib.parse.quote(json.dumps([r["id"]])), urllib.parse.quote(json.dumps([args[1]])))
    print(len(get(q)[r["id"]].get(args[1], [])))
elif what == "meta":             # run-name key: the metadata value
    print(runs(["name == " + args[0]])[0].get("metadata", {}).get(args[1]))
elif what == "events":           # run-name: events, one per line
    r = runs(["name == " + args[0]])[0]
    for e in get("/api/events?run=%s&start=0&count=0" % r["id"])["data"]:
        print(e["message"])
PY
}
expect_run() { # filter, expected "status"
    local line
    line=$(api runs "$1")
    [ "$(printf '%s\n' "$line" | grep -c .)" = 1 ] || fail "runs with $1: $line"
    [ "$(echo "$line" | cut -d' ' -f2)" = "$2" ] || fail "run with $1: $line (want $2)"
    echo "ok   $1: $line"
}

echo "== the quick jobs"
wait_state "$j_heat" 120; wait_state "$j_wrap" 60; wait_state "$j_direct" 60; wait_state "$j_array" 60; wait_state "$j_mpi" 120
expect_run "metadata.slurm_job_id == $j_heat" completed
grep -q " debug heat-f$" <<<"$(api runs "metadata.slurm_job_id == $j_heat")" || fail "heat: partition/job name"
expect_run "metadata.slurm_job_id == $j_wrap" completed
[ "$(api points wrapped residual)" = 20 ] || fail "wrapped: residual points $(api points wrapped residual)"
# The job's output file (stdout and stderr in one, as SLURM opens it;
# written by the wrapper, or with --direct by the program itself and read
# back) holds each of the program's lines once; the run's events are the
# same lines (with --direct, stderr's copy into the file is not read twice).
expect_run "metadata.slurm_job_id == $j_direct" completed
for w in wrapped direct; do
    file_lines=$(grep -hv '^simtrack' "$T"/work/$w-*.out | sort)
    event_lines=$(api events $w | grep -v '^simtrack' | sort)
    [ "$(grep -c 'is slow' <<<"$file_lines")" -gt 0 ] || fail "$w: no stderr line in the output file"
    [ "$file_lines" = "$event_lines" ] || fail "$w: output file and events differ: $(diff <(echo "$file_lines") <(echo "$event_lines") | head)"
    echo "ok   $w: the output file's $(grep -c . <<<"$file_lines") lines are the run's events"
done
[ "$(api points direct residual)" = 20 ] || fail "direct: residual points $(api points direct residual)"
arr=$(api runs "metadata.slurm_array_job_id == $j_array")
[ "$(printf '%s\n' "$arr" | grep -c completed)" = 3 ] || fail "array: $arr"
for t in 1 2 3; do
    grep -q "^arr-$t completed [0-9]* $j_array $t " <<<"$arr" || fail "array task $t: $arr"
    [ "$(api points "arr-$t" residual)" = 5 ] || fail "arr-$t points"
done
echo "ok   array: 3 runs, array ids $j_array/1..3"
expect_run "metadata.slurm_job_id == $j_mpi" completed
echo "ok   srun -n 4: exactly one run"

echo "== scancel"
sleep 3
scancel "$j_cancel" "$j_cancel_run"
wait_state "$j_cancel" 60; wait_state "$j_cancel_run" 60
expect_run "metadata.slurm_job_id == $j_cancel" terminated
[ "$(api points scancel x)" = 1000 ] || fail "scancel: points not all delivered"
expect_run "metadata.slurm_job_id == $j_cancel_run" terminated
grep -q "SIGTERM" <<<"$(api events scancel-run)" || fail "scancel-run: no SIGTERM event"
why=$(api meta scancel-run stop_reason)
grep -q "scancel" <<<"$why" || fail "scancel-run: stop_reason $why"
echo "ok   scancel-run: stop_reason $why"

echo "== --time=1 (about a minute)"
wait_state "$j_tl" 180; wait_state "$j_tllib" 180
[ "$(state "$j_tl")" = TIMEOUT ] || fail "timeout job: $(state "$j_tl")"
expect_run "metadata.slurm_job_id == $j_tl" terminated
grep -qx "ready" <<<"$(api events timeout)" || fail "timeout: output not delivered"
grep -q "^timeout terminated $j_tl None None 60 " <<<"$(api runs "name == timeout")" || fail "timeout: time limit not recorded"
why=$(api meta timeout stop_reason)
grep -q "^SLURM time limit" <<<"$why" || fail "timeout: stop_reason $why"
echo "ok   timeout: stop_reason $why"
expect_run "metadata.slurm_job_id == $j_tllib" terminated
[ "$(api points timeout-lib x)" = 1000 ] || fail "timeout-lib: points not all delivered"
echo "40-slurm: all good"
