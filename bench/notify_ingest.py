"""Ingest with notifications firing, for bench/notify_ingest.sh.

Usage: notify_ingest.py URL TOKEN BATCHES POINTS_PER_BATCH

Creates a run with a metric alert (notification "email") whose window is
so short that it flips between critical and ok at every batch, then posts
BATCHES JSON batches of /api/metrics (values alternating 10 and 0 per
batch) and prints the ingest rate. Each flip queues deliveries in the
outbox inside the ingest transaction.
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
    "alert": {"metric": "x", "rule": "is above", "threshold": 5, "window": 1e-6}})
run = call("POST", "/api/runs", {"name": "notify-bench", "alerts": [alert["id"]]})["id"]
t0 = time.time()
base = int(t0 * 1e6)
for b in range(batches):
    v = 10.0 if b % 2 == 0 else 0.0
    pts = [{"step": b * per + i, "time": 0.0, "values": {"x": v},
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime((base + (b * per + i) * 1000) / 1e6))
            + ".%06d" % ((base + (b * per + i) * 1000) % 1000000)} for i in range(per)]
    call("POST", "/api/metrics", {"run": run, "metrics": pts})
dt = time.time() - t0
print("%d batches of %d points in %.2f s: %.0f batches/s, %.0f points/s" % (
    batches, per, dt, batches / dt, batches * per / dt))
