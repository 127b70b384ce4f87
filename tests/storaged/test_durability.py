"""Durability: kill -9 loses no acknowledged write (both modes), a clean
restart keeps everything, and a full disk is refused without damage."""

import itertools
import random
import resource
import threading
import time

import pytest

from conftest import Client, seq_of, seq_version


def value_for(key, n, rng):
    # The value names its key and version so a mix-up cannot pass, and
    # varies in size so that records span pages.
    return (b"%s:%d:" % (key.encode(), n)) + b"p" * rng.randint(0, 1500)


def write_until_killed(d, min_acked, writers=6, keys_per_writer=250,
                       seed=None, first_version=1):
    """Writers hammer d; once at least min_acked writes were acknowledged
    (plus a random extra), kill -9 it mid-stream.  Returns {key: highest
    acknowledged version number}."""
    rng = random.Random(seed)
    counter = itertools.count(first_version)
    lock = threading.Lock()
    acked = {}
    n_acked = [0]
    errors = []
    target = min_acked + rng.randint(0, min_acked // 2)
    reached = threading.Event()

    def writer(w):
        wr = random.Random(w)
        cl = Client(d.port, timeout=10)
        try:
            while True:
                key = "w%d-%d" % (w, wr.randrange(keys_per_writer))
                with lock:
                    n = next(counter)
                if wr.random() < 0.1:
                    r = cl.delete(key, seq_version(n))
                    ok = r.status == 204
                else:
                    r = cl.put(key, value_for(key, n, wr), seq_version(n))
                    ok = r.status == 201
                if not ok:
                    errors.append("unexpected %r" % r)
                    return
                with lock:
                    if n > acked.get(key, (0, False))[0]:
                        acked[key] = (n, r.status == 204)
                    n_acked[0] += 1
                    if n_acked[0] >= target:
                        reached.set()
        except (OSError, Exception):
            return          # the daemon was killed under us: expected
        finally:
            cl.close()

    threads = [threading.Thread(target=writer, args=(w,))
               for w in range(writers)]
    for t in threads:
        t.start()
    deadline = time.time() + 120
    while not reached.wait(0.1):
        assert not errors, errors[:3]
        assert any(t.is_alive() for t in threads), "all writers stopped"
        assert time.time() < deadline, "only %d acknowledged" % n_acked[0]
    time.sleep(rng.random() * 0.05)    # a random moment, mid-stream
    d.kill9()
    for t in threads:
        t.join(30)
    assert not errors, errors[:3]
    assert n_acked[0] >= min_acked
    return acked, n_acked[0]


def check_all_present(d, acked):
    c = Client(d.port)
    for key, (n, deleted) in acked.items():
        r = c.get(key)
        got = r.header("X-Simplekv-Version")
        assert got is not None, "acknowledged write of %s lost" % key
        got_n = seq_of(got)
        assert got_n >= n, "%s: acknowledged %d, found %d" % (key, n, got_n)
        if got_n == n:
            if deleted:
                assert r.status == 404
                assert r.header("X-Simplekv-Tombstone") == "1"
            else:
                assert r.status == 200
                assert r.body.startswith(b"%s:%d:" % (key.encode(), n))
        elif r.status == 200:
            # A newer, unacknowledged write landed: still self-consistent.
            assert r.body.startswith(b"%s:%d:" % (key.encode(), got_n))
    c.close()


@pytest.mark.parametrize("durability", ["process", "fsync"])
def test_kill9_loses_no_acknowledged_write(daemons, durability):
    d = daemons.start(durability=durability)
    acked, n = write_until_killed(d, 2000, seed=durability)
    assert not d.alive()
    d.start(timeout=60)                # DB_RECOVER replays the log
    check_all_present(d, acked)
    # The database is fully usable after recovery.
    c = Client(d.port)
    assert c.put("after-crash", b"ok", seq_version(10 ** 9)).status == 201
    s = c.request("GET", "/v1/stats").json()
    assert s["keys"] + s["tombstones"] == len(acked) + 1 or \
        s["keys"] + s["tombstones"] >= len(acked) + 1


@pytest.mark.parametrize("durability", ["process", "fsync"])
def test_durability_mode_decides_log_syncs(daemons, durability):
    """fsync mode flushes the log at every commit; process mode writes it
    to the kernel at every commit but does not flush it."""
    d = daemons.start(durability=durability)
    c = Client(d.port)
    before = c.request("GET", "/v1/stats").json()["log"]
    for i in range(50):
        assert c.put("s%d" % i, b"v", seq_version(i + 1)).status == 201
    after = c.request("GET", "/v1/stats").json()["log"]
    writes = after["writes"] - before["writes"]
    syncs = after["syncs"] - before["syncs"]
    assert writes >= 50
    if durability == "fsync":
        assert syncs >= 50
    else:
        assert syncs < 5


def test_repeated_crashes(daemons):
    d = daemons.start()
    all_acked = {}
    for round_ in range(3):
        acked, _ = write_until_killed(d, 400, seed=round_,
                                      first_version=1 + round_ * 10 ** 6)
        for k, v in acked.items():
            if v[0] > all_acked.get(k, (0, False))[0]:
                all_acked[k] = v
        d.start(timeout=60)
    check_all_present(d, all_acked)


def test_clean_restart_keeps_everything(daemons):
    d = daemons.start()
    c = Client(d.port)
    rng = random.Random(5)
    expect = {}
    for i in range(500):
        key = "%%%02X-key-%d" % (i % 256, i)
        val = bytes(rng.randrange(256) for _ in range(rng.randint(0, 300)))
        assert c.put(key, val, seq_version(i + 1), "app/x-%d" % i).status \
            == 201
        expect[key] = (seq_version(i + 1), val, "app/x-%d" % i)
    for i in range(0, 500, 10):
        key = "%%%02X-key-%d" % (i % 256, i)
        assert c.delete(key, seq_version(1000 + i)).status == 204
        expect[key] = (seq_version(1000 + i), None, None)
    listing = c.request("GET", "/v1/keys").body
    c.close()
    assert d.stop() == 0
    d.start()
    c = Client(d.port)
    assert c.request("GET", "/v1/keys").body == listing
    for key, (ver, val, ct) in expect.items():
        r = c.get(key)
        assert r.header("X-Simplekv-Version") == ver
        if val is None:
            assert r.status == 404 and r.header("X-Simplekv-Tombstone") == "1"
        else:
            assert r.status == 200 and r.body == val
            assert r.header("Content-Type") == ct


def test_sigterm_under_load_finishes_in_flight_requests(daemons):
    """Requests answered before or during shutdown are all durable."""
    d = daemons.start()
    acked, lock, stop = {}, threading.Lock(), threading.Event()
    counter = itertools.count(1)

    def writer(w):
        cl = Client(d.port, timeout=10)
        try:
            while not stop.is_set():
                with lock:
                    n = next(counter)
                key = "s%d-%d" % (w, n % 100)
                r = cl.put(key, b"%d" % n, seq_version(n))
                if r.status == 201:
                    with lock:
                        acked[key] = max(acked.get(key, 0), n)
                elif r.status == 503:
                    return      # shutting down: refused, not applied
        except OSError:
            return
        finally:
            cl.close()

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    assert d.stop() == 0
    stop.set()
    for t in threads:
        t.join(30)
    assert acked
    d.start()
    c = Client(d.port)
    for key, n in acked.items():
        got = c.get(key).header("X-Simplekv-Version")
        assert got is not None and seq_of(got) >= n, key


def test_disk_full_is_507_and_database_stays_usable(daemons, tmp_path):
    """A file size limit (RLIMIT_FSIZE, no root needed) makes the log write
    fail like a full disk: writes get 507, reads keep working, and after a
    restart without the limit every acknowledged write is there and new
    writes succeed."""
    limit = 3 << 20

    def limit_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    data = str(tmp_path / "full")
    d = daemons.start(data_dir=data, preexec_fn=limit_files)
    c = Client(d.port)
    value = bytes(random.Random(1).randrange(256) for _ in range(100000))
    acked, refused = [], 0
    for i in range(1, 80):
        r = c.put("big%d" % i, value, seq_version(i))
        if r.status == 201:
            acked.append(i)
        else:
            assert r.status == 507, r
            assert r.json()["error"] == "insufficient storage"
            refused += 1
            if refused >= 3:
                break
    assert refused >= 3, "the file size limit was never hit"
    assert acked, "nothing could be written at all"
    # Reads still work, the daemon is healthy, and nothing half-written.
    assert c.request("GET", "/v1/health").status == 200
    for i in acked:
        assert c.get("big%d" % i).body == value
    assert c.get("big%d" % (acked[-1] + 1)).status == 404
    c.close()
    d.stop()

    d2 = daemons.start(data_dir=data)
    c = Client(d2.port)
    for i in acked:
        r = c.get("big%d" % i)
        assert r.status == 200 and r.body == value
    assert c.get("big%d" % (acked[-1] + 1)).status == 404
    assert c.put("after", b"ok", seq_version(1000)).status == 201
    assert c.get("after").body == b"ok"
