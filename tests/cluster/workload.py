"""Concurrent client workload for the cluster tests, recording a history.

Several threads, each with its own keep-alive HTTP session to the router,
do random PUT/GET/DELETE on a few keys for a bounded time while the main
thread injects faults at set moments.  Every operation is recorded with
its call and return times (time.monotonic_ns) and outcome in the format
tests/lib/linearizability.py reads.  Every PUT writes a value no other PUT
writes, so a read names the write it saw.
"""

import os
import random
import threading
import time
import urllib.parse

import requests

# Client timeouts (connect, read) in seconds: every request is bounded, so
# a router that hangs shows up as a timeout in the history, never as a
# hung test.  Scaled up when nginx runs under valgrind.
TIMEOUT = (2.0, 5.0)

# Recorded histories are kept here (pytest's tmp directories rotate away),
# for tests/lib/linearizability.py to re-check after a failure.
HISTORY_DIR = os.environ.get("SKV_HISTORY_DIR", os.path.join(
    os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir,
    "build", "cluster-histories"))


def key_path(key):
    return "/" + urllib.parse.quote(key, safe="")


class KV:
    """One keep-alive session to the router with bounded timeouts.

    keepalive=False opens a connection per request instead: nginx closes
    idle keep-alive connections when a reload retires their worker, and a
    request sent at that moment is lost with the connection (before any
    answer; a client cannot tell whether it was processed), which has
    nothing to do with the store."""

    def __init__(self, base_url, slowdown=1, keepalive=True):
        self.base = base_url
        self.session = requests.Session()
        if not keepalive:
            self.session.headers["Connection"] = "close"
        self.timeout = (TIMEOUT[0] * slowdown, TIMEOUT[1] * slowdown)

    def put(self, key, value, content_type="text/plain"):
        return self.session.put(self.base + key_path(key), data=value,
                                headers={"Content-Type": content_type},
                                timeout=self.timeout)

    def get(self, key):
        return self.session.get(self.base + key_path(key),
                                timeout=self.timeout)

    def delete(self, key):
        return self.session.delete(self.base + key_path(key),
                                   timeout=self.timeout)

    def close(self):
        self.session.close()


# The answer each operation should get when it succeeds.
EXPECTED = {"put": (201,), "get": (200, 404), "delete": (204,)}


def one_op(kv, rng, keys, thread, seq, weights, tag=""):
    """Do one random operation; return its history record."""
    kind = rng.choices(("put", "get", "delete"), weights)[0]
    key = rng.choice(keys)
    rec = {"key": key, "op": kind, "value": None, "thread": thread,
           "status": None, "error": None}
    if kind == "put":
        rec["value"] = "%st%d-%d" % (tag, thread, seq)
    rec["call"] = time.monotonic_ns()
    try:
        if kind == "put":
            resp = kv.put(key, rec["value"].encode())
        elif kind == "get":
            resp = kv.get(key)
        else:
            resp = kv.delete(key)
        rec["ret"] = time.monotonic_ns()
        rec["status"] = resp.status_code
        if kind == "get" and resp.status_code == 200:
            rec["value"] = resp.content.decode("utf-8", "replace")
        if resp.status_code not in EXPECTED[kind]:
            rec["error"] = "%d %s" % (resp.status_code, resp.text[:200])
    except requests.RequestException as e:
        rec["ret"] = time.monotonic_ns()
        rec["error"] = "%s: %s" % (type(e).__name__, e)
    ok = rec["error"] is None
    rec["ok"] = ok
    # A write that did not answer as it should may or may not have been
    # applied (503 says so; a timeout or reset cannot say): unknown.  A
    # failed read carries no information (ok=False, dropped).
    rec["unknown"] = not ok and kind != "get"
    return rec


def run_clients(base_url, keys, threads=4, duration=5.0, events=(),
                weights=(45, 40, 15), seed=1, slowdown=1, keepalive=True):
    """Run `threads` clients for `duration` seconds; at each (t, fn) in
    events call fn() from the main thread t seconds after the start.
    base_url may be a list of routers: client n uses base_url[n % len].
    Returns the history (list of records, in completion order per
    thread)."""
    urls = [base_url] if isinstance(base_url, str) else list(base_url)
    # Values must be unique across runs too (a cluster may be reused).
    tag = "%s-" % os.urandom(3).hex()
    history = []
    lock = threading.Lock()
    stop = threading.Event()
    failures = []

    def client(n):
        rng = random.Random(seed * 1000 + n)
        kv = KV(urls[n % len(urls)], slowdown, keepalive)
        mine = []
        seq = 0
        try:
            while not stop.is_set():
                mine.append(one_op(kv, rng, keys, n, seq, weights, tag))
                seq += 1
        except Exception as e:   # a bug in the test itself: surface it
            failures.append(e)
        finally:
            kv.close()
            with lock:
                history.extend(mine)

    workers = [threading.Thread(target=client, args=(n,), daemon=True)
               for n in range(threads)]
    start = time.monotonic()
    for t in workers:
        t.start()
    try:
        for at, fn in sorted(events, key=lambda e: e[0]):
            delay = start + at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            fn()
        delay = start + duration - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    finally:
        stop.set()
        for t in workers:
            # a request is bounded by its timeouts, so this join is too
            t.join(sum(TIMEOUT) * slowdown + 5)
    if failures:
        raise failures[0]
    hung = [t for t in workers if t.is_alive()]
    assert not hung, "%d client threads did not finish" % len(hung)
    return history


def errors(history):
    return [r for r in history if r["error"] is not None]


def describe(rec, origin=0):
    return "%8.1f ms +%6.1f ms t%d %s %r %s -> %s" % (
        (rec["call"] - origin) / 1e6, (rec["ret"] - rec["call"]) / 1e6,
        rec["thread"], rec["op"], rec["key"],
        rec["value"] if rec["op"] == "put" else "",
        rec["error"] or rec["status"])
