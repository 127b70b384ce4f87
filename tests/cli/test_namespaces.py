"""skv rebalance, cleanup and repair over namespaces (issue 13), against
fake nodes and status pages (tests/cli/fakecluster.py): the routers'
"namespaces" (or, from an older router, "replicas" as the one namespace
"default"), each namespace's own N, a namespace only the nodes hold (its
keys cannot be placed: reported, left alone, the run incomplete), the
checkpoint across namespaces, the failure list and --json naming the
namespace, status pages read at the URL's origin.  The real cluster is
tests/cluster/test_namespaces_rebalance.py.  Ports PORT_BASE + 400..498.
"""

import itertools
import json
import signal
import subprocess
import time

import pytest

from conftest import PORT_BASE, SKV, clean_env, run_skv
from fakecluster import FakeNode, FakeRouter, owners

_ports = itertools.count(PORT_BASE + 400)
N_DEFAULT = 40
N_TWO = 200
NS = [("default", 3, 2, 2), ("two", 2, 2, 1)]
REPLICAS = {"default": 3, "two": 2}


def version(i, origin=1):
    return "%016x%016x" % ((0x100000 + i) << 16, origin)


def key(i):
    return b"key%04d" % i


def value(ns, i):
    return b"%s value %d" % (ns.encode(), i)


def port():
    p = next(_ports)
    assert p < PORT_BASE + 499
    return p


class Fake:
    """Nodes a, b, c (C0) and d (joining).  Namespace "default" (N=3)
    holds N_DEFAULT keys on all of a, b, c; namespace "two" (N=2) holds
    N_TWO keys, the first N_DEFAULT of them the same names as in
    "default" with other values, each on its two owners among a, b, c."""

    def __init__(self):
        self.nodes = {n: FakeNode(port()).start() for n in "abcd"}
        self.routers = []
        old = [(n, 1) for n in "abc"]
        for i in range(N_DEFAULT):
            for n in "abc":
                self.nodes[n].put(key(i), version(i), value("default", i))
        for i in range(N_TWO):
            for n in owners(old, key(i), 2):
                self.nodes[n].put(key(i), version(i, 2), value("two", i),
                                  ns="two")

    def router(self, weights, epoch, transition, namespaces=NS, **kw):
        r = FakeRouter(port(), [
            (n, self.nodes[n].address, w, pw)
            for n, (w, pw) in sorted(weights.items())], epoch,
            transition=transition, namespaces=namespaces, **kw)
        self.routers.append(r)
        return r

    def add_d(self, epoch=5, **kw):
        return self.router({"a": (1, 1), "b": (1, 1), "c": (1, 1),
                            "d": (1, 0)}, epoch, True, **kw)

    def final(self, epoch=6, **kw):
        return self.router({n: (1, 1) for n in "abcd"}, epoch, False, **kw)

    def expected(self):
        """(namespace, key) -> (version, value)."""
        out = {("default", key(i)): (version(i), value("default", i))
               for i in range(N_DEFAULT)}
        out.update({("two", key(i)): (version(i, 2), value("two", i))
                    for i in range(N_TWO)})
        return out

    def missing_on_new_owners(self):
        new = [(n, 1) for n in "abcd"]
        missing = []
        for (ns, k), (v, val) in self.expected().items():
            for o in owners(new, k, REPLICAS[ns]):
                rec = self.nodes[o].spaces.get(ns, {}).get(k)
                if rec is None or rec[0] != v or rec[3] != val:
                    missing.append((ns, k, o))
        return missing

    def copies_exactly_on_owners(self):
        """After cleanup: every key has exactly its namespace's N copies,
        all on its owners, value intact."""
        new = [(n, 1) for n in "abcd"]
        for (ns, k), (v, val) in self.expected().items():
            holders = {n for n in "abcd"
                       if k in self.nodes[n].spaces.get(ns, {})}
            assert holders == set(owners(new, k, REPLICAS[ns])), (ns, k)
            for n in holders:
                assert self.nodes[n].spaces[ns][k][0] == v
                assert self.nodes[n].spaces[ns][k][3] == val

    def stop(self):
        for r in self.routers:
            r.stop()
        for n in self.nodes.values():
            n.stop()


@pytest.fixture
def fake():
    f = Fake()
    yield f
    f.stop()


def skv(*args, timeout=120):
    return run_skv(*args, timeout=timeout)


