"""skv rebalance, cleanup, repair and epochs against fake nodes and status
pages (tests/cli/fakecluster.py), for what the real ones cannot do on
demand: a node that stops answering, a write that fails, a listing cut
off, a lease held by someone else, routers that are not at the barrier.
The real cluster is tests/cluster/test_rebalance.py.  Ports 21300-21399
(PORT_BASE + 300..399)."""

import itertools
import json
import os
import signal
import subprocess
import time

import pytest

from conftest import PORT_BASE, SKV, clean_env, run_skv
from fakecluster import FakeNode, FakeRouter, owners

_ports = itertools.count(PORT_BASE + 300)
N_KEYS = 300


def version(i, origin=1):
    return "%016x%016x" % ((0x100000 + i) << 16, origin)


class Fake:
    """Nodes a, b, c holding N_KEYS keys (every key on all three: N=3),
    and a fourth node d; routers made on demand."""

    def __init__(self):
        self.nodes = {n: FakeNode(next(_ports)).start() for n in "abcd"}
        self.routers = []
        for i in range(N_KEYS):
            k = b"key%04d" % i
            for n in "abc":
                self.nodes[n].put(k, version(i), b"value %d" % i)
        for n in "ab":
            self.nodes[n].put(b"gone", version(N_KEYS), tomb=True)

    def router(self, weights, epoch, transition, live=None):
        """weights: {name: (weight, previous_weight)}"""
        r = FakeRouter(next(_ports), [
            (n, self.nodes[n].address, w, pw)
            for n, (w, pw) in sorted(weights.items())], epoch,
            transition=transition, live=live)
        self.routers.append(r)
        return r

    def add_d(self, epoch=5, **kw):
        return self.router({"a": (1, 1), "b": (1, 1), "c": (1, 1),
                            "d": (1, 0)}, epoch, True, **kw)

    def final(self, epoch=6):
        return self.router({n: (1, 1) for n in "abcd"}, epoch, False)

    def missing_on_new_owners(self):
        new = [(n, 1) for n in "abcd"]
        missing = []
        for i in range(N_KEYS):
            k = b"key%04d" % i
            for o in owners(new, k, 3):
                rec = self.nodes[o].data.get(k)
                if rec is None or rec[0] != version(i) or \
                        rec[3] != b"value %d" % i:
                    missing.append((k, o))
        return missing

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


def test_usage():
    r = skv("rebalance", "x")
    assert r.rc == 2 and "takes no operands" in r.err, r
    r = skv("get", "k", "--dry-run")
    assert r.rc == 2 and "are for rebalance" in r.err, r
    r = skv("repair", "--allow", "3")
    assert r.rc == 2 and "--allow is for epochs only" in r.err, r
    r = skv("cleanup", "--concurrency", "0")
    assert r.rc == 2, r
    r = skv("--help")
    assert b"rebalance" in r.out and b"--checkpoint" in r.out


def test_rebalance_copies_to_new_owners_then_cleanup(fake):
    before = {n: dict(fake.nodes[n].data) for n in "abc"}
    r = skv("rebalance", "--router", fake.add_d().url)
    assert r.rc == 0, r
    assert fake.missing_on_new_owners() == []
    # the tombstone too, with its version
    for o in owners([(n, 1) for n in "abcd"], b"gone", 3):
        assert fake.nodes[o].data[b"gone"][:2] == [version(N_KEYS), True]
    # nothing of the old owners changed; the fence moved to [5, 6]
    for n in "abc":
        for k, rec in before[n].items():
            assert fake.nodes[n].data[k] == rec
    assert all(fake.nodes[n].epochs == (5, 6) for n in "abcd")
    assert all(fake.nodes[n].lease is None for n in "abcd")

    r = skv("cleanup", "--router", fake.final().url)
    assert r.rc == 0, r
    new = [(n, 1) for n in "abcd"]
    for n in "abcd":
        for k in fake.nodes[n].data:
            assert n in owners(new, k, 3), (n, k)
    assert fake.missing_on_new_owners() == []
    assert all(fake.nodes[n].epochs == (6, 6) for n in "abcd")
    assert "node d: 0 copies it does not own left" in r.out.decode()


def test_dry_run_writes_nothing(fake):
    r = skv("rebalance", "--dry-run", "--json", "--router", fake.add_d().url)
    assert r.rc == 0, r
    lines = [json.loads(l) for l in r.out.splitlines()]
    plans = [l for l in lines if isinstance(l.get("dry_run"), str)]
    assert plans and all(l["dry_run"] == "copy" for l in plans)
    assert any("d" in l["to"] for l in plans)
    assert lines[-1]["result"] == "complete" and lines[-1]["dry_run"]
    assert fake.nodes["d"].data == {}
    assert all(fake.nodes[n].epochs is None for n in "abcd")
    writes = [m for n in "abcd" for m, _ in fake.nodes[n].requests
              if m in ("PUT", "DELETE")]
    assert writes == []


def test_not_at_the_barrier(fake):
    r = skv("rebalance", "--router", fake.final().url)
    assert r.rc == 3 and "not a transition" in r.err, r
    r = skv("rebalance", "--router", fake.add_d(live={"4": 1, "5": 2}).url)
    assert r.rc == 3 and "workers of epoch 4" in r.err, r
    r = skv("rebalance", "--router", fake.add_d().url, "--router",
            fake.add_d(epoch=6).url)
    assert r.rc == 3 and "disagrees" in r.err, r
    r = skv("cleanup", "--router", fake.add_d().url)
    assert r.rc == 3 and "a transition" in r.err, r
    assert fake.nodes["d"].data == {}


