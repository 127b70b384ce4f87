"""netns - network namespaces, veths and packet filters for partition
tests (tests/partitions/).

A TestNet is one private L2 segment, 10.213.<subnet>.0/24:

* a bridge in the root namespace, `<prefix>br`, holding 10.213.<subnet>.1
  (the address the root namespace, i.e. the test itself, a router run
  there and the delay proxies, uses on the segment);
* one network namespace per host added (`<prefix>-<name>`), each with a
  veth whose root end (`<prefix>-<name>`) is a port of the bridge and
  whose other end is `eth0` inside, holding 10.213.<subnet>.<n>.

Faults are applied inside the host's own namespace, so that no rule ever
touches the root namespace's tables or another test's traffic:

* block(name, peer, how, direction): iptables DROP (silent) or REJECT
  (a TCP reset, ICMP port-unreachable for the rest), for packets from
  the peer (direction "in"), to it ("out") or both;
* link(name, up): `ip link set eth0 down/up`.

Everything created is named with the prefix (default "skvp"): sweep()
removes whatever an earlier, interrupted run left behind (its namespaces,
after killing the processes in them, and its links), and close() removes
this net's, so a test should call it in a finally (the fixture in
tests/partitions/conftest.py does).  Needs root, iproute2 and iptables
(util/install-deps.sh).
"""

import os
import signal
import subprocess
import time

SUBNET_BASE = "10.213"


class NetError(RuntimeError):
    pass


def run(cmd, check=True, netns=None):
    """Run an ip/iptables command (in netns if given); its output."""
    if netns:
        cmd = ["ip", "netns", "exec", netns] + cmd
    res = subprocess.run(cmd, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         timeout=30)
    out = res.stdout.decode("utf-8", "replace")
    if check and res.returncode != 0:
        raise NetError("%s: exit %d: %s" % (" ".join(cmd), res.returncode,
                                            out.strip()))
    return out


def available():
    """None when partitions can be made here, else why not."""
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    for tool in ("ip", "iptables"):
        if not any(os.access(os.path.join(d, tool), os.X_OK)
                   for d in ("/usr/sbin", "/sbin", "/usr/bin", "/bin")):
            return "%s not installed (make deps)" % tool
    return None


def _namespaces():
    out = run(["ip", "netns", "list"], check=False)
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _links():
    out = run(["ip", "-o", "link", "show"], check=False)
    names = []
    for line in out.splitlines():
        parts = line.split(":", 2)
        if len(parts) >= 2:
            names.append(parts[1].strip().split("@")[0])
    return names


def sweep(prefix="skvp"):
    """Remove every namespace and link named with prefix (left by an
    earlier run that was interrupted), killing the processes inside such
    a namespace first.  Returns what was removed."""
    removed = []
    for ns in _namespaces():
        if not ns.startswith(prefix + "-"):
            continue
        pids = run(["ip", "netns", "pids", ns], check=False).split()
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ValueError, OSError):
                pass
        run(["ip", "netns", "del", ns], check=False)
        removed.append(ns)
    for link in _links():
        if link == prefix + "br" or link.startswith(prefix + "-"):
            run(["ip", "link", "del", link], check=False)
            removed.append(link)
    return removed


