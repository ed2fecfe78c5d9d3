"""One keep-alive HTTP connection to a simtrack server with a bearer token,
for the bench scripts (Python's standard library only)."""

import http.client
import urllib.parse


def connect(url, token, timeout=300):
    """Returns call(method, path, body=None, extra_headers=None) -> bytes,
    which fails unless the server answers 200."""
    u = urllib.parse.urlsplit(url.rstrip("/"))
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def call(method, path, body=None, extra=None):
        conn.request(method, path, body=body, headers={**auth, **(extra or {})})
        r = conn.getresponse()
        data = r.read()
        assert r.status == 200, (r.status, data[:300])
        return data

    return call
