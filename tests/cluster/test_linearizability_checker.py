"""Tests of the linearizability checker itself (tests/lib/linearizability.py).

The cluster consistency tests are only as good as the checker that judges
their histories, so it is tested here on its own, without servers:
hand-written histories whose verdict is known (good and bad), agreement
with a brute-force checker on thousands of small random histories, and
speed on histories of a few hundred operations per key.
"""

import itertools
import random
import time

import pytest

import linearizability as lin


def op(kind, value, call, ret, key="k", status="ok"):
    """One history record; status is "ok", "unknown" or "fail"."""
    return {"key": key, "op": kind, "value": value, "call": call,
            "ret": ret, "ok": status == "ok", "unknown": status == "unknown"}


def put(v, call, ret, **kw):
    return op("put", v, call, ret, **kw)


def delete(call, ret, **kw):
    return op("delete", None, call, ret, **kw)


def get(v, call, ret, **kw):
    return op("get", v, call, ret, **kw)


def verdict(history):
    return lin.check(history).linearizable


# --- known-good histories -------------------------------------------------

GOOD = {
    "empty": [],
    "read of a fresh key is absent": [get(None, 0, 1)],
    "sequential put get delete get": [
        put("a", 0, 1), get("a", 2, 3), delete(4, 5), get(None, 6, 7)],
    "sequential overwrite": [
        put("a", 0, 1), put("b", 2, 3), get("b", 4, 5), get("b", 6, 7)],
    "read overlapping a put sees the new value": [
        put("a", 0, 1), put("b", 10, 20), get("b", 12, 14)],
    "read overlapping a put sees the old value": [
        put("a", 0, 1), put("b", 10, 20), get("a", 12, 14)],
    "old then new while a put is in flight": [
        put("a", 0, 1), put("b", 10, 40), get("a", 12, 14),
        get("b", 20, 22), get("b", 50, 51)],
    "concurrent puts, later reads agree on the last": [
        put("a", 0, 10), put("b", 1, 9), get("a", 20, 21),
        get("a", 22, 23)],
    "concurrent puts, the other order": [
        put("a", 0, 10), put("b", 1, 9), get("b", 20, 21),
        get("b", 22, 23)],
    "touching intervals count as concurrent": [
        put("a", 0, 5), get("a", 5, 6), put("b", 5, 7)],
    "delete concurrent with a read": [
        put("a", 0, 1), delete(10, 20), get("a", 11, 12),
        get(None, 15, 16), get(None, 30, 31)],
    "put after delete": [
        put("a", 0, 1), delete(2, 3), put("b", 4, 5), get("b", 6, 7)],
    "unknown put that applied": [
        put("a", 0, 1), put("b", 2, None, status="unknown"),
        get("b", 10, 11), get("b", 12, 13)],
    "unknown put that did not apply": [
        put("a", 0, 1), put("b", 2, None, status="unknown"),
        get("a", 10, 11), get("a", 12, 13)],
    "slow put seen only after a later put": [
        put("x", 0, 100), put("y", 20, 30), get("y", 35, 40),
        get("x", 50, 60), get("x", 110, 120)],
    "unknown put applied late, after a later put": [
        put("a", 0, 1), put("x", 2, None, status="unknown"),
        put("b", 10, 11), get("b", 12, 13), get("x", 20, 21)],
    "unknown delete that applied": [
        put("a", 0, 1), delete(2, None, status="unknown"),
        get(None, 10, 11)],
    "unknown delete that did not apply": [
        put("a", 0, 1), delete(2, None, status="unknown"),
        get("a", 10, 11)],
    "unknown put with a recorded ret is still open": [
        put("a", 0, 1), put("b", 2, 3, status="unknown"),
        get("a", 10, 11), get("b", 12, 13)],
    "failed reads carry no information": [
        put("a", 0, 1), get("garbage", 2, 3, status="fail"),
        get("a", 4, 5), get(None, 6, None, status="unknown")],
    "definitely failed writes are dropped": [
        put("a", 0, 1), put("b", 2, 3, status="fail"), get("a", 4, 5)],
    "keys are independent": [
        put("a", 0, 1, key="k1"), put("z", 2, 3, key="k2"),
        get("a", 4, 5, key="k1"), get("z", 4, 5, key="k2"),
        get(None, 6, 7, key="k3")],
    "many readers during one put": [
        put("a", 0, 1), put("b", 10, 100)]
        + [get("a", 11 + 2 * i, 12 + 2 * i) for i in range(5)]
        + [get("b", 30 + 2 * i, 31 + 2 * i) for i in range(5)],
    "bytes values": [
        put(b"\x00\xff", 0, 1), get(b"\x00\xff", 2, 3)],
    "empty string is a value, not absence": [
        put("", 0, 1), get("", 2, 3)],
}


