"""Concurrent writes to one key through one router with several workers,
while one of three nodes is down: every write must succeed.  Only two
replicas are left, so a write needs both; when a newer concurrent write
from another worker overtakes it on one of them (409), the write still
completes, because all workers of a router share one clock and origin and
the router knows the newer write began after it."""

import threading

import requests

THREADS = 8
WRITES = 60


def test_contended_writes_with_a_node_down_all_succeed(cluster_factory):
    c = cluster_factory(workers=2)
    c.kill9("c")
    failures = []
    successes = []

    def writer(t):
        s = requests.Session()
        for i in range(WRITES):
            r = s.put(c.url + "/hot", data=("t%d-%d" % (t, i)).encode(),
                      timeout=10)
            (successes if r.status_code == 201 else failures).append(
                (r.status_code, r.text))

    threads = [threading.Thread(target=writer, args=(t,))
               for t in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert failures == [], "%d of %d writes failed, e.g. %r" % (
        len(failures), THREADS * WRITES, failures[0])
    status = requests.get(c.url + "/_simplekv/status", timeout=10).json()
    # the contention was real: replicas refused overtaken writes
    assert len(successes) == THREADS * WRITES
    assert status["write_retries"] == 0
