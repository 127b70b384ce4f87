"""The router <-> storaged protocol (docs/protocol.md), case by case."""

import time
import urllib.parse

import pytest

from conftest import SANITIZED, Client, seq_version, version

V1, V2, V3 = seq_version(1), seq_version(2), seq_version(3)


def enc(key: bytes) -> str:
    """Percent-encode every byte but the unreserved ones (skv_key_encode)."""
    return urllib.parse.quote_from_bytes(key, safe="-._~")


def test_put_then_get_returns_value_type_and_version(node):
    d, c = node
    r = c.put("hello", b"hello world", V1, "text/plain")
    assert r.status == 201, r
    assert r.header("X-Simplekv-Version") == V1
    r = c.get("hello")
    assert r.status == 200
    assert r.body == b"hello world"
    assert r.header("Content-Type") == "text/plain"
    assert r.header("X-Simplekv-Version") == V1


def test_head_has_headers_and_no_body(node):
    d, c = node
    c.put("h", b"12345", V1, "application/x-test")
    r = c.get("h", method="HEAD")
    assert r.status == 200
    assert r.body == b""
    assert r.header("Content-Length") == "5"
    assert r.header("Content-Type") == "application/x-test"
    assert r.header("X-Simplekv-Version") == V1
    r = c.get("nope", method="HEAD")
    assert r.status == 404 and r.body == b""


def test_default_content_type_and_empty_value(node):
    d, c = node
    assert c.put("empty", b"", V1).status == 201
    r = c.get("empty")
    assert r.status == 200 and r.body == b""
    assert r.header("Content-Type") == "application/octet-stream"


def test_never_seen_key_is_404_without_version(node):
    d, c = node
    r = c.get("missing")
    assert r.status == 404
    assert r.header("X-Simplekv-Version") is None
    assert r.header("X-Simplekv-Tombstone") is None
    assert r.json()["error"] == "not found"


def test_put_rules_201_200_409(node):
    d, c = node
    assert c.put("k", b"two", V2).status == 201
    # The same version again: already stored, nothing changes.
    r = c.put("k", b"two", V2)
    assert r.status == 200 and r.header("X-Simplekv-Version") == V2
    # An older version: refused with the newer one.
    r = c.put("k", b"one", V1)
    assert r.status == 409
    assert r.header("X-Simplekv-Version") == V2
    assert r.json()["error"] == "conflict"
    assert c.get("k").body == b"two"
    # A newer one replaces it.
    assert c.put("k", b"three", V3).status == 201
    r = c.get("k")
    assert r.body == b"three" and r.header("X-Simplekv-Version") == V3


def test_versions_compare_by_hlc_then_origin(node):
    d, c = node
    a = version(ms=1000, logical=1, origin=5)
    b = version(ms=1000, logical=1, origin=6)   # same hlc, higher origin
    e = version(ms=1000, logical=2, origin=1)   # higher hlc, lower origin
    assert c.put("o", b"a", a).status == 201
    assert c.put("o", b"b", b).status == 201
    assert c.put("o", b"a", a).status == 409
    assert c.put("o", b"e", e).status == 201
    assert c.put("o", b"b", b).status == 409
    assert c.get("o").body == b"e"


def test_delete_stores_tombstone_with_rules(node):
    d, c = node
    c.put("t", b"v", V1)
    r = c.delete("t", V2)
    assert r.status == 204, r
    r = c.get("t")
    assert r.status == 404
    assert r.header("X-Simplekv-Version") == V2
    assert r.header("X-Simplekv-Tombstone") == "1"
    # Same version again: 200; older: 409 with the tombstone's version.
    assert c.delete("t", V2).status == 200
    r = c.delete("t", V1)
    assert r.status == 409 and r.header("X-Simplekv-Version") == V2
    # An older PUT cannot resurrect the key.
    r = c.put("t", b"old", V1)
    assert r.status == 409 and r.header("X-Simplekv-Version") == V2
    assert c.get("t").status == 404
    # A newer PUT does.
    assert c.put("t", b"new", V3).status == 201
    assert c.get("t").body == b"new"


def test_delete_of_unknown_key_leaves_tombstone(node):
    d, c = node
    assert c.delete("ghost", V2).status == 204
    r = c.get("ghost")
    assert r.status == 404 and r.header("X-Simplekv-Tombstone") == "1"
    # A write older than the delete arriving late is refused.
    assert c.put("ghost", b"late", V1).status == 409


def test_same_version_put_after_delete_is_409_not_200(node):
    d, c = node
    c.put("x", b"v", V1)
    c.delete("x", V2)
    assert c.put("x", b"v", V1).status == 409


