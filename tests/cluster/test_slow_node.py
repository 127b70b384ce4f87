"""A node that is slow but alive (200 ms each way on its link: a 400 ms
round trip, well under simplekv_replica_timeout) must not slow a
keep-alive client whose requests the two fast nodes answer.

nginx reads a keep-alive client's next request only when every
subrequest of the previous one has ended; the router detaches a
straggler whose request it has sent completely (detach.c) shortly after
the answer, and an orphan reader waits for the node's answer instead.
Shown here: sequential requests on one keep-alive connection are not
held by the slow node, and every acknowledged write still reaches it (the
node got the whole request; nobody reads its answer).  With
SKV_VALGRIND=1 (make test-cluster-valgrind) the fixture also fails the
test on any valgrind error or definite leak with detaching at work.
"""

import time
import urllib.parse

import pytest
import requests

from workload import KV

DELAY_MS = 200


def node_value(node, key):
    resp = requests.get(node.url + "/v1/kv/" + urllib.parse.quote(key,
                                                                   safe=""),
                        timeout=5)
    return resp.status_code, resp.content


@pytest.mark.parametrize("grace", ["default", "0"])
def test_a_slow_node_does_not_hold_keep_alive_clients(cluster_factory,
                                                      grace):
    c = cluster_factory(delayed={"c": DELAY_MS}, extra_location=(
        "" if grace == "default" else "simplekv_straggler_grace %s;" % grace))
    slow = c.router.slowdown
    link = c.proxies["c"]
    kv = KV(c.url, slow)
    assert kv.put("warm", b"w").status_code == 201
    link.on()

    # the link really is slow: one request through it takes a round trip
    t0 = time.monotonic()
    requests.get("http://127.0.0.1:%d/v1/health" % link.port, timeout=10)
    rtt = time.monotonic() - t0
    assert rtt >= 0.9 * 2 * DELAY_MS / 1000, rtt

    acked = {}
    took = []
    for i in range(24):
        key, value = "slow-%d" % i, b"value %d" % i
        t0 = time.monotonic()
        resp = kv.put(key, value)
        took.append(time.monotonic() - t0)
        assert resp.status_code == 201, (resp.status_code, resp.text[:200])
        acked[key] = value
    for i in range(12):
        t0 = time.monotonic()
        resp = kv.get("warm")
        took.append(time.monotonic() - t0)
        assert resp.status_code == 200 and resp.content == b"w"
    took.sort()
    median = took[len(took) // 2]
    print("FIGURES slow node (%.0f ms round trip): keep-alive request "
          "latency median %.1f ms, p90 %.1f ms, max %.1f ms" % (
              rtt * 1000, median * 1000, took[len(took) * 9 // 10] * 1000,
              took[-1] * 1000))
    if not c.router.valgrind:
        # a behavioural bound with a wide margin: held by the stragglers,
        # every request would take the slow node's round trip
        assert median < 0.1, (
            "with node c %d ms away, sequential keep-alive requests took "
            "%s s" % (DELAY_MS, ", ".join("%.3f" % t for t in took)))

    # every acknowledged write reaches the slow node, although the router
    # stopped waiting for its answers (no read of these keys ran: no read
    # repair could have brought them)
    deadline = time.monotonic() + 10 * slow
    missing = dict(acked)
    while missing and time.monotonic() < deadline:
        for key in list(missing):
            if node_value(c.nodes["c"], key) == (200, missing[key]):
                del missing[key]
        if missing:
            time.sleep(0.2)
    assert not missing, "writes missing on the slow node: %s" % sorted(
        missing)


def test_a_frozen_node_is_suspect_before_its_first_timeout(cluster_factory):
    """A frozen node leaves every detached request unanswered: once one
    worker holds NGX_HTTP_SIMPLEKV_ORPHANS_SUSPECT (16) of them, the node
    is suspect at once (reads stop asking it), long before the first of
    them times out.  Otherwise, under load, the worker's orphan cap would
    fill and stragglers would hold their clients for the replica timeout
    (the 'slow replica' rows of make bench: GET p99 0.66 s before)."""
    c = cluster_factory(replica_timeout="20s", workers=1)
    kv = KV(c.url, c.router.slowdown)
    for i in range(40):
        assert kv.put("frozen-%d" % i, b"v").status_code == 201
    c.freeze("c")
    start = time.monotonic()
    # writes go to every replica: each leaves one detached request to c
    for i in range(40):
        resp = kv.put("frozen-%d" % i, b"w")
        assert resp.status_code == 201, (resp.status_code, resp.text[:200])
    status = requests.get(c.url + "/_simplekv/status", timeout=10).json()
    node_c = [n for n in status["nodes"] if n["name"] == "c"][0]
    # the 20 s replica timeout cannot have made it suspect yet
    assert time.monotonic() - start < 15, "too slow to tell"
    assert node_c["suspect"], node_c
    assert node_c["timeouts"] == 0, node_c
