"""pytest set-up for the partition suite: storage nodes in network
namespaces of their own (tests/lib/netns.py), routers in the root
namespace or in namespaces of their own, and the `pcluster` fixture that
builds them and always takes everything down again: processes, then
namespaces, veths, rules and the bridge (in a finally), after a sweep of
whatever an interrupted earlier run left (names starting "skvp").

Addresses: 10.213.0.0/24 (the root namespace is 10.213.0.1 on the
bridge; SKV_PARTITION_SUBNET=N uses 10.213.N.0/24), names starting
"skvp" (SKV_PARTITION_NET_PREFIX).  Loopback ports: 28000-28499
(SKV_PARTITION_PORT_BASE moves them); a node listens on its namespace's
address, port base + 500.
"""

import itertools
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, os.pardir, "lib"))
sys.path.insert(0, os.path.join(HERE, os.pardir, "cluster"))

import netns                      # noqa: E402
from router import Router        # noqa: E402
from skvproc import Storaged     # noqa: E402

_PORT_BASE = int(os.environ.get("SKV_PARTITION_PORT_BASE", "28000"))
# Names and addresses of the namespaces, veths and bridge: a second copy
# of the suite running beside this one needs others (e.g. skvq and 1).
NET_PREFIX = os.environ.get("SKV_PARTITION_NET_PREFIX", "skvp")
NET_SUBNET = int(os.environ.get("SKV_PARTITION_SUBNET", "0"))
_PORTS = itertools.count(_PORT_BASE)
NODE_PORT = _PORT_BASE + 500
DELAY_MS = 200


# Processes this suite starts in the root namespace (nginx masters, delay
# proxies) outlive an interrupted run (SIGKILL of pytest): their ids are
# kept here, and the sweep at the start of a session ends those that are
# still the same program (storaged runs in the namespaces, whose
# processes the namespace sweep ends).
PID_FILE = "/tmp/%s-partitions.pids" % NET_PREFIX


def _remember(pid, marker):
    with open(PID_FILE, "a") as f:
        f.write("%d %s\n" % (pid, marker))


def _end_remembered():
    try:
        with open(PID_FILE) as f:
            lines = f.read().splitlines()
    except OSError:
        return
    for line in lines:
        pid, _, marker = line.partition(" ")
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(
                    "utf-8", "replace")
        except OSError:
            continue
        if marker and marker in cmdline:
            _end(int(pid))
    os.unlink(PID_FILE)


def _children(pid):
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                stat = f.read()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            kids.append(int(entry))
    return kids


def _end(pid):
    """End a leftover process and its children (an nginx master's
    workers would outlive a SIGKILL of the master): SIGTERM, then
    SIGKILL after 5 s."""
    kids = _children(pid)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for p in [pid] + kids:
            try:
                os.kill(p, sig)
            except OSError:
                pass
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(
                os.path.exists("/proc/%d" % p) and
                not _zombie(p) for p in [pid] + kids):
            time.sleep(0.1)


def _zombie(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _port_free(host, port):
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((host, port)) != 0


def _next_port():
    port = next(_PORTS)
    if port >= _PORT_BASE + 500:
        raise RuntimeError("tests/partitions ran out of ports")
    return port


class NsStoraged(Storaged):
    """A storaged run inside a network namespace, listening on its
    address there (which needs the token: storaged refuses a non-loopback
    --listen without one)."""

    def __init__(self, netns_name, *args, **kw):
        super().__init__(*args, **kw)
        self.netns = netns_name

    def command(self):
        return ["ip", "netns", "exec", self.netns] + super().command()


class DelayProxy:
    """tests/partitions/delayproxy.py in the root namespace in front of a
    node: on() adds DELAY_MS each way, off() removes it."""

    def __init__(self, host, port, target_host, target_port, delay_ms):
        self.host, self.port = host, port
        self.cmd = [sys.executable, os.path.join(HERE, "delayproxy.py"),
                    host, str(port), target_host, str(target_port),
                    str(delay_ms)]
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE)
        _remember(self.proc.pid, "delayproxy.py")
        line = self.proc.stdout.readline()
        if line.strip() != b"ready":
            self.stop()
            raise RuntimeError("delay proxy did not start")
        return self

    def on(self):
        self.proc.send_signal(signal.SIGUSR1)

    def off(self):
        self.proc.send_signal(signal.SIGUSR2)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


