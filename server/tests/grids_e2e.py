"""Reads back the fields that examples/c/fields.c and examples/fortran/fields.f90
logged, through the REST API (JSON and raw f64) and through the simvue 2.6.2
client, and checks every value against the closed forms the examples use.
Then logs an array with the simvue client itself and reads it back.

Usage: SIMVUE_URL=... SIMVUE_TOKEN=... python grids_e2e.py STEPS RUN_NAME...
"""

import os
import sys

import numpy as np
import requests
from simvue.api.objects import Grid, GridMetrics

url = os.environ["SIMVUE_URL"].rstrip("/")
headers = {"Authorization": f"Bearer {os.environ['SIMVUE_TOKEN']}"}
steps = int(sys.argv[1])
names = sys.argv[2:]


def get(path, **params):
    r = requests.get(f"{url}/api/{path}", headers=headers, params=params, timeout=30)
    assert r.status_code == 200, (path, r.status_code, r.text[:300])
    return r


def expected(metric, s):
    if metric == "temperature":
        x = np.arange(64) / 63.0
        d = x - s / float(steps)
        return 300.0 + 50.0 * (1.0 - d * d)
    j, i = np.meshgrid(np.arange(30), np.arange(40), indexing="ij")
    return 20.0 + 0.25 * i - 0.5 * j + ((i + j + s) % 7) / 4.0


def exact(a, b, what):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (what, a.shape, b.shape)
    bad = np.argwhere(a != b)
    assert bad.size == 0, (what, bad[:5], a[tuple(bad[0])], b[tuple(bad[0])])


runs = get("runs").json()["data"]
checked = 0
for name in names:
    mine = [r for r in runs if r["name"] == name]
    assert mine, f"no run named {name}"
    run = mine[-1]["id"]
    listing = {m["metric"]: m for m in get(f"runs/{run}/metrics/").json()["data"]}
    metrics = [("temperature", ["x"], ["m"]), ("plate_temperature", ["x", "y"], ["cm", "cm"])]
    if name == "fields-c":  # also logs the plate from a C-order array
        metrics.append(("plate_temperature_c", ["x", "y"], ["cm", "cm"]))
    assert set(listing) == {m for m, _, _ in metrics}, listing.keys()
    for metric, want_labels, want_units in metrics:
        m = listing[metric]
        assert m["count"] == steps, m
        grid = Grid(m["grid"])
        g = get(f"grids/{m['grid']}").json()
        assert g["labels"] == want_labels and g["units"] == want_units, g
        exact(grid.grid[0], np.arange(64) / 63.0 if metric == "temperature" else np.arange(40) * 0.5,
              f"{name} {metric} axis 0")
        span = grid.get_run_metric_span(run_id=run, metric_name=metric)
        assert span["min_step"] == 0 and span["max_step"] == steps - 1, span
        for s in range(steps):
            want = expected(metric, s)
            exact(get(f"runs/{run}/metrics/{metric}/values", step=s).json()["array"], want,
                  f"{name} {metric} step {s} (JSON)")
            r = get(f"runs/{run}/metrics/{metric}/values", step=s, format="f64")
            shape = [int(v) for v in r.headers["x-simtrack-shape"].split(",")]
            exact(np.frombuffer(r.content, dtype="<f8").reshape(shape), want,
                  f"{name} {metric} step {s} (f64)")
            exact(grid.get_run_metric_values(run_id=run, metric_name=metric, step=s)["array"],
                  want, f"{name} {metric} step {s} (simvue Grid)")
            got = list(GridMetrics.get(runs=[run], metrics=[metric], step=s))
            assert len(got) == 1, got
            exact(got[0]["array"], want, f"{name} {metric} step {s} (simvue GridMetrics)")
            checked += want.size * 4
print(f"grids: {len(names)} runs, every value equal ({checked} comparisons)")

# The simvue client's own array logging, read back the same way.
import simvue

with simvue.Run() as run:
    run.init(name="grids-e2e-python", folder="/grids_e2e")
    run.assign_metric_to_grid(metric_name="field", grid_name="pyfield",
                              axes_ticks=[list(range(5)), list(range(3))], axes_labels=["x", "y"])
    fields = [np.arange(15, dtype=float).reshape(3, 5) * (k + 1) / 3.0 for k in range(3)]
    for k, f in enumerate(fields):
        run.log_metrics({"field": f}, step=k)
    rid = run.id
for k, f in enumerate(fields):
    exact(get(f"runs/{rid}/metrics/field/values", step=k).json()["array"], f, f"python step {k}")
print("grids: the simvue client's own arrays read back equal")
