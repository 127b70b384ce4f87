"""DELETE /v1/kv/<key>?remove&if-version=V: drop this node's copy (record
and index entry, no tombstone) only if it holds exactly V; 204 / 409 with
X-Simplekv-Version / 404.  Fenced like every kv request; counters stay
right; the purge watermark covers what the dropped entry held, so that
X-Simplekv-Held never says "no" for it."""

import time

import pytest

from conftest import EPOCH_UNIX_MS, Client, seq_version, version

V1, V2, V3 = seq_version(1), seq_version(2), seq_version(3)


def now_ms():
    return int(time.time() * 1000) - EPOCH_UNIX_MS


def remove(c, key, ver, headers=None):
    return c.request("DELETE", "/v1/kv/%s?remove&if-version=%s" % (key, ver),
                     None, headers)


def listing(c):
    r = c.request("GET", "/v1/keys")
    assert r.status == 200, r
    return [l.split("\t")[2] for l in r.body.decode().splitlines()]


def counts(c):
    s = c.stats()
    return s["keys"], s["tombstones"], s["bytes"], s["copies_removed"]


def test_remove_a_value_and_a_tombstone(node):
    d, c = node
    assert c.put("v", b"12345", V1).status == 201
    assert c.put("other", b"xy", V1).status == 201
    assert c.delete("t", V2).status == 204
    assert counts(c) == (2, 1, 7, 0)
    r = remove(c, "v", V1)
    assert r.status == 204 and r.body == b"", r
    r = c.get("v")
    assert r.status == 404 and r.header("X-Simplekv-Version") is None
    assert r.header("X-Simplekv-Tombstone") is None
    assert counts(c) == (1, 1, 2, 1)
    assert remove(c, "t", V2).status == 204
    r = c.get("t")
    assert r.status == 404 and r.header("X-Simplekv-Version") is None
    assert counts(c) == (1, 0, 2, 2)
    assert listing(c) == ["other"]
    # Gone, not deleted: any version may be written again.
    assert c.put("v", b"again", V1).status == 201
    assert c.get("v").body == b"again"


def test_remove_other_version_or_missing(node):
    d, c = node
    assert c.put("k", b"v", V2).status == 201
    for other in (V1, V3):
        r = remove(c, "k", other)
        assert r.status == 409, r
        assert r.header("X-Simplekv-Version") == V2
        assert r.json()["error"] == "conflict" and r.json()["detail"]
    assert c.get("k").body == b"v"
    r = remove(c, "never", V1)
    assert r.status == 404 and r.header("X-Simplekv-Version") is None, r
    assert r.json()["error"] == "not found"
    assert counts(c) == (1, 0, 1, 0)


def test_remove_is_fenced(node):
    d, c = node
    assert c.put("k", b"v", V1).status == 201
    r = c.put_json("/v1/epochs", {"min": 3, "max": 3})
    assert r.status == 200
    r = remove(c, "k", V1)
    assert r.status == 421 and r.header("X-Simplekv-Epochs") == "3-3", r
    r = remove(c, "k", V1, {"X-Simplekv-Epoch": "2"})
    assert r.status == 421, r
    assert c.request("GET", "/v1/kv/k", None,
                     {"X-Simplekv-Epoch": "3"}).status == 200
    assert remove(c, "k", V1, {"X-Simplekv-Epoch": "3"}).status == 204


@pytest.mark.parametrize("method,query", [
    ("DELETE", "?remove"),
    ("DELETE", "?if-version=" + V1),
    ("DELETE", "?remove=1&if-version=" + V1),
    ("DELETE", "?remove&if-version="),
    ("DELETE", "?remove&if-version=" + V1.upper()),
    ("DELETE", "?remove&if-version=" + "0" * 32),
    ("DELETE", "?remove&if-version=" + V1 + "0"),
    ("DELETE", "?remove&if-version=%s&if-version=%s" % (V1, V1)),
    ("DELETE", "?remove&remove&if-version=" + V1),
    ("GET", "?remove&if-version=" + V1),
    ("PUT", "?remove&if-version=" + V1),
])
def test_bad_remove_requests(shared_node, method, query):
    d, c = shared_node
    assert c.put("keep", b"v", V1).status in (200, 201)
    r = c.request(method, "/v1/kv/keep" + query, b"x" if method == "PUT"
                  else None, {"X-Simplekv-Version": V2})
    assert r.status == 400, r
    assert r.json()["error"] in ("bad request", "bad if-version"), r
    r = c.get("keep")
    assert r.body == b"v" and r.header("X-Simplekv-Version") == V1


