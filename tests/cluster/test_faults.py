"""Fault tests: 3 real storaged nodes behind the real nginx router
(N=3, W=2, R=2), nodes killed with kill -9, frozen with SIGSTOP and
restarted while clients run.

What they show: a minority failure is invisible to clients; a majority
failure gives a prompt JSON 503/504, never a hang; reads repair a node
that missed writes while it was down (the node itself is queried); a
restarted node serves again.  With SKV_VALGRIND=1 nginx runs under
valgrind and the cluster fixture fails a test on any valgrind error or
definite leak (make test-cluster-valgrind).
"""

import json
import threading
import time
import urllib.parse

import requests

import linearizability as lin
from workload import KV, describe, errors, run_clients


def node_record(node, key):
    """(status, version, tombstone, body) straight from one storaged."""
    resp = requests.get(node.url + "/v1/kv/" + urllib.parse.quote(key,
                                                                   safe=""),
                        timeout=5)
    return (resp.status_code, resp.headers.get("X-Simplekv-Version"),
            resp.headers.get("X-Simplekv-Tombstone") == "1", resp.content)


def test_kill9_one_node_under_load_gives_no_client_errors(cluster_factory):
    c = cluster_factory()
    slow = c.router.slowdown
    killed_at = []

    def kill():
        killed_at.append(time.monotonic_ns())
        c.kill9("b")

    keys = ["fault-%d" % i for i in range(6)]
    hist = run_clients(c.url, keys, threads=4, duration=4.0,
                       events=[(1.5, kill)], slowdown=slow)

    assert killed_at and not c.nodes["b"].alive()
    before = [r for r in hist if r["ret"] < killed_at[0]]
    after = [r for r in hist if r["call"] > killed_at[0]]
    # the test proves something only if clients were busy on both sides
    assert len(before) >= 20 // slow and len(after) >= 20 // slow, (
        len(before), len(after))
    bad = errors(hist)
    origin = min(r["call"] for r in hist)
    assert not bad, "%d of %d requests failed with one node down:\n%s" % (
        len(bad), len(hist),
        "\n".join(describe(r, origin) for r in bad[:20]))
    result = lin.check(hist)
    assert result.linearizable, lin.minimize(
        result.smallest_failure(), time_budget=8).report()


def take_down(c, names, how):
    for name in names:
        if how == "kill9":
            c.kill9(name)
        else:
            c.freeze(name)


def bring_back(c, names, how):
    for name in names:
        if how == "kill9":
            c.restart(name)
        else:
            c.thaw(name)


def check_majority_down(c, kv, how):
    """Every request fails promptly with a JSON error, on the same
    keep-alive connection, request after request."""
    slow = c.router.slowdown
    # replica timeout 1 s; a dead node refuses at once, a frozen one
    # needs the timeout; allow 1.5 s on top for scheduling
    bound = (1.0 + 1.5) * slow
    allowed = (503,) if how == "kill9" else (503, 504)
    for attempt in range(2):
        for name, call in (("PUT", lambda: kv.put("down", b"x")),
                           ("GET", lambda: kv.get("down")),
                           ("HEAD", lambda: kv.session.head(
                               kv.base + "/down", timeout=kv.timeout)),
                           ("DELETE", lambda: kv.delete("down"))):
            t0 = time.monotonic()
            resp = call()
            took = time.monotonic() - t0
            assert resp.status_code in allowed, (
                "%s #%d with two nodes %s: %d %s %s; router status: %s" % (
                    name, attempt + 1, how, resp.status_code,
                    dict(resp.headers), resp.text[:300],
                    " ".join(kv.session.get(
                        c.url + "/_simplekv/status",
                        timeout=kv.timeout).text.split())))
            assert took < bound, "%s took %.2f s (bound %.1f s)" % (
                name, took, bound)
            if name == "HEAD":
                continue
            assert resp.headers.get("Content-Type", "").startswith(
                "application/json"), resp.headers
            body = json.loads(resp.content)
            assert body.get("error"), body
            assert "detail" in body, body


def test_two_nodes_killed_give_prompt_503(cluster_factory):
    c = cluster_factory()
    kv = KV(c.url, c.router.slowdown)
    assert kv.put("down", b"before").status_code == 201
    take_down(c, ["b", "c"], "kill9")
    check_majority_down(c, kv, "kill9")
    bring_back(c, ["b", "c"], "kill9")
    # back to normal on the same client, without restarting nginx
    assert kv.put("down", b"after").status_code == 201
    resp = kv.get("down")
    assert (resp.status_code, resp.content) == (200, b"after")