class PCluster:
    """Nodes a, b, c (N=3, W=2, R=2) each in its namespace; routers as
    asked: routers=["root", "r1", ...]: "root" runs nginx in the root
    namespace (on 127.0.0.1), any other name in a namespace of that name
    (listening on its address).  delayed=("b",): the routers reach those
    nodes through a DelayProxy."""

    def __init__(self, base_dir, net, routers=("root",), delayed=(),
                 replica_timeout="1s", n_nodes=3, **router_kw):
        self.net = net
        self.base = str(base_dir)
        self.token_file = os.path.join(self.base, "token")
        os.makedirs(self.base, exist_ok=True)
        self.token = os.urandom(16).hex()
        with open(self.token_file, "w") as f:
            f.write(self.token + "\n")
        self.names = [chr(ord("a") + i) for i in range(n_nodes)]
        self.nodes = {}
        for name in self.names:
            addr = net.add_host(name)
            self.nodes[name] = NsStoraged(
                net.netns(name), NODE_PORT,
                os.path.join(self.base, name, "data"), host=addr,
                token=self.token,
                extra_args=["--token-file", self.token_file])
        self.proxies = {}
        for name in delayed:
            self.proxies[name] = DelayProxy(
                net.root_addr, _next_port(), self.nodes[name].host,
                NODE_PORT, DELAY_MS)
        addresses = []
        for name in self.names:
            if name in self.proxies:
                addresses.append((name, "%s:%d" % (net.root_addr,
                                                   self.proxies[name].port)))
            else:
                addresses.append((name, "%s:%d" % (self.nodes[name].host,
                                                   NODE_PORT)))
        # as conf/nginx.conf: with a slow node, every request holds a
        # client and an upstream connection for the node's round trip
        # (docs/testing.md, "Network partitions"), and 1024 were found
        # too few for clients that open a connection per request
        router_kw.setdefault("worker_connections", 4096)
        self.routers = []
        self.router_addr = {}   # router -> the source address nodes see
        for i, where in enumerate(routers):
            prefix = os.path.join(self.base, "router%d" % i)
            if where == "root":
                rt = Router(_next_port(), addresses, prefix=prefix,
                            token_file=self.token_file,
                            replica_timeout=replica_timeout, **router_kw)
                self.router_addr[rt] = net.root_addr
            else:
                addr = net.add_host(where)
                rt = Router(_next_port(), addresses, prefix=prefix,
                            token_file=self.token_file, host=addr,
                            netns=net.netns(where),
                            replica_timeout=replica_timeout, **router_kw)
                self.router_addr[rt] = addr
            self.routers.append(rt)
        self.router = self.routers[0]

    @property
    def urls(self):
        return [rt.url for rt in self.routers]

    def start(self):
        # a leftover router on one of our ports would answer in place of
        # ours: refuse to start instead
        busy = [rt.url for rt in self.routers
                if _port_free(rt.host, rt.port) is False]
        if busy:
            raise RuntimeError("already in use: %s: a leftover nginx?" % busy)
        for node in self.nodes.values():
            node.start()
        for px in self.proxies.values():
            px.start()
        for rt in self.routers:
            rt.start()
            _remember(rt.proc.pid, rt.prefix)
        return self

    def stop(self):
        try:
            for rt in self.routers:
                try:
                    rt.stop()
                except Exception:
                    rt.kill()
        finally:
            for px in self.proxies.values():
                px.stop()
            for node in self.nodes.values():
                try:
                    node.stop()
                except Exception:
                    node.kill9()


@pytest.fixture(scope="session", autouse=True)
def _partition_env():
    why = netns.available()
    if why:
        pytest.skip("partition tests: " + why)
    _end_remembered()
    netns.sweep(NET_PREFIX)
    yield
    netns.sweep(NET_PREFIX)
    _end_remembered()


@pytest.fixture
def pcluster(tmp_path):
    """make(routers=("root",), delayed=(), replica_timeout="1s") ->
    started PCluster on a fresh TestNet; everything is taken down at the
    end, and the test fails if anything is left or nginx crashed."""
    net = netns.TestNet(prefix=NET_PREFIX, subnet=NET_SUBNET)
    made = []
    problems = []
    try:
        net.create()

        def make(**kw):
            c = PCluster(tmp_path / ("c%d" % len(made)), net, **kw)
            made.append(c)
            return c.start()

        yield make
    finally:
        try:
            for c in made:
                c.stop()
                for rt in c.routers:
                    crashes = rt.crashes()
                    if crashes:
                        problems.append("nginx worker crashed:\n"
                                        + "\n".join(crashes))
        finally:
            net.close()
            left = net.leftovers()
            if left:
                problems.append("left behind: %s" % left)
    assert not problems, "\n\n".join(problems)
