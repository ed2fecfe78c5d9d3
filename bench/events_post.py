"""Posts EVENTS events (1 in 100 at level error, 1 in 10 a warning, the rest
info) to a new run in batches of 16,000 and prints the run's id. Used by
bench/events_filter.py (post_events) and bench/events_upgrade.sh. Python's
standard library only.

    python3 bench/events_post.py URL TOKEN EVENTS
"""

import json
import sys
import uuid

from api_client import connect

PER_BATCH = 16000


def event(i):
    if i % 100 == 0:
        return {"message": f"ERROR: step {i} diverged", "log_level": "error"}
    if i % 10 == 1:
        return {"message": f"warning: CFL {i // 10 % 100} above 1", "log_level": "warning"}
    return {"message": f"step {i} residual 1.0e-3"}


def post_events(call, total, name="events-bench"):
    """Creates a run, posts `total` events (event(0), event(1), ...) to it
    and returns its id."""
    run = json.loads(call("POST", "/api/runs", json.dumps({"name": name})))["id"]
    for start in range(0, total, PER_BATCH):
        events = [
            {**event(i), "timestamp": "2026-01-01T00:00:00.000000"}
            for i in range(start, min(total, start + PER_BATCH))
        ]
        body = json.dumps({"run": run, "events": events}).encode()
        call("POST", "/api/events", body, {"Idempotency-Key": str(uuid.uuid4())})
    return run


if __name__ == "__main__":
    url, token, total = sys.argv[1].rstrip("/"), sys.argv[2], int(sys.argv[3])
    print(post_events(connect(url, token, timeout=600), total))
