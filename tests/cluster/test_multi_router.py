"""Concurrent writes through different routers must not fail (issue 14).

Several routers (separate nginx instances, each with its own clock and
origin) in front of the same three nodes; 8 clients alternate between
them over 6 hot keys with mixed PUT/GET/DELETE.  Every request must
succeed and the recorded history must be linearizable: with two routers,
with three, with one router's clock 5 s behind or 5 s ahead (libfaketime),
and with a node killed and restarted mid-run on top of that.

The clock of a router is moved with libfaketime (LD_PRELOAD, FAKETIME),
which shifts what nginx and the module read from the wall clock, and so
the physical part of the router's hybrid logical clock, by a set offset
in the test only: the module needs no knob of its own for it.
"""

import json
import os
import time

import pytest
import requests

import linearizability as lin
from workload import HISTORY_DIR, describe, errors, run_clients

# 10 s of load per run, as the consistency tests; `make
# test-multi-router-long` (in `make test-long`) runs them for 30 s.
DURATION = float(os.environ.get("SKV_MULTI_ROUTER_SECONDS", "10"))
FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
SKV_EPOCH_MS = 1577836800000


def _behind(router, seconds):
    """Restart router with its clock `seconds` behind the others (ahead
    when seconds < 0)."""
    router.stop()
    router.extra_env = {
        "LD_PRELOAD": FAKETIME_LIB,
        "FAKETIME": "%+ds" % -seconds,
        # nginx's timers use the monotonic clock: leave it alone
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }
    router.start()


def _etag_ms(resp):
    return (int(resp.headers["ETag"].strip('"')[:16], 16) >> 16) \
        + SKV_EPOCH_MS


def _run(c, name, events=(), duration=DURATION):
    keys = ["hot-%d" % i for i in range(6)]
    hist = run_clients(c.urls, keys, threads=8, duration=duration,
                       events=events, slowdown=c.router.slowdown)
    os.makedirs(HISTORY_DIR, exist_ok=True)
    path = os.path.abspath(os.path.join(HISTORY_DIR, name + ".json"))
    with open(path, "w") as f:
        json.dump(hist, f)

    failed = errors(hist)
    assert not failed, "%d of %d requests failed (history in %s):\n%s" % (
        len(failed), len(hist), path,
        "\n".join(describe(r) for r in failed[:20]))

    # not vacuous: every key was written and read through every router
    for k in keys:
        mine = [x for x in hist if x["key"] == k]
        assert sum(x["op"] == "put" for x in mine) >= 20, k
        assert sum(x["op"] == "get" and x["value"] is not None
                   for x in mine) >= 10, k

    result = lin.check(hist)
    if not result.linearizable:
        worst = result.smallest_failure()
        pytest.fail("%s\nhistory saved in %s\n%s" % (
            result.summary(), path, worst.report(limit=40)))

    status = [requests.get(u + "/_simplekv/status", timeout=10).json()
              for u in c.urls]
    print("%s: %d requests, linearizable; write retries %s, version "
          "queries %s" % (name, len(hist),
                          [s["write_retries"] for s in status],
                          [s["write_version_queries"] for s in status]))
    return hist, status


def test_two_routers_hot_keys(cluster_factory):
    c = cluster_factory(routers=2)
    _, status = _run(c, "two-routers")
    # the contention was real: writes met the other router's versions
    assert sum(s["write_version_queries"] for s in status) > 0


def test_three_routers_hot_keys(cluster_factory):
    c = cluster_factory(routers=3)
    _run(c, "three-routers")


def test_two_routers_one_clock_behind(cluster_factory):
    c = cluster_factory(routers=2)
    _behind(c.routers[1], 5)
    # the knob works: a fresh key's version from the slow router is ~5 s
    # behind the other's
    r0 = requests.put(c.urls[0] + "/clock-a", data=b"x", timeout=10)
    r1 = requests.put(c.urls[1] + "/clock-b", data=b"x", timeout=10)
    assert r0.status_code == r1.status_code == 201
    lag = _etag_ms(r0) - _etag_ms(r1)
    assert 3000 < lag < 8000, lag
    hist, _ = _run(c, "clock-behind")
    assert len(_slow_router_writes(hist, 2, 1)) >= 50


def _slow_router_writes(hist, n_routers, slow):
    """Completed writes through router number `slow` (client n uses
    router n % n_routers)."""
    return [r for r in hist if r["thread"] % n_routers == slow
            and r["op"] in ("put", "delete") and r["ok"]]


def test_two_routers_one_clock_ahead(cluster_factory):
    """The other side of the clock-behind test: router 1 runs 5 s ahead,
    so router 0 is the slow-clock one; its writes meet newer versions of
    the fast router on the hot keys, and must still all succeed."""
    c = cluster_factory(routers=2)
    _behind(c.routers[1], -5)
    r0 = requests.put(c.urls[0] + "/clock-a", data=b"x", timeout=10)
    r1 = requests.put(c.urls[1] + "/clock-b", data=b"x", timeout=10)
    assert r0.status_code == r1.status_code == 201
    lead = _etag_ms(r1) - _etag_ms(r0)
    assert 3000 < lead < 8000, lead
    hist, _ = _run(c, "clock-ahead", duration=min(DURATION, 15))
    assert len(_slow_router_writes(hist, 2, 0)) >= 50


def test_two_routers_clock_behind_node_killed(cluster_factory):
    c = cluster_factory(routers=2)
    _behind(c.routers[1], 5)
    third = DURATION / 3
    _run(c, "clock-behind-kill", events=[
        (third, lambda: c.kill9("b")),
        (2 * third, lambda: c.restart("b")),
    ])


def test_first_write_of_another_clock_past_the_history(cluster_factory):
    """A router's first write to a key that another router has overwritten
    more than four times, with its clock behind and one replica lagging:
    the lagging replica applies it, the two others refuse it with 409.
    They never held a version of this router's clock for the key, and say
    so (X-Simplekv-Held: no, from their origin maxima, though the version
    is older than their whole history), so the write is known never to
    have been visible: it is retried after a version query and succeeds.
    (With only the history to go by they answered "unknown", and the
    write ended 503 "may or may not have been applied".)"""
    c = cluster_factory(routers=2)
    _behind(c.routers[1], 5)
    c.kill9("c")
    for i in range(6):
        r = requests.put(c.urls[0] + "/past", data=b"a%d" % i, timeout=10)
        assert r.status_code in (200, 201), r.text
    c.restart("c")
    r = requests.put(c.urls[1] + "/past", data=b"from-b", timeout=10)
    assert r.status_code in (200, 201), r.text
    status = requests.get(c.urls[1] + "/_simplekv/status", timeout=10).json()
    assert status["write_retries"] == 1, status
    # the retry's version is above router a's writes: it is the value now
    for url in c.urls:
        r = requests.get(url + "/past", timeout=10)
        assert r.status_code == 200 and r.content == b"from-b", r
