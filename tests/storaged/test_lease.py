"""PUT /v1/lease and DELETE /v1/lease?holder=: one holder at a time for a
time to live (one rebalance or repair at a time), correct under
concurrent requests; kept in memory only (a restart frees it)."""

import threading
import time

import pytest

from conftest import Client


def take(c, holder, ttl_ms=10000):
    return c.put_json("/v1/lease", {"holder": holder, "ttl_ms": ttl_ms})


def release(c, holder):
    return c.request("DELETE", "/v1/lease?holder=" + holder)


def test_take_renew_refuse_release(node):
    d, c = node
    r = take(c, "skv-rebalance-1", 5000)
    assert r.status == 200, r
    assert r.json() == {"holder": "skv-rebalance-1", "expires_in_ms": 5000}
    r = take(c, "skv-repair-2")
    assert r.status == 409, r
    body = r.json()
    assert body["holder"] == "skv-rebalance-1"
    assert 0 < body["expires_in_ms"] <= 5000
    assert body["error"] == "lease held" and body["detail"]
    # Renewed by its holder, with a new time to live.
    r = take(c, "skv-rebalance-1", 20000)
    assert r.status == 200 and r.json()["expires_in_ms"] == 20000
    s = c.stats()["lease"]
    assert s["holder"] == "skv-rebalance-1"
    assert 15000 < s["expires_in_ms"] <= 20000
    # Only its holder releases it.
    r = release(c, "skv-repair-2")
    assert r.status == 409 and r.json()["holder"] == "skv-rebalance-1", r
    r = release(c, "skv-rebalance-1")
    assert r.status == 204 and r.body == b"", r
    assert c.stats()["lease"] is None
    # Free: releasing again is fine, and anyone may take it.
    assert release(c, "skv-rebalance-1").status == 204
    assert take(c, "skv-repair-2").status == 200


def test_lease_expires(node):
    d, c = node
    assert take(c, "a", 300).status == 200
    assert take(c, "b", 300).status == 409
    time.sleep(0.5)
    assert c.stats()["lease"] is None
    r = take(c, "b", 1000)
    assert r.status == 200 and r.json()["holder"] == "b"
    # An expired lease's former holder: nothing to release.
    time.sleep(1.2)
    assert release(c, "b").status == 204
    assert release(c, "a").status == 204


def test_holder_in_the_query_is_percent_decoded(node):
    d, c = node
    holder = "host 1+pid=7&x"
    assert take(c, holder).status == 200
    assert release(c, "host%201+pid").status == 409
    r = release(c, "host%201+pid%3D7%26x")
    assert r.status == 204, r
    assert c.stats()["lease"] is None


@pytest.mark.parametrize("body", [
    '{"holder": "a"}', '{"ttl_ms": 5}', '{"holder": "", "ttl_ms": 5}',
    '{"holder": "a", "ttl_ms": 0}', '{"holder": "a", "ttl_ms": -5}',
    '{"holder": "a", "ttl_ms": 86400001}', '{"holder": "a", "ttl_ms": 1.5}',
    '{"holder": "a", "ttl_ms": "5"}', '{"holder": 5, "ttl_ms": 5}',
    '{"holder": "a\\tb", "ttl_ms": 5}', '{"holder": "\\u00e9", "ttl_ms": 5}',
    '{"holder": "%s", "ttl_ms": 5}' % ("h" * 257),
    '{"holder": "a", "ttl_ms": 5, "x": 1}', '["a", 5]', 'holder=a', ''])
def test_bad_lease_bodies(shared_node, body):
    d, c = shared_node
    r = c.put_json("/v1/lease", body)
    assert r.status == 400, r
    assert r.json()["error"] in ("bad lease", "bad json"), r
    assert c.stats()["lease"] is None


@pytest.mark.parametrize("query", [
    "", "?holder=", "?holder", "?holder=a&holder=a", "?holder=%zz",
    "?holder=%09", "?other=a", "?holder=" + "h" * 257])
def test_bad_lease_releases(shared_node, query):
    d, c = shared_node
    r = c.request("DELETE", "/v1/lease" + query)
    assert r.status == 400 and r.json()["error"] == "bad holder", r


def test_lease_methods_and_size(shared_node):
    d, c = shared_node
    for m in ("GET", "HEAD", "POST"):
        r = c.request(m, "/v1/lease")
        assert r.status == 405 and r.header("Allow") == "PUT, DELETE", r
    r = c.put_json("/v1/lease", '{"holder": "a", "ttl_ms": 5, "p": "%s"}'
                   % ("x" * 5000))
    assert r.status == 413, r
    assert c.stats()["lease"] is None


def test_longest_holder(node):
    d, c = node
    holder = "~" * 256
    assert take(c, holder).status == 200
    assert take(c, holder).status == 200
    assert release(c, holder).status == 204


def test_concurrent_takers_get_one_lease(node):
    """Many tools race for the lease: exactly one gets it each round; the
    others are told who has it."""
    d, c = node
    for round_ in range(5):
        n = 16
        barrier = threading.Barrier(n)
        results = [None] * n

        def taker(i):
            cl = Client(d.port)
            try:
                cl.request("GET", "/v1/health")     # connect first
                barrier.wait()
                results[i] = take(cl, "t%d" % i, 60000)
            finally:
                cl.close()

        threads = [threading.Thread(target=taker, args=(i,))
                   for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        winners = [i for i, r in enumerate(results) if r.status == 200]
        assert len(winners) == 1, results
        w = "t%d" % winners[0]
        for r in results:
            assert r.status in (200, 409)
            assert r.json()["holder"] == w
        assert release(c, w).status == 204


def test_restart_frees_the_lease(daemons):
    d = daemons.start()
    c = Client(d.port)
    assert take(c, "a", 60000).status == 200
    c.close()
    d.stop()
    d.start()
    c = Client(d.port)
    assert c.stats()["lease"] is None
    assert take(c, "b").status == 200
    c.close()
