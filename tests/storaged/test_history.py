"""X-Simplekv-Held: whether a node that refuses a write with 409 ever held
the write's version (docs/protocol.md, "X-Simplekv-Held"), from the
version history each index entry keeps; old 25-byte index entries
(written here with the legacy_index helper) are read and upgraded."""

import os
import subprocess
import time

from conftest import EPOCH_UNIX_MS, Client, seq_version, version

HELPER = os.environ.get("SKV_LEGACY_INDEX") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "tests", "storaged",
    "legacy_index")


def V(n):
    return seq_version(n)


def now_ms():
    return int(time.time() * 1000) - EPOCH_UNIX_MS


def held(c, key, ver, method="PUT", status=409):
    """Write ver to key, expect status; return X-Simplekv-Held."""
    if method == "PUT":
        r = c.put(key, b"refused", ver)
    else:
        r = c.delete(key, ver)
    assert r.status == status, (ver, r)
    if status == 409:
        assert r.json()["error"] == "conflict"
    return r.header("X-Simplekv-Held")


def helper(*args):
    out = subprocess.run([HELPER] + [str(a) for a in args], check=True,
                         capture_output=True, timeout=60)
    return out.stdout.decode().strip()


def listing(c):
    r = c.request("GET", "/v1/keys")
    assert r.status == 200, r
    return [tuple(l.split("\t")) for l in r.body.decode().splitlines()]


def test_held_yes_no_unknown_through_seven_versions(node):
    d, c = node
    for n in (10, 20, 30):
        r = c.put("h", b"v%d" % n, V(n))
        assert r.status == 201 and r.header("X-Simplekv-Held") is None
    # History [20, 10], complete: it reaches the first version stored.
    assert held(c, "h", V(20)) == "yes"
    assert held(c, "h", V(10), "DELETE") == "yes"
    assert held(c, "h", V(25)) == "no"      # between two recorded ones
    assert held(c, "h", V(15), "DELETE") == "no"
    assert held(c, "h", V(5)) == "no"       # before the first stored
    r = c.put("h", b"v30", V(30))
    assert r.status == 200 and r.header("X-Simplekv-Held") == "yes"
    for n in (40, 50, 60, 70):
        assert c.put("h", b"v%d" % n, V(n)).status == 201
    # History [60, 50, 40, 30]: 20 and 10 fell off, it is not complete.
    for _ in range(2):
        r = c.put("h", b"x", V(40))
        assert r.status == 409 and r.header("X-Simplekv-Version") == V(70)
        assert r.header("X-Simplekv-Held") == "yes"
        assert held(c, "h", V(30)) == "yes"
        assert held(c, "h", V(35)) == "no"   # above the oldest recorded
        assert held(c, "h", V(65), "DELETE") == "no"
        assert held(c, "h", V(20)) == "unknown"  # held, but fell off
        assert held(c, "h", V(25)) == "unknown"  # never held: cannot tell
        assert held(c, "h", V(1)) == "unknown"
        # The history is stored: the same answers after a restart.
        c.close()
        d.restart()
    r = c.get("h")
    assert r.body == b"v70" and r.header("X-Simplekv-Version") == V(70)


def test_tombstones_in_the_history(node):
    d, c = node
    assert c.put("t", b"a", V(10)).status == 201
    assert c.delete("t", V(20)).status == 204
    assert c.put("t", b"c", V(30)).status == 201
    assert held(c, "t", V(20)) == "yes"
    assert held(c, "t", V(20), "DELETE") == "yes"
    assert held(c, "t", V(10), "DELETE") == "yes"
    assert held(c, "t", V(15)) == "no"
    assert held(c, "t", V(5), "DELETE") == "no"
    # A tombstone as the current version.
    assert c.delete("t", V(40)).status == 204
    assert held(c, "t", V(35)) == "no"
    assert held(c, "t", V(30)) == "yes"
    r = c.delete("t", V(40))
    assert r.status == 200 and r.header("X-Simplekv-Held") == "yes"
    for n in (50, 60, 70):
        assert c.put("t", b"x", V(n)).status == 201
    # History [60, 50, 40, 30]: the tombstone 40 still there, 20 gone.
    assert held(c, "t", V(40), "DELETE") == "yes"
    assert held(c, "t", V(45)) == "no"
    assert held(c, "t", V(20)) == "unknown"


