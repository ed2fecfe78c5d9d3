"""Filtered event requests on a big run: posts EVENTS events (default
1,000,000; 1 in 100 at level error, 1 in 10 a warning, the rest info; see
events_post.py), then times GET /api/events with each filter below
(median of 5 requests after one to warm up) and checks each count against
the numbers it posted. Python's standard library only.

    python3 bench/events_filter.py URL TOKEN [EVENTS]
"""

import json
import statistics
import sys
import time
import urllib.parse

from api_client import connect
from events_post import post_events

url, token = sys.argv[1].rstrip("/"), sys.argv[2]
total = int(sys.argv[3]) if len(sys.argv) > 3 else 1_000_000
call = connect(url, token, timeout=600)

t0 = time.perf_counter()
run = post_events(call, total, "events-filter")
print(f"posted {total:,} events in {time.perf_counter() - t0:.1f} s")

errors = len(range(0, total, 100))
cfl99 = sum(1 for i in range(total) if i % 10 == 1 and i // 10 % 100 == 99)
cases = [
    ("unfiltered, count=20", [], "count=20", total),
    ("log_level == error, count=20", ["log_level == error"], "count=20", errors),
    ("log_level == error, start=8000, count=2000", ["log_level == error"], "start=8000&count=2000", errors),
    ("message icontains diverged, count=20", ["message icontains DIVERGED"], "count=20", errors),
    ("log_level == warning and message icontains cfl 99", ["log_level == warning", "message icontains cfl 99 "], "count=20", cfl99),
]
print(f"{'request':55} {'median':>9}  count")
for name, filters, page, want in cases:
    q = f"/api/events?run={run}&{page}"
    if filters:
        q += "&filters=" + urllib.parse.quote(json.dumps(filters))
    times = []
    for k in range(6):
        t = time.perf_counter()
        got = json.loads(call("GET", q))
        if k:
            times.append(time.perf_counter() - t)
    assert got["count"] == want, (name, got["count"], want)
    print(f"{name:55} {statistics.median(times) * 1000:7.1f} ms  {got['count']}")