def test_binary_keys_and_nul_bytes(node):
    d, c = node
    keys = [b"a\x00b", b"\x00", b"\xff\xfe", b"sp ace/slash?q#h", b"a+b",
            b"%", bytes(range(256))[:200], b"\x00" * 1024]
    for i, k in enumerate(keys):
        r = c.put(enc(k), b"value-%d" % i, V1)
        assert r.status == 201, (k, r)
    for i, k in enumerate(keys):
        r = c.get(enc(k))
        assert r.status == 200 and r.body == b"value-%d" % i, k
    # '%00' and '%00%00' are different keys; lowercase hex decodes the same.
    assert c.get("%00%00").status == 404
    assert c.get("%ff%fe").body == b"value-2"
    # A raw '+' is a plus, never a space.
    assert c.get("a+b").body == b"value-4"
    assert c.get("a%20b").status == 404


def test_binary_value_roundtrip(node):
    d, c = node
    value = bytes(range(256)) * 4000   # ~1 MB, under the 1 MiB limit
    value = value[:1 << 20]
    assert c.put("bin", value, V1).status == 201
    assert c.get("bin").body == value


def test_chunked_put(node):
    d, c = node

    def gen():
        for i in range(10):
            yield b"chunk%d;" % i
    r = c.request("PUT", "/v1/kv/chunked", gen(),
                  {"X-Simplekv-Version": V1})  # http.client chunks it
    assert r.status == 201
    assert c.get("chunked").body == b"".join(gen())


def _listing(c, query=""):
    r = c.request("GET", "/v1/keys" + query)
    assert r.status == 200, r
    if "limit=" in query:
        # A page (the router's listings): one buffer with a length, so
        # nginx does not reserve its whole subrequest buffer per node.
        assert r.header("Transfer-Encoding") is None
        assert r.header("Content-Length") == str(len(r.body))
    else:
        # Without a limit the listing streams, memory bounded.
        assert r.header("Transfer-Encoding") == "chunked"
        assert r.header("Content-Length") is None
    lines = r.body.decode("ascii").split("\n")
    assert lines[-1] == ""
    out = []
    for line in lines[:-1]:
        v, t, k = line.split("\t")
        assert len(v) == 32 and t in ("0", "1")
        out.append((urllib.parse.unquote_to_bytes(k), v, t == "1", k))
    return out


def test_listing_order_prefix_after_limit(node):
    d, c = node
    keys = [b"b", b"a", b"ab", b"a\x00", b"abc", b"b\xff", b"ac", b"\x00z",
            b"c"]
    for k in keys:
        assert c.put(enc(k), b"v", V1).status == 201
    c.delete("ac", V2)

    full = _listing(c)
    assert [k for k, *_ in full] == sorted(keys)
    by_key = {k: (v, t) for k, v, t, _ in full}
    assert by_key[b"ac"] == (V2, True)
    assert by_key[b"a"] == (V1, False)
    # Keys travel percent-encoded with uppercase hex, unreserved kept.
    assert [e for *_, e in full][:2] == ["%00z", "a"]

    assert [k for k, *_ in _listing(c, "?prefix=a")] == [
        b"a", b"a\x00", b"ab", b"abc", b"ac"]
    assert [k for k, *_ in _listing(c, "?prefix=ab")] == [b"ab", b"abc"]
    assert [k for k, *_ in _listing(c, "?prefix=a&after=ab")] == [
        b"abc", b"ac"]
    assert [k for k, *_ in _listing(c, "?after=a%00&limit=2")] == [
        b"ab", b"abc"]
    assert [k for k, *_ in _listing(c, "?prefix=a&limit=1")] == [b"a"]
    # after before the prefix range, and after beyond it.
    assert [k for k, *_ in _listing(c, "?prefix=b&after=a")] == [b"b",
                                                                b"b\xff"]
    assert _listing(c, "?prefix=a&after=b") == []
    assert _listing(c, "?prefix=zz") == []
    assert [k for k, *_ in _listing(c, "?prefix=b%FF")] == [b"b\xff"]
    # after names a key that does not exist: starts after where it would be.
    assert [k for k, *_ in _listing(c, "?after=aa&limit=1")] == [b"ab"]
    # Paging with after/limit visits every key exactly once.
    seen, after = [], ""
    while True:
        page = _listing(c, "?limit=2" + ("&after=" + after if after else ""))
        if not page:
            break
        seen += [k for k, *_ in page]
        after = page[-1][3]
    assert seen == sorted(keys)


def test_listing_empty_store_and_head(node):
    d, c = node
    assert _listing(c) == []
    r = c.request("HEAD", "/v1/keys")
    assert r.status == 200 and r.body == b""


@pytest.mark.skipif(SANITIZED, reason="ASan's quarantine keeps freed memory "
                    "resident, so RSS measures allocation churn, not "
                    "buffering; the plain build's run checks the bound")
def test_listing_streams_with_bounded_memory(daemons):
    """A listing far larger than any buffer: the daemon's peak resident
    memory (VmHWM, so a buffer freed at the end still counts) must not grow
    with it; it streams block by block from the index."""
    d = daemons.start(extra_args=["--cache-size", "16m"])
    c = Client(d.port)
    long_key = "%01" * 900                 # 900 bytes, 2700 encoded chars
    n = 3000                               # ~8 MB of listing text
    for i in range(n):
        assert c.put("%s%05d" % (long_key, i), b"", V1).status == 201

    def peak_rss_kb():
        with open("/proc/%d/status" % d.proc.pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])

    before = peak_rss_kb()
    total = 0
    for _ in range(2):
        rows = _listing(c)
        total += sum(len(e) for *_, e in rows)
        assert len(rows) == n
    grown = peak_rss_kb() - before
    assert total > 2 * n * 2700
    assert grown < 4096, "peak RSS grew by %d kB while listing" % grown


