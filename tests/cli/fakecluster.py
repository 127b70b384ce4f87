"""fakecluster - in-process stand-ins for storaged and a router's status
page, for testing `skv rebalance`, `cleanup` and `repair` where the real
thing cannot misbehave on demand: a node that answers some requests with
errors or not at all, a listing cut in the middle.

FakeNode speaks the parts of docs/protocol.md and docs/membership.md that
skv uses: /v1/kv/<key> (GET, HEAD, PUT, DELETE, ?remove&if-version),
/v1/keys (streamed, chunked), the same per namespace under
/v1/ns/<name>/ and /v1/namespaces (or, with `old`, none of those: a
storaged from before namespaces), /v1/epochs, /v1/lease,
/v1/repair-watermark and /v1/stats.  FakeRouter serves /_simplekv/status
for a node set and its namespaces.

Placement (weighted rendezvous over XXH3, core/skv_placement.h) is
recomputed here with ctypes over libxxhash, independently of skv.
"""

import ctypes
import ctypes.util
import json
import math
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_xx = ctypes.CDLL(ctypes.util.find_library("xxhash") or "libxxhash.so.0")
_xx.XXH3_64bits.restype = ctypes.c_uint64
_xx.XXH3_64bits.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
_xx.XXH3_64bits_withSeed.restype = ctypes.c_uint64
_xx.XXH3_64bits_withSeed.argtypes = [ctypes.c_char_p, ctypes.c_size_t,
                                     ctypes.c_uint64]


def owners(nodes, key, n):
    """Top n of nodes [(name, weight)] for key bytes, best first; weight 0
    owns nothing."""
    scored = []
    for name, weight in nodes:
        if weight <= 0:
            continue
        nb = name.encode()
        seed = _xx.XXH3_64bits(nb, len(nb))
        h = _xx.XXH3_64bits_withSeed(key, len(key), seed)
        u = ((h >> 11) + 0.5) * (1.0 / 9007199254740992.0)
        scored.append((-(weight / -math.log(u)), nb, name))
    scored.sort()
    return [s[2] for s in scored[:n]]


def enc(key):
    return urllib.parse.quote(key, safe="-._~")