def test_each_namespace_gets_its_own_n(fake):
    # an empty namespace no router has (storaged never removes one) holds
    # nothing to place: no reason for an incomplete run
    fake.nodes["a"].ns("emptied")
    r = skv("rebalance", "--router", fake.add_d().url)
    assert r.rc == 0, r
    assert fake.missing_on_new_owners() == []
    out = r.out.decode()
    assert "namespace default (N=3): %d keys" % N_DEFAULT in out, out
    assert "namespace two (N=2): %d keys" % N_TWO in out, out
    # "two" went through /v1/ns/two/, "default" through /v1/kv/
    paths = [p for n in "abcd" for _, p in fake.nodes[n].requests]
    assert any(p.startswith("/v1/ns/two/kv/") for p in paths)
    assert any(p.startswith("/v1/ns/two/keys") for p in paths)
    assert any(p.startswith("/v1/kv/") for p in paths)
    assert not any(p.startswith("/v1/ns/default/") for p in paths)

    r = skv("cleanup", "--router", fake.final().url)
    assert r.rc == 0, r
    fake.copies_exactly_on_owners()

    # repair in the final configuration finds nothing to do
    r = skv("repair", "--router", fake.final(epoch=6).url)
    assert r.rc == 0 and "differences: 0 keys" in r.out.decode(), r


def test_router_without_namespaces_is_one_default_namespace(fake):
    # an older router ("replicas" only) and older nodes (/v1/namespaces
    # answers 404): the namespace "default" with the largest N, as before
    for n in fake.nodes.values():
        n.old = True
        n.spaces.pop("two", None)
    r = skv("rebalance", "--json", "--router",
            fake.add_d(namespaces=None).url)
    assert r.rc == 0, r
    done = json.loads(r.out.splitlines()[-1])
    assert [n["name"] for n in done["namespaces"]] == ["default"]
    assert done["namespaces"][0]["replicas"] == 3
    new = [(n, 1) for n in "abcd"]
    for i in range(N_DEFAULT):
        for o in owners(new, key(i), 3):
            assert fake.nodes[o].data[key(i)][0] == version(i)


def test_routers_must_agree_on_namespaces(fake):
    a = fake.add_d()
    b = fake.add_d(namespaces=[("default", 3, 2, 2), ("two", 3, 2, 2)])
    r = skv("rebalance", "--router", a.url, "--router", b.url)
    assert r.rc == 3 and "disagrees" in r.err and "namespaces" in r.err, r
    c = fake.add_d(namespaces=[("default", 3, 2, 2)])
    r = skv("rebalance", "--router", a.url, "--router", c.url)
    assert r.rc == 3 and "disagrees" in r.err, r
    # a page with a namespace skv cannot use
    e = fake.add_d(namespaces=[("no/such", 3, 2, 2)])
    r = skv("rebalance", "--router", e.url)
    assert r.rc == 3 and "bad namespace name" in r.err, r
    # the same namespaces listed in another order agree
    d = fake.add_d(namespaces=list(reversed(NS)))
    r = skv("rebalance", "--dry-run", "--router", a.url, "--router", d.url)
    assert r.rc == 0, r
    assert fake.nodes["d"].data == {}


def test_a_namespace_no_router_configures_is_left_alone(fake):
    for i in range(7):
        for n in "ab":
            fake.nodes[n].put(b"orphan%d" % i, version(i, 3), b"o",
                              ns="legacy")
    before = {n: dict(fake.nodes[n].spaces["legacy"]) for n in "ab"}
    r = skv("rebalance", "--json", "--router", fake.add_d().url)
    assert r.rc == 4, r
    # said once, with its count (7 keys on each of a and b)
    said = [l for l in r.err.splitlines() if "namespace legacy" in l]
    assert len(said) == 1 and "14 keys and tombstones" in said[0], r.err
    done = json.loads(r.out.splitlines()[-1])
    assert done["result"] == "incomplete" and done["failures"] == 0
    assert done["unplaced_namespaces"] == 1
    legacy = [n for n in done["namespaces"] if n["name"] == "legacy"][0]
    assert not legacy["configured"] and legacy["held"] == 14
    # nothing moved or deleted there; the other namespaces were done
    for n in "ab":
        assert fake.nodes[n].spaces["legacy"] == before[n]
    assert "legacy" not in fake.nodes["c"].spaces
    assert "legacy" not in fake.nodes["d"].spaces
    assert fake.missing_on_new_owners() == []

    r = skv("cleanup", "--router", fake.final().url)
    assert r.rc == 4 and "namespace legacy" in r.err, r
    for n in "ab":
        assert fake.nodes[n].spaces["legacy"] == before[n]
    fake.copies_exactly_on_owners()


