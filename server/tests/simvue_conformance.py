"""The official simvue 2.6.2 Python client against a simtrack server.

Run by scripts/test.d/20-simvue-conformance.sh with SIMVUE_URL and
SIMVUE_TOKEN pointing at a freshly started server. Every check asserts a
value read back through the client (or, for the abort poll the client only
does in its background thread, the same HTTP call it makes). Prints
"N passed, M failed" last and exits non-zero on any failure.
"""

import datetime
import hashlib
import importlib.metadata
import math
import os
import sys
import tempfile
import time
import traceback

import requests
from simvue import Client, Run

URL = os.environ["SIMVUE_URL"].rstrip("/")
TOKEN = os.environ["SIMVUE_TOKEN"]
HEADERS = {"Authorization": f"Bearer {TOKEN}"}

passed = 0
failed = 0


def check(name, fn):
    global passed, failed
    try:
        fn()
        passed += 1
        print(f"ok   {name}")
    except Exception:  # noqa: BLE001 - report every failure and carry on
        failed += 1
        print(f"FAIL {name}")
        traceback.print_exc()


def api(method, path, **kw):
    return requests.request(method, f"{URL}/api{path}", headers=HEADERS, timeout=10, **kw)


def ts(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%f")


state = {}
work = tempfile.mkdtemp(prefix="simtrack-conformance-")
os.chdir(work)
files = {}
for category, content in [("code", b"print('hello')\n"), ("input", b"nx = 128\n" * 1000),
                          ("output", os.urandom(300_000))]:
    path = os.path.join(work, f"{category}_file.dat")
    with open(path, "wb") as f:
        f.write(content)
    files[category] = (path, content)


def run_main():
    """One run doing everything the client can send; closed at the end."""
    run = Run()
    run.config(suppress_errors=False, disable_resources_metrics=True)
    run.init(
        name="conformance-main",
        folder="/conformance/sub",
        tags=["t1", "fortran"],
        metadata={"nx": 128, "solver": "heat", "dt": 0.5},
        description="conformance run",
    )
    state["main"] = run.id
    base = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    state["base"] = base
    for i in range(10):
        run.log_metrics({"residual": 1.0 / (i + 1), "iters": i * 2},
                        step=i, time=i * 0.5, timestamp=ts(base + datetime.timedelta(seconds=i)))
    run.log_metrics({"weird": float("nan")}, step=0)
    run.log_metrics({"weird": float("inf")}, step=1)
    for i in range(5000):
        run.log_metrics({"long": 1000.0 if i == 3210 else math.sin(i / 50)}, step=i)
    run.log_event("hello from python")
    run.log_event("ERROR: something odd", log_level="error")
    for category, (path, _) in files.items():
        run.save_file(path, category=category)
    run.update_metadata({"extra": "yes"})
    run.update_tags(["t2"])

    # Alerts: threshold (fires, then clears), range, event pattern, user.
    state["thr"] = run.create_metric_threshold_alert(
        name="conf-thr", metric="temp", threshold=10.0, rule="is above", window=1, frequency=1)
    again = run.create_metric_threshold_alert(
        name="conf-thr", metric="temp", threshold=10.0, rule="is above", window=1, frequency=1)
    assert again == state["thr"], (again, state["thr"])
    state["rng"] = run.create_metric_range_alert(
        name="conf-range", metric="temp", range_low=0.0, range_high=5.0, rule="is outside range",
        window=1, frequency=1, aggregation="at least one")
    state["ev"] = run.create_event_alert(name="conf-event", pattern="DIVERGED", frequency=1)
    state["user"] = run.create_user_alert(name="conf-user")
    later = base + datetime.timedelta(minutes=10)
    run.log_metrics({"temp": 50.0}, step=0, timestamp=ts(later))
    run.log_metrics({"temp": 60.0}, step=1, timestamp=ts(later + datetime.timedelta(seconds=1)))
    run.log_event("solver DIVERGED at step 7")
    # The dispatcher sends at most once a second: wait until the batch is in.
    client = Client()
    deadline = time.monotonic() + 30
    while True:
        state["critical_mid"] = sorted(client.get_alerts(run_id=run.id, critical_only=True, names_only=True))
        if len(state["critical_mid"]) >= 3 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    even_later = later + datetime.timedelta(minutes=5)
    run.log_metrics({"temp": 1.0}, step=2, timestamp=ts(even_later))
    run.log_metrics({"temp": 2.0}, step=3, timestamp=ts(even_later + datetime.timedelta(seconds=1)))
    run.log_alert(identifier=state["user"], state="critical")
    state["abort_before"] = api("GET", f"/runs/{run.id}/abort").json()
    run.close()


check("Run.init/log_metrics/log_event/save_file/alerts/close via the official client", run_main)


def get_run():
    r = Client().get_run(state["main"])
    assert r.name == "conformance-main", r.name
    assert r.status == "completed", r.status
    assert r.folder == "/conformance/sub", r.folder
    assert sorted(r.tags) == ["fortran", "t1", "t2"], r.tags
    assert r.metadata["nx"] == 128 and r.metadata["solver"] == "heat" and r.metadata["dt"] == 0.5, r.metadata
    assert r.metadata["extra"] == "yes", r.metadata
    assert r.description == "conformance run", r.description
    assert r.endtime is not None and r.started is not None
    names = sorted(Client().get_metrics_names(state["main"]))
    assert {"residual", "iters", "long", "temp", "weird"} <= set(names), names


check("get_run: name, status, folder, tags, metadata, description, metric names", get_run)


def metric_values():
    c = Client()
    for axis in ("step", "time", "timestamp"):
        vals = c.get_metric_values(["residual", "iters"], axis, run_ids=[state["main"]], output_format="dict")
        res = {k[0]: v for k, v in vals["residual"].items()}
        assert len(res) == 10, (axis, len(res))
        xs = sorted(res)
        for i, x in enumerate(xs):
            assert abs(res[x] - 1.0 / (i + 1)) < 1e-12, (axis, i, res[x])
        if axis == "step":
            assert xs == list(range(10)), xs
            it = {k[0]: v for k, v in vals["iters"].items()}
            assert it == {i: i * 2 for i in range(10)}, it
        if axis == "time":
            assert xs == [i * 0.5 for i in range(10)], xs
    weird = c.get_metric_values(["weird"], "step", run_ids=[state["main"]], output_format="dict")["weird"]
    w = {k[0]: v for k, v in weird.items()}
    assert math.isnan(w[0]) and w[1] == float("inf"), w


check("get_metric_values: every point, xaxis step/time/timestamp, NaN and Inf", metric_values)


def downsampled():
    c = Client()
    full = c.get_metric_values(["long"], "step", run_ids=[state["main"]], output_format="dict")["long"]
    assert len(full) == 5000, len(full)
    small = c.get_metric_values(["long"], "step", run_ids=[state["main"]], output_format="dict",
                                max_points=100)["long"]
    assert 10 <= len(small) <= 100, len(small)
    assert max(small.values()) == 1000.0, "the spike must survive downsampling"
    assert min(small.values()) < -0.99, min(small.values())
    agg = c.get_metric_values(["residual"], "step", run_ids=[state["main"]], aggregate=True,
                              output_format="dataframe")
    steps = sorted(set(agg.index.get_level_values(0)))
    assert steps == list(range(10)), steps
    assert abs(agg.loc[(3, "average"), "residual"] - 0.25) < 1e-12, agg


check("get_metric_values(max_points): bounded, spikes kept; aggregate", downsampled)


def events():
    c = Client()
    evs = c.get_events(state["main"])
    msgs = [e["message"] for e in evs]
    assert "hello from python" in msgs and "ERROR: something odd" in msgs, msgs
    err = [e for e in evs if e["message"] == "ERROR: something odd"][0]
    assert err["log_level"] == "error", err
    only = c.get_events(state["main"], message_contains="hello")
    assert [e["message"] for e in only] == ["hello from python"], only
    page = c.get_events(state["main"], start_index=1, count_limit=1)
    assert len(page) == 1 and page[0]["message"] == msgs[1], page


check("get_events: messages, levels, filter, paging", events)


def artifacts():
    c = Client()
    arts = [a for _, a in c.list_artifacts(state["main"])]
    names = sorted(a.name for a in arts)
    assert names == ["code_file.dat", "input_file.dat", "output_file.dat"], names
    out = tempfile.mkdtemp()
    for category, (path, content) in files.items():
        name = os.path.basename(path)
        c.get_artifact_as_file(state["main"], name, output_dir=out)
        with open(os.path.join(out, name), "rb") as f:
            got = f.read()
        assert got == content, f"{name} differs"
        assert hashlib.sha256(got).hexdigest() == hashlib.sha256(content).hexdigest()
    by_cat = api("GET", f"/runs/{state['main']}/artifacts", params={"category": "input"}).json()
    assert [a["name"] for a in by_cat] == ["input_file.dat"], by_cat


check("list_artifacts/get_artifact_as_file: three categories, byte-identical", artifacts)


def alerts():
    c = Client()
    assert state["critical_mid"] == ["conf-event", "conf-range", "conf-thr"], state["critical_mid"]
    crit = sorted(c.get_alerts(run_id=state["main"], critical_only=True, names_only=True))
    # temp fell back into range and below the threshold: those cleared; no newer
    # event left the pattern's window, and the user alert was set critical.
    assert "conf-thr" not in crit and "conf-range" not in crit, crit
    assert "conf-user" in crit and "conf-event" in crit, crit
    every = sorted(c.get_alerts(run_id=state["main"], critical_only=False, names_only=True))
    assert every == ["conf-event", "conf-range", "conf-thr", "conf-user"], every
    listed = sorted(a.name for a in c.get_alerts(critical_only=False, names_only=False))
    assert listed == ["conf-event", "conf-range", "conf-thr", "conf-user"], listed
    # The server's own events (alert changes) stay out of the client's
    # event list, which holds exactly what the run logged; `system=true`
    # asks for them.
    msgs = [e["message"] for e in c.get_events(state["main"])]
    assert not any(m.startswith("[simtrack]") for m in msgs), msgs
    r = requests.get(f"{URL}/api/events", headers=HEADERS,
                     params={"run": state["main"], "count": 0, "system": "true"}, timeout=30)
    r.raise_for_status()
    msgs = [e["message"] for e in r.json()["data"]]
    assert any("'conf-thr' changed from ok to critical" in m for m in msgs), msgs
    assert any("'conf-thr' changed from critical to ok" in m for m in msgs), msgs


check("alerts: threshold fires and clears, range, event pattern, user alert, dedupe", alerts)


def runs_filters():
    c = Client()
    other = Run()
    other.config(suppress_errors=False, disable_resources_metrics=True)
    other.init(name="conformance-failed", folder="/conformance/other", tags=["t3"], metadata={"nx": 64})
    state["other"] = other.id
    other.set_status("failed")
    other.close()

    def ids(filters):
        return sorted(rid for rid, _ in c.get_runs(filters))

    assert ids(["status == completed"]) == [state["main"]]
    assert ids(["status == failed"]) == [state["other"]]
    assert ids(["folder.path == /conformance/sub"]) == [state["main"]]
    assert ids(["has tag.t3"]) == [state["other"]]
    assert ids(["metadata.nx == 128"]) == [state["main"]]
    assert ids(["metadata.nx < 100"]) == [state["other"]]
    assert ids(["metadata.solver == heat", "has tag.t1"]) == [state["main"]]
    assert c.get_run_id_from_name("conformance-failed") == state["other"]
    assert c.get_run(state["other"]).status == "failed"


check("get_runs filters: status, folder, tag, metadata; set_status failed", runs_filters)


def runs_filter_builder():
    # The client's filter builder (simvue.api.objects.Run.filter()): its
    # time filters (`ended < 1h` for ended_within) and tag exclusion.
    from simvue.api.objects import Run as RunObject

    def ids(f):
        return sorted(rid for rid, _ in f.get())

    def ours():
        return RunObject.filter().in_folder_containing("/conformance/")

    both = sorted([state["main"], state["other"]])
    assert set(both) <= set(ids(ours().created_within(hours=1))), ids(ours())
    assert set(both) <= set(ids(ours().ended_within(hours=1).started_within(days=1)))
    assert set(both).isdisjoint(ids(ours().ended_within(hours=1).exclude_tag("t1").exclude_tag("t3")))
    assert ids(ours().has_tag("t1").exclude_tag("t3").modified_within(years=1)) == [state["main"]]
    # The opposite of within: longer ago than an hour, none of these.
    c = Client()
    assert not set(both) & {rid for rid, _ in c.get_runs(["created > 1h", "folder.path contains /conformance/"])}
    try:
        list(c.get_runs(["created > yesterday"]))
    except RuntimeError as e:
        assert "compares with an age" in str(e), e
    else:
        raise AssertionError("a time compared with 'yesterday' was not refused")


check("Run.filter(): created/started/modified/ended_within, exclude_tag; times refused as text", runs_filter_builder)


def folders():
    c = Client()
    paths = sorted(f.path for _, f in c.get_folders())
    for p in ["/conformance", "/conformance/sub", "/conformance/other"]:
        assert p in paths, paths
    f = c.get_folder("/conformance/sub")
    assert f is not None and f.path == "/conformance/sub"


check("get_folders/get_folder", folders)


def sorted_lists():
    # sort_by_columns as the client sends it ({"id", "desc"}), on every list
    # that takes it; a column the server cannot sort by is an error, not
    # some other order.
    c = Client()
    runs = [r.name for _, r in c.get_runs(["folder.path under /conformance"],
                                          sort_by_columns=[("name", True)])]
    assert runs == sorted(runs, reverse=True) and len(runs) >= 2, runs
    paths = [f.path for _, f in c.get_folders(sort_by_columns=[("path", False)])]
    assert paths == sorted(paths) and "/conformance/sub" in paths, paths
    paths = [f.path for _, f in c.get_folders(sort_by_columns=[("path", True)])]
    assert paths == sorted(paths, reverse=True), paths
    tags = [t.name for _, t in c.get_tags(sort_by_columns=[("name", True)])]
    assert tags == sorted(tags, reverse=True) and len(tags) >= 3, tags
    alerts = c.get_alerts(critical_only=False, names_only=True, sort_by_columns=[("name", True)])
    assert alerts == sorted(alerts, reverse=True) and len(alerts) == 4, alerts
    arts = [a.name for _, a in c.list_artifacts(state["main"], sort_by_columns=[("name", True)])]
    assert arts == ["output_file.dat", "input_file.dat", "code_file.dat"], arts
    r = api("GET", "/runs", params={"sorting": '[{"id": "nmae", "desc": true}]'})
    assert r.status_code == 422 and "cannot sort runs by 'nmae'" in r.json()["detail"], r.text
    r = api("GET", "/tags", params={"sorting": '[{"id": "name", "desc": "yes"}]'})
    assert r.status_code == 400 and "must be true or false" in r.json()["detail"], r.text


check("sort_by_columns on runs, folders, tags, alerts and artifacts", sorted_lists)


def client_extras():
    c = Client()
    df = c.get_runs(["folder.path == /conformance/sub"], output_format="dataframe", metadata=True)
    assert list(df["name"]) == ["conformance-main"], df
    vals = c.get_metric_values(["residual"], "step", run_filters=["name == conformance-main"],
                               output_format="dict")
    assert len(vals["residual"]) == 10, vals
    run = Run()
    run.config(suppress_errors=False, disable_resources_metrics=True)
    run.init(name="conformance-folder", folder="/conformance/details")
    run.set_folder_details(metadata={"owner": "qa"}, tags=["x"], description="folder notes")
    run.close()
    f = c.get_folder("/conformance/details")
    assert f.metadata == {"owner": "qa"} and f.tags == ["x"] and f.description == "folder notes", f
    rid = c.get_run_id_from_name("conformance-folder")
    c.delete_run(rid)
    assert not [r for r, _ in c.get_runs(["name == conformance-folder"])]


check("dataframe output, run_filters, set_folder_details, delete_run", client_extras)


def heartbeat_and_abort():
    run = Run()
    run.config(suppress_errors=False, disable_resources_metrics=True)
    run.init(name="conformance-abort", folder="/conformance")
    rid = run.id
    assert api("GET", f"/runs/{rid}/abort").json()["status"] is False
    hb = api("PUT", f"/runs/{rid}/heartbeat")
    assert hb.status_code == 200 and hb.json()["abort"] is False, hb.text
    Client().abort_run(rid, reason="conformance test")
    assert api("GET", f"/runs/{rid}/abort").json()["status"] is True
    assert api("PUT", f"/runs/{rid}/heartbeat").json()["abort"] is True
    run.set_status("terminated")
    run.close()
    assert Client().get_run(rid).status == "terminated"
    assert state["abort_before"]["status"] is False, state["abort_before"]


check("heartbeat and abort poll; Client.abort_run", heartbeat_and_abort)


def auth_required():
    assert requests.get(f"{URL}/api/runs", timeout=5).status_code == 401
    bad = requests.get(f"{URL}/api/runs", headers={"Authorization": "Bearer nope"}, timeout=5)
    assert bad.status_code == 401 and "detail" in bad.json()
    assert api("GET", "/version").json()["version"] == "1.3.0"


check("auth: 401 without or with a bad token; /api/version", auth_required)


def visibility_honoured():
    """Runs the client creates with `visibility` are seen by exactly those
    it names: the group (tenant), listed users, or only the owner."""
    peer, stranger = os.environ.get("PEER_TOKEN"), os.environ.get("STRANGER_TOKEN")
    assert peer and stranger, "PEER_TOKEN and STRANGER_TOKEN must be set"

    def status(token, rid):
        return requests.get(f"{URL}/api/runs/{rid}", timeout=10,
                            headers={"Authorization": f"Bearer {token}"}).status_code

    ids = {}
    for name, vis in [("vis-tenant", "tenant"), ("vis-users", ["stranger"]),
                      ("vis-private", None), ("vis-public", "public")]:
        run = Run()
        run.config(suppress_errors=False, disable_resources_metrics=True)
        run.init(name=name, folder="/conformance/visibility", visibility=vis)
        ids[name] = run.id
        run.close()
    assert api("GET", f"/runs/{ids['vis-users']}").json()["visibility"]["users"] == ["stranger"]
    want = {  # run: (peer in the owner's group, stranger in another group)
        "vis-tenant": (200, 404),
        "vis-users": (404, 200),
        "vis-private": (404, 404),
        "vis-public": (200, 200),
    }
    for name, (p, s) in want.items():
        got = (status(peer, ids[name]), status(stranger, ids[name]))
        assert got == (p, s), f"{name}: {got} != {(p, s)}"
    # Seen is not owned: the peer cannot change the group's run.
    r = requests.put(f"{URL}/api/runs/{ids['vis-tenant']}", json={"description": "x"}, timeout=10,
                     headers={"Authorization": f"Bearer {peer}"})
    assert r.status_code == 403, r.text


check("visibility: tenant, listed users, private, public; others cannot write", visibility_honoured)

print(f"simvue {importlib.metadata.version('simvue')}")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
