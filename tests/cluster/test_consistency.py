"""Consistency test: concurrent clients against the real router and
storaged nodes, one node killed with kill -9 and restarted mid-run; the
recorded history must be linearizable (tests/lib/linearizability.py).

Runs at N=3 W=2 R=2 (the recommended set-up) and at N=2 W=2 R=1 (the
seed's two-replica layout).  On failure it prints the smallest failing
key's history, shrunk to a minimal failing sub-history, and leaves the
whole history as JSON in the test's tmp directory.
"""

import json
import os
import time

import pytest

import linearizability as lin
from workload import errors, run_clients

DURATION = float(os.environ.get("SKV_CONSISTENCY_SECONDS", "10"))


@pytest.mark.parametrize("nodes,n,w,r", [(3, 3, 2, 2), (2, 2, 2, 1)],
                         ids=["N3W2R2", "N2W2R1"])
def test_history_with_a_node_killed_and_restarted_is_linearizable(
        cluster_factory, tmp_path, nodes, n, w, r):
    c = cluster_factory(n_nodes=nodes, replicas=n, w=w, r=r)
    marks = {}

    def kill():
        marks["kill"] = time.monotonic_ns()
        c.kill9("b")

    def restart():
        c.restart("b")
        marks["restart"] = time.monotonic_ns()

    keys = ["lin-%d" % i for i in range(4)]
    hist = run_clients(c.url, keys, threads=6, duration=DURATION,
                       events=[(DURATION * 0.3, kill),
                               (DURATION * 0.6, restart)],
                       slowdown=c.router.slowdown)

    path = tmp_path / "history.json"
    with open(path, "w") as f:
        json.dump(hist, f)

    # Not vacuous: every key saw completed writes and reads of values,
    # and the fault happened while clients were running.
    assert "kill" in marks and "restart" in marks
    for k in keys:
        mine = [x for x in hist if x["key"] == k and x["ok"]]
        assert sum(x["op"] == "put" for x in mine) >= 10, k
        assert sum(x["op"] == "get" and x["value"] is not None
                   for x in mine) >= 10, k
    after = [x for x in hist if x["ok"] and x["call"] > marks["restart"]]
    assert len(after) >= 50, "too few successes after the restart"

    start = time.monotonic()
    result = lin.check(hist)
    took = time.monotonic() - start
    failed = errors(hist)
    print("%s; %d ops, %d failed or unknown, checked in %.2f s" % (
        result.summary(), len(hist), len(failed), took))
    if not result.linearizable:
        worst = result.smallest_failure()
        pytest.fail("%s\nhistory saved in %s\n%s\n\nminimal failing "
                    "sub-history:\n%s" % (
                        result.summary(), path, worst.report(limit=200),
                        lin.minimize(worst).report()))