def test_failures_and_dry_run_name_the_namespace(fake):
    new = [(n, 1) for n in "abcd"]
    k = next(key(i) for i in range(N_DEFAULT, N_TWO)
             if "d" in owners(new, key(i), 2))
    fake.nodes["d"].fail_writes.add(k)
    r = skv("rebalance", "--dry-run", "--json", "--router",
            fake.add_d().url)
    assert r.rc == 0, r
    plans = [json.loads(l) for l in r.out.splitlines()]
    plans = [p for p in plans if isinstance(p.get("dry_run"), str)]
    assert {p["namespace"] for p in plans} == {"default", "two"}
    r = skv("rebalance", "--dry-run", "--router", fake.add_d().url)
    assert ("copy two/%s " % k.decode()) in r.out.decode(), r

    r = skv("rebalance", "--json", "--router", fake.add_d().url)
    assert r.rc == 4, r
    assert "failed: two/%s: node d" % k.decode() in r.err, r
    done = json.loads(r.out.splitlines()[-1])
    assert done["failed"][0]["namespace"] == "two"
    assert done["failed"][0]["key"] == k.decode()


def test_checkpoint_resumes_in_its_namespace(fake, tmp_path):
    url = fake.add_d().url
    ck = tmp_path / "ck.json"
    # a checkpoint of an older skv (format 1) is of another format
    ck.write_text(json.dumps({"format": 1, "command": "rebalance",
                              "config": "x", "nodes": {}}))
    proc = subprocess.Popen([SKV, "rebalance", "--router", url,
                             "--checkpoint", str(ck), "--rate", "40"],
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=clean_env())
    deadline = time.monotonic() + 60
    saved = {}
    try:
        # the namespace "default" is finished, "two" under way
        while time.monotonic() < deadline:
            try:
                saved = json.loads(ck.read_text())
            except ValueError:
                saved = {}
            if saved.get("format") == 2 and saved.get("namespace") == "two" \
                    and saved["nodes"]["a"]["after"]:
                break
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate()
    assert b"of another format" in err, err
    assert saved.get("namespace") == "two", saved
    assert not saved["complete"]
    for n in fake.nodes.values():
        n.requests.clear()
    r = skv("rebalance", "--router", url, "--checkpoint", ck)
    assert r.rc == 0, r
    assert "resuming after key" in r.err and "in namespace two" in r.err, r
    # "default" was finished: not listed again
    paths = [p for n in "abcd" for _, p in fake.nodes[n].requests]
    assert not any(p.startswith("/v1/keys") for p in paths), paths
    assert "namespace default (N=3): finished by an earlier run" in \
        r.out.decode(), r
    assert fake.missing_on_new_owners() == []
    done = json.loads(ck.read_text())
    assert done["complete"] and done["format"] == 2


def test_cleanup_safe_to_stop_counts_every_namespace(fake):
    # d was removed; it still holds copies in both namespaces
    for i in range(5):
        fake.nodes["d"].put(key(i), version(i), value("default", i))
        fake.nodes["d"].put(key(i), version(i, 2), value("two", i),
                            ns="two")
    extra = "d=" + fake.nodes["d"].address
    url = fake.router({n: (1, 1) for n in "abc"}, 8, False).url
    r = skv("cleanup", "--router", url, "--extra-node", extra)
    assert r.rc == 0, r
    assert "node d: 0 copies it does not own left; holds 0 keys: safe to " \
           "stop" in r.out.decode(), r
    # a copy in a namespace no router has: d is not empty
    fake.nodes["d"].put(b"x", version(1), b"x", ns="other")
    r = skv("cleanup", "--router", url, "--extra-node", extra)
    assert r.rc == 4, r
    assert "holds 1 keys: NOT safe to stop" in r.out.decode(), r
    assert fake.nodes["d"].spaces["other"]


def test_status_pages_are_read_at_the_origin(fake):
    url = fake.add_d().url
    r = skv("rebalance", "--dry-run", "--router", url + "/tenant-b/")
    assert r.rc == 0, r
    r = run_skv("epochs", url=url + "/two")
    assert r.rc == 0 and "d  no window" in r.out.decode(), r
    r = run_skv("status", "--json", url=url + "/two/")
    assert r.rc == 0 and json.loads(r.out)["epoch"] == 5, r
    assert fake.routers[0].misses == []


def test_progress_totals_sum_the_namespaces(fake):
    r = skv("rebalance", "--json", "--rate", "150", "--router",
            fake.add_d().url)
    assert r.rc == 0, r
    lines = [json.loads(l) for l in r.out.splitlines()]
    progress = [l for l in lines if l.get("phase") in ("scan", "finish")]
    assert progress, lines[-1]
    for n in "abc":
        total = sum(len(d) for d in fake.nodes[n].spaces.values())
        assert all(p["nodes"][n]["total"] == total for p in progress), n
    assert {p["namespace"] for p in progress} <= {"default", "two"}
    done = lines[-1]
    assert done["phase"] == "done"
    assert sum(n["keys"] for n in done["namespaces"]) == done["keys"]
