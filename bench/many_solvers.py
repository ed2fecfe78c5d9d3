"""Many solvers, one server: K concurrent C solvers (bench/server_ingest.c)
each log POINTS/K points of one metric through libsimtrack to one fresh
`simtrack server`; measured from the launch of the solvers until every point
is queryable through the API (the runs list reports the full count).

    python3 bench/many_solvers.py SIMTRACK_BIN INGEST_BIN POINTS K [K...]

Run by bench/many_solvers.sh (which builds everything). Prints one line per K:
aggregate points/s, server CPU seconds per million points, server peak RSS.
Standard library only. PERF_OUT=FILE also records a `perf` profile of the
server per K (FILE.K). The storage defaults to SQLite in a temporary
directory; STORAGE="--database postgres://... --blobs DIR" selects another.
"""

import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def vm_hwm_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def queryable(url, token, prefix):
    req = urllib.request.Request(
        f"{url}/api/runs?count=1000&filters=" + urllib.parse.quote(json.dumps(["folder.path == /bench"])),
        headers={"Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        data = json.load(r)["data"]
    return sum(
        (d.get("metrics") or {}).get("residual", {}).get("count", 0)
        for d in data
        if d["name"].startswith(prefix)
    )


def one(simtrack, ingest, points, k, tmp):
    store = os.path.join(tmp, f"store-{k}")
    storage = shlex.split(os.environ.get("STORAGE", "")) or ["--data", store]
    token = subprocess.run(
        [simtrack, "token", "create", *storage], check=True, capture_output=True, text=True
    ).stdout.strip()
    log = open(os.path.join(tmp, f"server-{k}.log"), "w+")
    server = subprocess.Popen([simtrack, "server", *storage, "--listen", "127.0.0.1:0"], stdout=log, stderr=log)
    try:
        url = None
        for _ in range(200):
            log.seek(0)
            text = log.read()
            if "http://" in text:
                url = "http://" + text.split("http://", 1)[1].split()[0].rstrip("/")
                break
            time.sleep(0.05)
        if url is None:
            raise SystemExit(f"server did not start:\n{text}")
        per = points // k
        total = per * k
        prefix = f"ms{k}-"
        cpu0 = cpu_seconds(server.pid)
        env = dict(os.environ, SIMTRACK_URL=url, SIMTRACK_TOKEN=token, SIMTRACK_FINISH_TIMEOUT="600")
        perf = None
        if os.environ.get("PERF_OUT"):  # profile the server while the solvers run
            perf = subprocess.Popen(
                ["perf", "record", "-F", "499", "-g", "-p", str(server.pid), "-o", f"{os.environ['PERF_OUT']}.{k}"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(1)
        t0 = time.perf_counter()
        solvers = []
        for i in range(k):
            e = dict(env, SIMTRACK_OFFLINE_DIR=os.path.join(tmp, f"spool-{k}-{i}"))
            solvers.append(
                subprocess.Popen([ingest, f"{prefix}{i}", str(per)], env=e, stdout=subprocess.PIPE, text=True)
            )
        outs = [s.communicate()[0] for s in solvers]
        t_finished = time.perf_counter() - t0
        for s, o in zip(solvers, outs):
            if s.returncode != 0:
                raise SystemExit(f"a solver failed ({s.returncode}): {o}")
        while True:
            got = queryable(url, token, prefix)
            if got >= total:
                break
            if time.perf_counter() - t0 > 600:
                raise SystemExit(f"only {got} of {total} points queryable after 600 s")
            time.sleep(0.02)
        dt = time.perf_counter() - t0
        if got != total:
            raise SystemExit(f"{got} points queryable, {total} logged")
        cpu = cpu_seconds(server.pid) - cpu0
        if perf is not None:
            perf.send_signal(2)
            perf.wait()
        rss = vm_hwm_mib(server.pid)
        print(
            f"{k:3d} solvers x {per:>9,} points: {total / dt / 1e6:6.2f} M points/s aggregate "
            f"({dt:6.2f} s until queryable, solvers done at {t_finished:5.2f} s); "
            f"server {cpu / (total / 1e6):5.3f} CPU s per M points, peak RSS {rss:6.1f} MiB",
            flush=True,
        )
    finally:
        server.terminate()
        server.wait()
        log.close()


def main():
    simtrack, ingest, points = sys.argv[1], sys.argv[2], int(sys.argv[3])
    ks = [int(k) for k in sys.argv[4:]] or [1, 8, 32]
    with tempfile.TemporaryDirectory(prefix="many-solvers-") as tmp:
        for k in ks:
            one(simtrack, ingest, points, k, tmp)


if __name__ == "__main__":
    main()