def test_two_nodes_frozen_give_prompt_error_not_a_hang(cluster_factory):
    # SIGSTOP: the kernel still accepts connections, nothing answers, so
    # only the router's replica timeout bounds the request.
    c = cluster_factory()
    kv = KV(c.url, c.router.slowdown)
    assert kv.put("down", b"before").status_code == 201
    take_down(c, ["a", "c"], "sigstop")
    check_majority_down(c, kv, "sigstop")
    bring_back(c, ["a", "c"], "sigstop")
    assert kv.put("down", b"after").status_code == 201
    resp = kv.get("down")
    assert (resp.status_code, resp.content) == (200, b"after")


def test_one_frozen_node_does_not_slow_every_request(cluster_factory):
    """A hung replica (SIGSTOP: connections accepted, never answered) must
    not cost each client request the replica timeout.  nginx runs a
    request's replica subrequests on the client's connection, so a
    straggler from one request delays the next request on a keep-alive
    connection; the router has to stop waiting on (or asking) a node
    that keeps timing out.  Sequential requests on one keep-alive
    connection, after a short warm-up, must mostly be fast."""
    c = cluster_factory()
    slow = c.router.slowdown
    kv = KV(c.url, slow)
    assert kv.put("frozen", b"v").status_code == 201
    c.freeze("b")
    for i in range(3):                 # let the router notice
        kv.put("frozen", b"warm-up %d" % i)
    took = []
    for i in range(10):
        t0 = time.monotonic()
        resp = (kv.put("frozen", b"v%d" % i) if i % 2 == 0
                else kv.get("frozen"))
        took.append(time.monotonic() - t0)
        assert resp.status_code in (200, 201), (resp.status_code,
                                                resp.text[:200])
    took.sort()
    # replica timeout is 1 s: the median request must not pay it
    assert took[len(took) // 2] < 0.3 * slow, (
        "with node b frozen, sequential keep-alive requests took %s s"
        % ", ".join("%.2f" % t for t in took))


def test_reads_repair_a_node_that_missed_writes(cluster_factory):
    # every read asks all three replicas, so reads reach node c
    c = cluster_factory(extra_location="simplekv_read_fanout all;")
    kv = KV(c.url, c.router.slowdown)
    keys = ["repair-%d" % i for i in range(16)]
    for k in keys:
        assert kv.put(k, ("old " + k).encode()).status_code == 201

    c.kill9("c")
    newest = {}
    for i, k in enumerate(keys):
        if i % 4 == 3:
            assert kv.delete(k).status_code == 204
            newest[k] = None
        else:
            newest[k] = ("new " + k).encode()
            assert kv.put(k, newest[k]).status_code == 201
    fresh = ["repair-fresh-%d" % i for i in range(4)]
    for k in fresh:
        newest[k] = ("fresh " + k).encode()
        assert kv.put(k, newest[k]).status_code == 201
    c.restart("c")

    node_c = c.nodes["c"]
    truth = {}
    for k in newest:
        # a and b saw every write: their (equal) version is the newest
        ra = node_record(c.nodes["a"], k)
        rb = node_record(c.nodes["b"], k)
        assert ra[:3] == rb[:3], (k, ra, rb)
        truth[k] = ra
        assert node_record(node_c, k)[1] != ra[1], (
            "node c was down, yet already holds the newest version of %r"
            % k)

    for k, value in newest.items():
        resp = kv.get(k)
        if value is None:
            assert resp.status_code == 404, (k, resp.status_code)
        else:
            assert (resp.status_code, resp.content) == (200, value), k

    stale = []
    for k in newest:
        got = node_record(node_c, k)
        if got[:3] != truth[k][:3] or (truth[k][0] == 200
                                       and got[3] != truth[k][3]):
            stale.append("%r: node c has %s, newest is %s" % (
                k, got[:3], truth[k][:3]))
    assert not stale, "reads did not repair node c:\n" + "\n".join(stale)


def test_restarted_node_rejoins_and_serves_what_it_missed(cluster_factory):
    c = cluster_factory()
    kv = KV(c.url, c.router.slowdown)
    c.kill9("a")
    written = {}
    for i in range(12):
        k = "rejoin-%d" % i
        written[k] = ("while a was down %d" % i).encode()
        assert kv.put(k, written[k]).status_code == 201
    assert kv.delete("rejoin-0").status_code == 204
    written["rejoin-0"] = None
    c.restart("a")

    # With b gone, every quorum needs a: the keys written while a was
    # down must still read back, and new writes must still succeed.
    c.kill9("b")
    for k, value in written.items():
        resp = kv.get(k)
        if value is None:
            assert resp.status_code == 404, (k, resp.status_code,
                                             resp.text)
        else:
            assert (resp.status_code, resp.content) == (200, value), (
                k, resp.status_code, resp.text[:200])
    assert kv.put("rejoin-new", b"after rejoin").status_code == 201
    resp = kv.get("rejoin-new")
    assert (resp.status_code, resp.content) == (200, b"after rejoin")
    c.restart("b")


