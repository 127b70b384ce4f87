"""skv repair and tombstone purging (docs/cli.md "skv repair", the repair
watermark; docs/protocol.md, the purge rule) on real clusters: real
storaged nodes, real nginx with the module, build/skv.

* 10,000 keys of 100 bytes on 4 nodes (N=3); on 1% of them a divergence
  injected directly on storaged: a copy missing on one owner, a stale
  (older) value on one owner, an old tombstone on one owner of a live key,
  an old value on one owner of a deleted key, an extra copy on the node
  that does not own the key.  `skv repair` reports each kind, every
  owner then lists every key's newest version, `skv cleanup` removes the
  extra copies, and a second repair finds 0 differences.
* Without a repair watermark storaged never purges a tombstone, whatever
  its `--tombstone-grace`.
* The operational rule (docs/cli.md): a node down for longer than the
  grace either rejoins wiped, or rejoins with its stale data and a repair
  runs before anything is purged.  Either way, after the repair records
  its watermark and the tombstones are purged everywhere, no deleted key
  comes back.  And what the rule prevents: a watermark recorded while the
  node was away (by hand here), tombstones purged, the stale node
  rejoining: the deleted keys come back.

The tests that wait for a real watermark (it lies 60 s plus
--max-clock-skew before the repair's scan, so deletes must be that old)
are slow: they run only with SKV_TEST_LONG=1 (`make test-long`).
"""

import concurrent.futures
import json
import os
import shutil
import time
import urllib.parse

import pytest
import requests

from skvproc import StoragedError
from test_rebalance import REPLICAS, configure, listing, owners, skv

long_test = pytest.mark.skipif(os.environ.get("SKV_TEST_LONG") != "1",
                               reason="slow (> 30 s): make test-long")

OLD = "%016x%016x" % (1 << 40, 7)     # older than every real write
HDR = {"X-Simplekv-Epoch": "1"}


def kv_url(node, k):
    return "%s/v1/kv/%s" % (node.url, urllib.parse.quote(k, safe=""))


def router_url(c, k):
    return "%s/%s" % (c.url, urllib.parse.quote(k))


def write_keys(c, keys, value):
    def put(k):
        with requests.Session() as s:
            r = s.put(router_url(c, k), data=value(k), timeout=30)
            assert r.status_code in (200, 201, 204), r.text

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(put, keys))


def delete_keys(c, keys):
    def rm(k):
        with requests.Session() as s:
            r = s.delete(router_url(c, k), timeout=30)
            assert r.status_code in (200, 204), (k, r.status_code, r.text)

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(rm, keys))


def newest(lists):
    """{key: (version, tombstone)}, the newest over the listings."""
    out = {}
    for lst in lists.values():
        for k, vt in lst.items():
            if k not in out or vt[0] > out[k][0]:
                out[k] = vt
    return out


def remove_copy(node, k, version):
    r = requests.delete(kv_url(node, k) + "?remove&if-version=" + version,
                        headers=HDR, timeout=10)
    assert r.status_code == 204, r.text


def put_copy(node, k, data, version):
    r = requests.put(kv_url(node, k), data=data, timeout=10,
                     headers=dict(HDR, **{"X-Simplekv-Version": version}))
    assert r.status_code in (200, 201, 204), r.text


def tombstone_copy(node, k, version):
    r = requests.delete(kv_url(node, k), timeout=10,
                        headers=dict(HDR, **{"X-Simplekv-Version": version}))
    assert r.status_code in (200, 204), r.text


def last_json(out):
    return json.loads(out.splitlines()[-1])