def test_listing_is_consistent_while_writing(node):
    """Each listing chunk reopens a cursor: keys written meanwhile may or
    may not appear, but none is repeated and the order holds."""
    d, c = node
    for i in range(2000):
        c.put("k%05d" % i, b"", V1)
    w = Client(d.port)
    import threading
    stop = threading.Event()

    def writer():
        i = 0
        while not stop.is_set():
            w.put("k%05d-x" % i, b"", V1)
            i += 7
    t = threading.Thread(target=writer)
    t.start()
    try:
        rows = [k for k, *_ in _listing(c)]
    finally:
        stop.set()
        t.join(10)
        w.close()
    assert rows == sorted(set(rows))
    assert set(b"k%05d" % i for i in range(2000)) <= set(rows)


def test_health_and_stats(node):
    d, c = node
    r = c.request("GET", "/v1/health")
    assert r.status == 200 and r.json()["status"] == "ok"
    c.put("a", b"12345", V1)
    c.put("b", b"123", V1)
    c.put("c", b"1", V1)
    c.delete("c", V2)
    c.get("zzz")
    r = c.request("GET", "/v1/stats")
    assert r.status == 200
    assert r.header("Content-Type") == "application/json"
    s = r.json()
    assert s["keys"] == 2 and s["tombstones"] == 1 and s["bytes"] == 8
    assert s["requests"]["by_status"]["201"] == 3
    assert s["requests"]["by_status"]["204"] == 1
    assert s["requests"]["by_status"]["404"] == 1
    assert 0.0 <= s["cache"]["hit_rate"] <= 1.0
    assert s["cache"]["hits"] > 0
    assert s["version"] == "simplekv storaged 0.1.0"


def test_stats_counters_survive_restart(daemons):
    d = daemons.start()
    c = Client(d.port)
    for i in range(10):
        c.put("k%d" % i, b"x" * i, V1)
    c.delete("k0", V2)
    c.close()
    d.stop()
    d.start()
    s = Client(d.port).request("GET", "/v1/stats").json()
    assert (s["keys"], s["tombstones"], s["bytes"]) == (9, 1, 45)


def test_keep_alive_across_requests(node):
    d, c = node
    c.put("ka", b"1", V1)
    c.get("ka")
    conn = c.conn
    c.get("missing")
    c.request("GET", "/v1/keys")
    assert c.conn is conn, "the server closed a keep-alive connection"


def test_ipv6_loopback(daemons):
    d = daemons.start(host="::1")
    c = Client(d.port, host="::1")
    assert c.put("six", b"v6", V1).status == 201
    assert c.get("six").body == b"v6"


def test_tombstones_are_purged_after_grace(daemons):
    # "fresh" is an hour ahead: allow that much clock skew.
    d = daemons.start(extra_args=["--tombstone-grace", "1",
                                  "--max-clock-skew", "2h"])
    c = Client(d.port)
    # Purging needs a repair watermark: everything below it was repaired.
    c.set_repair_watermark(version())
    old = version(ms=int(time.time() * 1000) - 1577836800000 - 60000)
    c.put("keep", b"v", V1)
    c.delete("gone", old)
    c.delete("fresh", version(ms=int(time.time() * 1000) - 1577836800000
                              + 3600 * 1000))
    deadline = time.time() + 10
    while time.time() < deadline:
        if c.get("gone").status == 404 and \
                c.get("gone").header("X-Simplekv-Tombstone") is None:
            break
        time.sleep(0.2)
    r = c.get("gone")
    assert r.status == 404 and r.header("X-Simplekv-Version") is None
    assert c.get("fresh").header("X-Simplekv-Tombstone") == "1"
    assert c.get("keep").status == 200
    s = c.request("GET", "/v1/stats").json()
    assert s["tombstones_purged"] >= 1 and s["tombstones"] == 1
    assert [k for k, *_ in _listing(c)] == [b"fresh", b"keep"]


def test_tombstones_are_kept_by_default(daemons):
    """Purging is off unless --tombstone-grace is given: purging on age
    alone resurrects deleted keys on a replica that was down longer than
    the grace.  (The background sweep used to run every 10 s.)"""
    d = daemons.start()
    c = Client(d.port)
    ancient = version(ms=int(time.time() * 1000) - 1577836800000
                      - 30 * 86400 * 1000)
    assert c.delete("old", ancient).status == 204
    time.sleep(11)
    r = c.get("old")
    assert r.status == 404 and r.header("X-Simplekv-Tombstone") == "1"
    s = c.request("GET", "/v1/stats").json()
    assert s["tombstones_purged"] == 0 and s["tombstones"] == 1
