"""fixtures - the servers of a benchmark run and the data they start with.

Ports (the bench range is 20000-20499, loopback only):

  20001         storaged alone (and behind the plain nginx proxy)
  20011-20013   the three storaged nodes a, b, c behind the routers
  20080         plain nginx: static file + proxy_pass to 20001
  20081         router N=3 W=2 R=2
  20082         router N=2 W=2 R=1 (the same three nodes)
  20083         router N=3 W=2 R=2, simplekv_read_fanout all
  20084         a second router N=3 W=2 R=2, the same configuration as
                20081 (the two-router hot-key row)
  20085-20088   --baseline-module: the routers 20081-20084 again, loaded
                with the baseline build of the module and its snippet
  20101-20103   etcd members' client URLs (bench/etcd.py), 20111-20113
                their peer URLs

Everything is started inside an ExitStack, so whatever started is stopped
again when the run ends, fails or is interrupted (bench scripts turn
SIGINT and SIGTERM into KeyboardInterrupt for that).
"""

import http.client
import json
import os
import random
import re
import signal
import sys
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(TOP, "tests", "lib"))

from skvproc import Storaged                      # noqa: E402
import router as router_lib                       # noqa: E402
from router import Router                         # noqa: E402
from plain_nginx import PlainNginx                # noqa: E402

STORAGED_ALONE_PORT = 20001
NODE_PORTS = (20011, 20012, 20013)
PLAIN_NGINX_PORT = 20080
ROUTER_N3_PORT = 20081
ROUTER_N2_PORT = 20082
ROUTER_N3Q_PORT = 20083
ROUTER_N3_TWIN_PORT = 20084
# the baseline build's routers: the same four, 4 ports up
BASELINE_OFFSET = 4

NKEYS = 10000
# the hot-key rows write bench-00000 .. bench-00005 only
HOT_KEYS = 6
VALUE = b"v" * 100
SKV_EPOCH_UNIX_MS = 1577836800000
# Same pool size for the routers' upstreams and the plain proxy's.
KEEPALIVE = 32


class BenchError(RuntimeError):
    pass


def key(i):
    return "bench-%05d" % i


def interrupt_on_signals():
    """SIGINT (Ctrl-C) and SIGTERM (e.g. make being stopped) unwind as
    KeyboardInterrupt, so the ExitStack stops every server.  Set
    explicitly: a shell starting the bench in the background leaves
    SIGINT ignored, and Python then installs no handler of its own."""
    def handler(signum, frame):
        raise KeyboardInterrupt(signal.Signals(signum).name)
    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


class VersionClock:
    """Versions for direct writes to storaged, in the text form of
    core/skv_version.h: 48-bit ms since 2020-01-01, 16-bit counter, 64-bit
    origin; strictly increasing per clock."""

    def __init__(self):
        self.origin = random.getrandbits(63) | 1
        self.last = 0

    def next(self):
        now = (int(time.time() * 1000) - SKV_EPOCH_UNIX_MS) << 16
        self.last = max(now, self.last + 1)
        return "%016x%016x" % (self.last, self.origin)


def preload(base_url, prefix, versioned, nkeys=NKEYS, threads=4):
    """PUT every key once (100-byte value), a few keep-alive connections in
    parallel; every answer must be 201."""
    host, port = base_url.split("//")[1].split(":")
    failures = []

    def worker(start):
        clock = VersionClock()
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        try:
            for i in range(start, nkeys, threads):
                headers = {"Content-Type": "application/octet-stream"}
                if versioned:
                    headers["X-Simplekv-Version"] = clock.next()
                conn.request("PUT", prefix + key(i), body=VALUE,
                             headers=headers)
                resp = conn.getresponse()
                body = resp.read()
                if resp.status != 201:
                    failures.append("PUT %s%s: %d %r" % (
                        prefix, key(i), resp.status, body[:200]))
                    return
        except OSError as e:
            failures.append("PUT to %s: %s" % (base_url, e))
        finally:
            conn.close()

    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    if failures:
        raise BenchError("preloading %s failed: %s" % (base_url, failures[0]))


def check_get(base_url, path, expect_body):
    """One GET that must answer 200 with expect_body: shows that a row
    measures what it claims (e.g. the proxy rewrite reaches the key)."""
    host, port = base_url.split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    if resp.status != 200 or body != expect_body:
        raise BenchError("GET %s%s: %d, %d bytes (expected 200, %d bytes)"
                         % (base_url, path, resp.status, len(body),
                            len(expect_body)))


def check_put(base_url, path, versioned):
    """One PUT that must answer 201 (the version header gets through)."""
    host, port = base_url.split("//")[1].split(":")
    headers = {"Content-Type": "application/octet-stream"}
    if versioned:
        headers["X-Simplekv-Version"] = VersionClock().next()
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("PUT", path, body=VALUE, headers=headers)
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    if resp.status != 201:
        raise BenchError("PUT %s%s: %d %r (expected 201)"
                         % (base_url, path, resp.status, body[:200]))


def start_storaged(stack, port, workdir, name):
    s = Storaged(port, os.path.join(workdir, name, "data"))
    stack.callback(s.stop)
    s.start()
    return s


def storaged_settings(node):
    """What storaged says of its settings at start, e.g. "durability
    process, 2 threads" (its first log line)."""
    m = re.search(r"\(([^()]*threads)\)", node.log_text())
    return m.group(1) if m else "?"


def start_nodes(stack, workdir):
    return [start_storaged(stack, port, workdir, "node-%s" % name)
            for name, port in zip("abc", NODE_PORTS)]


