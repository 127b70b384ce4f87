"""pytest set-up for the hostile-client suite: one cluster for the whole
module (three storaged nodes with a token, on loopback, and a router
configured like conf/nginx.conf: 2 workers, 4096 connections each), a
recorder in front of node a that keeps every byte the router sends it,
raw-socket helpers, and a probe client that measures what a well-behaved
client sees while an attack runs.

Ports 28600-28799 (SKV_HOSTILE_PORT_BASE moves them).
"""

import itertools
import math
import json
import os
import socket
import sys
import threading
import time
import urllib.parse

import pytest
import requests

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, os.pardir, "lib"))

from router import Router        # noqa: E402
from skvproc import Storaged     # noqa: E402
from tcpforward import Forwarder  # noqa: E402

_PORT_BASE = int(os.environ.get("SKV_HOSTILE_PORT_BASE", "28600"))
_PORTS = itertools.count(_PORT_BASE)
TOP = os.path.abspath(os.path.join(HERE, os.pardir, os.pardir))
RESULTS = os.path.join(TOP, "build", "hostile-results")


def next_port():
    port = next(_PORTS)
    if port >= _PORT_BASE + 200:
        raise RuntimeError("tests/hostile ran out of ports")
    return port


class Recorder(Forwarder):
    """A byte forwarder 127.0.0.1:port -> target that keeps a copy of
    everything sent towards the target (what the router tells node a)."""

    backlog = 256

    def __init__(self, port, target):
        super().__init__(port, target)
        self.lock = threading.Lock()
        self.sent = bytearray()

    def text(self):
        with self.lock:
            return bytes(self.sent)

    def clear(self):
        with self.lock:
            del self.sent[:]

    def upstream_data(self, data):
        with self.lock:
            self.sent += data


class HostileCluster:
    def __init__(self, base):
        self.base = str(base)
        os.makedirs(self.base, exist_ok=True)
        self.token = os.urandom(16).hex()
        self.token_file = os.path.join(self.base, "token")
        with open(self.token_file, "w") as f:
            f.write(self.token + "\n")
        self.nodes = {}
        # node a: a low connection limit to exhaust; node c: a short
        # first-request timeout (tests/hostile/test_connections_hostile.py)
        limits = {"a": ["--max-connections", "1000"],
                  "b": [], "c": ["--first-request-timeout", "2s"]}
        for name in "abc":
            extra = ["--token-file", self.token_file] + limits[name]
            self.nodes[name] = Storaged(
                next_port(), os.path.join(self.base, name, "data"),
                token=self.token, extra_args=extra)
        self.recorder = Recorder(next_port(), self.nodes["a"].port)
        addrs = [("a", self.recorder.port)] + [
            (n, self.nodes[n].port) for n in "bc"]
        # like conf/nginx.conf: several workers, 4096 connections each
        self.router = Router(next_port(), addrs,
                             prefix=os.path.join(self.base, "router"),
                             token_file=self.token_file, workers=2,
                             worker_connections=4096)
        # the same with short client timeouts, to see them close
        # connections
        self.short = Router(
            next_port(), addrs, prefix=os.path.join(self.base, "short"),
            token_file=self.token_file, workers=1,
            extra_server="client_header_timeout 2s;\n"
                         "client_body_timeout 2s;\n"
                         "keepalive_timeout 2s;\n")

    def start(self):
        for n in self.nodes.values():
            n.start()
        self.recorder.start()
        self.router.start()
        self.short.start()
        return self

    def stop(self):
        for rt in (self.router, self.short):
            try:
                rt.stop()
            except Exception:
                rt.kill()
        self.recorder.stop()
        for n in self.nodes.values():
            try:
                n.stop()
            except Exception:
                n.kill9()

    def auth(self):
        return {"Authorization": "Bearer " + self.token}

    def node_get(self, name, key):
        """(status, headers, body) of GET /v1/kv/<key> on one node."""
        r = requests.get(self.nodes[name].url + "/v1/kv/"
                         + urllib.parse.quote(key, safe=""),
                         headers=self.auth(), timeout=5)
        return r.status_code, r.headers, r.content

    def node_keys(self, name, prefix):
        r = requests.get(self.nodes[name].url + "/v1/keys",
                         params={"prefix": prefix}, headers=self.auth(),
                         timeout=5)
        assert r.status_code == 200, (r.status_code, r.text)
        return [line for line in r.text.splitlines() if line.strip()]

    def assert_nothing_stored(self, prefix):
        """No node holds any key (value or tombstone) under prefix, and
        the router lists none."""
        for name in self.nodes:
            assert self.node_keys(name, prefix) == [], (name, prefix)
        r = requests.get(self.router.url + "/" + urllib.parse.quote(
            prefix, safe="") + "?list", timeout=5)
        assert r.status_code == 200, (r.status_code, r.text)
        assert r.json()["keys"] == [], r.text


@pytest.fixture(scope="module")
def hc(tmp_path_factory):
    c = HostileCluster(tmp_path_factory.mktemp("hostile"))
    try:
        c.start()
        yield c
    finally:
        c.stop()
    problems = []
    for rt in (c.router, c.short):
        problems += rt.crashes()
    assert not problems, "nginx worker crashed:\n" + "\n".join(problems)


# --- raw HTTP ----------------------------------------------------------

