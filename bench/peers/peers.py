"""Driver of bench/peers/run.sh: runs the same workloads for simtrack (from C
and Fortran, offline and against our server) and its peers, one after the
other in one run, and prints (and writes) the table with ratios.

    python3 peers.py CONFIG.json

CONFIG (written by run.sh): paths of the workload programs and venvs, the
simtrack server URL and token, the MLflow server URL, the sizes, the
subjects to run and where to write the report. Standard library only.

Method (also written into the report):
- every subject runs in fresh processes, one after the other, never two at
  once; the peak RSS is the largest sum of the resident sets of the
  worker's whole process tree (wandb's service, simvue's dispatcher...),
  sampled every 10 ms from /proc, over the W3 process;
- W1/W2: one process; one warm-up block of N calls, then BLOCKS timed blocks
  of N calls: the median ns per call over the blocks, spread = min-max;
- W3: POINTS points as POINTS/10 calls of ten metrics; time from the first
  log call until durable (the close/finish call has returned; for runs that
  go to a server, until the server's API reports every point) — REPS
  repetitions, median and min-max of points/s; finish = the time of the
  finish/close call after the last W3 log (median).
"""

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request

PAGE = os.sysconf("SC_PAGE_SIZE")


def tree_rss(root):
    """Resident bytes of `root` and all its descendants."""
    children = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(pid))
    total, todo = 0, [root]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/statm") as f:
                total += int(f.read().split()[1]) * PAGE
        except OSError:
            pass
        todo.extend(children.get(p, []))
    return total


def run_worker(cmd, env, cwd, timeout):
    """Runs one worker; returns (parsed output, peak tree RSS MiB, process exit time)."""
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = [0]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], tree_rss(proc.pid))
            done.wait(0.01)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise RuntimeError(f"{cmd[0]} timed out after {timeout} s: {err[-2000:]}")
    finally:
        done.set()
        t.join()
    end = time.monotonic()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{out[-1000:]}\n{err[-3000:]}")
    res = {}
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0] in ("w1_ns", "w2_ns", "first_log", "last_log", "finish_s", "closed_at"):
            res[parts[0]] = [float(x) for x in parts[1:]]
    return res, peak[0] / 2**20, end


def server_count(url, token, name):
    q = urllib.parse.quote(json.dumps([f"name == {name}"]))
    req = urllib.request.Request(f"{url}/api/runs?filters={q}", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        data = json.load(r)["data"]
    if not data:
        return 0
    metrics = data[0].get("metrics") or {}
    return sum(int(metrics.get(f"m{k}", {}).get("count", 0)) for k in range(10))


def wait_queryable(cfg, name, points, deadline):
    while True:
        got = server_count(cfg["simtrack_url"], cfg["simtrack_token"], name)
        if got >= points:
            if got != points:
                raise RuntimeError(f"{name}: {got} points on the server, {points} logged")
            return time.monotonic()
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name}: only {got} of {points} points queryable")
        time.sleep(0.01)


def spread(xs):
    return statistics.median(xs), min(xs), max(xs)


def subject_cmd(cfg, subj, mode, name, n, blocks):
    kind = subj["kind"]
    if kind in ("c", "fortran"):
        exe = cfg["c_workload"] if kind == "c" else cfg["f_workload"]
        return [exe, mode, name, str(n), str(blocks)]
    return [cfg["venvs"][subj["venv"]] + "/bin/python", cfg["peer_worker"], subj["peer"], mode, name, str(n), str(blocks)]