def test_a_delayed_replica_write_does_not_resurrect_an_observed_value(
        cluster_factory):
    """One replica request of a PUT reaches its nodes late, after the
    value was read and then overwritten by a newer PUT.  The late request
    finds newer versions there (409).  Whatever the router then does with
    the first PUT, its value was already seen and replaced: it must not
    come back.  (A retry of that PUT with a fresh version would write the
    old value over the newer one: the value takes effect twice.)"""
    # every read asks all three, so the read below sees node a's value
    c = cluster_factory(proxied=("b", "c"), replica_timeout="5s",
                        extra_location="simplekv_read_fanout all;")
    slow = c.router.slowdown
    first, second = b"first value (delayed)", b"second value"
    for name in ("b", "c"):
        c.proxies[name].hold(first)

    outcome = {}

    def slow_put():
        kv1 = KV(c.url, slow)
        try:
            outcome["put"] = kv1.put("late", first)
        except requests.RequestException as e:
            outcome["put"] = e
        outcome["put_done"] = time.monotonic()

    writer = threading.Thread(target=slow_put, daemon=True)
    writer.start()
    try:
        for name in ("b", "c"):
            assert c.proxies[name].held.wait(5 * slow), (
                "the PUT never reached node %s's proxy" % name)
        # Node a has the first value (the router sends to a, b and c at
        # once: a's may finish after the proxies hold theirs, so wait for
        # it), b and c have nothing yet: the read returns it (after writing
        # it back to b and c).
        deadline = time.monotonic() + 5 * slow
        while node_record(c.nodes["a"], "late")[0] != 200:
            assert time.monotonic() < deadline, "node a never stored it"
            time.sleep(0.02)
        kv = KV(c.url, slow)
        # b and c may both answer "missing" before a answers: with the
        # first PUT unfinished, 404 is a correct answer too (and leaves
        # nothing behind); read until the value is seen
        for _ in range(50):
            resp = kv.get("late")
            if resp.status_code != 404:
                break
            time.sleep(0.02)
        assert (resp.status_code, resp.content) == (200, first), (
            resp.status_code, resp.text[:200])
        seen_at = time.monotonic()
        resp = kv.put("late", second)
        assert resp.status_code == 201, (resp.status_code, resp.text[:200])
        assert "put_done" not in outcome, "first PUT finished early"
    finally:
        for name in ("b", "c"):
            c.proxies[name].release()
        writer.join(30 * slow)
    assert not writer.is_alive(), "first PUT never answered"
    first_status = getattr(outcome["put"], "status_code", outcome["put"])
    assert outcome["put_done"] > seen_at

    status = kv.session.get(c.url + "/_simplekv/status",
                            timeout=kv.timeout).text
    for attempt in range(3):
        resp = kv.get("late")
        assert resp.status_code == 200, (resp.status_code, resp.text[:200])
        assert resp.content == second, (
            "the first PUT (answered %s after its value had been read and "
            "overwritten) took effect again: GET returns %r instead of %r; "
            "router status: %s" % (first_status, resp.content, second,
                                   " ".join(status.split())[-160:]))


def test_a_write_after_a_completed_write_wins_across_router_clocks(
        cluster_factory):
    """Each router has its own version clock.  Router A is pushed a minute
    ahead (one of its writes meets a version from the future, so its
    clock jumps past it, as the design says); router B stays on the wall
    clock.  A write through B that starts after a write through A has
    completed gets a lower version: the nodes refuse it (409) and B must
    write again with a newer one, or the later write would be invisible.
    Guards the other side of the delayed-write test above: 409 cannot
    simply count as an acknowledgement."""
    c = cluster_factory(routers=2)
    a, b = (KV(url, c.router.slowdown) for url in c.urls)
    future_ms = int(time.time() * 1000) - 1577836800000 + 60000
    future = "%012x%04x%016x" % (future_ms, 0, 0x5e5e5e5e)
    for node in c.nodes.values():
        resp = requests.put(node.url + "/v1/kv/skew-seed", data=b"seed",
                            headers={"X-Simplekv-Version": future},
                            timeout=5)
        assert resp.status_code == 201, (resp.status_code, resp.text)
    resp = a.put("skew-seed", b"through A")
    assert resp.status_code == 201, (resp.status_code, resp.text)
    assert a.get("skew-seed").content == b"through A"

    for i in range(5):
        first, second = ("A%d" % i).encode(), ("B%d" % i).encode()
        assert a.put("order", first).status_code == 201
        # A's write really carries a version from the future, so B's
        # first attempt is below it (else this test would prove nothing)
        held = node_record(c.nodes["a"], "order")[1]
        assert held is not None and held >= future, (held, future)
        resp = b.put("order", second)
        assert resp.status_code == 201, (resp.status_code, resp.text)
        for name, kv in (("A", a), ("B", b)):
            resp = kv.get("order")
            assert (resp.status_code, resp.content) == (200, second), (
                "round %d: a PUT through router B after router A's PUT "
                "completed; GET through %s returns %d %r" % (
                    i, name, resp.status_code, resp.content))
