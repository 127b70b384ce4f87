"""simplekv_read_fanout quorum: a read asks only max(R, W) replicas first.
It must cost fewer replica requests than asking all N, and still answer
every read while one asked replica is frozen (the others are then asked
too)."""

import time

import requests

QUORUM_READS = "simplekv_read_fanout quorum;"
KEYS = ["fan-%d" % i for i in range(20)]
REPLICA_TIMEOUT = 1.0   # the Router default, simplekv_replica_timeout 1s


def _status(c):
    return requests.get(c.url + "/_simplekv/status", timeout=10).json()


def _replica_requests(status):
    return sum(n["successes"] + n["failures"] + n["timeouts"]
               for n in status["nodes"])


def _settled(c, puts, gets):
    """The status once `puts` PUTs (201) and `gets` GETs (200) have been
    counted.  The router counts a client request in nginx's log phase,
    after its last background replica subrequest has finished, so from
    then on no straggler of these requests can still add to the replica
    counts.  Polls with a generous deadline instead of sleeping."""
    deadline = time.monotonic() + 10 * c.router.slowdown
    while True:
        status = _status(c)
        done = status["requests"]
        if (done.get("PUT", {}).get("201", 0) >= puts
                and done.get("GET", {}).get("200", 0) >= gets):
            return status
        assert time.monotonic() < deadline, (
            "router did not count %d PUTs and %d GETs: %r"
            % (puts, gets, done))
        time.sleep(0.02)


def _reads_cost(c):
    s = requests.Session()
    for k in KEYS:
        assert s.put(c.url + "/" + k, data=k.encode(),
                     timeout=10).status_code == 201
    before = _replica_requests(_settled(c, len(KEYS), 0))
    for _ in range(5):
        for k in KEYS:
            r = s.get(c.url + "/" + k, timeout=10)
            assert r.status_code == 200 and r.content == k.encode()
    after = _replica_requests(_settled(c, len(KEYS), 5 * len(KEYS)))
    return after - before


def test_quorum_fanout_asks_two_of_three(cluster_factory):
    c = cluster_factory(extra_location=QUORUM_READS)
    # 100 reads at N=3, R=2, W=2: two replica requests each
    assert _reads_cost(c) == 200


def test_default_fanout_asks_all_three(cluster_factory):
    c = cluster_factory()
    assert _reads_cost(c) == 300


def test_quorum_fanout_reads_succeed_with_a_frozen_replica(cluster_factory):
    c = cluster_factory(extra_location=QUORUM_READS)
    s = requests.Session()
    for k in KEYS:
        assert s.put(c.url + "/" + k, data=k.encode(),
                     timeout=10).status_code == 201
    c.freeze("b")
    for k in KEYS:
        start = time.monotonic()
        r = s.get(c.url + "/" + k, timeout=10)
        took = time.monotonic() - start
        assert r.status_code == 200, (k, r.status_code, r.text)
        assert r.content == k.encode()
        # at worst one round lost to the frozen replica (the replica
        # timeout) before the others answer; the rest of the work is
        # nginx's, slower under valgrind
        assert took < REPLICA_TIMEOUT + 1.5 * c.router.slowdown, (k, took)
