"""Network partitions of storage nodes (issue 12), N=3, W=2, R=2.

Every storaged runs in its own network namespace (tests/lib/netns.py);
routers run in the root namespace or in namespaces of their own, so a
partition can be asymmetric.  The cluster's recorded-history workload
(tests/cluster/workload.py: keep-alive clients, random PUT/GET/DELETE on
a few keys, every value unique) runs through each cell of the matrix

    {one node (b), two nodes (b, c)}
      x {dropped (iptables DROP), refused (REJECT: TCP reset),
         flapping (ip link down/up every 2 s), delayed (200 ms each way,
         tests/partitions/delayproxy.py)}

plus a router partitioned from one (or two) nodes while another router is
not, and partitions that heal while writes are in flight.  The fault
starts FAULT_AT seconds into the run and is undone HEAL_AT seconds in.

Each cell must give a linearizable history (tests/lib/linearizability.py);
no failed request where a quorum stays reachable; where none does, every
failed request is a 503 or 504 with the JSON error body, answered within
the bound (replica timeout + 1 s), and service comes back after the heal.
Availability (requests answered as they should / requests started during
the fault) and latency percentiles per cell are printed (CELL lines) and
saved in build/partition-results/<cell>.json; docs/testing.md reports
them.

One-way filters (only packets to the node, or only its answers, lost or
refused) are the long cells: `make test-partitions-long`.
"""

import json
import math
import os
import time

import pytest

import linearizability as lin
from netns import Flapper
from workload import describe, errors, run_clients

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
RESULTS = os.path.join(TOP, "build", "partition-results")
LONG = os.environ.get("SKV_TEST_LONG", "") not in ("", "0")
long_only = pytest.mark.skipif(not LONG, reason="long: SKV_TEST_LONG=1 "
                               "(make test-partitions-long)")

REPLICA_TIMEOUT = 1.0


def bound(replica_timeout):
    """How long a request may take when no quorum is reachable: its own
    round ends after the replica timeout; before it, the previous
    request's straggler replica requests may hold the keep-alive
    connection for up to one more (nginx runs subrequests on the client's
    connection; docs/router.md, "Slow and frozen nodes": only requests to
    nodes already suspect are cut to 10 ms).  0.5 s on top for a busy
    2-core machine."""
    return 2 * replica_timeout + 0.5


BOUND = bound(REPLICA_TIMEOUT)
# After the heal: TCP retransmission back-off on connections that saw
# drops, ARP after a link came back, the router's suspect period for
# nodes that timed out (docs/router.md).
SETTLE = 2.5
FAULT_AT = 1.5
HEAL_AT = 5.0
DURATION = HEAL_AT + SETTLE + 1.5
KEYS = ["p-%d" % i for i in range(4)]


def _pct(values, p):
    """The p-th percentile (nearest rank)."""
    if not values:
        return None
    values = sorted(values)
    return values[max(0, math.ceil(p / 100.0 * len(values)) - 1)]


def _ms(ns):
    return None if ns is None else round(ns / 1e6, 1)