def subject_env(cfg, subj, workdir):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SIMTRACK_", "SIMVUE_", "WANDB_", "MLFLOW_"))}
    env["BENCH_DIR"] = workdir
    if subj["kind"] in ("c", "fortran"):
        env["SIMTRACK_OFFLINE_DIR"] = os.path.join(workdir, "spool")
        if subj["online"]:
            env.update(SIMTRACK_URL=cfg["simtrack_url"], SIMTRACK_TOKEN=cfg["simtrack_token"], SIMTRACK_FINISH_TIMEOUT="600")
        else:
            env["SIMTRACK_MODE"] = "offline"
    peer = subj.get("peer", "")
    if peer.startswith("simvue"):
        # Offline mode too wants a well-formed token and URL (it does not call them).
        env.update(SIMVUE_OFFLINE_DIRECTORY=os.path.join(workdir, "simvue"), SIMVUE_URL=cfg["simtrack_url"],
                   SIMVUE_TOKEN=cfg["simtrack_token"])
    if peer == "wandb-offline":
        env.update(WANDB_SILENT="true", WANDB_DISABLE_GIT="true", WANDB_DISABLE_CODE="true", WANDB_DIR=workdir)
    if peer == "mlflow-file":
        env["MLFLOW_ALLOW_FILE_STORE"] = "true"
    if peer == "mlflow-server":
        env["MLFLOW_TRACKING_URI"] = cfg["mlflow_url"]
    return env


def measure(cfg, subj, index):
    sizes = cfg["sizes"][subj["size"]]
    res = {"label": subj["label"]}
    base = os.path.join(cfg["workdir"], f"s{index}")
    timeout = cfg.get("timeout", 600)
    # W1 and W2.
    wd = base + "-calls"
    os.makedirs(wd, exist_ok=True)
    out, _, _ = run_worker(
        subject_cmd(cfg, subj, "calls", f"calls-{index}", sizes["n"], cfg["blocks"]), subject_env(cfg, subj, wd), wd, timeout
    )
    res["w1"] = spread(out["w1_ns"])
    res["w2"] = spread(out["w2_ns"])
    res["n"] = sizes["n"]
    # W3.
    rates, finishes, peaks = [], [], []
    points = sizes["points"]
    for r in range(sizes["reps"]):
        wd = f"{base}-bulk{r}"
        os.makedirs(wd, exist_ok=True)
        name = f"bulk-{index}-{r}"
        out, peak, end = run_worker(
            subject_cmd(cfg, subj, "bulk", name, points, 1), subject_env(cfg, subj, wd), wd, timeout
        )
        end = out["closed_at"][0]  # not the process exit: some peers linger after close
        if subj["online"]:
            end = wait_queryable(cfg, name, points, time.monotonic() + timeout)
        rates.append(points / (end - out["first_log"][0]))
        finishes.append(out["finish_s"][0])
        peaks.append(peak)
    res["w3"] = spread(rates)
    res["points"] = points
    res["reps"] = sizes["reps"]
    res["finish"] = spread(finishes)
    res["rss"] = max(peaks)
    return res


def fmt_ns(x):
    if x >= 1e6:
        return f"{x / 1e6:.2f} ms"
    if x >= 1e3:
        return f"{x / 1e3:.1f} µs"
    return f"{x:.1f} ns"


def fmt_rate(x):
    return f"{x / 1e6:.2f} M/s" if x >= 1e5 else f"{x / 1e3:.1f} k/s"


