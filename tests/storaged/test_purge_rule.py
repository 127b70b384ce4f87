"""The tombstone purge rule (docs/protocol.md, "Durability and
lifecycle"): a tombstone is purged only when it is older than
--tombstone-grace AND its version is below the repair watermark, and never
while the epoch window is a transition (min < max).  No watermark: no
purge at all, whatever the grace."""

import time

from conftest import EPOCH_UNIX_MS, Client, version


def now_ms():
    return int(time.time() * 1000) - EPOCH_UNIX_MS


def tomb(c, key):
    r = c.get(key)
    assert r.status == 404, r
    return r.header("X-Simplekv-Tombstone") == "1"


def wait_purged(c, key, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not tomb(c, key):
            return
        time.sleep(0.2)
    raise AssertionError("%s was not purged" % key)


def sweeps(c, n=3):
    """Let the background purge (every second with a 1 s grace) run a few
    times."""
    time.sleep(n + 0.5)


def test_no_watermark_no_purge(daemons):
    d = daemons.start(extra_args=["--tombstone-grace", "1"])
    c = Client(d.port)
    assert c.delete("ancient", version(ms=now_ms() - 30 * 86400000)) \
        .status == 204
    sweeps(c)
    assert tomb(c, "ancient")
    s = c.stats()
    assert (s["tombstones"], s["tombstones_purged"]) == (1, 0)
    c.close()


def test_only_tombstones_below_the_watermark(daemons):
    d = daemons.start(extra_args=["--tombstone-grace", "1"])
    c = Client(d.port)
    t = now_ms()
    below, above = version(ms=t - 60000), version(ms=t - 30000)
    at = version(ms=t - 45000)
    assert c.delete("below", below).status == 204
    assert c.delete("above", above).status == 204
    assert c.delete("at", at).status == 204
    assert c.put("live", b"v", version(ms=t - 90000)).status == 201
    c.set_repair_watermark(at)      # "at" is not below it
    wait_purged(c, "below")
    sweeps(c, 2)
    assert tomb(c, "above") and tomb(c, "at")
    assert c.get("live").status == 200
    s = c.stats()
    assert (s["tombstones"], s["tombstones_purged"], s["keys"]) == (2, 1, 1)
    # Raised past them: purged too.
    c.set_repair_watermark(version())
    wait_purged(c, "above")
    wait_purged(c, "at")
    assert c.stats()["tombstones_purged"] == 3
    c.close()


def test_grace_still_applies(daemons):
    d = daemons.start(extra_args=["--tombstone-grace", "1h"])
    c = Client(d.port)
    t = now_ms()
    assert c.delete("young", version(ms=t - 60000)).status == 204
    assert c.delete("old", version(ms=t - 2 * 3600000)).status == 204
    c.set_repair_watermark(version())
    # A 1 h grace sweeps every 10 s.
    wait_purged(c, "old", timeout=30)
    assert tomb(c, "young")
    c.close()


def test_no_purge_during_a_transition(daemons):
    d = daemons.start(extra_args=["--tombstone-grace", "1"])
    c = Client(d.port)
    assert c.put_json("/v1/epochs", {"min": 4, "max": 5}).status == 200
    e = {"X-Simplekv-Epoch": "5"}
    old = version(ms=now_ms() - 60000)
    r = c.request("DELETE", "/v1/kv/gone", None,
                  dict(e, **{"X-Simplekv-Version": old}))
    assert r.status == 204, r
    c.set_repair_watermark(version())
    sweeps(c)
    r = c.request("GET", "/v1/kv/gone", None, e)
    assert r.status == 404 and r.header("X-Simplekv-Tombstone") == "1"
    assert c.stats()["tombstones_purged"] == 0
    # The transition ends (min == max): purging resumes.
    assert c.put_json("/v1/epochs", {"min": 5, "max": 5}).status == 200
    deadline = time.time() + 15
    while c.stats()["tombstones_purged"] == 0 and time.time() < deadline:
        time.sleep(0.2)
    r = c.request("GET", "/v1/kv/gone", None, e)
    assert r.status == 404 and r.header("X-Simplekv-Version") is None, r
    c.close()


def test_purged_key_answers_unknown_with_the_new_rule(daemons):
    """The purge watermark still covers what a purged tombstone's key held,
    across a restart with the watermark and the window kept."""
    d = daemons.start(extra_args=["--tombstone-grace", "1"])
    c = Client(d.port)
    t = now_ms()
    held_v, gone_v = version(ms=t - 120000), version(ms=t - 60000)
    assert c.put("w", b"old", held_v).status == 201
    assert c.delete("w", gone_v).status == 204
    c.set_repair_watermark(version())
    wait_purged(c, "w")
    c.close()
    d.stop()
    d = daemons.start(data_dir=d.data_dir)
    c = Client(d.port)
    assert c.put("w", b"new", version()).status == 201
    for v in (held_v, gone_v):
        r = c.put("w", b"x", v)
        assert r.status == 409 and r.header("X-Simplekv-Held") == "unknown"
    c.close()