class Response:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<%d %s %r>" % (self.status, self.headers, self.body[:200])


def parse_responses(data, head_only=()):
    """Split the bytes a server sent into Responses; returns (responses,
    rest) where rest is what could not be parsed as a whole response."""
    out = []
    i = 0
    n = 0
    while i < len(data):
        end = data.find(b"\r\n\r\n", i)
        if end < 0:
            break
        lines = data[i:end].split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            break
        status = int(parts[1])
        headers = []
        for line in lines[1:]:
            k, _, v = line.partition(b":")
            headers.append((k.decode("latin-1").strip(),
                            v.decode("latin-1").strip()))
        hdr = {k.lower(): v for k, v in headers}
        pos = end + 4
        if n in head_only or status in (204, 304) or 100 <= status < 200:
            body = b""
        elif "transfer-encoding" in hdr:
            body = b""
            while True:
                le = data.find(b"\r\n", pos)
                if le < 0:
                    return out, data[i:]
                size = int(data[pos:le].split(b";")[0], 16)
                pos = le + 2
                if size == 0:
                    pos = data.find(b"\r\n", pos) + 2
                    break
                body += data[pos:pos + size]
                pos += size + 2
        elif "content-length" in hdr:
            ln = int(hdr["content-length"])
            if pos + ln > len(data):
                return out, data[i:]
            body = data[pos:pos + ln]
            pos += ln
        else:
            body = data[pos:]
            pos = len(data)
        out.append(Response(status, headers, body))
        i = pos
        n += 1
    return out, data[i:]


def exchange(port, payload, timeout=5.0, host="127.0.0.1", pause=None,
             shut=False):
    """Send payload (bytes, or a list of pieces sent `pause` seconds
    apart) on a fresh connection; read until the server closes or
    `timeout` passes without data.  Returns (bytes, closed)."""
    s = socket.create_connection((host, port), timeout=timeout)
    data = b""
    closed = False
    try:
        pieces = payload if isinstance(payload, list) else [payload]
        for k, piece in enumerate(pieces):
            if k and pause:
                time.sleep(pause)
            try:
                s.sendall(piece)
            except OSError:
                break
        if shut:
            s.shutdown(socket.SHUT_WR)
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except OSError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            data += chunk
    finally:
        s.close()
    return data, closed


def assert_json_error_or_close(data, closed, statuses, what=""):
    """Every response is a JSON error {"error", "detail"} with one of
    statuses, and the server closed the connection (a clean close with
    no answer at all is allowed too)."""
    resps, rest = parse_responses(data)
    assert rest == b"", "%s: unparsable answer %r" % (what, data[:500])
    assert closed, "%s: connection left open after %r" % (what, resps)
    for r in resps:
        assert r.status in statuses, "%s: %r" % (what, r)
        assert (r.header("Content-Type") or "").startswith(
            "application/json"), "%s: %r" % (what, r)
        body = r.json()
        assert body.get("error") and "detail" in body, (what, body)
    return resps


# --- the probe: a well-behaved client during an attack ------------------

class Probe:
    """PUT then GET of its own key through the router, one pair every
    `interval` seconds, each with a 5 s timeout, new connection each
    time; records latencies and failures."""

    def __init__(self, url, name, interval=0.02):
        self.url, self.name, self.interval = url, name, interval
        self.lat = []
        self.failures = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join(30)
        return False

    def _run(self):
        i = 0
        key = "/probe-" + self.name
        while not self._stop.is_set():
            i += 1
            value = b"probe %d" % i
            for method in ("PUT", "GET"):
                t0 = time.monotonic()
                try:
                    r = requests.request(
                        method, self.url + key, timeout=5,
                        data=value if method == "PUT" else None,
                        headers={"Connection": "close"})
                    ok = (r.status_code == 201 if method == "PUT" else
                          (r.status_code, r.content) == (200, value))
                    if not ok:
                        self.failures.append("%s %d %r" % (
                            method, r.status_code, r.content[:200]))
                except requests.RequestException as e:
                    self.failures.append("%s %s" % (method, e))
                self.lat.append(time.monotonic() - t0)
            self._stop.wait(self.interval)

    def report(self, attack):
        lat = sorted(self.lat)
        p99 = lat[max(0, math.ceil(0.99 * len(lat)) - 1)] if lat else None
        fig = {"attack": attack, "probe_requests": len(lat),
               "probe_failures": len(self.failures),
               "probe_p50_ms": round(lat[len(lat) // 2] * 1000, 1)
               if lat else None,
               "probe_p99_ms": round(p99 * 1000, 1) if lat else None,
               "probe_max_ms": round(lat[-1] * 1000, 1) if lat else None}
        os.makedirs(RESULTS, exist_ok=True)
        with open(os.path.join(RESULTS, attack + ".json"), "w") as f:
            json.dump(fig, f)
        print("PROBE %s" % json.dumps(fig))
        return fig

    def check(self, attack, p99_bound=1.0, min_requests=2):
        fig = self.report(attack)
        assert not self.failures, "%s: probe failed %d times: %s" % (
            attack, len(self.failures), self.failures[:5])
        assert fig["probe_requests"] >= min_requests, fig
        assert fig["probe_p99_ms"] <= p99_bound * 1000, fig
        return fig