class BuildRouter(Router):
    """tests/lib/router.py's Router, loading another build of the module
    with that build's proxy snippet (the snippet changes with the module:
    each build needs its own).  The configuration is otherwise the same
    text, so rows of two builds differ only in the module."""

    def __init__(self, port, nodes, module, snippet, **kw):
        super().__init__(port, nodes, **kw)
        self.module = os.path.abspath(module)
        self.snippet = os.path.abspath(snippet)

    def config_text(self):
        text = super().config_text()
        for what, old, new in (
                ("module", "load_module %s;" % router_lib.MODULE,
                 "load_module %s;" % self.module),
                ("snippet", "include %s;" % router_lib.PROXY_SNIPPET,
                 "include %s;" % self.snippet)):
            if text.count(old) != 1:
                raise BenchError("cannot set the %s in the router "
                                 "configuration: %r not found once"
                                 % (what, old))
            text = text.replace(old, new)
        return text


def start_router(stack, port, nodes, n, w, r, workers, workdir,
                 extra_location="", build=None):
    """An nginx router over nodes; build: (module .so, proxy snippet) of
    another build of the module, None for this tree's."""
    kw = dict(replicas=n, w=w, r=r, workers=workers,
              keepalive=KEEPALIVE, error_log_level="warn",
              extra_server="access_log off;",
              extra_location=extra_location,
              prefix=os.path.join(workdir, "router-%d" % port))
    node_list = [(name, node.port) for name, node in zip("abc", nodes)]
    if build is None:
        router = Router(port, node_list, **kw)
    else:
        router = BuildRouter(port, node_list, build[0], build[1], **kw)
    stack.callback(router.stop)
    router.start()
    return router


def start_plain_nginx(stack, storaged_port, workers, workdir):
    plain = PlainNginx(PLAIN_NGINX_PORT, storaged_port,
                       os.path.join(workdir, "plain-nginx"),
                       workers=workers, keepalive=KEEPALIVE)
    stack.callback(plain.stop)
    plain.start()
    return plain


class Stopped:
    """SIGSTOP a storaged for the duration of a with-block (a replica that
    accepts connections and answers nothing); SIGCONT on the way out, also
    on failure, so that it can be stopped afterwards."""

    def __init__(self, storaged):
        self.storaged = storaged

    def __enter__(self):
        os.kill(self.storaged.proc.pid, signal.SIGSTOP)
        return self

    def __exit__(self, *exc):
        os.kill(self.storaged.proc.pid, signal.SIGCONT)
        return False


def machine_description():
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return "%d CPUs (%s), %s" % (os.cpu_count(), model, os.uname().release)


def storaged_statuses(base_url):
    """{status: count} of every request storaged has answered (/v1/stats)."""
    with urllib.request.urlopen(base_url + "/v1/stats", timeout=5) as resp:
        stats = json.load(resp)
    return {int(k): v for k, v in stats["requests"]["by_status"].items()
            if k.isdigit()}


def router_statuses(base_url):
    """{status: count} of client requests the router answered, all
    methods together (its Prometheus metrics)."""
    with urllib.request.urlopen(base_url + "/_simplekv/metrics",
                                timeout=5) as resp:
        text = resp.read().decode("utf-8", "replace")
    out = {}
    for m in re.finditer(r'^simplekv_requests_total\{method="[^"]*",'
                         r'status="(\d+)"\} (\d+)$', text, re.M):
        out[int(m.group(1))] = out.get(int(m.group(1)), 0) + int(m.group(2))
    return out


# the module's own counters (no labels) that tell what writes cost
ROUTER_COUNTERS = ("write_version_queries", "write_retries", "read_repairs")


def router_counters(base_url):
    """{name: value} of ROUTER_COUNTERS from the router's metrics; a
    counter the build does not have is left out (an older build)."""
    with urllib.request.urlopen(base_url + "/_simplekv/metrics",
                                timeout=5) as resp:
        text = resp.read().decode("utf-8", "replace")
    out = {}
    for name in ROUTER_COUNTERS:
        m = re.search(r"^simplekv_%s_total (\d+)$" % name, text, re.M)
        if m:
            out[name] = int(m.group(1))
    return out


def status_delta(before, after):
    return {k: after.get(k, 0) - before.get(k, 0) for k in after
            if after.get(k, 0) != before.get(k, 0)}


class LatencyProbe:
    """While a with-block runs, GET keys one at a time, each on a fresh
    connection, and time each answer.  During a wrk run on keep-alive
    connections this shows how long one answer takes, apart from the
    wait a keep-alive connection has for the previous request's straggler
    subrequests.  Paced (one request every `interval` s) so that it adds
    no real load."""

    def __init__(self, base_url, interval=0.02):
        self.host, port = base_url.split("//")[1].split(":")
        self.port = int(port)
        self.interval = interval
        self.latencies_ms = []
        self.statuses = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        i = 0
        while not self._stop.is_set():
            path = "/" + key(i % NKEYS)
            i += 7919   # a prime: wander over the keys
            t0 = time.monotonic()
            conn = http.client.HTTPConnection(self.host, self.port, timeout=5)
            try:
                conn.request("GET", path)
                resp = conn.getresponse()
                resp.read()
                status = resp.status
            except OSError:
                status = 0   # no answer within 5 s
            finally:
                conn.close()
            self.latencies_ms.append((time.monotonic() - t0) * 1000)
            self.statuses[status] = self.statuses.get(status, 0) + 1
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(10)
        return False

    def summary(self):
        if not self.latencies_ms:
            return "no probe answers"
        lat = sorted(self.latencies_ms)
        p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]   # noqa
        bad = sum(v for k, v in self.statuses.items() if k != 200)
        return ("%d fresh-connection GETs: p50 %.1f ms, p99 %.1f ms, "
                "max %.1f ms, %d not 200" % (len(lat), p(0.50), p(0.99),
                                             lat[-1], bad))