def test_held_no_for_an_origin_the_key_never_held(node):
    """Past the history, the newest version held from each origin (router
    clock) still answers "no": a version above its origin's maximum, or of
    an origin the key never held (a second router's first write to a key
    the first router has overwritten many times since), was never held
    here.  Older versions of an origin the key held stay "unknown"."""
    d, c = node
    A, B, C, D, E = 0xA1, 0xB2, 0xC3, 0xD4, 0xE5
    for n in range(10, 80, 10):
        assert c.put("o", b"a%d" % n,
                     seq_version(n, origin=A)).status == 201
    # History [60..30] of origin A: the history alone says "unknown" below
    # 30, whatever the origin.
    assert held(c, "o", seq_version(5, origin=B)) == "no"
    assert held(c, "o", seq_version(15, origin=A)) == "unknown"
    assert held(c, "o", seq_version(75, origin=A), status=201) is None
    assert held(c, "o", seq_version(70, origin=A)) == "yes"
    # Origin A's maximum is now 75: 72 of A is below it but above the
    # oldest recorded (40), so "no" from the history; 25 is "unknown".
    assert held(c, "o", seq_version(72, origin=A)) == "no"
    assert held(c, "o", seq_version(25, origin=A), "DELETE") == "unknown"
    # Kept across a restart.
    c.close()
    d.restart()
    assert held(c, "o", seq_version(5, origin=C)) == "no"
    # Origins B, C, D written once each, then four more of A: the history
    # holds only A again, the maxima A, B, C, D.
    for n, o in ((80, B), (90, C), (100, D)):
        assert c.put("o", b"x", seq_version(n, origin=o)).status == 201
    for n in (110, 120, 130, 140):
        assert c.put("o", b"a", seq_version(n, origin=A)).status == 201
    assert held(c, "o", seq_version(80, origin=B)) == "yes"     # B's max
    assert held(c, "o", seq_version(79, origin=B)) == "unknown"
    assert held(c, "o", seq_version(85, origin=B)) == "no"      # above it
    assert held(c, "o", seq_version(50, origin=E)) == "no"      # never
    # A fifth origin: the oldest maximum (B's) falls out, and an origin
    # the maxima do not list may have been held.
    assert c.put("o", b"e", seq_version(150, origin=E)).status == 201
    for n in (160, 170, 180, 190):
        assert c.put("o", b"a", seq_version(n, origin=A)).status == 201
    assert held(c, "o", seq_version(85, origin=B)) == "unknown"
    assert held(c, "o", seq_version(50, origin=0xF6)) == "unknown"
    assert held(c, "o", seq_version(95, origin=C)) == "no"
    assert held(c, "o", seq_version(150, origin=E)) == "yes"
    c.close()


def test_format_2_entries_gain_origin_maxima(daemons):
    """An entry of format 2 (history, no maxima) gets them from what it
    records at its next write: complete when its history reaches the
    first version, else only for the origins it records."""
    A, B = 0xA1, 0xB2
    d = daemons.start()
    c = Client(d.port)
    for n in (2, 3, 4):         # history [3, 2], complete
        assert c.put("f", b"v", seq_version(n, origin=A)).status == 201
    for n in range(1, 7):       # history [5, 4, 3, 2], not complete
        assert c.put("g", b"v", seq_version(n, origin=A)).status == 201
    c.close()
    d.stop()
    for key, history in (("f", 2), ("g", 4)):
        helper("format2", d.data_dir, key)
        assert helper("size", d.data_dir, key) == str(27 + 16 * history)
    d.start()
    c = Client(d.port)
    assert held(c, "f", seq_version(1, origin=B)) == "no"   # complete
    assert held(c, "g", seq_version(1, origin=B)) == "unknown"
    for n in range(10, 15):     # both histories overflow
        for key in ("f", "g"):
            assert c.put(key, b"w", seq_version(n, origin=A)).status == 201
    assert held(c, "f", seq_version(1, origin=B)) == "no"
    assert held(c, "g", seq_version(1, origin=B)) == "unknown"
    assert held(c, "g", seq_version(4, origin=A)) == "unknown"
    c.close()
    d.stop()
    assert helper("size", d.data_dir, "f") == str(27 + 16 * 4 + 1 + 16)