def held(c, key, ver):
    r = c.put(key, b"refused", ver)
    assert r.status == 409, (ver, r)
    return r.header("X-Simplekv-Held")


def test_remove_raises_the_purge_watermark(daemons):
    """The removed entry's history is gone: a later write starts a new,
    complete one.  The purge watermark, raised above the removed
    versions (and kept through restarts), answers "unknown" for them."""
    t = now_ms()
    old, removed = version(ms=t - 20000), version(ms=t - 10000)
    after = version(ms=t - 5000)
    d = daemons.start()
    c = Client(d.port)
    assert c.put("k", b"1", old).status == 201
    assert c.put("k", b"2", removed).status == 201
    assert c.put("fresh", b"1", version(ms=t - 30000)).status == 201
    assert c.put("fresh", b"2", version()).status == 201
    # Before: a complete history answers "no" for a version never held.
    assert held(c, "fresh", version(ms=t - 25000)) == "no"
    assert remove(c, "k", removed).status == 204
    assert c.put("k", b"3", version()).status == 201
    for _ in range(2):
        assert held(c, "k", old) == "unknown"
        assert held(c, "k", removed) == "unknown"
        # Older than the removed copy: no "no" for any key any more.
        assert held(c, "fresh", version(ms=t - 25000)) == "unknown"
        # Newer than the watermark and never held: certain.
        assert held(c, "k", after) == "no"
        c.close()
        d.stop()
        d.start()
        c = Client(d.port)
    c.close()


def test_counters_after_remove_and_restart(daemons):
    d = daemons.start()
    c = Client(d.port)
    for i in range(20):
        assert c.put("k%02d" % i, b"x" * i, V1).status == 201
    for i in range(0, 20, 3):
        assert c.delete("k%02d" % i, V2).status == 204
    for i in range(0, 20, 2):
        ver = V2 if i % 3 == 0 else V1
        assert remove(c, "k%02d" % i, ver).status == 204
    live = [i for i in range(20) if i % 3 and i % 2]
    tombs = [i for i in range(20) if i % 3 == 0 and i % 2]
    expect = (len(live), len(tombs), sum(live))
    assert counts(c)[:3] == expect
    c.close()
    d.stop()
    d.start()
    c = Client(d.port)
    assert counts(c)[:3] == expect
    assert listing(c) == ["k%02d" % i for i in sorted(live + tombs)]
    c.close()


def test_remove_keeps_an_unordered_history(daemons):
    """An entry that once replaced a version from the future may have held
    a version newer than its own: covering it would lift the purge
    watermark into the future.  It is kept, as the purge keeps such a
    tombstone (409 naming its own version)."""
    t = now_ms()
    d = daemons.start(extra_args=["--max-clock-skew", "0"])
    c = Client(d.port)
    assert c.put("u", b"poison", version(ms=t + 600000)).status == 201
    c.close()
    d.stop()
    d = daemons.start(data_dir=d.data_dir)
    c = Client(d.port)
    mine = version(ms=t - 1000)
    assert c.delete("u", mine).status == 204      # replaces it
    r = remove(c, "u", mine)
    assert r.status == 409 and r.header("X-Simplekv-Version") == mine, r
    assert "from the future" in r.json()["detail"]
    assert c.get("u").header("X-Simplekv-Tombstone") == "1"
    # The watermark did not move: "no" is still possible for others.
    assert c.put("o", b"1", version(ms=t - 30000)).status == 201
    assert c.put("o", b"2", version(ms=t - 10000)).status == 201
    assert held(c, "o", version(ms=t - 20000)) == "no"
    c.close()