class TestNet:
    __test__ = False        # not a pytest class

    def __init__(self, prefix="skvp", subnet=0):
        if len(prefix) > 8:
            raise ValueError("prefix too long for interface names")
        self.prefix = prefix
        self.subnet = subnet
        self.bridge = prefix + "br"
        self.hosts = {}           # name -> (netns, address)
        self._next = 10
        self.root_addr = "%s.%d.1" % (SUBNET_BASE, subnet)
        self._up = False

    def addr_of(self, n):
        return "%s.%d.%d" % (SUBNET_BASE, self.subnet, n)

    def create(self):
        run(["ip", "link", "add", self.bridge, "type", "bridge"])
        self._up = True
        run(["ip", "addr", "add", self.root_addr + "/24", "dev",
             self.bridge])
        run(["ip", "link", "set", self.bridge, "up"])
        return self

    def add_host(self, name):
        """A namespace for one host on the segment; returns its address."""
        ns = "%s-%s" % (self.prefix, name)
        veth = "%s-%s" % (self.prefix, name)
        if len(veth) > 15:
            raise ValueError("host name too long: %r" % name)
        addr = self.addr_of(self._next)
        self._next += 1
        run(["ip", "netns", "add", ns])
        self.hosts[name] = (ns, addr)
        run(["ip", "link", "add", veth, "type", "veth", "peer", "name",
             "eth0", "netns", ns])
        run(["ip", "link", "set", veth, "master", self.bridge])
        run(["ip", "link", "set", veth, "up"])
        run(["ip", "addr", "add", addr + "/24", "dev", "eth0"], netns=ns)
        run(["ip", "link", "set", "lo", "up"], netns=ns)
        run(["ip", "link", "set", "eth0", "up"], netns=ns)
        return addr

    def netns(self, name):
        return self.hosts[name][0]

    def addr(self, name):
        """A host's address; "root" is the root namespace's."""
        if name == "root":
            return self.root_addr
        return self.hosts[name][1]

    # --- faults ---------------------------------------------------------

    def block(self, name, peer, how="drop", direction="both"):
        """Filter host name's traffic with peer (an address, or None for
        every peer) in its namespace: how = "drop" (silent) or "reject"
        (refused: a TCP reset); direction = "in" (packets from the peer),
        "out" (packets to it) or "both"."""
        ns = self.netns(name)
        for chain, flag in (("INPUT", "-s"), ("OUTPUT", "-d")):
            if direction not in ("both", chain == "INPUT" and "in" or "out"):
                continue
            match = ["-o" if chain == "OUTPUT" else "-i", "eth0"]
            if peer:
                match += [flag, peer]
            if how == "drop":
                rules = [match + ["-j", "DROP"]]
            elif how == "reject":
                rules = []
                if chain == "OUTPUT" and direction == "both":
                    # the resets and ICMP errors REJECT sends for the
                    # INPUT rule leave through OUTPUT: let them out, or
                    # "refused both ways" would be a silent drop
                    rules = [match + ["-p", "tcp", "--tcp-flags", "RST",
                                      "RST", "-j", "ACCEPT"],
                             match + ["-p", "icmp", "--icmp-type",
                                      "port-unreachable", "-j", "ACCEPT"]]
                rules += [match + ["-p", "tcp", "-j", "REJECT",
                                  "--reject-with", "tcp-reset"],
                         match + ["-j", "REJECT", "--reject-with",
                                  "icmp-port-unreachable"]]
            else:
                raise ValueError(how)
            for rule in rules:
                run(["iptables", "-w", "-A", chain] + rule, netns=ns)

    def unblock(self, name):
        ns = self.netns(name)
        for chain in ("INPUT", "OUTPUT"):
            run(["iptables", "-w", "-F", chain], netns=ns)

    def rules(self, name):
        return run(["iptables", "-w", "-S"], netns=self.netns(name))

    def link(self, name, up):
        run(["ip", "link", "set", "eth0", "up" if up else "down"],
            netns=self.netns(name))

    # --- teardown -------------------------------------------------------

    def close(self):
        """Remove the namespaces (their rules and veths go with them) and
        the bridge.  Processes still inside must have been stopped; any
        left are killed."""
        errors = []
        for name, (ns, _) in list(self.hosts.items()):
            for pid in run(["ip", "netns", "pids", ns],
                           check=False).split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ValueError, OSError):
                    pass
            try:
                run(["ip", "netns", "del", ns])
            except NetError as e:
                errors.append(str(e))
            del self.hosts[name]
        if self._up:
            # the root ends of the veths died with their namespaces
            for link in _links():
                if link.startswith(self.prefix + "-"):
                    run(["ip", "link", "del", link], check=False)
            try:
                run(["ip", "link", "del", self.bridge])
            except NetError as e:
                errors.append(str(e))
            self._up = False
        if errors:
            raise NetError("; ".join(errors))

    def leftovers(self):
        return ([ns for ns in _namespaces()
                 if ns.startswith(self.prefix + "-")]
                + [l for l in _links() if l == self.bridge
                   or l.startswith(self.prefix + "-")])


class Flapper:
    """Toggle hosts' links down and up every `period` seconds from a
    thread, until stop() (which leaves them up)."""

    def __init__(self, net, names, period=2.0):
        import threading
        self.net, self.names, self.period = net, list(names), period
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.toggles = []       # (monotonic time, up)

    def start(self):
        self._thread.start()
        return self

    def _run(self):
        up = True
        while not self._stop.is_set():
            up = not up
            for n in self.names:
                self.net.link(n, up)
            self.toggles.append((time.monotonic(), up))
            self._stop.wait(self.period)

    def stop(self):
        self._stop.set()
        self._thread.join(30)
        for n in self.names:
            self.net.link(n, True)
