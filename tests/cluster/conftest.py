"""pytest set-up for the cluster suite: puts tests/lib on sys.path, and
provides `cluster_factory`, which starts storaged nodes plus an nginx
router on fresh loopback ports (19000-19499) and always stops them,
failing the test if nginx crashed or valgrind (SKV_VALGRIND=1) found
errors or definite leaks."""

import itertools
import os
import signal
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                os.pardir, "lib"))

from router import Router            # noqa: E402
from skvproc import Storaged         # noqa: E402

# Ports 19000-19499 belong to this suite.  Every cluster gets fresh ones so
# that a test never talks to a previous test's lingering process.
_PORTS = itertools.count(19000)


def _next_port():
    port = next(_PORTS)
    if port > 19499:
        raise RuntimeError("tests/cluster ran out of ports 19000-19499")
    return port


class Cluster:
    """Storage nodes named a, b, c, ... and one router in front of them."""

    def __init__(self, base_dir, n_nodes=3, replicas=3, w=2, r=2,
                 **router_kw):
        self.names = [chr(ord("a") + i) for i in range(n_nodes)]
        self.nodes = {}
        for name in self.names:
            self.nodes[name] = Storaged(
                _next_port(), os.path.join(str(base_dir), name, "data"))
        self.router = Router(
            _next_port(),
            [(name, self.nodes[name].port) for name in self.names],
            replicas=replicas, w=w, r=r,
            prefix=os.path.join(str(base_dir), "router"), **router_kw)
        self.stopped = set()   # names of nodes SIGSTOPped by a test

    @property
    def url(self):
        return self.router.url

    def start(self):
        for node in self.nodes.values():
            node.start()
        self.router.start()
        return self

    def kill9(self, name):
        self.nodes[name].kill9()

    def restart(self, name):
        self.nodes[name].start()

    def freeze(self, name):
        """SIGSTOP a node: it accepts connections but never answers."""
        self.nodes[name].proc.send_signal(signal.SIGSTOP)
        self.stopped.add(name)

    def thaw(self, name):
        self.nodes[name].proc.send_signal(signal.SIGCONT)
        self.stopped.discard(name)

    def stop(self):
        for name in list(self.stopped):
            self.thaw(name)
        try:
            self.router.stop()
        finally:
            for node in self.nodes.values():
                try:
                    node.stop()
                except Exception:
                    node.kill9()


@pytest.fixture
def cluster_factory(tmp_path):
    """make(n_nodes=3, replicas=3, w=2, r=2, **router_kw) -> started
    Cluster; everything made is stopped at the end of the test."""
    made = []

    def make(**kw):
        c = Cluster(tmp_path / ("cluster%d" % len(made)), **kw)
        made.append(c)
        return c.start()

    yield make

    problems = []
    for c in made:
        c.stop()
        crashes = c.router.crashes()
        if crashes:
            problems.append("nginx worker crashed:\n" + "\n".join(crashes))
        problems.extend(c.router.valgrind_problems())
    assert not problems, "\n\n".join(problems)
