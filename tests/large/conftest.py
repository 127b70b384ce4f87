"""pytest set-up for the large-values suite (tests/large/, `make
test-large`): one cluster per test module, three storaged nodes (N=3 W=2
R=2) behind one nginx router, limits 1 GiB on both sides.

Ports SKV_LARGE_PORT_BASE .. +99 (default 19700-19799).  Values are
generated as they are sent and hashed as they come back
(tests/lib/bigvalue.py): nothing holds a large value in memory.

SKV_LARGE_LIMIT (default 1g) sets simplekv_max_value_size and storaged's
--max-value-size; it exists only to try the harness on a router that
cannot take 1g (before the streaming router, whose replica buffer is
16m): with SKV_LARGE_LIMIT=16m the sizes above it are skipped.
"""

import http.client
import itertools
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, os.pardir, "lib"))

from bigvalue import MIB, digest_header, get_stream  # noqa: E402
from router import Router                      # noqa: E402
from skvproc import Storaged                   # noqa: E402

TOP = os.path.abspath(os.path.join(HERE, os.pardir, os.pardir))
SKV = os.path.join(TOP, "build", "skv")
CS = 256 * 1024                                # storaged's chunk size

_PORT_BASE = int(os.environ.get("SKV_LARGE_PORT_BASE", "19700"))
_PORTS = itertools.count(_PORT_BASE)


def _size(text):
    m = re.fullmatch(r"(\d+)([kmg]?)", text.strip().lower())
    if not m:
        raise ValueError("SKV_LARGE_LIMIT: a size like 1g or 16m")
    return int(m.group(1)) << {"": 0, "k": 10, "m": 20, "g": 30}[m.group(2)]


LIMIT_TEXT = os.environ.get("SKV_LARGE_LIMIT", "1g")
LIMIT = _size(LIMIT_TEXT)


def fits(size):
    """A pytest mark skipping a case over the configured limit."""
    return pytest.mark.skipif(size > LIMIT, reason="over SKV_LARGE_LIMIT=%s"
                              % LIMIT_TEXT)


def next_port():
    port = next(_PORTS)
    if port > _PORT_BASE + 99:
        raise RuntimeError("tests/large ran out of ports %d-%d"
                           % (_PORT_BASE, _PORT_BASE + 99))
    return port


def _listening(port):
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


class LargeCluster:
    """Nodes a, b, c and a router.  The Berkeley DB cache is 16 MiB
    (--cache-size): it is part of storaged's RSS and fills as values pass
    through it, and the default 64 MiB would be the memory test's whole
    allowance by itself.  Durability "process" (no fsync): nothing here
    tests power loss.  A round's replica timeout of 120 s: one replica
    request carries up to 1 GiB."""

    def __init__(self, base_dir):
        self.base_dir = str(base_dir)
        self.names = ["a", "b", "c"]
        self.nodes = {
            n: Storaged(next_port(), os.path.join(self.base_dir, n, "data"),
                        extra_args=["--max-value-size", LIMIT_TEXT,
                                    "--cache-size", "16m"])
            for n in self.names}
        self.router = Router(
            next_port(), [(n, self.nodes[n].port) for n in self.names],
            replicas=3, w=2, r=2, replica_timeout="120s",
            extra_location="simplekv_max_value_size %s;" % LIMIT_TEXT,
            prefix=os.path.join(self.base_dir, "router"))

    @property
    def port(self):
        return self.router.port

    def start(self):
        ports = [n.port for n in self.nodes.values()] + [self.router.port]
        busy = [p for p in ports if _listening(p)]
        if busy:
            raise RuntimeError("ports %s already in use: a leftover "
                               "storaged or nginx? (SKV_LARGE_PORT_BASE "
                               "moves them)" % busy)
        for node in self.nodes.values():
            node.start()
        self.router.start()
        return self

    def stop(self):
        try:
            self.router.stop()
        finally:
            for node in self.nodes.values():
                try:
                    node.stop()
                except Exception:
                    node.kill9()

    def stats(self, name):
        with urllib.request.urlopen(self.nodes[name].url + "/v1/stats",
                                    timeout=30) as r:
            return json.load(r)

    def wait_stats(self, name, pred, timeout=60, what="stats"):
        deadline = time.monotonic() + timeout
        while True:
            s = self.stats(name)
            if pred(s):
                return s
            if time.monotonic() > deadline:
                raise AssertionError("node %s: %s never matched: %r" % (
                    name, what, {k: s.get(k) for k in (
                        "keys", "chunks", "chunk_uploads_pending",
                        "chunks_collected", "corrupt_values")}))
            time.sleep(0.1)

    def delete(self, path):
        """DELETE path through the router: the status."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                          timeout=120)
        try:
            conn.request("DELETE", path)
            r = conn.getresponse()
            r.read()
            return r.status
        finally:
            conn.close()

    def skv(self, cmd, *args, timeout=300):
        proc = subprocess.run([SKV, cmd, "--router", self.router.url]
                              + list(args),
                              stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=timeout)
        return proc.returncode, proc.stdout.decode(), proc.stderr.decode()

    def problems(self):
        out = ["nginx worker crashed:\n" + l for l in self.router.crashes()]
        return out


_versions = itertools.count(1)


def node_version():
    """A fresh version text for a PUT straight to a node: ms since 2020
    << 16 | a counter, then an origin no router uses."""
    ms = int(time.time() * 1000) - 1577836800000
    return "%012x%04x%016x" % (ms, next(_versions) & 0xFFFF, 0x1A26E)


def holds(node, path, gen):
    """Whether node's HEAD of /v1/kv<path> names gen's digest."""
    return get_stream(node.port, "/v1/kv" + path, method="HEAD").header(
        "Repr-Digest") == digest_header(gen.sha())


def wait_held_everywhere(cluster, path, gen, timeout=120):
    """Wait until every node holds gen at path (the third replica of a
    write finishes after the W=2 answer)."""
    deadline = time.monotonic() + timeout
    while not all(holds(n, path, gen) for n in cluster.nodes.values()):
        if time.monotonic() > deadline:
            raise AssertionError("%s not on every node" % path)
        time.sleep(0.1)


def chunks_of(size):
    """Chunk records storaged keeps for a value of size bytes."""
    return 0 if size <= CS else -(-size // CS)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = LargeCluster(tmp_path_factory.mktemp("large"))
    c.start()
    try:
        yield c
    finally:
        c.stop()
    problems = c.problems()
    assert not problems, "\n\n".join(problems)