def test_legacy_entries_read_list_and_upgrade(daemons):
    d = daemons.start()
    d.stop()
    helper("put", d.data_dir, "old", V(50), "legacy")
    helper("delete", d.data_dir, "oldtomb", V(50))
    assert helper("size", d.data_dir, "old") == "25"
    d.start()
    c = Client(d.port)
    r = c.get("old")
    assert r.status == 200 and r.body == b"legacy"
    assert r.header("X-Simplekv-Version") == V(50)
    r = c.get("oldtomb")
    assert r.status == 404 and r.header("X-Simplekv-Tombstone") == "1"
    assert listing(c) == [(V(50), "0", "old"), (V(50), "1", "oldtomb")]
    s = c.request("GET", "/v1/stats").json()
    assert (s["keys"], s["tombstones"], s["bytes"]) == (1, 1, 6), s
    # Nothing is known of what came before the legacy entry.
    assert held(c, "old", V(40)) == "unknown"
    assert held(c, "oldtomb", V(40), "DELETE") == "unknown"
    r = c.put("old", b"legacy", V(50))
    assert r.status == 200 and r.header("X-Simplekv-Held") == "yes"
    # The next write upgrades the entry: history [50], not complete.
    assert c.put("old", b"new", V(60)).status == 201
    assert c.delete("oldtomb", V(60)).status == 204
    c.close()
    d.stop()
    # Format 3: history [50], origin maxima [60] (the one origin).
    assert helper("size", d.data_dir, "old") == str(27 + 16 + 1 + 16)
    assert helper("size", d.data_dir, "oldtomb") == str(27 + 16 + 1 + 16)
    d.start()
    c = Client(d.port)
    assert held(c, "old", V(50)) == "yes"
    assert held(c, "old", V(55)) == "no"
    assert held(c, "old", V(45)) == "unknown"
    assert held(c, "oldtomb", V(50)) == "yes"
    assert held(c, "oldtomb", V(55), "DELETE") == "no"
    assert c.get("old").body == b"new"
    assert listing(c) == [(V(60), "0", "old"), (V(60), "1", "oldtomb")]
    s = c.request("GET", "/v1/stats").json()
    assert (s["keys"], s["tombstones"], s["bytes"]) == (1, 1, 3), s
    c.close()


def test_legacy_tombstone_is_purged(daemons):
    d = daemons.start()
    d.stop()
    helper("delete", d.data_dir, "lt", version(ms=now_ms() - 60000))
    # --accept-stale-data: the stop, the helper and the start can take
    # longer than the 1 s grace on a loaded machine, and then the node
    # would refuse to rejoin (tests/storaged/test_rejoin.py), which is not
    # what this test is about
    d = daemons.start(data_dir=d.data_dir,
                      extra_args=["--tombstone-grace", "1",
                                  "--accept-stale-data"])
    c = Client(d.port)
    c.set_repair_watermark(version())   # no purge without one
    deadline = time.time() + 15
    while c.get("lt").header("X-Simplekv-Tombstone") and \
            time.time() < deadline:
        time.sleep(0.2)
    assert c.request("GET", "/v1/stats").json()["tombstones_purged"] == 1
    assert listing(c) == []


