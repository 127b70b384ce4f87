"""pytest set-up for the cluster suite: puts tests/lib on sys.path, and
provides `cluster_factory`, which starts storaged nodes plus an nginx
router on fresh loopback ports (19000-19499) and always stops them,
failing the test if nginx crashed or valgrind (SKV_VALGRIND=1) found
errors or definite leaks."""

import itertools
import os
import signal
import socket
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                os.pardir, "lib"))

from holdproxy import HoldProxy      # noqa: E402
from router import Router            # noqa: E402
from slowlink import SlowLink        # noqa: E402
from skvproc import Storaged         # noqa: E402

# Ports 19000-19499 belong to this suite (SKV_CLUSTER_PORT_BASE moves them,
# so that a second copy can run beside it).  Every cluster gets fresh ones
# so that a test never talks to a previous test's lingering process.
_PORT_BASE = int(os.environ.get("SKV_CLUSTER_PORT_BASE", "19000"))
_PORTS = itertools.count(_PORT_BASE)


def _next_port():
    port = next(_PORTS)
    if port > _PORT_BASE + 499:
        raise RuntimeError("tests/cluster ran out of ports %d-%d"
                           % (_PORT_BASE, _PORT_BASE + 499))
    return port



def _all_threads_stopped(pid):
    """Whether every thread of pid is in the stopped state (T)."""
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except FileNotFoundError:
        return True
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, IndexError):
            continue
        if state not in ("T", "t"):
            return False
    return True

class Cluster:
    """Storage nodes named a, b, c, ... and one or more routers (the design
    has many stateless routers, each with its own version clocks) in front
    of them, configured alike."""

    def __init__(self, base_dir, n_nodes=3, replicas=3, w=2, r=2, routers=1,
                 proxied=(), delayed=None, storaged_args=(), **router_kw):
        self.names = [chr(ord("a") + i) for i in range(n_nodes)]
        self.nodes = {}
        for name in self.names:
            self.nodes[name] = Storaged(
                _next_port(), os.path.join(str(base_dir), name, "data"),
                extra_args=storaged_args)
        # nodes the router reaches through a HoldProxy (tests/cluster/
        # holdproxy.py), which can delay one chosen replica request
        self.proxies = {name: HoldProxy(_next_port(), self.nodes[name].port)
                        for name in proxied}
        # nodes reached through a slow link (tests/cluster/slowlink.py):
        # {name: one-way delay in ms}, turned on by proxies[name].on()
        for name, ms in (delayed or {}).items():
            self.proxies[name] = SlowLink(_next_port(), self.nodes[name].port,
                                          ms)
        ports = {name: (self.proxies[name].port if name in self.proxies
                        else self.nodes[name].port) for name in self.names}
        self.routers = [
            Router(_next_port(), [(name, ports[name]) for name in self.names],
                   replicas=replicas, w=w, r=r,
                   prefix=os.path.join(str(base_dir), "router%s" % (
                       i or "")), **router_kw)
            for i in range(routers)]
        self.router = self.routers[0]
        self.stopped = set()   # names of nodes SIGSTOPped by a test

    @property
    def url(self):
        return self.router.url

    @property
    def urls(self):
        return [rt.url for rt in self.routers]

    def start(self):
        # A process left over from an earlier run on one of our ports
        # would answer in place of ours: refuse to start instead.
        ports = [n.port for n in self.nodes.values()] + [
            rt.port for rt in self.routers] + [
            px.port for px in self.proxies.values()]
        busy = [p for p in ports if _listening(p)]
        if busy:
            raise RuntimeError("ports %s already in use: a leftover "
                               "storaged or nginx?" % busy)
        for node in self.nodes.values():
            node.start()
        for px in self.proxies.values():
            px.start()
        for rt in self.routers:
            rt.start()
        return self

    def kill9(self, name):
        self.nodes[name].kill9()

    def restart(self, name):
        self.nodes[name].start()

    def freeze(self, name):
        """SIGSTOP a node: it accepts connections but never answers.
        Returns once every thread of it is stopped: kill() only posts the
        stop, and a thread busy on the other CPU may still finish what it
        is doing (seen once under load: a node answered a request sent
        just after its SIGSTOP)."""
        proc = self.nodes[name].proc
        proc.send_signal(signal.SIGSTOP)
        self.stopped.add(name)
        deadline = time.monotonic() + 5
        while not _all_threads_stopped(proc.pid):
            if time.monotonic() > deadline:
                raise AssertionError("node %s did not stop" % name)
            time.sleep(0.005)

    def thaw(self, name):
        self.nodes[name].proc.send_signal(signal.SIGCONT)
        self.stopped.discard(name)

    def stop(self):
        for name in list(self.stopped):
            self.thaw(name)
        try:
            for px in self.proxies.values():
                px.release()
            for rt in self.routers:
                rt.stop()
        finally:
            for px in self.proxies.values():
                px.stop()
            for node in self.nodes.values():
                try:
                    node.stop()
                except Exception:
                    node.kill9()


def _listening(port):
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


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
        for rt in c.routers:
            crashes = rt.crashes()
            if crashes:
                problems.append("nginx worker crashed:\n"
                                + "\n".join(crashes))
            problems.extend(rt.valgrind_problems())
    assert not problems, "\n\n".join(problems)
