"""Ingest with notifications firing, for bench/notify_ingest.sh.

Usage: notify_ingest.py URL TOKEN BATCHES POINTS_PER_BATCH

Creates BATCHES runs with a metric alert (notification "email"), then
posts one JSON batch of /api/metrics to each (untimed setup, timed
ingest) whose values make that run's alert critical, and prints the
ingest rate. Every batch queues a delivery in the outbox inside its
ingest transaction (a flapping alert on one run would not: it notifies
once per ten minutes).
"""
import json
import sys
import time
import urllib.request

url, token, batches, per = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])


def call(method, path, body):
    req = urllib.request.Request(
        url + path, method=method, data=json.dumps(body).encode(),
        headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read() or b"{}")


alert = call("POST", "/api/alerts", {
    "name": "flip", "source": "metrics", "notification": "email",
    "alert": {"metric": "x", "rule": "is above", "threshold": 5, "window": 1}})
runs = [call("POST", "/api/runs", {"name": "notify-bench-%d" % b, "alerts": [alert["id"]]})["id"]
        for b in range(batches)]
t0 = time.time()
base = int(t0 * 1e6)
for b in range(batches):
    v = 10.0
    pts = [{"step": b * per + i, "time": 0.0, "values": {"x": v},
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime((base + (b * per + i) * 1000) / 1e6))
            + ".%06d" % ((base + (b * per + i) * 1000) % 1000000)} for i in range(per)]
    call("POST", "/api/metrics", {"run": runs[b], "metrics": pts})
dt = time.time() - t0
print("%d batches of %d points in %.2f s: %.0f batches/s, %.0f points/s" % (
    batches, per, dt, batches / dt, batches * per / dt))