@pytest.mark.parametrize("name", sorted(GOOD))
def test_good_history(name):
    result = lin.check(GOOD[name])
    assert result.linearizable, "\n".join(
        k.report() for k in result.failures())


def test_witness_order_respects_real_time():
    hist = GOOD["old then new while a put is in flight"]
    res = lin.check(hist).keys["k"]
    assert res.linearizable
    order = res.order
    assert len(order) == len(hist)
    for i, a in enumerate(order):
        for b in order[i + 1:]:
            # nothing placed later may have returned before a was called
            assert b.ret is None or not b.ret < a.call


# --- known-bad histories --------------------------------------------------

BAD = {
    "stale read after a completed write": [
        put("a", 0, 1), put("b", 2, 3), get("a", 4, 5)],
    "read of a value never written": [
        put("a", 0, 1), get("ghost", 2, 3)],
    "non-monotonic reads": [
        put("a", 0, 1), put("b", 10, 50),
        get("b", 12, 14), get("a", 20, 22)],
    "lost delete": [
        put("a", 0, 1), delete(2, 3), get("a", 4, 5)],
    "lost write (absent after a put)": [
        put("a", 0, 1), get(None, 2, 3)],
    "read before the put was called": [
        get("a", 0, 1), put("a", 2, 3)],
    "unknown put cannot explain an earlier read": [
        get("x", 0, 1), put("x", 2, None, status="unknown")],
    "unknown put cannot be seen then unseen": [
        put("a", 0, 1), put("x", 2, None, status="unknown"),
        get("x", 10, 11), get("a", 12, 13)],
    "two readers disagree after the writes ended": [
        put("a", 0, 10), put("b", 1, 9), get("a", 20, 21),
        get("b", 22, 23)],
    "delete resurrected by an older value": [
        put("a", 0, 1), put("b", 2, 3), delete(4, 5), get(None, 6, 7),
        get("a", 8, 9)],
    "write applied twice (seen, overwritten, seen again)": [
        put("x", 0, 100), get("x", 5, 10), put("y", 20, 30),
        get("x", 50, 60)],
    "unknown write applied twice": [
        put("x", 0, None, status="unknown"), get("x", 5, 10),
        delete(20, 30), get("x", 50, 60)],
    "value read back after being overwritten (with unknown noise)": [
        put("a", 0, 1), put("u1", 1, None, status="unknown"),
        put("b", 2, 3), put("c", 4, 5), get("b", 6, 7)],
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_history(name):
    result = lin.check(BAD[name])
    assert result.linearizable is False
    bad = result.failures()
    assert [k.key for k in bad] == ["k"]
    assert bad[0].linearizable is False   # refuted, not merely undecided


def test_failure_is_isolated_to_its_key():
    hist = ([dict(r, key="bad") for r in BAD["lost delete"]]
            + [dict(r, key="good") for r in GOOD["unknown put that applied"]]
            + [dict(r, key="big-bad") for r in BAD["non-monotonic reads"]]
            + [put("q%d" % i, 100 + i, 101 + i, key="big-bad")
               for i in range(10)])
    result = lin.check(hist)
    assert not result.linearizable
    assert result.keys["good"].linearizable is True
    assert {k.key for k in result.failures()} == {"bad", "big-bad"}
    assert result.smallest_failure().key == "bad"
    report = result.smallest_failure().report()
    assert "NOT linearizable" in report and "delete" in report


def test_minimize_shrinks_a_failing_history():
    rng = random.Random(7)
    hist = [put("a", 0, 1)]
    t = 2
    for i in range(40):   # lots of harmless, sequential noise
        hist.append(put("n%d" % i, t, t + 1))
        hist.append(get("n%d" % i, t + 2, t + 3))
        t += 4 + rng.randrange(3)
    hist += [put("b", t, t + 1), get("n39", t + 2, t + 3)]   # stale read
    res = lin.check(hist).smallest_failure()
    assert res is not None and res.linearizable is False
    small = lin.minimize(res, time_budget=10)
    assert small.linearizable is False
    assert len(small.ops) <= 4, small.report()
    assert lin.check([o.source for o in small.ops]).linearizable is False


def test_minimize_keeps_the_delete_an_absent_read_needs():
    # The anomaly is the stale read of "a"; the absent read is explained
    # by the delete.  Shrinking must not produce "absent read after a put"
    # by dropping the delete: dropped writes stay possible while shrinking.
    hist = [put("a", 0, 1), delete(2, 3), get(None, 4, 5), put("b", 6, 7),
            put("c", 8, 9), get("a", 10, 11)]
    res = lin.check(hist).smallest_failure()
    small = lin.minimize(res, time_budget=10)
    kinds = [(o.kind, o.value) for o in small.ops]
    assert ("get", "a") in kinds
    if any(k == "get" and v is lin.ABSENT for k, v in kinds):
        assert any(k == "delete" for k, _ in kinds), small.report()
    assert lin.check([o.source for o in small.ops]).linearizable is False


def test_malformed_records_are_rejected():
    with pytest.raises(ValueError):
        lin.check([{"key": "k", "op": "cas", "call": 0, "ret": 1,
                    "ok": True}])
    with pytest.raises(ValueError):
        lin.check([put("a", 5, 4)])                   # ret before call
    with pytest.raises(ValueError):
        lin.check([put("a", 0, None)])                # ok without ret
    with pytest.raises(ValueError):
        lin.check([put(None, 0, 1)])                  # put of nothing
    with pytest.raises(ValueError):
        lin.check([dict(put("a", 0, 1), unknown=True)])  # ok and unknown


def test_step_budget_gives_undecided_not_a_pass():
    hist = GOOD["many readers during one put"]
    res = lin.check(hist, max_steps=3)
    assert res.keys["k"].linearizable is None
    assert not res.linearizable


# --- agreement with brute force on small random histories -----------------

def brute_force(records):
    """Try every order of the operations (unknown writes, and writes
    marked "optional", may be left out)."""
    ops = []
    for r in records:
        if r["op"] == "get" and not r["ok"]:
            continue
        if not r["ok"] and not r["unknown"]:
            continue
        ops.append(r)
    must = [o for o in ops if o["ok"] and not o.get("optional")]
    optional = [o for o in ops if not o["ok"] or o.get("optional")]
    for n_opt in range(len(optional) + 1):
        for chosen in itertools.combinations(optional, n_opt):
            for order in itertools.permutations(must + list(chosen)):
                if legal_order(order):
                    return True
    return False


def legal_order(order):
    state = None
    for i, o in enumerate(order):
        for later in order[i + 1:]:
            # an operation that returned before o was called must precede
            # it; an unknown one never returned, so it constrains nothing
            if later["ok"] and later["ret"] < o["call"]:
                return False
        if o["op"] == "put":
            state = ("v", o["value"])
        elif o["op"] == "delete":
            state = None
        elif state != (None if o["value"] is None else ("v", o["value"])):
            return False
    return True


def random_small_history(rng, n_ops, unique=False):
    hist = []
    values = ["v%d" % i for i in range(3)]
    fresh = iter("u%d" % i for i in range(n_ops))
    for _ in range(n_ops):
        call = rng.randrange(20)
        ret = call + rng.randrange(1, 8)
        kind = rng.choice(["put", "put", "delete", "get", "get", "get"])
        status = rng.choice(["ok"] * 5 + ["unknown", "fail"])
        if kind == "get":
            seen = [r["value"] for r in hist if r["op"] == "put"] \
                if unique else values
            hist.append(get(rng.choice(seen + [None]), call, ret,
                            status=status))
        elif kind == "put":
            hist.append(put(next(fresh) if unique else rng.choice(values),
                            call,
                            None if status == "unknown" else ret,
                            status=status))
        else:
            hist.append(delete(call, None if status == "unknown" else ret,
                               status=status))
    return hist


@pytest.mark.parametrize("unique", [False, True],
                         ids=["repeated-values", "unique-values"])
def test_agrees_with_brute_force_on_random_histories(unique):
    # Unique values (what the cluster tests write) switch on the checker's
    # value-based pruning and quick refutations; repeated values test the
    # plain search.  Both must agree with brute force exactly.
    rng = random.Random(20261125 + unique)
    counts = {True: 0, False: 0}
    for _ in range(3000):
        hist = random_small_history(rng, rng.randrange(1, 8), unique)
        rng.shuffle(hist)
        expected = brute_force(hist)
        got = lin.check(hist).linearizable
        assert got == expected, "checker %s, brute force %s on %r" % (
            got, expected, hist)
        counts[expected] += 1
    # the generator must exercise both verdicts, or this test proves little
    assert counts[True] > 300 and counts[False] > 300, counts


def test_optional_writes_agree_with_brute_force():
    # minimize() checks histories in which some completed writes are
    # optional (placed within their interval, or left out).
    rng = random.Random(4242)
    counts = {True: 0, False: 0}
    for _ in range(3000):
        unique = rng.random() < 0.5
        hist = random_small_history(rng, rng.randrange(1, 8), unique)
        for r in hist:
            if r["op"] != "get" and r["ok"] and rng.random() < 0.4:
                r["optional"] = True
        expected = brute_force(hist)
        ops = lin.normalise(hist).get("k", [])
        for o in ops:
            o.optional = bool(o.source.get("optional"))
        got = lin.check_key("k", ops).linearizable
        assert got == expected, "checker %s, brute force %s on %r" % (
            got, expected, hist)
        counts[expected] += 1
    assert counts[True] > 300 and counts[False] > 300, counts


# --- performance ----------------------------------------------------------

def simulated_history(rng, clients, ops_per_client, keys=("k",),
                      p_unknown=0.05):
    """A linearizable history by construction: each operation takes effect
    at a random instant inside its interval (or, for an unknown write, at
    some instant after its call, or never); results follow from applying
    them in that order."""
    events = []
    for c in range(clients):
        t = rng.randrange(1000)
        for i in range(ops_per_client):
            dur = rng.randrange(200, 5000)
            kind = rng.choice(["put", "put", "delete", "get", "get", "get"])
            key = rng.choice(keys)
            unknown = kind != "get" and rng.random() < p_unknown
            if unknown:
                at = t + rng.randrange(0, 50000) if rng.random() < 0.5 \
                    else None
            else:
                at = t + rng.randrange(dur + 1)
            rec = {"key": key, "op": kind, "call": t,
                   "ret": None if unknown else t + dur,
                   "ok": not unknown, "unknown": unknown,
                   "value": "c%d-%d" % (c, i) if kind == "put" else None}
            events.append((at, rec))
            t += dur + rng.randrange(1, 300)
    state = {}
    for at, rec in sorted((e for e in events if e[0] is not None),
                          key=lambda e: e[0]):
        if rec["op"] == "put":
            state[rec["key"]] = rec["value"]
        elif rec["op"] == "delete":
            state.pop(rec["key"], None)
        else:
            rec["value"] = state.get(rec["key"])
    return [rec for _, rec in events]


def test_simulated_histories_are_linearizable():
    rng = random.Random(1)
    for _ in range(50):
        hist = simulated_history(rng, clients=4, ops_per_client=15,
                                 keys=("a", "b"))
        result = lin.check(hist)
        assert result.linearizable, result.smallest_failure().report()


@pytest.mark.parametrize("clients,p_unknown", [(8, 0.05), (16, 0.2)])
def test_few_hundred_ops_on_one_key_is_fast(clients, p_unknown):
    rng = random.Random(2)
    hist = simulated_history(rng, clients=clients,
                             ops_per_client=400 // clients,
                             p_unknown=p_unknown)
    assert len(hist) == 400
    start = time.monotonic()
    result = lin.check(hist)
    elapsed = time.monotonic() - start
    assert result.linearizable, result.smallest_failure().report()
    assert elapsed < 5.0, "400 ops took %.1f s" % elapsed


def test_few_hundred_ops_with_a_stale_read_is_caught_fast():
    rng = random.Random(3)
    hist = simulated_history(rng, clients=8, ops_per_client=50,
                             p_unknown=0.0)
    # Turn one late read into a read of the very first value written:
    # everything written in between makes it stale.
    puts = sorted((r for r in hist if r["op"] == "put"),
                  key=lambda r: r["call"])
    gets = sorted((r for r in hist if r["op"] == "get"),
                  key=lambda r: r["call"])
    first, victim = puts[0], gets[-1]
    assert any(p["call"] > first["ret"] and p["ret"] < victim["call"]
               for p in puts)
    victim["value"] = first["value"]
    start = time.monotonic()
    result = lin.check(hist)
    elapsed = time.monotonic() - start
    assert result.linearizable is False
    assert result.keys["k"].linearizable is False
    assert elapsed < 10.0, "refuting 400 ops took %.1f s" % elapsed
