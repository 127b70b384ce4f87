"""Membership transitions in the router (docs/membership.md).

A router on the transition configuration T (a node joining with
previous_weight=0, or leaving with weight=0) needs W acknowledgements
among the old owners and W among the new owners for a write, and R
answers in each set for a read.  Routers on adjacent configurations (C0
and T) then stay linearizable together: two routers, one on each, serve
a concurrent workload with no failed request and a linearizable history.
Reads through T find what C0 wrote and write it to the new owners.
"""

import os
import time

import requests

import linearizability as lin
from workload import describe, errors, run_clients

DURATION = float(os.environ.get("SKV_TRANSITION_SECONDS", "15"))


def _to_transition(router, joining=(), leaving=(), epoch=2):
    """Reload router with the transition configuration."""
    nodes = []
    for name, port, weight in router.nodes:
        if name in joining:
            router.previous_weights[name] = 0
        elif name in leaving:
            router.previous_weights[name] = weight or 1
            weight = 0
        nodes.append((name, port, weight))
    router.nodes = nodes
    router.epoch = epoch
    router.reload()


def _node_versions(c, key):
    out = {}
    for name, node in c.nodes.items():
        r = requests.get("%s/v1/kv/%s" % (node.url, key), timeout=10)
        out[name] = r.headers.get("X-Simplekv-Version") \
            if r.status_code in (200, 404) else None
    return out


def _wait_config(router, epoch):
    deadline = time.monotonic() + 20 * router.slowdown
    while time.monotonic() < deadline:
        st = requests.get(router.url + "/_simplekv/status", timeout=10).json()
        if st["epoch"] == epoch and list(st["live_epochs"]) == [str(epoch)]:
            return st
        time.sleep(0.1)
    raise AssertionError("router did not reach epoch %d: %r" % (epoch, st))


def _on_first_three(router, epoch=1):
    """Reload router on C0: nodes a, b, c only."""
    router.nodes = router.nodes[:3]
    router.epoch = epoch
    router.reload()
    _wait_config(router, epoch)


def test_status_shows_the_transition(cluster_factory):
    c = cluster_factory(n_nodes=4)
    rt = c.router
    _on_first_three(rt)
    rt.nodes = list(rt.nodes) + [("d", c.nodes["d"].port, None)]
    _to_transition(rt, joining=("d",), epoch=2)
    st = _wait_config(rt, 2)
    assert st["transition"] is True
    d = [n for n in st["nodes"] if n["name"] == "d"][0]
    assert d["weight"] == 1 and d["previous_weight"] == 0
    assert d["address"] == "127.0.0.1:%d" % c.nodes["d"].port
    assert st["replicas"] == [3]


def test_reads_through_the_transition_reach_the_new_owners(cluster_factory):
    c = cluster_factory(n_nodes=4)
    rt = c.router
    _on_first_three(rt)
    keys = ["k%d" % i for i in range(200)]
    for k in keys:
        assert requests.put(rt.url + "/" + k, data=k.encode(),
                            timeout=10).status_code == 201

    rt.nodes = list(rt.nodes) + [("d", c.nodes["d"].port, None)]
    _to_transition(rt, joining=("d",), epoch=2)
    _wait_config(rt, 2)

    moved = 0
    for k in keys:
        r = requests.get(rt.url + "/" + k, timeout=10)
        assert r.status_code == 200 and r.content == k.encode(), (k, r.text)
        v = _node_versions(c, k)
        if v["d"] is not None:
            moved += 1
    # d is a new owner of about 3/4 of the keys (N=3 of 4 nodes); a read
    # through T wrote each of those to it (W=2 of the new owners)
    assert 100 < moved < 190, moved


def test_adjacent_configurations_stay_linearizable(cluster_factory):
    """One router on C0 (a, b, c), one on T (d joining), same workload."""
    c = cluster_factory(n_nodes=4, routers=2)
    old, new = c.routers
    for rt in (old, new):
        _on_first_three(rt)
    new.nodes = list(new.nodes) + [("d", c.nodes["d"].port, None)]
    _to_transition(new, joining=("d",), epoch=2)
    _wait_config(new, 2)

    keys = ["tr-%d" % i for i in range(6)]
    hist = run_clients(c.urls, keys, threads=8, duration=DURATION,
                       slowdown=old.slowdown)
    failed = errors(hist)
    assert not failed, "%d of %d failed:\n%s" % (
        len(failed), len(hist), "\n".join(describe(r) for r in failed[:20]))
    result = lin.check(hist)
    assert result.linearizable, result.summary() + "\n" + \
        result.smallest_failure().report(limit=40)


def test_a_router_left_behind_the_fence_gets_503(cluster_factory):
    """Once the nodes' epoch window has moved on, a router still on an
    older configuration gets 503 "epoch refused" for reads and writes,
    never a stale read."""
    c = cluster_factory(routers=2)
    current, forgotten = c.routers
    for rt in c.routers:
        rt.epoch = 1
        rt.reload()
        _wait_config(rt, 1)
    assert requests.put(forgotten.url + "/fenced", data=b"old",
                        timeout=10).status_code == 201

    current.epoch = 2
    current.reload()
    _wait_config(current, 2)
    for node in c.nodes.values():
        r = requests.put(node.url + "/v1/epochs",
                         json={"min": 2, "max": 2}, timeout=10)
        assert r.status_code == 200, r.text
    assert requests.put(current.url + "/fenced", data=b"new",
                        timeout=10).status_code == 201

    for method in ("GET", "PUT", "DELETE"):
        r = requests.request(method, forgotten.url + "/fenced", data=b"x",
                             timeout=10)
        assert r.status_code == 503, (method, r.status_code, r.text)
        assert r.json()["error"] == "epoch refused", r.text
    r = requests.get(current.url + "/fenced", timeout=10)
    assert r.status_code == 200 and r.content == b"new"
