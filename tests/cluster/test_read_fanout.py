"""simplekv_read_fanout quorum (the default): a read asks only max(R, W)
replicas first.  It must cost fewer replica requests than asking all N
(`simplekv_read_fanout all`), and still answer every read while one asked
replica is frozen: the others are then asked after simplekv_read_hedge,
or at the replica timeout with hedging off."""

import time

import requests

QUORUM_READS = "simplekv_read_fanout quorum;"
# exact request counts: no hedge may fire on a loaded machine
NO_HEDGE = "simplekv_read_hedge 0;"
ALL_READS = "simplekv_read_fanout all;"
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
    c = cluster_factory(extra_location=QUORUM_READS + NO_HEDGE)
    # 100 reads at N=3, R=2, W=2: two replica requests each
    assert _reads_cost(c) == 200


def test_default_fanout_is_quorum(cluster_factory):
    c = cluster_factory(extra_location=NO_HEDGE)
    assert _reads_cost(c) == 200


def test_all_fanout_asks_all_three(cluster_factory):
    c = cluster_factory(extra_location=ALL_READS)
    assert _reads_cost(c) == 300


def test_hedged_reads_do_not_wait_for_a_frozen_replica(cluster_factory):
    """With the default hedge (20 ms), a read whose first two replicas
    include a frozen one asks the third instead of waiting for the
    replica timeout.  A fresh connection per read: the frozen replica's
    straggler may hold a keep-alive connection."""
    c = cluster_factory(replica_timeout="3s")
    for k in KEYS:
        assert requests.put(c.url + "/" + k, data=k.encode(),
                            timeout=10).status_code == 201
    c.freeze("b")
    took = []
    for k in KEYS:
        start = time.monotonic()
        r = requests.get(c.url + "/" + k, timeout=10)
        took.append(time.monotonic() - start)
        assert (r.status_code, r.content) == (200, k.encode()), k
    # none waited for the 3 s timeout (1.5 s: a wide margin for load)
    assert max(took) < 1.5 * c.router.slowdown, took
    assert _status(c)["read_hedges"] >= 1


def test_quorum_fanout_reads_succeed_with_a_frozen_replica(cluster_factory):
    c = cluster_factory(extra_location=QUORUM_READS + NO_HEDGE)
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
