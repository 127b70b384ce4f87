"""Membership changes under continuous load (issue 8, docs/membership.md).

Five storaged nodes, two routers on C0 = a, b, c (N=3, W=2, R=2).  While 8
clients write, read and delete 6 hot keys through both routers, the
cluster goes through three changes, each one transition, `skv rebalance`,
final configuration, `skv cleanup`, with the two routers reloading at
different moments: add d, add e, remove c.  No client request may fail,
the history must be linearizable, and afterwards every key (the hot ones
and 300 written before) has exactly N copies, all on its owners, with its
value, and c holds nothing.
"""

import json
import os
import time
import urllib.parse

import requests

import linearizability as lin
from test_rebalance import listing, owners, skv, wait_epoch
from workload import HISTORY_DIR, describe, errors, run_clients

COLD_KEYS = 300
# the reloads of the two routers are this far apart
STAGGER = 0.5


def _configure(router, names, leaving, joining, ports, epoch):
    router.nodes = [(n, ports[n], 0 if n in leaving else None)
                    for n in names]
    router.previous_weights = {n: 1 for n in leaving}
    router.previous_weights.update({n: 0 for n in joining})
    router.epoch = epoch
    router.reload()


def _change(c, ports, before, after, epoch, log):
    """One membership change from node set `before` to `after`: the
    transition at `epoch`, the final configuration at epoch + 1."""
    r1, r2 = c.routers
    joining = [n for n in after if n not in before]
    leaving = [n for n in before if n not in after]
    union = sorted(set(before) | set(after))
    routers = ["--router", r1.url, "--router", r2.url]

    def extra(names):
        out = []
        for n in names:
            out += ["--extra-node", "%s=127.0.0.1:%d" % (n, ports[n])]
        return out

    # the joining node is not in the routers' configuration yet
    rc, out, err = skv(r1, "epochs", *(routers[2:] + ["--allow", str(epoch)]
                                       + extra(joining)))
    assert rc == 0, ("epochs", out, err)
    for rt in (r1, r2):
        _configure(rt, union, leaving, joining, ports, epoch)
        time.sleep(STAGGER)
    rc, out, err = skv(r1, "rebalance", *(routers[2:] + ["--wait", "60"]))
    log.append(("rebalance", epoch, out[-2000:]))
    assert rc == 0, ("rebalance", out, err)
    for rt in (r1, r2):
        _configure(rt, sorted(after), [], [], ports, epoch + 1)
        time.sleep(STAGGER)
    for rt in (r1, r2):
        wait_epoch(rt, epoch + 1)
    # the leaving node is no longer in the final configuration
    rc, out, err = skv(r1, "cleanup", *(routers[2:] + ["--wait", "60"]
                                        + extra(leaving)))
    log.append(("cleanup", epoch + 1, out[-2000:]))
    assert rc == 0, ("cleanup", out, err)


def test_add_add_remove_under_load(cluster_factory):
    c = cluster_factory(n_nodes=5, routers=2)
    ports = {n: c.nodes[n].port for n in "abcde"}
    for rt in c.routers:
        _configure(rt, "abc", [], [], ports, 1)
        wait_epoch(rt, 1)

    cold = {b"cold/%03d" % i: b"cold value %d" % i for i in range(COLD_KEYS)}
    with requests.Session() as s:
        for k, v in cold.items():
            assert s.put("%s/%s" % (c.urls[0], urllib.parse.quote(k)),
                         data=v, timeout=30).status_code == 201

    log = []
    marks = []

    def changes():
        _change(c, ports, "abc", "abcd", 2, log)
        marks.append(time.monotonic())
        _change(c, ports, "abcd", "abcde", 4, log)
        marks.append(time.monotonic())
        _change(c, ports, "abcde", "abde", 6, log)
        marks.append(time.monotonic())

    hot = ["hot-%d" % i for i in range(6)]
    # a connection per request: a reload closes idle keep-alive
    # connections of the retiring workers (see workload.KV)
    hist = run_clients(c.urls, hot, threads=8, duration=5.0,
                       events=[(1.0, changes)], slowdown=c.router.slowdown,
                       keepalive=False)

    os.makedirs(HISTORY_DIR, exist_ok=True)
    path = os.path.join(HISTORY_DIR, "membership-soak.json")
    with open(path, "w") as f:
        json.dump(hist, f)

    assert len(marks) == 3, "the changes did not all run: %r" % log
    failed = errors(hist)
    assert not failed, "%d of %d requests failed (history %s):\n%s" % (
        len(failed), len(hist), path,
        "\n".join(describe(r) for r in failed[:20]))
    result = lin.check(hist)
    assert result.linearizable, result.summary() + "\n" + \
        result.smallest_failure().report(limit=40)

    # the end state: N copies of every key on its owners, c empty
    lists = {n: listing(c.nodes[n]) for n in "abcde"}
    assert lists["c"] == {}, "c still holds %d keys" % len(lists["c"])
    for k in list(cold) + [h.encode() for h in hot]:
        holders = {n for n in "abde" if k in lists[n]}
        assert holders == owners("abde", k), (k, holders)
        versions = {lists[n][k][0] for n in holders}
        assert len(versions) == 1, (k, versions)
    with requests.Session() as s:
        for k, v in cold.items():
            r = s.get("%s/%s" % (c.urls[1], urllib.parse.quote(k)),
                      timeout=30)
            assert r.status_code == 200 and r.content == v, (k, r.text)
    print("membership soak: %d requests, linearizable; %s" % (
        len(hist), "; ".join("%s@%d" % (what, e) for what, e, _ in log)))
