"""Consistency test: concurrent clients against the real router and
storaged nodes, one node killed with kill -9 and restarted mid-run; the
recorded history must be linearizable (tests/lib/linearizability.py).

Runs at N=3 W=2 R=2 (the recommended set-up) and at N=2 W=2 R=1 (the
seed's two-replica layout), plus two harder N=3 runs: rolling kills (a
restarted, stale node must then serve quorums) and a node frozen with
SIGSTOP (a partition whose in-flight requests land late).  On failure it prints the smallest failing
key's history, shrunk to a minimal failing sub-history, and leaves the
whole history as JSON in the test's tmp directory.
"""

import json
import os
import time

import pytest

import linearizability as lin
from workload import HISTORY_DIR, errors, run_clients

DURATION = float(os.environ.get("SKV_CONSISTENCY_SECONDS", "10"))


def scenario_kill_restart(c, d):
    """One node killed with kill -9 at 30 %, restarted at 60 %."""
    return [(d * 0.3, lambda: c.kill9("b")),
            (d * 0.6, lambda: c.restart("b"))]


def scenario_rolling(c, d):
    """b killed and restarted, then c: the restarted, stale b must then
    make up read and write quorums with a (repair on the read path)."""
    return [(d * 0.2, lambda: c.kill9("b")),
            (d * 0.4, lambda: c.restart("b")),
            (d * 0.6, lambda: c.kill9("c")),
            (d * 0.8, lambda: c.restart("c"))]


def scenario_freeze(c, d):
    """b frozen with SIGSTOP (a partition: connections hang, requests
    already sent are applied late, after SIGCONT)."""
    return [(d * 0.3, lambda: c.freeze("b")),
            (d * 0.6, lambda: c.thaw("b"))]


def scenario_none(c, d):
    """No fault: concurrency alone (tells a protocol bug from a fault
    handling bug when the others fail)."""
    return []


ALL_READS = "simplekv_read_fanout all;"
NO_HEDGE = "simplekv_read_hedge 0;"

CASES = {
    # name: (nodes, N, W, R, scenario, cluster options)
    "N3W2R2-nofault": (3, 3, 2, 2, scenario_none, {}),
    "N3W2R2-kill9": (3, 3, 2, 2, scenario_kill_restart, {}),
    "N2W2R1-kill9": (2, 2, 2, 1, scenario_kill_restart, {}),
    "N3W2R2-rolling-kill9": (3, 3, 2, 2, scenario_rolling, {}),
    "N3W2R2-sigstop": (3, 3, 2, 2, scenario_freeze, {}),
    # Versions from several clocks: two routers with two workers each,
    # clients spread over both routers.
    "N3W2R2-2routers-kill9": (3, 3, 2, 2, scenario_kill_restart,
                              {"routers": 2, "workers": 2}),
    # The cells above read with the default fan-out (max(R, W) replicas
    # first, hedged after 20 ms).  Reads that ask every replica
    # (simplekv_read_fanout all) under a crash, and quorum reads without
    # the hedge (the others asked only at the replica timeout) under a
    # freeze of an asked replica.
    "N3W2R2-allreads-kill9": (3, 3, 2, 2, scenario_kill_restart,
                              {"extra_location": ALL_READS}),
    "N3W2R2-nohedge-sigstop": (3, 3, 2, 2, scenario_freeze,
                               {"extra_location": NO_HEDGE}),
}


def stale_read_mutation(hist):
    """A copy of hist with one late successful read turned into a read of
    a value that a later completed write had already replaced before the
    read began, or None if the history has no such pair."""
    puts = sorted((x for x in hist if x["op"] == "put" and x["ok"]),
                  key=lambda x: x["ret"])
    for victim in sorted((x for x in hist if x["op"] == "get" and x["ok"]),
                         key=lambda x: -x["call"]):
        mine = [p for p in puts if p["key"] == victim["key"]]
        for old in mine:
            if any(w["call"] > old["ret"] and w["ret"] < victim["call"]
                   for w in mine):
                mutated = [dict(x) for x in hist]
                mutated[hist.index(victim)]["value"] = old["value"]
                return mutated
            break
    return None


@pytest.mark.parametrize("case", sorted(CASES))
def test_history_under_node_faults_is_linearizable(cluster_factory, case):
    nodes, n, w, r, scenario, options = CASES[case]
    c = cluster_factory(n_nodes=nodes, replicas=n, w=w, r=r, **options)
    marks = []

    def timed(fn):
        def run():
            fn()
            marks.append(time.monotonic_ns())
        return run

    events = [(at, timed(fn)) for at, fn in scenario(c, DURATION)]
    keys = ["lin-%d" % i for i in range(4)]
    hist = run_clients(c.urls, keys, threads=6, duration=DURATION,
                       events=events, slowdown=c.router.slowdown)

    os.makedirs(HISTORY_DIR, exist_ok=True)
    path = os.path.abspath(os.path.join(HISTORY_DIR, case + ".json"))
    with open(path, "w") as f:
        json.dump(hist, f)

    # Not vacuous: every fault happened while clients ran, every key saw
    # completed writes and reads of values, and the cluster served again
    # after the last fault was undone.
    assert len(marks) == len(events)
    for k in keys:
        mine = [x for x in hist if x["key"] == k and x["ok"]]
        assert sum(x["op"] == "put" for x in mine) >= 10, k
        assert sum(x["op"] == "get" and x["value"] is not None
                   for x in mine) >= 10, k
    after = [x for x in hist if x["ok"]
             and x["call"] > (marks[-1] if marks else 0)]
    assert len(after) >= 50 // c.router.slowdown, (
        "too few successes after the last fault was undone")

    start = time.monotonic()
    result = lin.check(hist)
    took = time.monotonic() - start
    failed = errors(hist)
    print("%s: %s; %d ops, %d failed or unknown, checked in %.2f s" % (
        case, result.summary(), len(hist), len(failed), took))
    if not result.linearizable:
        worst = result.smallest_failure()
        pytest.fail("%s\nhistory saved in %s\n%s\n\nminimal failing "
                    "sub-history:\n%s" % (
                        result.summary(), path, worst.report(limit=40),
                        lin.minimize(worst, time_budget=8).report()))

    # And the checker can see a fault in this very history: one stale
    # read planted in it must be caught.
    mutated = stale_read_mutation(hist)
    assert mutated is not None
    assert lin.check(mutated).linearizable is False