def test_grace_makes_old_versions_unknown(daemons):
    """With --tombstone-grace a purged key may have held any version older
    than now minus the grace: no "no" below that, even with a complete
    history.  Without it the same history answers "no"."""
    t = now_ms()
    first, last = version(ms=t - 3 * 3600000), version(ms=t - 60000)
    between = version(ms=t - 2 * 3600000)
    before = version(ms=t - 4 * 3600000)
    recent = version(ms=t - 120000)
    for grace in (["--tombstone-grace", "1h"], []):
        d = daemons.start(extra_args=grace)
        c = Client(d.port)
        assert c.put("g", b"1", first).status == 201
        assert c.put("g", b"2", last).status == 201
        expect = "unknown" if grace else "no"
        assert held(c, "g", between) == expect
        assert held(c, "g", before, "DELETE") == expect
        assert held(c, "g", recent) == "no"
        assert held(c, "g", first) == "yes"
        c.close()


def wait_purged(c, key, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = c.get(key)
        if r.status == 404 and r.header("X-Simplekv-Version") is None:
            return
        time.sleep(0.2)
    raise AssertionError("%s was not purged" % key)


def test_purge_watermark_survives_restart_without_grace(daemons):
    """A purged tombstone takes the key's history with it.  The versions it
    held are below the purge watermark, kept in meta.db: even restarted
    without --tombstone-grace, storaged answers "unknown" for them."""
    d = daemons.start(extra_args=["--tombstone-grace", "1"])
    c = Client(d.port)
    c.set_repair_watermark(version())   # no purge without one
    gone_v = version(ms=now_ms() - 60000)
    assert c.put("w", b"old", version(ms=now_ms() - 120000)).status == 201
    assert c.delete("w", gone_v).status == 204
    wait_purged(c, "w")
    c.close()
    d.stop()
    d = daemons.start(data_dir=d.data_dir)
    c = Client(d.port)
    fresh = version()
    assert c.put("w", b"new", fresh).status == 201
    # Held before the purge: the (complete) new history does not know it.
    assert held(c, "w", gone_v) == "unknown"
    # Newer than the watermark, never held.
    just_before = "%016x%s" % (int(fresh[:16], 16) - 1, fresh[16:])
    assert held(c, "w", just_before) == "no"
    c.close()


def test_unordered_history_after_a_future_version(daemons):
    """Replacing an invalid future version goes backwards: the entry is
    marked unordered, only a complete history answers "no", and its
    tombstone is never purged (its history would be lost)."""
    t = now_ms()
    ahead = version(ms=t + 600000, origin=0xB7)
    d = daemons.start(extra_args=["--max-clock-skew", "0"])
    c = Client(d.port)
    assert c.put("u", b"poison", ahead).status == 201
    c.close()
    d.stop()
    d = daemons.start(data_dir=d.data_dir)
    c = Client(d.port)
    assert c.delete("u", version(ms=t - 60000)).status == 204  # replaces it
    # History [ahead], complete.
    assert held(c, "u", version(ms=t - 120000)) == "no"
    assert held(c, "u", ahead, status=400) is None   # from the future
    later = [version(ms=t - s * 1000) for s in (50, 40, 30, 20)]
    for v in later:
        assert c.put("u", b"x", v).status == 201
    # History [-30 s, -40 s, -50 s, -60 s]; ahead fell off.  Ordered, a
    # version above the oldest recorded would be "no".
    assert held(c, "u", version(ms=t - 45000)) == "unknown"
    assert held(c, "u", later[1]) == "yes"
    assert c.delete("u", version(ms=t - 10000)).status == 204
    c.close()
    d.stop()
    # --accept-stale-data: the stop, the helper and the start can take
    # longer than the 1 s grace on a loaded machine, and then the node
    # would refuse to rejoin (tests/storaged/test_rejoin.py), which is not
    # what this test is about
    d = daemons.start(data_dir=d.data_dir,
                      extra_args=["--tombstone-grace", "1",
                                  "--accept-stale-data"])
    c = Client(d.port)
    c.set_repair_watermark(version())   # no purge without one
    assert c.delete("other", version(ms=t - 10000)).status == 204
    wait_purged(c, "other")
    time.sleep(2.5)     # at least one more sweep
    r = c.get("u")
    assert r.status == 404 and r.header("X-Simplekv-Tombstone") == "1"
    assert c.request("GET", "/v1/stats").json()["tombstones_purged"] == 1
    c.close()
