"""Server-only event ingest: POST batches of events (16 000 each, the
library's batch size) to /api/events over one keep-alive connection, each
with its own idempotency key, and report events/s; then reads the events
back and checks that every one is stored once, in order. Python's standard
library only (JSON bodies).

    python3 bench/events_ingest.py URL TOKEN [BATCHES] [PER_BATCH]
"""

import json
import sys
import time
import uuid

from api_client import connect

url, token = sys.argv[1].rstrip("/"), sys.argv[2]
batches = int(sys.argv[3]) if len(sys.argv) > 3 else 20
per = int(sys.argv[4]) if len(sys.argv) > 4 else 16000
call = connect(url, token)

run = json.loads(call("POST", "/api/runs", json.dumps({"name": "events-ingest"})))["id"]
bodies = []
for k in range(batches):
    events = [
        {"message": f"line {k * per + i} residual 1.0e-3", "timestamp": "2026-01-01T00:00:00.000000"}
        for i in range(per)
    ]
    bodies.append(json.dumps({"run": run, "events": events}).encode())
t0 = time.perf_counter()
for b in bodies:
    call("POST", "/api/events", b, {"Idempotency-Key": str(uuid.uuid4())})
dt = time.perf_counter() - t0
# A resent batch (same key) must change nothing.
key = str(uuid.uuid4())
call("POST", "/api/events", bodies[0], {"Idempotency-Key": key})
call("POST", "/api/events", bodies[0], {"Idempotency-Key": key})
got = json.loads(call("GET", f"/api/events?run={run}&count=0"))["data"]
want = [f"line {i} residual 1.0e-3" for i in range(batches * per)] + [
    f"line {i} residual 1.0e-3" for i in range(per)
]
assert [e["message"] for e in got] == want, "events lost, duplicated or out of order"
print(f"event ingest: {batches * per / dt:,.0f} events/s ({batches} batches of {per} in {dt:.2f} s)")