def test_repair_10000_keys_1_percent_divergent(cluster_factory):
    names = "abcd"
    c = cluster_factory(n_nodes=4, replicas=REPLICAS, w=2, r=2)
    ports = {n: c.nodes[n].port for n in names}
    configure(c.router, names, ports, 1)
    keys = [b"repair/%05d" % i for i in range(10000)]
    write_keys(c, keys, lambda k: (k + b" " * 100)[:100])
    # kind of divergence for every 100th key, by (i // 100) % 5
    kinds = {keys[i]: ("missing", "stale", "tomb_old", "value_old",
                       "extra")[(i // 100) % 5] for i in range(0, 10000, 100)}
    deleted = [k for k, kind in kinds.items() if kind == "value_old"] + \
        keys[1:10000:50]                      # and 200 other deletes
    delete_keys(c, deleted)
    lists = {n: listing(c.nodes[n]) for n in names}
    want = newest(lists)
    assert len(want) == 10000
    for k in keys:       # the router left every owner up to date
        assert {n for n in names if lists[n].get(k) == want[k]} == \
            owners(names, k), k
    for k, kind in sorted(kinds.items()):
        own = sorted(owners(names, k))
        victim = c.nodes[own[int(k[-3:-2]) % 3]]   # one owner, varied
        v = want[k][0]
        if kind == "extra":
            (other,) = set(names) - set(own)
            put_copy(c.nodes[other], k, (k + b" " * 100)[:100], v)
            continue
        remove_copy(victim, k, v)
        if kind == "stale":
            put_copy(victim, k, b"old value", OLD)
        elif kind == "tomb_old":
            tombstone_copy(victim, k, OLD)
        elif kind == "value_old":
            put_copy(victim, k, b"old value of a deleted key", OLD)
    assert newest({n: listing(c.nodes[n]) for n in names}) == want

    rc, out, err = skv(c.router, "repair", "--json")
    assert rc == 0, (out[-2000:], err)
    done = last_json(out)
    assert done["result"] == "complete" and done["failures"] == 0, done
    assert done["differences"] == {"keys": 80, "missing": 20, "stale": 20,
                                   "tombstone_vs_value": 40,
                                   "not_on_owners": 20}, done
    lists = {n: listing(c.nodes[n]) for n in names}
    for k in keys:       # every owner holds the newest version
        for o in owners(names, k):
            assert lists[o].get(k) == want[k], (k, o, lists[o].get(k))
    extra = {k for k, kind in kinds.items() if kind == "extra"}
    for k in keys:       # only the injected extra copies are elsewhere
        holders = {n for n in names if k in lists[n]}
        assert holders - owners(names, k) == (
            set(names) - owners(names, k) if k in extra else set()), k
    # the repaired values read back through the router
    with requests.Session() as s:
        for k in kinds:
            r = s.get(router_url(c, k), timeout=10)
            if want[k][1]:
                assert r.status_code == 404, k
            else:
                assert r.status_code == 200 and \
                    r.content == (k + b" " * 100)[:100], k

    rc, out, err = skv(c.router, "cleanup", "--json")
    assert rc == 0, (out[-2000:], err)
    rc, out, err = skv(c.router, "repair", "--json")
    assert rc == 0, (out[-2000:], err)
    assert last_json(out)["differences"] == {
        "keys": 0, "missing": 0, "stale": 0, "tombstone_vs_value": 0,
        "not_on_owners": 0}, last_json(out)
    lists = {n: listing(c.nodes[n]) for n in names}
    for k in keys:       # exactly the owners hold each newest version
        assert {n for n in names if lists[n].get(k) == want[k]} == \
            {n for n in names if k in lists[n]} == owners(names, k), k


def grace_cluster(cluster_factory, n_keys=200):
    """a, b, c (N=3), --tombstone-grace 2s, epoch 1, n_keys written."""
    c = cluster_factory(n_nodes=3, replicas=REPLICAS, w=2, r=2,
                        storaged_args=["--tombstone-grace", "2s"])
    configure(c.router, "abc", {n: c.nodes[n].port for n in "abc"}, 1)
    keys = [b"grace/%04d" % i for i in range(n_keys)]
    write_keys(c, keys, lambda k: b"value of " + k)
    return c, keys


def purged(node):
    return requests.get(node.url + "/v1/stats",
                        timeout=10).json()["tombstones_purged"]


def watermark(node):
    return requests.get(node.url + "/v1/repair-watermark",
                        timeout=10).json()["version"]


def test_no_watermark_no_purge(cluster_factory):
    """Tombstones far older than the grace stay while no repair watermark
    is set, on every node (the sweep runs every second at this grace)."""
    c, keys = grace_cluster(cluster_factory, 100)
    delete_keys(c, keys[:50])
    time.sleep(5)
    for n in "abc":
        assert watermark(c.nodes[n]) is None
        assert purged(c.nodes[n]) == 0
        lst = listing(c.nodes[n])
        assert all(lst[k][1] for k in keys[:50]), n
        assert len(lst) == 100


def wait_purged(c, names, count, timeout=30):
    deadline = time.monotonic() + timeout
    while any(purged(c.nodes[n]) < count for n in names):
        assert time.monotonic() < deadline, {
            n: purged(c.nodes[n]) for n in names}
        time.sleep(0.2)


def test_rule_broken_deleted_keys_come_back(cluster_factory):
    """What the operational rule prevents, shown with a watermark set by
    hand (as if a repair had run without c): c down for longer than the
    grace, deletes, the tombstones purged on a and b, c rejoins with its
    data: a repair finds only c's old values and the deleted keys read
    back.  (This is how the tests below would see a resurrection.)
    storaged refuses that rejoin by itself; the rule is broken here with
    --accept-stale-data."""
    c, keys = grace_cluster(cluster_factory, 100)
    c.nodes["c"].stop()
    delete_keys(c, keys[:50])
    time.sleep(2.5)                               # past the grace
    # a version's time part counts ms from 2020-01-01 (docs/protocol.md)
    now = "%016x%016x" % ((int(time.time() * 1000) - 1577836800000) << 16,
                          0)
    for n in "ab":
        r = requests.put(c.nodes[n].url + "/v1/repair-watermark",
                         json={"version": now}, timeout=10)
        assert r.status_code in (200, 204), r.text
    wait_purged(c, "ab", 50)
    with pytest.raises(StoragedError, match="longer than --tombstone-grace"):
        c.restart("c")
    c.nodes["c"].extra_args.append("--accept-stale-data")
    c.restart("c")
    rc, out, err = skv(c.router, "repair", "--json")
    assert rc == 0, (out[-2000:], err)
    back = [k for k in keys[:50]
            if requests.get(router_url(c, k), timeout=10).status_code == 200]
    assert back == keys[:50]


@long_test
@pytest.mark.parametrize("rejoin", ["wiped", "stale"])
def test_long_deletes_with_a_replica_down(cluster_factory, rejoin):
    """c down for longer than the grace while 100 of 200 keys are deleted
    through the router.  Nothing is purged while no repair completes (a
    repair with c down is incomplete and records no watermark).  c then
    rejoins as the rule says: wiped, or with its stale values and a
    repair run before any purge.  The repair (--max-clock-skew 0, run 60
    s after the deletes so that the watermark covers them) records the
    watermark, every node purges the tombstones, and no deleted key comes
    back: not through the router, not in any listing, not after a second
    repair."""
    c, keys = grace_cluster(cluster_factory, 200)
    gone, live = keys[:100], keys[100:]
    c.nodes["c"].stop()
    delete_keys(c, gone)
    t_deleted = time.monotonic()
    time.sleep(3)                                 # past the grace
    rc, out, err = skv(c.router, "repair", "--json", "--max-clock-skew",
                       "0", "--timeout", "2")
    assert rc == 4, (out[-2000:], err)            # c's keys failed
    for n in "ab":
        assert watermark(c.nodes[n]) is None
        assert purged(c.nodes[n]) == 0
        assert all(listing(c.nodes[n])[k][1] for k in gone)
    node = c.nodes["c"]
    if rejoin == "wiped":
        shutil.rmtree(node.data_dir)
    else:
        # storaged enforces the rule: data not served for longer than the
        # grace does not rejoin unless told that it may
        with pytest.raises(StoragedError, match="longer than "
                                                "--tombstone-grace"):
            node.start()
        node.extra_args.append("--accept-stale-data")
    c.restart("c")
    stale = listing(c.nodes["c"])
    assert len(stale) == (0 if rejoin == "wiped" else 200)
    # the watermark is T - skew - 60 s: wait until it covers the deletes
    time.sleep(max(0.0, t_deleted + 62 - time.monotonic()))
    rc, out, err = skv(c.router, "repair", "--json", "--max-clock-skew", "0")
    assert rc == 0, (out[-2000:], err)
    diff = last_json(out)["differences"]
    if rejoin == "wiped":
        assert diff["missing"] == 200, diff
    else:
        assert diff["tombstone_vs_value"] == 100 and diff["keys"] == 100, \
            diff
    wm = {watermark(c.nodes[n]) for n in "abc"}
    assert len(wm) == 1 and None not in wm
    wait_purged(c, "abc", 100)
    for n in "abc":
        lst = listing(c.nodes[n])
        assert set(lst) == set(live), n           # tombstones purged
        assert not any(t for _, t in lst.values())
    with requests.Session() as s:
        for k in gone:
            assert s.get(router_url(c, k), timeout=10).status_code == 404
        for k in live:
            r = s.get(router_url(c, k), timeout=10)
            assert r.status_code == 200 and r.content == b"value of " + k
    rc, out, err = skv(c.router, "repair", "--json")
    assert rc == 0, (out[-2000:], err)
    assert last_json(out)["differences"]["keys"] == 0
    for n in "abc":
        assert set(listing(c.nodes[n])) == set(live), n
