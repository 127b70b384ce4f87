"""Concurrent writers of one key: the newest version always wins, and no
reader ever sees a key go back to an older version."""

import random
import threading

from conftest import Client, seq_of, seq_version


def test_concurrent_writers_never_leave_older_version(node):
    d, c = node
    writers, per_writer = 8, 150
    versions = list(range(1, writers * per_writer + 1))
    random.Random(7).shuffle(versions)
    errors, results = [], []
    stop_reading = threading.Event()
    seen = []

    def writer(share):
        cl = Client(d.port)
        try:
            for n in share:
                v = seq_version(n)
                r = cl.put("hot", b"value-%d" % n, v)
                results.append((n, r.status, r.header("X-Simplekv-Version")))
        except Exception as e:  # reported below, never swallowed
            errors.append(repr(e))
        finally:
            cl.close()

    def reader():
        cl = Client(d.port)
        try:
            while not stop_reading.is_set():
                r = cl.get("hot")
                if r.status == 200:
                    n = seq_of(r.header("X-Simplekv-Version"))
                    assert r.body == b"value-%d" % n, "value/version mismatch"
                    seen.append(n)
        except Exception as e:
            errors.append(repr(e))
        finally:
            cl.close()

    shares = [versions[i::writers] for i in range(writers)]
    threads = [threading.Thread(target=writer, args=(s,)) for s in shares]
    rt = threading.Thread(target=reader)
    rt.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    stop_reading.set()
    rt.join(30)
    assert not errors, errors
    assert len(results) == len(versions)

    top = max(versions)
    for n, status, cur in results:
        cur_n = seq_of(cur)
        assert status in (201, 409), (n, status)
        if status == 201:
            assert cur_n == n
        else:
            assert cur_n > n, "409 must carry a newer version"
    # The newest write can never be refused.
    assert (top, 201, seq_version(top)) in results
    # Readers only ever saw versions go up.
    assert seen == sorted(seen), "a reader saw an older version come back"
    r = c.get("hot")
    assert r.header("X-Simplekv-Version") == seq_version(top)
    assert r.body == b"value-%d" % top


def test_concurrent_put_and_delete_mix(node):
    """PUTs and DELETEs of a few keys from many connections: each key ends
    with its highest version, a value or a tombstone as that write was."""
    d, c = node
    keys = ["k%d" % i for i in range(5)]
    ops = [(k, n, random.Random(n).random() < 0.3)
           for n in range(1, 1201) for k in [keys[n % 5]]]
    random.Random(3).shuffle(ops)
    errors = []

    def worker(share):
        cl = Client(d.port)
        try:
            for k, n, is_del in share:
                r = (cl.delete(k, seq_version(n)) if is_del
                     else cl.put(k, b"v%d" % n, seq_version(n)))
                assert r.status in (201, 204, 409), r
        except Exception as e:
            errors.append(repr(e))
        finally:
            cl.close()

    threads = [threading.Thread(target=worker, args=(ops[i::6],))
               for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    for k in keys:
        n, is_del = max((n, dl) for kk, n, dl in ops if kk == k)
        r = c.get(k)
        assert r.header("X-Simplekv-Version") == seq_version(n)
        if is_del:
            assert r.status == 404 and r.header("X-Simplekv-Tombstone") == "1"
        else:
            assert r.status == 200 and r.body == b"v%d" % n
    s = c.request("GET", "/v1/stats").json()
    assert s["keys"] + s["tombstones"] == 5
