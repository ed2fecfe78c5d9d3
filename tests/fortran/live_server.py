#!/usr/bin/env python3
"""Runs a Fortran test program against a live `simtrack server` and checks,
through the server's read API, what the program recorded.

    live_server.py --server <simtrack binary> --scenario <name> -- <command>...

Starts a server on a free port with a fresh data directory and token, runs the
command with SIMTRACK_URL/SIMTRACK_TOKEN pointing at it, then checks the
scenario's expectations (standard library only).
"""
import argparse
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request


def storage_args(data):
    """The server's storage arguments: `--data DIR` (embedded), or what the
    shell command in SIMTRACK_TEST_BACKEND prints for DIR (see
    docs/storage-backends.md)."""
    backend = os.environ.get("SIMTRACK_TEST_BACKEND", "")
    if backend in ("", "embedded"):
        return ["--data", data]
    return subprocess.run(["sh", "-c", backend, "backend", data], check=True,
                          capture_output=True, text=True).stdout.split()


class Server:
    def __init__(self, binary, workdir):
        self.data = os.path.join(workdir, "server-data")
        os.makedirs(self.data)
        storage = storage_args(self.data)
        self.token = subprocess.run(
            [binary, "token", "create", *storage, "--name", "ctest"],
            check=True, capture_output=True, text=True).stdout.strip()
        self.proc = subprocess.Popen(
            [binary, "server", *storage, "--listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        match = re.search(r"listening on (http://\S+)", line)
        if not match:
            self.stop()
            raise SystemExit(f"server did not start: {line!r}")
        self.url = match.group(1)

    def get(self, path, **query):
        qs = urllib.parse.urlencode({k: v if isinstance(v, str) else json.dumps(v)
                                     for k, v in query.items()})
        return self.request("GET", f"{path}?{qs}" if qs else path)

    def request(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + "/api" + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read().decode() or "null",
                              parse_constant=lambda c: float(c.replace("Infinity", "inf")))

    def runs_named(self, name):
        return self.get("/runs", filters=[f"name == {name}"], count=100, start=0)["data"]

    def metric(self, run_id, name):
        got = self.get("/metrics", runs=[run_id], metrics=[name], xaxis="step")
        return [(p["step"], p["value"]) for p in got.get(run_id, {}).get(name, [])]

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


failures = []


def check(condition, what):
    print(("ok   " if condition else "FAIL ") + what)
    if not condition:
        failures.append(what)


def one_run(server, name, status="completed"):
    runs = server.runs_named(name)
    check(len(runs) == 1, f"exactly one run named {name} (got {len(runs)})")
    if not runs:
        raise SystemExit(1)
    run = server.get(f"/runs/{runs[0]['id']}")
    check(run["status"] == status, f"{name} is {status} (got {run['status']})")
    return run


def scenario_lifecycle(server, _out):
    run = one_run(server, "fortran-lifecycle")
    rid = run["id"]
    check(run["folder"] == "/tests/fortran", "folder")
    check(sorted(run["tags"]) == ["fortran", "test"], f"tags {run['tags']}")
    check(run["description"] == "lifecycle test of the Fortran module", "description")
    md = run["metadata"]
    expected = {"nx": 128, "scheme": "ftcs", "dt": 1.0e-3, "cells": 10000000000, "restart": False}
    for key, value in expected.items():
        check(md.get(key) == value, f"metadata {key} = {value!r} (got {md.get(key)!r})")
    residual = server.metric(rid, "residual")
    check([s for s, _ in residual] == list(range(10)), "residual steps 0..9")
    check(all(abs(v - 1.0 / (s + 1)) < 1e-15 for s, v in residual), "residual values")
    check(server.metric(rid, "energy") == [(0, 2.5)], "real32 energy widened exactly")
    check(server.metric(rid, "iterations") == [(0, 42.0)], "int32 metric")
    check(server.metric(rid, "bytes") == [(0, 123456789012.0)], "int64 metric")
    nan = server.metric(rid, "nan")
    check(len(nan) == 1 and math.isnan(nan[0][1]), "NaN arrives as NaN")
    check(server.metric(rid, "name with trailing blanks") == [(0, 1.0)],
          "trailing blanks of a name are dropped")
    check(server.metric(rid, "mass") == [(3, 1.0), (4, 1.0)], "log_many: step 3, then next")
    check(server.metric(rid, "momentum") == [(3, 0.0), (4, 0.0)], "log_many: second name")
    events = server.get("/events", run=rid, filters="", start=0, count=0)["data"]
    check(any(e["message"] == "started time loop" for e in events), "event recorded")
    check([e.get("log_level") for e in events if e["message"] == "residual stalled"] == ["warning"],
          "event recorded at the level given")
    check(not any(e["message"] == "refused" for e in events), "a refused event is not recorded")
    artifacts = server.get(f"/runs/{rid}/artifacts")
    categories = sorted(a.get("category") for a in artifacts)
    check("input" in categories and "code" in categories, f"saved files {categories}")
    alerts = sorted(a["alert"]["name"] for a in run.get("alerts", []))
    check(alerts == ["energy-range", "residual-high"], f"alerts {alerts}")
    folders = server.get("/folders", filters=["path == /tests/fortran"], count=100, start=0)["data"]
    check(len(folders) == 1, "folder /tests/fortran exists")
    if folders:
        folder = folders[0]
        check(folder.get("description") == "Fortran module tests", "folder description")
        check(folder.get("tags") == ["ci"], f"folder tags {folder.get('tags')}")
        check((folder.get("metadata") or {}).get("owner") == "ci", "folder metadata")
    one_run(server, "fortran-scoped")


def scenario_mpi(server, out):
    run = one_run(server, "heat-1d-mpi")
    residual = server.metric(run["id"], "residual")
    match = re.search(r"heat_mpi: (\d+) ranks, (\d+) steps, residual\s+([^,\s]+)", out)
    check(match is not None, "heat_mpi printed its summary")
    steps = int(match.group(2))
    check([s for s, _ in residual] == list(range(1, steps + 1)),
          f"one residual per step, steps 1..{steps} (got {len(residual)} points)")
    last = float(match.group(3))
    check(residual and abs(residual[-1][1] - last) <= 1e-3 * abs(last),
          f"last residual {residual[-1][1] if residual else None} is the reduced {last}")
    check(run["metadata"].get("ranks") == int(match.group(1)), "metadata ranks")
    timing = re.search(r"other ranks at most\s+(\S+) s", out)
    check(timing is not None and float(timing.group(1)) < 0.5,
          "ranks with no-op handles spent < 0.5 s in simtrack calls "
          f"({timing.group(1) if timing else '?'} s)")


def scenario_openmp(server, _out):
    run = one_run(server, "fortran-openmp")
    for t in range(4):
        points = server.metric(run["id"], f"thread{t}")
        check(points == [(i, float(i)) for i in range(5000)],
              f"thread{t}: 5000 points in step order (got {len(points)})")
    events = server.get("/events", run=run["id"], filters="", start=0, count=0)["data"]
    done = sorted(e["message"] for e in events if e["message"].startswith("done: "))
    check(done == [f"done: thread{t}" for t in range(4)], f"one event per thread (got {done})")


def scenario_signals(server, out):
    check("all checks passed" in out, "the status checks of simtrack_handle_signals passed")
    check("survived SIGTERM" not in out, "the program did not survive its SIGTERM")
    run = one_run(server, "fortran-signals", status="terminated")
    check(server.metric(run["id"], "residual") == [(s, 1.0 / (s + 1)) for s in range(5)],
          "the residuals logged before the signal arrived")
    events = [e["message"] for e in
              server.get("/events", run=run["id"], filters="", start=0, count=0)["data"]]
    check("before the signal" in events, "the event logged before the signal arrived")
    check(any("SIGTERM" in e for e in events), f"the signal is recorded as an event ({events})")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--scenario", required=True, choices=["lifecycle", "abort", "mpi", "openmp", "signals"])
    ap.add_argument("--offline-then-sync", action="store_true",
                    help="record offline, then upload with `simtrack sync`")
    ap.add_argument("command", nargs="+", help="the program to run (after --)")
    args = ap.parse_args()
    if not os.access(args.server, os.X_OK):
        print(f"no server binary at {args.server}: build it with "
              "`cargo build --locked -p simtrack-server`")
        sys.exit(1 if os.environ.get("SIMTRACK_LIVE_REQUIRED") == "1" else 77)

    workdir = tempfile.mkdtemp(prefix="simtrack-live-", dir=os.getcwd())
    server = Server(args.server, workdir)
    try:
        spool = os.path.join(workdir, "spool")
        env = dict(os.environ, SIMTRACK_URL=server.url, SIMTRACK_TOKEN=server.token,
                   SIMTRACK_MODE="online", SIMTRACK_OFFLINE_DIR=spool,
                   SIMTRACK_ABORT_POLL="0.2")
        env.pop("SIMTRACK_CONFIG", None)
        if args.offline_then_sync:
            env["SIMTRACK_MODE"] = "offline"
        proc = subprocess.Popen(args.command, env=env, stdout=subprocess.PIPE, text=True)
        if args.scenario == "abort":
            deadline = time.monotonic() + 30
            while not server.runs_named("fortran-abort") and time.monotonic() < deadline:
                time.sleep(0.1)
            runs = server.runs_named("fortran-abort")
            check(len(runs) == 1, "the run reached the server")
            if runs:
                server.request("PUT", f"/runs/{runs[0]['id']}/abort", {"reason": "ctest"})
                pressed = time.monotonic()
        out, _ = proc.communicate(timeout=120)
        sys.stdout.write(out)
        # The signals scenario must die of the SIGTERM it raised, as without simtrack.
        expected = -signal.SIGTERM if args.scenario == "signals" else 0
        check(proc.returncode == expected,
              f"{args.command[0]} ended with {proc.returncode} (expected {expected})")
        if args.offline_then_sync:
            check(not server.runs_named("fortran-lifecycle"), "offline: nothing sent to the server")
            env["SIMTRACK_MODE"] = "online"
            sync = subprocess.run([args.server, "sync", "--cache", spool], env=env)
            check(sync.returncode == 0, "simtrack sync succeeded")
        if args.scenario == "abort":
            check(time.monotonic() - pressed < 10, "abort reached the solver within seconds")
            one_run(server, "fortran-abort", status="terminated")
        else:
            globals()["scenario_" + args.scenario](server, out)
    finally:
        server.stop()
        if not failures:
            shutil.rmtree(workdir, ignore_errors=True)
    if failures:
        print(f"{len(failures)} check(s) failed")
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
