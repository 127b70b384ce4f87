"""Fixtures for the storaged integration tests.

Every test gets real storaged processes (tests/lib/skvproc.py) on loopback
ports 17000-17499 (SKV_STORAGED_PORT_BASE moves the 500 ports), a fresh
data directory, and an exact HTTP client
(http.client: no URL re-quoting, so keys arrive byte for byte).  At the end
of each test every daemon is stopped and, for the ASan+UBSan build
(SKV_SANITIZED=1), its stderr is checked for sanitizer reports.
"""

import http.client
import itertools
import json
import os
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from skvproc import Storaged  # noqa: E402

PORT_FIRST = int(os.environ.get("SKV_STORAGED_PORT_BASE", "17000"))
PORT_LAST = PORT_FIRST + 499
SANITIZED = os.environ.get("SKV_SANITIZED") == "1"

_ports = itertools.count(PORT_FIRST)


def next_port():
    return PORT_FIRST + (next(_ports) - PORT_FIRST) % (PORT_LAST - PORT_FIRST)


_versions = itertools.count(1)
EPOCH_UNIX_MS = 1577836800000


def version(ms=None, logical=None, origin=0xA5):
    """A version text: hlc = ms since 2020 << 16 | logical, then origin.
    Without arguments: a fresh, increasing version near the current time."""
    if ms is None:
        ms = int(time.time() * 1000) - EPOCH_UNIX_MS
    if logical is None:
        logical = next(_versions) & 0xFFFF
    return "%012x%04x%016x" % (ms, logical, origin)


# Sequence versions start at this process's start time: realistic clock
# values, so that the background purge (which removes tombstones older than
# --tombstone-grace by the version's milliseconds) never mistakes a test's
# tombstone for an ancient one.
SEQ_BASE = (int(time.time() * 1000) - EPOCH_UNIX_MS) << 16


def seq_version(n, origin=0xA5):
    """Version number n in a strictly increasing sequence (n >= 1)."""
    return "%016x%016x" % (SEQ_BASE + n, origin)


def seq_of(version_text):
    """The n of a seq_version() text."""
    return int(version_text[:16], 16) - SEQ_BASE


class Client:
    """One keep-alive HTTP/1.1 connection; reconnects when closed."""

    def __init__(self, port, host="127.0.0.1", token=None, timeout=20):
        self.host, self.port, self.token, self.timeout = (host, port, token,
                                                          timeout)
        self.conn = None

    def request(self, method, path, body=None, headers=None):
        hdrs = dict(headers or {})
        if self.token is not None and "Authorization" not in hdrs:
            hdrs["Authorization"] = "Bearer " + self.token
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(
                    self.host, self.port, timeout=self.timeout)
            try:
                self.conn.request(method, path, body=body, headers=hdrs)
                resp = self.conn.getresponse()
                data = resp.read()
            except (http.client.RemoteDisconnected, BrokenPipeError,
                    ConnectionResetError):
                # A keep-alive connection the server closed: retry once
                # on a new one (only safe because callers use idempotent
                # or version-guarded requests).
                self.close()
                if attempt == 1:
                    raise
                continue
            if resp.will_close:
                self.close()
            return Response(resp.status, resp.getheaders(), data)

    def put(self, key_path, value, ver, content_type=None, headers=None):
        h = {"X-Simplekv-Version": ver}
        if content_type is not None:
            h["Content-Type"] = content_type
        h.update(headers or {})
        return self.request("PUT", "/v1/kv/" + key_path, value, h)

    def delete(self, key_path, ver):
        return self.request("DELETE", "/v1/kv/" + key_path, None,
                            {"X-Simplekv-Version": ver})

    def get(self, key_path, method="GET"):
        return self.request(method, "/v1/kv/" + key_path)

    def put_json(self, path, doc, headers=None):
        """PUT a JSON document (a str is sent as it is)."""
        body = doc if isinstance(doc, (str, bytes)) else json.dumps(doc)
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        return self.request("PUT", path, body, h)

    def set_repair_watermark(self, ver):
        r = self.put_json("/v1/repair-watermark", {"version": ver})
        assert r.status == 200, r
        return r

    def stats(self):
        r = self.request("GET", "/v1/stats")
        assert r.status == 200, r
        return r.json()

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers}
        self.body = body

    def header(self, name):
        return self.headers.get(name.lower())

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<Response %d %r %r>" % (self.status, self.headers,
                                        self.body[:200])


class Daemons:
    """Starts storaged processes for one test and checks them at the end."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.started = []

    def start(self, durability="process", extra_args=(), data_dir=None,
              port=None, **kw):
        port = port or next_port()
        data_dir = data_dir or str(self.tmp_path / ("data-%d" % port))
        d = Storaged(port, data_dir, durability=durability,
                     extra_args=extra_args, **kw)
        self.started.append(d)
        d.start(timeout=30 if SANITIZED else 10)
        return d

    def finish(self):
        problems = []
        for d in self.started:
            try:
                rc = d.stop()
            except Exception as e:  # still check the others
                problems.append("port %d: %s" % (d.port, e))
                continue
            reports = d.sanitizer_reports()
            if reports:
                problems.append("port %d: sanitizer reports:\n%s\n%s" % (
                    d.port, "\n".join(reports), d.log_text()[-6000:]))
            # -9 is our own kill9(); anything else non-zero is a failure.
            if rc not in (0, -9, None):
                problems.append("port %d: exit status %s\n%s" % (
                    d.port, rc, d.log_text()[-3000:]))
        return problems


@pytest.fixture
def daemons(tmp_path):
    ds = Daemons(tmp_path)
    try:
        yield ds
    finally:
        problems = ds.finish()
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="module")
def shared_node(tmp_path_factory):
    """One storaged shared by a module's many small tests (parametrized
    bad-input cases): starting a daemon per case costs more than the case,
    above all under ASan.  Tests using it must not depend on its state."""
    ds = Daemons(tmp_path_factory.mktemp("shared"))
    try:
        d = ds.start()
        c = Client(d.port)
        yield d, c
        c.close()
    finally:
        problems = ds.finish()
    assert not problems, "\n".join(problems)


@pytest.fixture
def node(daemons):
    """One storaged with default settings and a client for it."""
    d = daemons.start()
    c = Client(d.port)
    yield d, c
    c.close()