def test_frozen_old_owner_is_incomplete_then_a_rerun_completes(fake,
                                                               tmp_path):
    url = fake.add_d().url
    ck = tmp_path / "ck.json"
    fake.nodes["c"].frozen.clear()
    r = skv("rebalance", "--router", url, "--checkpoint", ck,
            "--timeout", "1", timeout=180)
    assert r.rc == 4, r
    assert "incomplete" in r.out.decode(), r
    assert "node c" in r.err
    # nothing was taken for missing: no key lost a copy, none deleted
    assert all(len(fake.nodes[n].data) == N_KEYS + 1 for n in "ab")
    fake.nodes["c"].frozen.set()
    r = skv("rebalance", "--router", url, "--checkpoint", ck)
    assert r.rc == 0, r
    assert fake.missing_on_new_owners() == []


def test_failed_write_is_a_failure_never_a_success(fake):
    new = [(n, 1) for n in "abcd"]
    key = next(b"key%04d" % i for i in range(N_KEYS)
               if "d" in owners(new, b"key%04d" % i, 3))
    fake.nodes["d"].fail_writes.add(key)
    r = skv("rebalance", "--router", fake.add_d().url)
    assert r.rc == 4, r
    assert key.decode() in r.err and "HTTP 500" in r.err, r
    assert "1 failed keys" in r.out.decode()


def test_cut_listing_is_resumed(fake):
    fake.nodes["a"].cut_listing_after = 50
    fake.nodes["b"].cut_listing_after = 120
    r = skv("rebalance", "--router", fake.add_d().url)
    assert r.rc == 0, r
    assert fake.missing_on_new_owners() == []


def test_lease_held_by_another(fake):
    fake.nodes["b"].lease = ("someone-else", time.monotonic() + 3600)
    r = skv("repair", "--router", fake.final().url)
    assert r.rc == 3 and "someone-else" in r.err, r
    assert all(fake.nodes[n].lease is None for n in "acd")


def test_killed_rebalance_resumes_from_its_checkpoint(fake, tmp_path):
    url = fake.add_d().url
    ck = tmp_path / "ck.json"
    proc = subprocess.Popen([SKV, "rebalance", "--router", url,
                             "--checkpoint", str(ck), "--rate", "20"],
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=clean_env())
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(fake.nodes["d"].data) < 40:
        time.sleep(0.05)
    time.sleep(1.2)  # let a checkpoint be written
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    saved = json.loads(ck.read_text())
    assert not saved["complete"] and saved["nodes"]["a"]["after"], saved
    r = skv("rebalance", "--router", url, "--checkpoint", ck)
    assert r.rc == 0, r
    assert "resuming after" in r.err, r
    assert fake.missing_on_new_owners() == []
    assert json.loads(ck.read_text())["complete"]


def test_repair_counts_differences_and_records_a_watermark(fake):
    url = fake.router({n: (1, 1) for n in "abc"}, 7, False).url
    fake.nodes["a"].data.pop(b"key0001")
    fake.nodes["b"].data[b"key0002"][0] = version(0)
    fake.nodes["c"].data[b"key0003"][1] = True
    fake.nodes["c"].data[b"key0003"][0] = version(0)
    r = skv("repair", "--router", url)
    assert r.rc == 0, r
    out = r.out.decode()
    # and the tombstone of "gone", which c never had
    assert "4 keys: 2 copies missing, 1 stale, 1 tombstone-vs-value" in out
    assert all(fake.nodes[n].data[b"key%04d" % i][0] == version(i)
               for n in "abc" for i in (1, 2, 3))
    wm = fake.nodes["a"].watermark
    assert wm and all(fake.nodes[n].watermark == wm for n in "abc")
    r = skv("repair", "--router", url)
    assert r.rc == 0 and "differences: 0 keys" in r.out.decode(), r


def test_cleanup_of_a_removed_node_says_safe_to_stop(fake):
    # d was removed: the final configuration no longer names it, it still
    # holds copies of keys its old peers own.
    for i in range(10):
        fake.nodes["d"].put(b"key%04d" % i, version(i), b"value %d" % i)
    url = fake.router({n: (1, 1) for n in "abc"}, 8, False).url
    extra = "d=" + fake.nodes["d"].address
    r = skv("cleanup", "--router", url, "--extra-node", extra)
    assert r.rc == 0, r
    assert "node d: 0 copies it does not own left; holds 0 keys: safe to " \
           "stop" in r.out.decode(), r


def test_epochs_allow(fake):
    url = fake.final().url
    fake.nodes["a"].epochs = (6, 6)
    r = skv("epochs", "--router", url, "--allow", "7")
    assert r.rc == 0, r
    assert fake.nodes["a"].epochs == (6, 7)
    assert fake.nodes["b"].epochs is None  # accepts every epoch already
    assert "a  6-7" in r.out.decode()
    r = skv("epochs", "--router", url, "--allow", "5")
    assert r.rc == 3 and "below its window" in r.err, r