def run_cell(c, cell, fault, heal, quorum_kept, urls=None, threads=4,
             duration=DURATION, fault_at=FAULT_AT, heal_at=HEAL_AT,
             quorum_kept_for=None, must_fail=True, extra_events=(),
             keepalive=True):
    """Run the workload with fault() at fault_at and heal() at heal_at;
    check and report the cell.  quorum_kept_for: a predicate on a
    history record (e.g. its router) overriding quorum_kept."""
    marks = {}

    def do_fault():
        marks["fault0"] = time.monotonic_ns()
        fault()
        marks["fault"] = time.monotonic_ns()

    def do_heal():
        marks["heal0"] = time.monotonic_ns()
        heal()
        marks["heal"] = time.monotonic_ns()

    urls = urls or c.urls
    hist = run_clients(urls, KEYS, threads=threads, duration=duration,
                       events=[(fault_at, do_fault), (heal_at, do_heal)]
                       + list(extra_events), keepalive=keepalive)
    for i, rec in enumerate(hist):
        rec["router"] = urls[rec["thread"] % len(urls)]
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, cell + "-history.json"), "w") as f:
        json.dump(hist, f)

    # the fault takes effect while its commands run: failures may start
    # at fault0; "during" starts once it is complete
    t_fault, t_heal = marks["fault"], marks["heal"]
    origin = min(r["call"] for r in hist)
    settle_end = t_heal + int(SETTLE * 1e9)
    during = [r for r in hist if t_fault <= r["call"] < marks["heal0"]]
    before = [r for r in hist if r["ret"] < t_fault]
    after = [r for r in hist if r["call"] >= settle_end]
    # not vacuous: clients were busy before, during and after the fault
    assert len(before) >= 10 and len(during) >= threads and len(after) >= 10, (
        len(before), len(during), len(after))

    kept = quorum_kept_for or (lambda rec: quorum_kept)
    bad = []
    for r in errors(hist):
        took = (r["ret"] - r["call"]) / 1e9
        if kept(r):
            bad.append("quorum reachable, yet: " + describe(r, origin))
        elif r["status"] not in (503, 504):
            bad.append("not a 503/504: " + describe(r, origin))
        elif took > BOUND:
            bad.append("%.2f s > %.1f s: %s" % (took, BOUND,
                                               describe(r, origin)))
        elif r["ret"] < marks["fault0"] or r["call"] > settle_end:
            bad.append("outside the fault: " + describe(r, origin))
    assert not bad, "%s: %d of %d requests wrong:\n%s" % (
        cell, len(bad), len(hist), "\n".join(bad[:25]))
    if must_fail and not quorum_kept and quorum_kept_for is None:
        # the fault really cut the quorum
        assert any(r["error"] for r in during), "no request failed"

    result = lin.check(hist)
    assert result.linearizable, "%s\n%s" % (
        result.summary(), lin.minimize(result.smallest_failure(),
                                       time_budget=8).report())

    lat = [r["ret"] - r["call"] for r in during]
    ok = [r for r in during if not r["error"]]
    figures = {
        "cell": cell,
        "requests": len(hist),
        "during": len(during),
        "availability": round(len(ok) / len(during), 4),
        "p50_ms": _ms(_pct(lat, 50)),
        "p99_ms": _ms(_pct(lat, 99)),
        "max_ms": _ms(max(lat)),
        "p99_ok_ms": _ms(_pct([r["ret"] - r["call"] for r in ok], 99)),
        "failed": len(errors(hist)),
        "max_failed_ms": _ms(max([r["ret"] - r["call"]
                                  for r in errors(hist)] or [0])),
        "p99_all_ms": _ms(_pct([r["ret"] - r["call"] for r in hist], 99)),
    }
    with open(os.path.join(RESULTS, cell + ".json"), "w") as f:
        json.dump(figures, f)
    print("CELL %s" % json.dumps(figures))
    return hist, figures, marks


def _partition(c, names, how, direction, router=None):
    peer = c.router_addr[router] if router is not None else None

    def fault():
        for n in names:
            c.net.block(n, peer, how, direction)

    def heal():
        for n in names:
            c.net.unblock(n)
    return fault, heal


def _flap(c, names):
    flap = {}

    def fault():
        flap["f"] = Flapper(c.net, names, period=2.0).start()

    def heal():
        flap["f"].stop()
    return fault, heal


def _delay(c, names):
    def fault():
        for n in names:
            c.proxies[n].on()

    def heal():
        for n in names:
            c.proxies[n].off()
    return fault, heal


NODES = {"one": ("b",), "two": ("b", "c")}


@pytest.mark.parametrize("how", ["drop", "reject"])
@pytest.mark.parametrize("which", ["one", "two"])
def test_filtered_both_ways(pcluster, which, how):
    c = pcluster()
    fault, heal = _partition(c, NODES[which], how, "both")
    run_cell(c, "%s-%sped-both" % (which, how) if how == "drop"
             else "%s-%sed-both" % (which, how), fault, heal,
             quorum_kept=(which == "one"))


@long_only
@pytest.mark.parametrize("direction", ["in", "out"])
@pytest.mark.parametrize("how", ["drop", "reject"])
@pytest.mark.parametrize("which", ["one", "two"])
def test_long_filtered_one_way(pcluster, which, how, direction):
    c = pcluster()
    fault, heal = _partition(c, NODES[which], how, direction)
    run_cell(c, "%s-%s-%s" % (which, how, direction), fault, heal,
             quorum_kept=(which == "one"))