class FakeNode:
    """One storage node in memory.  Faults: `fail_writes` (keys whose PUT
    or DELETE answers 500), `frozen` (every request hangs until thawed),
    `cut_listing_after` (the listing stops without its final chunk after
    that many lines, once)."""

    def __init__(self, port):
        self.port = port
        # namespace -> {key bytes -> [version, tomb, ctype, value]}
        self.spaces = {"default": {}}
        self.old = False        # a storaged from before namespaces
        self.epochs = None      # (min, max)
        self.lease = None       # (holder, expires monotonic)
        self.watermark = None
        self.fail_writes = set()
        self.frozen = threading.Event()
        self.frozen.set()       # set = running
        self.cut_listing_after = None
        self.requests = []      # (method, path)
        self.lock = threading.Lock()
        node = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                node._handle(self, "GET")

            def do_HEAD(self):
                node._handle(self, "HEAD")

            def do_PUT(self):
                node._handle(self, "PUT")

            def do_DELETE(self):
                node._handle(self, "DELETE")

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        # shutdown() waits for serve_forever's next poll: 0.5 s by default,
        # per node and router, at every test's end
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05},
                                       daemon=True)

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.frozen.set()
        self.server.shutdown()
        self.server.server_close()

    @property
    def data(self):
        """The namespace "default"."""
        return self.spaces["default"]

    def ns(self, name):
        return self.spaces.setdefault(name, {})

    def put(self, key, version, value=b"", tomb=False, ctype="text/plain",
            ns="default"):
        self.ns(ns)[key] = [version, tomb, ctype, value]

    # --- the protocol

    def _reply(self, h, status, body=b"", headers=()):
        h.send_response(status)
        for k, v in headers:
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(body)

    def _json(self, h, status, obj):
        self._reply(h, status, json.dumps(obj).encode(),
                    [("Content-Type", "application/json")])

    def _handle(self, h, method):
        self.frozen.wait()
        n = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(n) if n else b""
        url = urllib.parse.urlsplit(h.path)
        self.requests.append((method, h.path))
        q = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        if url.path.startswith("/v1/kv/"):
            key = urllib.parse.unquote_to_bytes(url.path[7:])
            return self._kv(h, method, self.data, key, q, body)
        if url.path == "/v1/keys":
            return self._keys(h, self.data, q)
        parts = url.path.split("/", 5)   # '', v1, ns, NAME, kv|keys, key
        if not self.old and len(parts) >= 5 and parts[1:3] == ["v1", "ns"]:
            if parts[4] == "kv" and len(parts) == 6:
                key = urllib.parse.unquote_to_bytes(parts[5])
                space = self.spaces.get(parts[3], {}) if method in (
                    "GET", "HEAD") or "remove" in q else self.ns(parts[3])
                return self._kv(h, method, space, key, q, body)
            if parts[4] == "keys" and len(parts) == 5:
                return self._keys(h, self.spaces.get(parts[3], {}), q)
        if url.path == "/v1/namespaces" and not self.old:
            return self._json(h, 200, {"namespaces": [
                {"name": n, "keys": sum(1 for r in d.values() if not r[1]),
                 "tombstones": sum(1 for r in d.values() if r[1]),
                 "bytes": 0} for n, d in sorted(self.spaces.items())]})
        if url.path == "/v1/epochs":
            return self._epochs(h, method, body)
        if url.path == "/v1/lease":
            return self._lease(h, method, q, body)
        if url.path == "/v1/repair-watermark":
            return self._watermark(h, method, body)
        if url.path == "/v1/stats":
            recs = [r for d in self.spaces.values() for r in d.values()]
            live = sum(1 for r in recs if not r[1])
            return self._json(h, 200, {"keys": live,
                                       "tombstones": len(recs) - live})
        self._json(h, 404, {"error": "not found"})

    def _epoch_ok(self, h):
        if self.epochs is None:
            return True
        e = h.headers.get("X-Simplekv-Epoch")
        if e is not None and self.epochs[0] <= int(e) <= self.epochs[1]:
            return True
        self._json(h, 421, {"error": "epoch refused"})
        return False

    def _kv(self, h, method, space, key, q, body):
        if not self._epoch_ok(h):
            return
        with self.lock:
            rec = space.get(key)
            if method in ("GET", "HEAD"):
                if rec is None:
                    return self._json(h, 404, {"error": "not found"})
                if rec[1]:
                    return self._reply(h, 404, b"", [
                        ("X-Simplekv-Version", rec[0]),
                        ("X-Simplekv-Tombstone", "1")])
                return self._reply(h, 200, rec[3], [
                    ("X-Simplekv-Version", rec[0]),
                    ("Content-Type", rec[2])])
            if "remove" in q:
                if rec is None:
                    return self._json(h, 404, {"error": "not found"})
                if rec[0] != q["if-version"][0]:
                    return self._reply(h, 409, b"",
                                       [("X-Simplekv-Version", rec[0])])
                del space[key]
                return self._reply(h, 204)
            if key in self.fail_writes:
                return self._json(h, 500, {"error": "injected"})
            v = h.headers["X-Simplekv-Version"]
            if rec is not None and rec[0] > v:
                return self._reply(h, 409, b"", [("X-Simplekv-Version",
                                                  rec[0])])
            if rec is not None and rec[0] == v:
                return self._reply(h, 200, b"", [("X-Simplekv-Version", v)])
            space[key] = [v, method == "DELETE",
                              h.headers.get("Content-Type", ""), body]
            return self._reply(h, 201 if method == "PUT" else 204, b"",
                               [("X-Simplekv-Version", v)])

    def _keys(self, h, space, q):
        after = urllib.parse.unquote_to_bytes(q.get("after", [""])[0])
        with self.lock:
            keys = sorted(k for k in space if k > after)
            lines = [("%s\t%d\t%s\n" % (space[k][0], space[k][1],
                                        enc(k))).encode() for k in keys]
        h.send_response(200)
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        cut = self.cut_listing_after
        for i, line in enumerate(lines):
            if cut is not None and i == cut:
                self.cut_listing_after = None
                h.wfile.write(b"%x\r\n%s\r\n" % (10, line[:10]))
                h.close_connection = True
                return
            h.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
        h.wfile.write(b"0\r\n\r\n")

    def _epochs(self, h, method, body):
        if method == "GET":
            lo, hi = self.epochs or (None, None)
            return self._json(h, 200, {"min": lo, "max": hi})
        w = json.loads(body)
        if self.epochs and (w["min"] < self.epochs[0]
                            or w["max"] < self.epochs[1]):
            return self._json(h, 409, {"min": self.epochs[0],
                                       "max": self.epochs[1]})
        self.epochs = (w["min"], w["max"])
        self._json(h, 200, {"min": w["min"], "max": w["max"]})

    def _lease(self, h, method, q, body):
        now = time.monotonic()
        if method == "DELETE":
            if self.lease and self.lease[0] == q["holder"][0]:
                self.lease = None
            return self._reply(h, 204)
        w = json.loads(body)
        if self.lease and self.lease[0] != w["holder"] and \
                self.lease[1] > now:
            return self._json(h, 409, {"holder": self.lease[0],
                                       "expires_in_ms":
                                       int((self.lease[1] - now) * 1000)})
        self.lease = (w["holder"], now + w["ttl_ms"] / 1000.0)
        self._json(h, 200, {"holder": w["holder"]})

    def _watermark(self, h, method, body):
        if method == "GET":
            return self._json(h, 200, {"version": self.watermark})
        v = json.loads(body)["version"]
        if self.watermark and v < self.watermark:
            return self._json(h, 409, {"version": self.watermark})
        self.watermark = v
        self._json(h, 200, {"version": v})


class FakeRouter:
    """A router's status page only: nodes [(name, address, weight,
    previous_weight)], epoch, transition, live_epochs, replicas, and
    namespaces [(name, N, W, R)] (None: a router from before namespaces,
    with "replicas" only)."""

    def __init__(self, port, nodes, epoch, transition=False, replicas=3,
                 live=None, namespaces=None):
        self.port = port
        self.namespaces = namespaces
        self.misses = []       # paths asked other than the status page
        self.nodes = nodes
        self.epoch = epoch
        self.transition = transition
        self.replicas = replicas
        self.live = live
        router = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                if self.path != "/_simplekv/status":
                    router.misses.append(self.path)
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = json.dumps(router.page()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever,
                         kwargs={"poll_interval": 0.05},
                         daemon=True).start()

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def page(self):
        page = {"nodes": [{"name": n, "upstream": "skv_" + n,
                           "address": a, "weight": w,
                           "previous_weight": pw, "up": True}
                          for n, a, w, pw in self.nodes],
                "epoch": self.epoch, "transition": self.transition,
                "live_epochs": self.live or {str(self.epoch): 1},
                "replicas": [self.replicas]}
        if self.namespaces is not None:
            page["replicas"] = sorted({ns[1] for ns in self.namespaces})
            page["namespaces"] = [
                {"name": n, "replicas": rn, "write_quorum": w,
                 "read_quorum": r, "requests": {}}
                for n, rn, w, r in self.namespaces]
        return page

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
