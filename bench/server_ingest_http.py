"""Server-only ingest: POST pre-encoded metrics batches (16 000 points each,
the Simvue client's batch size) over one keep-alive connection and report
points/s. Needs `msgpack` and `requests` (both come with `simvue`).

    python bench/server_ingest_http.py URL TOKEN [BATCHES]
"""

import datetime
import sys
import time

import msgpack
import requests

url, token = sys.argv[1].rstrip("/") + "/api", sys.argv[2]
batches = int(sys.argv[3]) if len(sys.argv) > 3 else 100
auth = {"Authorization": f"Bearer {token}"}
run = requests.post(f"{url}/runs", json={"name": "http-ingest"}, headers=auth, timeout=10).json()["id"]
base = datetime.datetime(2026, 1, 1)


def batch(k):
    items = []
    for i in range(16000):
        s = k * 16000 + i
        stamp = (base + datetime.timedelta(microseconds=s)).strftime("%Y-%m-%dT%H:%M:%S.%f")
        items.append({"time": s * 0.001, "timestamp": stamp, "step": s, "values": {"residual": 1.0 / (s + 1)}})
    return msgpack.packb({"run": run, "metrics": items}, use_bin_type=True)


bodies = [batch(k) for k in range(batches)]
session = requests.Session()
headers = {**auth, "Content-Type": "application/msgpack"}
t0 = time.perf_counter()
for b in bodies:
    r = session.post(f"{url}/metrics", data=b, headers=headers, timeout=60)
    assert r.status_code == 200, r.text
dt = time.perf_counter() - t0
print(f"server-only ingest: {batches * 16000 / dt:,.0f} points/s ({batches} batches of 16000 in {dt:.2f} s)")