@pytest.mark.parametrize("which", ["one", "two"])
def test_flapping(pcluster, which):
    c = pcluster()
    fault, heal = _flap(c, NODES[which])
    # the link goes down at FAULT_AT, up 2 s later, down again...: three
    # down phases in the fault window
    run_cell(c, "%s-flapping" % which, fault, heal,
             quorum_kept=(which == "one"), heal_at=FAULT_AT + 5.5,
             duration=FAULT_AT + 5.5 + SETTLE + 2.0)


@pytest.mark.parametrize("which", ["one", "two"])
def test_delayed(pcluster, which):
    c = pcluster(delayed=NODES[which])
    fault, heal = _delay(c, NODES[which])
    # 200 ms each way (400 ms a round trip) is below the replica
    # timeout: a quorum stays reachable even with two nodes delayed
    run_cell(c, "%s-delayed" % which, fault, heal, quorum_kept=True)


@long_only
@pytest.mark.parametrize("which", ["one", "two"])
def test_long_delayed_connection_per_request(pcluster, which):
    """The delayed cells with clients that open a connection per request:
    a straggler replica request to the slow node then holds no client's
    next request (nginx runs subrequests on the client's connection), so
    this shows what the slow node itself costs."""
    c = pcluster(delayed=NODES[which])
    fault, heal = _delay(c, NODES[which])
    run_cell(c, "%s-delayed-no-keepalive" % which, fault, heal,
             quorum_kept=True, keepalive=False)


@pytest.mark.parametrize("which", ["one", "two"])
def test_router_partitioned_while_another_is_not(pcluster, which):
    """Router r1 (in a namespace of its own) loses node a (and b); the
    root namespace's router keeps every node.  Clients use both."""
    c = pcluster(routers=("r1", "root"))
    r1, r0 = c.routers
    names = ("a",) if which == "one" else ("a", "b")
    fault, heal = _partition(c, names, "drop", "both", router=r1)
    # r1 keeps a quorum with one node lost; with two it has none; the
    # other router keeps its quorum either way
    hist, _, _ = run_cell(
        c, "router-%s-node%s" % (which, "" if which == "one" else "s"),
        fault, heal, quorum_kept=(which == "one"),
        quorum_kept_for=lambda rec: which == "one" or rec["router"] == r0.url)
    if which == "two":
        assert any(r["error"] and r["router"] == r1.url for r in hist)


def test_partition_heals_mid_write(pcluster):
    """Nodes b and c are cut off (DROP both ways) five times, for 0.4 s
    to 1.8 s (the replica timeout is 1.5 s), so that writes are in flight
    (waiting on b and c, whose packets are dropped and retransmitted)
    when the partition heals.  A write that was stuck then completes
    (201), or fails (503/504, its outcome unknown: node a may have
    applied it) when the cut outlasted the timeout; either way the
    history must be linearizable."""
    c = pcluster(replica_timeout="1500ms")
    cycles = []

    def fault():
        for n in ("b", "c"):
            c.net.block(n, None, "drop", "both")

    def heal():
        for n in ("b", "c"):
            c.net.unblock(n)

    marks = []

    def cut():
        fault()
        marks.append(("cut", time.monotonic_ns()))

    def mend():
        heal()
        marks.append(("heal", time.monotonic_ns()))

    events = []
    t = FAULT_AT
    for length in (0.6, 1.8, 0.4, 1.2, 0.8):
        events += [(t, cut), (t + length, mend)]
        cycles.append(t)
        t += length + 0.8
    global BOUND
    saved = BOUND
    BOUND = bound(1.5)
    try:
        hist, figures, _ = run_cell(
            c, "heal-mid-write", lambda: None, lambda: None,
            quorum_kept=False, must_fail=False, duration=t + SETTLE + 2.0,
            fault_at=FAULT_AT - 0.1, heal_at=t, extra_events=events)
    finally:
        BOUND = saved
    heals = [ts for kind, ts in marks if kind == "heal"]
    straddling = [r for r in hist if r["op"] != "get" and any(
        r["call"] < h < r["ret"] for h in heals)]
    completed = [r for r in straddling if not r["error"]]
    print("heal-mid-write: %d writes in flight at a heal, %d of them "
          "completed" % (len(straddling), len(completed)))
    assert straddling, "no write was in flight when a partition healed"
    assert completed, "no write in flight at a heal completed after it"