def table(results, subjects):
    by = {r["label"]: r for r in results}
    rows = [
        "| subject | W1 1 metric/call | × | W2 10 metrics/call | × | W3 points/s until durable | × | finish after W3 | peak RSS (tree) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for s in subjects:
        r = by.get(s["label"])
        if r is None:
            continue
        ref = by.get(s["ref"])
        if "error" in r:
            rows.append(f"| {s['label']} | failed: {r['error']} | | | | | | | |")
            continue

        def ratio(key, inverse=False):
            if ref is None or "error" in ref or ref is r:
                return "1" if ref is r else "–"
            a, b = r[key][0], ref[key][0]
            x = b / a if inverse else a / b
            return f"{x:,.0f}" if x >= 10 else f"{x:.1f}"

        w = r["w1"]
        w2 = r["w2"]
        w3 = r["w3"]
        rows.append(
            f"| {s['label']} | {fmt_ns(w[0])} ({fmt_ns(w[1])}–{fmt_ns(w[2])}) | {ratio('w1')} "
            f"| {fmt_ns(w2[0])} ({fmt_ns(w2[1])}–{fmt_ns(w2[2])}) | {ratio('w2')} "
            f"| {fmt_rate(w3[0])} ({fmt_rate(w3[1])}–{fmt_rate(w3[2])}; {r['points']:,} pts × {r['reps']}) | {ratio('w3', True)} "
            f"| {r['finish'][0]:.3f} s | {r['rss']:.0f} MiB |"
        )
    return "\n".join(rows)


def machine():
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            mem = int(f.readline().split()[1]) / 2**20
    except OSError:
        mem = 0
    return f"{model}, {os.cpu_count()} CPUs, {mem:.0f} GiB RAM, Linux {platform.release()}"


def warm_up(cfg, subjects):
    """Runs the first simtrack subject's calls workload once, with a tenth of
    its calls and one block, before anything is timed, and discards it: the
    first subject of a run used to come out 4-8x slower than the same
    program later in the run or alone (W1 298 ns against 65-74 ns), with
    whatever the run's start leaves behind (servers still starting, the
    build's dirty pages being written back, cold caches) falling on it."""
    first = next((s for s in subjects if s["kind"] in ("c", "fortran")), None)
    if first is None:
        return
    wd = os.path.join(cfg["workdir"], "warm-up")
    os.makedirs(wd, exist_ok=True)
    n = max(1, cfg["sizes"][first["size"]]["n"] // 10)
    ts = time.monotonic()
    try:
        run_worker(subject_cmd(cfg, first, "calls", "warm-up", n, 1), subject_env(cfg, first, wd),
                   wd, cfg.get("timeout", 600))
    except Exception as e:  # a warm-up that fails shows again in the subject itself
        print(f"!! warm-up: {e}", file=sys.stderr, flush=True)
    shutil.rmtree(wd, ignore_errors=True)
    print(f"-- warm-up ({first['label']}, not reported): {time.monotonic() - ts:.1f} s", file=sys.stderr, flush=True)


def main():
    cfg = json.load(open(sys.argv[1]))
    subjects = cfg["subjects"]
    results = []
    load0 = os.getloadavg()
    t0 = time.monotonic()
    failed = False
    warm_up(cfg, subjects)
    if cfg.get("again_at_end"):
        # The first subject once more, last: a row that differs from the
        # first one by more than the spread shows an effect of the place in
        # the run (it once did: see docs/performance.md), not of the subject.
        again = dict(subjects[0], label=subjects[0]["label"] + " (again, last)")
        subjects = subjects + [again]
    for i, s in enumerate(subjects):
        ts = time.monotonic()
        try:
            r = measure(cfg, s, i)
        except Exception as e:  # one broken peer must not hide the others
            failed = True
            r = {"label": s["label"], "error": str(e).splitlines()[0][:200] if str(e) else type(e).__name__}
            print(f"!! {s['label']}: {e}", file=sys.stderr, flush=True)
        results.append(r)
        print(f"-- {s['label']}: {time.monotonic() - ts:.1f} s", file=sys.stderr, flush=True)
    took = time.monotonic() - t0
    load1 = os.getloadavg()
    tab = table(results, subjects)
    print(tab)
    print(f"\n(all subjects in {took:.0f} s; load average {load0[0]:.1f} before, {load1[0]:.1f} after)")
    if cfg.get("report"):
        write_report(cfg, tab, took, load0, load1)
    sys.exit(1 if failed else 0)


def write_report(cfg, tab, took, load0, load1):
    v = cfg["versions"]
    note = cfg.get("note") or ""
    text = f"""# Performance: simtrack and its peers, side by side

Measured by one command, in one run, on one machine, loopback only:

```sh
{cfg['command']}
```

Last run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {machine()};
{took:.0f} s for all subjects; load average {load0[0]:.1f} at the start and
{load1[0]:.1f} at the end.
{note}

## Results

{tab}

Peers (PyPI, pinned, private venvs under `target/`): simvue {v['simvue']},
wandb {v['wandb']}, mlflow {v['mlflow']}, aim {v['aim']}; Python
{platform.python_version()}. simtrack: release build of this tree.

× is the ratio to simtrack from C in the same mode (offline rows against
`simtrack C offline`, rows that go to a server against `simtrack C online`):
for W1/W2 how many times longer a call takes, for W3 how many times fewer
points per second.

## What is measured

- **W1**: one metric per call, N calls — time per call (`simtrack_log`,
  Fortran `run%log`, simvue `log_metrics({{..}})`, wandb `run.log`, mlflow
  `log_metric`, aim `run.track`).
- **W2**: ten metrics per call — time per call (`simtrack_log_many`,
  `run%log_many`, a dict of ten for the Python peers, mlflow `log_metrics`).
- **W3**: {cfg['sizes']['full']['points']:,} points (fewer where the row
  says so) as calls of ten metrics, from the first log call until the points
  are durable: the finish/close call has returned (the spool, wandb's
  `.wandb` file, mlflow's store, aim's repository are written); for runs
  that go to our server (simtrack online, simvue online), until the server's
  API reports every point. mlflow W3 uses its documented asynchronous logging
  (`synchronous=False`), since its synchronous mode is one request per call.
- **finish after W3**: how long the finish/close call after the last W3 log
  takes.
- **peak RSS (tree)**: the largest sum of resident memory over the W3
  process and all its children (wandb's service process, for example),
  sampled every 10 ms. For online rows the server is not included.

## Method

- Each subject runs in fresh processes, one after the other (never two at
  once), with the same workload programs: `bench/peers/c_workload.c`,
  `bench/peers/f_workload.f90`, `bench/peers/peer_worker.py`.
- Before the first subject: `sync` (the build's dirty pages are written
  then, not during a subject), a wait until MLflow's tracking server is
  idle (it answers `/health` while its worker is still starting; a run
  right then was 3.5x slower: 87 ns instead of 24 ns per W1 call), and an
  untimed warm-up run of the first simtrack subject (a tenth of its
  calls). After the last subject the first
  one runs again ("(again, last)" row): the two rows of the same subject
  should agree within their spread; if they do not, the place in the run
  matters, not the subject.
- W1/W2: one warm-up block of N calls (not counted), then {cfg['blocks']} timed
  blocks of N calls; the table shows the median ns per call over the
  blocks and (min–max) over the blocks. N is {cfg['sizes']['full']['n']:,} for simtrack,
  {cfg['sizes']['peer']['n']:,} for the Python peers and {cfg['sizes']['slow']['n']:,} for the MLflow file store and aim and
  {cfg['sizes']['slowest']['n']:,} for the MLflow tracking server (milliseconds per call: one file
  write or HTTP request per call for MLflow). W3 is smaller for those three
  too (see the row).
- W3: repeated (× in the row), median points/s and (min–max).
- The simtrack server (release build, SQLite and local files in a temporary
  directory) and MLflow's tracking server (SQLite backend, one worker) are
  started by the bench on loopback and stopped at the end.

## Many solvers, one server

See the section below the table (kept by hand: `bench/many_solvers.sh`).
"""
    path = cfg["report"]
    keep = ""
    if os.path.exists(path):
        old = open(path).read()
        marker = "<!-- many-solvers -->"
        if marker in old:
            keep = old[old.index(marker) :]
    if keep:
        text = text.replace("## Many solvers, one server\n\nSee the section below the table (kept by hand: `bench/many_solvers.sh`).\n", keep)
    with open(path, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
