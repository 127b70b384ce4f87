"""Large values (docs/protocol.md, "Large values"): values over the chunk
size (256 KiB) are stored chunk by chunk as they arrive and streamed back;
every GET/HEAD carries Repr-Digest; PUTs with Content-Digest/Repr-Digest
are verified; chunks are checksummed; Range and X-Simplekv-If-Version;
chunks of superseded, refused and unfinished uploads are collected, after
a crash too; storaged's memory stays bounded whatever the value's size.

Values are generated as they are sent from a seeded generator and compared
by SHA-256: a test never holds a large value in memory.  The 1 GiB cases
are slow (about 30 s each here): they run with SKV_TEST_LONG=1 (`make
test-long`, which runs `make test-storaged-long`), never under ASan."""

import base64
import hashlib
import http.client
import os
import subprocess
import sys
import threading
import time

import pytest

from conftest import SANITIZED, Client, version

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import bigvalue                                   # noqa: E402
from bigvalue import MIB, Gen, b64sha             # noqa: E402,F401

CS = 256 * 1024                     # STORE_CHUNK_SIZE
LONG = os.environ.get("SKV_TEST_LONG") == "1"
HELPER = os.environ.get("SKV_LEGACY_INDEX") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "tests", "storaged",
    "legacy_index")


# ---- data and streaming helpers (tests/lib/bigvalue.py) --------------------

def put_stream(port, key, gen, ver, chunked=False, headers=None,
               stop_after=None):
    """PUT gen's value to /v1/kv/key at version ver."""
    h = {"X-Simplekv-Version": ver}
    h.update(headers or {})
    return bigvalue.put_stream(port, "/v1/kv/" + key, gen, headers=h,
                               chunked=chunked, stop_after=stop_after)


def get_stream(port, key, headers=None, method="GET"):
    return bigvalue.get_stream(port, "/v1/kv/" + key, headers=headers,
                               method=method)


def chunks_of(size):
    return 0 if size <= CS else -(-size // CS)


def wait_stats(c, pred, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        s = c.stats()
        if pred(s):
            return s
        if time.monotonic() > deadline:
            raise AssertionError("stats never matched: %r" % {
                k: s[k] for k in ("chunks", "chunk_uploads_pending",
                                  "chunks_collected", "keys", "bytes")})
        time.sleep(0.2)


def settled(n_chunks):
    return lambda s: (s["chunks"] == n_chunks
                      and s["chunk_uploads_pending"] == 0)


# ---- round trips -----------------------------------------------------------

SIZES = [0, 1, 1000, CS - 1, CS, CS + 1, 2 * CS, 3 * CS + 17, 5 * MIB + 3]


@pytest.mark.parametrize("chunked", [False, True])
def test_sizes_round_trip(node, chunked):
    d, c = node
    total = 0
    for i, size in enumerate(SIZES):
        gen = Gen(1000 + i, size)
        status, _, body = put_stream(d.port, "v%d" % size, gen, version(),
                                     chunked=chunked)
        assert status == 201, body
        total += chunks_of(size)
        expect = gen.sha()
        g = get_stream(d.port, "v%d" % size)
        assert g.status == 200 and g.complete
        assert g.n == size and g.sha == expect, size
        assert g.header("Content-Length") == str(size)
        assert g.header("Repr-Digest") == "sha-256=:%s:" % b64sha(expect)
        assert g.header("Content-Type") == "application/octet-stream"
        h = get_stream(d.port, "v%d" % size, method="HEAD")
        assert h.status == 200 and h.n == 0
        assert h.header("Content-Length") == str(size)
        assert h.header("Repr-Digest") == g.header("Repr-Digest")
    s = wait_stats(c, settled(total))
    assert s["keys"] == len(SIZES) and s["bytes"] == sum(SIZES)


def test_small_value_wire_unchanged(node):
    """A small value answers as before, plus Repr-Digest."""
    d, c = node
    ver = version()
    r = c.put("k", b"hello", ver, content_type="text/plain")
    assert r.status == 201 and r.body == b""
    r = c.get("k")
    assert r.status == 200 and r.body == b"hello"
    assert r.header("Content-Type") == "text/plain"
    assert r.header("X-Simplekv-Version") == ver
    assert r.header("Content-Length") == "5"
    assert r.header("Repr-Digest") == "sha-256=:%s:" % base64.b64encode(
        hashlib.sha256(b"hello").digest()).decode()
    assert r.header("Content-Range") is None
    assert c.stats()["chunks"] == 0


def test_100mib_round_trip_and_overwrite(node):
    d, c = node
    size = 100 * MIB
    for seed, chunked in ((1, False), (2, True)):
        gen = Gen(seed, size)
        status, hdrs, body = put_stream(d.port, "big", gen, version(),
                                        chunked=chunked)
        assert status == 201, body
        g = get_stream(d.port, "big")
        assert g.status == 200 and g.complete and g.n == size
        assert g.sha == gen.sha()
    # The first value's chunks are collected once the second replaced it.
    wait_stats(c, settled(chunks_of(size)), timeout=120)
    # A small value replaces it: all chunks go.
    assert c.put("big", b"small now", version()).status == 201
    wait_stats(c, settled(0), timeout=120)
    assert c.get("big").body == b"small now"
    # A large value replaced by a tombstone, and removed: chunks go too.
    gen = Gen(3, 3 * MIB)
    assert put_stream(d.port, "big", gen, version())[0] == 201
    ver = version()
    assert c.delete("big", ver).status == 204
    wait_stats(c, settled(0))
    gen = Gen(4, 3 * MIB)
    ver = version()
    assert put_stream(d.port, "big2", gen, ver)[0] == 201
    wait_stats(c, settled(12))
    r = c.request("DELETE", "/v1/kv/big2?remove&if-version=" + ver)
    assert r.status == 204
    wait_stats(c, settled(0))


def test_namespaced_large_value(node):
    d, c = node
    gen = Gen(5, 2 * MIB)
    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=60)
    body = b"".join(gen.blocks())   # 2 MiB: fine to hold
    conn.request("PUT", "/v1/ns/big-ns/kv/k", body=body,
                 headers={"X-Simplekv-Version": version()})
    assert conn.getresponse().status == 201
    conn.close()
    r = c.request("GET", "/v1/ns/big-ns/kv/k")
    assert r.status == 200 and r.body == body
    assert c.get("k").status == 404     # not in the default namespace
    assert os.path.exists(os.path.join(d.data_dir, "ns-big-ns.chunks.db"))
    assert c.stats()["chunks"] == 8


def test_conflicts_and_refusals_leave_the_old_value(node):
    d, c = node
    old = Gen(10, 3 * MIB)
    v_old = version()
    assert put_stream(d.port, "k", old, v_old)[0] == 201
    # An older version: 409, its chunks collected, the old value intact.
    status, hdrs, _ = put_stream(d.port, "k", Gen(11, 3 * MIB),
                                 "00000000000100000000000000000001")
    assert status == 409 and hdrs["x-simplekv-version"] == v_old
    # The same version again: 200, nothing changed.
    status, hdrs, _ = put_stream(d.port, "k", old, v_old)
    assert status == 200 and hdrs["x-simplekv-held"] == "yes"
    wait_stats(c, settled(12))
    g = get_stream(d.port, "k")
    assert g.sha == old.sha() and g.header("X-Simplekv-Version") == v_old


def test_value_too_large(daemons):
    d = daemons.start(extra_args=["--max-value-size", "600k"])
    c = Client(d.port)
    # Declared: refused before the body.
    status, _, body = put_stream(d.port, "k", Gen(1, 700 * 1024), version())
    assert status == 413
    doc = __import__("json").loads(body)
    assert doc["error"] == "value too large" and "614400" in doc["detail"]
    # Chunked: dropped as it arrives, 413 at its end, its chunks collected.
    status, _, body = put_stream(d.port, "k", Gen(1, 700 * 1024), version(),
                                 chunked=True)
    assert status == 413, body
    assert put_stream(d.port, "k", Gen(1, 600 * 1024), version(),
                      chunked=True)[0] == 201
    wait_stats(c, settled(3))
    assert c.get("k").status == 200


def test_default_limit_is_1gib(node):
    d, c = node
    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=10)
    conn.request("PUT", "/v1/kv/k", headers={
        "X-Simplekv-Version": version(),
        "Content-Length": str((1 << 30) + 1)})
    r = conn.getresponse()
    doc = __import__("json").loads(r.read())
    assert r.status == 413 and doc["error"] == "value too large"
    assert "1073741824" in doc["detail"]
    conn.close()


# ---- digests -----------------------------------------------------------------

@pytest.mark.parametrize("size", [100, 3 * MIB])
@pytest.mark.parametrize("header", ["Content-Digest", "Repr-Digest"])
def test_put_digest_checked(node, size, header):
    d, c = node
    gen = Gen(7, size)
    good = "sha-256=:%s:" % b64sha(gen.sha())
    bad_sha = hashlib.sha256(b"something else").digest()
    bad = "sha-256=:%s:" % base64.b64encode(bad_sha).decode()
    status, _, body = put_stream(d.port, "k", gen, version(),
                                 headers={header: bad})
    assert status == 400 and b"digest mismatch" in body
    assert c.get("k").status == 404     # nothing stored
    wait_stats(c, settled(0))
    # Several members: the sha-256 one counts; others are ignored.
    status, _, body = put_stream(
        d.port, "k", gen, version(),
        headers={header: "sha-512=:AAAA:, " + good})
    assert status == 201, body
    assert c.get("k").header("Repr-Digest") == good
    status, _, body = put_stream(d.port, "k", gen, version(),
                                 headers={header: "md5=:AAAA:"})
    assert status == 201, body


@pytest.mark.parametrize("value", ["sha-256=abc", "sha-256=:abc:",
                                   "sha-256=:%s:" % ("A" * 44),
                                   "sha-256"])
def test_put_digest_malformed(node, value):
    d, c = node
    r = c.put("k", b"v", version(), headers={"Content-Digest": value})
    assert r.status == 400 and r.json()["error"] == "bad digest"


def test_old_records_get_a_digest(daemons):
    """A record written before digests (format 1) is served with one."""
    d = daemons.start()
    d.stop()
    ver = version()
    subprocess.run([HELPER, "put", d.data_dir, "old", ver, "legacy"],
                   check=True)
    d.start()
    c = Client(d.port)
    r = c.get("old")
    assert r.status == 200 and r.body == b"legacy"
    assert r.header("Repr-Digest") == "sha-256=:%s:" % base64.b64encode(
        hashlib.sha256(b"legacy").digest()).decode()
    r = c.request("GET", "/v1/kv/old", headers={"Range": "bytes=1-2"})
    assert r.status == 206 and r.body == b"eg"
    # And a large value replaces it like any value.
    gen = Gen(8, MIB)
    assert put_stream(d.port, "old", gen, version())[0] == 201
    assert get_stream(d.port, "old").sha == gen.sha()


# ---- Range -------------------------------------------------------------------

@pytest.mark.parametrize("size", [1000, 5 * CS + 100])
def test_ranges(node, size):
    d, c = node
    gen = Gen(20, size)
    ver = version()
    assert put_stream(d.port, "k", gen, ver)[0] == 201
    cases = [("bytes=0-0", 0, 1), ("bytes=10-99", 10, 90),
             ("bytes=%d-" % (size - 7), size - 7, 7),
             ("bytes=-5", size - 5, 5), ("bytes=-%d" % (size + 9), 0, size),
             ("bytes=5-%d" % (size + 1000), 5, size - 5),
             ("BYTES=3-4", 3, 2)]
    if size > CS:
        cases += [("bytes=%d-%d" % (CS - 10, 3 * CS + 10), CS - 10,
                   2 * CS + 21),
                  ("bytes=%d-%d" % (2 * CS, 2 * CS), 2 * CS, 1)]
    for rng, start, length in cases:
        g = get_stream(d.port, "k", {"Range": rng})
        assert g.status == 206, rng
        assert g.n == length and g.complete, rng
        assert g.sha == gen.range_sha(start, length), rng
        assert g.header("Content-Range") == "bytes %d-%d/%d" % (
            start, start + length - 1, size), rng
        assert g.header("Repr-Digest") == "sha-256=:%s:" % b64sha(gen.sha())
        if length <= 100:
            assert g.body == gen.at(start, length)
    for rng in ("bytes=%d-" % size, "bytes=%d-%d" % (size + 5, size + 9),
                "bytes=-0"):
        g = get_stream(d.port, "k", {"Range": rng})
        assert g.status == 416, rng
        assert g.header("Content-Range") == "bytes */%d" % size
        assert b"range not satisfiable" in g.body
    # Ignored: several ranges, another unit, malformed: the whole value.
    for rng in ("bytes=0-1,5-6", "items=0-1", "bytes=5-1", "bytes=x-1",
                "bytes=-", "bytes = 3 - 4"):
        g = get_stream(d.port, "k", {"Range": rng})
        assert g.status == 200 and g.n == size, rng
        assert g.header("Content-Range") is None
    # If-Range: the range only when it names the held version.
    g = get_stream(d.port, "k", {"Range": "bytes=1-2",
                                 "If-Range": '"%s"' % ver})
    assert g.status == 206 and g.n == 2
    g = get_stream(d.port, "k", {"Range": "bytes=1-2",
                                 "If-Range": '"%s"' % version()})
    assert g.status == 200 and g.n == size
    # HEAD: the headers of the GET.
    h = get_stream(d.port, "k", {"Range": "bytes=1-2"}, method="HEAD")
    assert h.status == 206 and h.header("Content-Length") == "2"


def test_range_of_empty_value(node):
    d, c = node
    assert c.put("e", b"", version()).status == 201
    r = c.request("GET", "/v1/kv/e", headers={"Range": "bytes=0-"})
    assert r.status == 416 and r.header("Content-Range") == "bytes */0"
    r = c.request("GET", "/v1/kv/e", headers={"Range": "bytes=-1"})
    assert r.status == 416


# ---- X-Simplekv-If-Version ---------------------------------------------------

@pytest.mark.parametrize("size", [10, 2 * MIB])
def test_if_version(node, size):
    d, c = node
    gen = Gen(30, size)
    ver = version()
    assert put_stream(d.port, "k", gen, ver)[0] == 201
    for method in ("GET", "HEAD"):
        g = get_stream(d.port, "k", {"X-Simplekv-If-Version": ver},
                       method=method)
        assert g.status == 200
        if method == "GET":
            assert g.sha == gen.sha()
        other = version()
        r = c.request(method, "/v1/kv/k",
                      headers={"X-Simplekv-If-Version": other})
        assert r.status == 412
        assert r.header("X-Simplekv-Version") == ver
        if method == "GET":
            assert r.json()["error"] == "precondition failed"
        r = c.request(method, "/v1/kv/nothing",
                      headers={"X-Simplekv-If-Version": ver})
        assert r.status == 412 and r.header("X-Simplekv-Version") is None
    r = c.request("GET", "/v1/kv/k",
                  headers={"X-Simplekv-If-Version": "nope"})
    assert r.status == 400 and r.json()["error"] == "bad if-version"
    # A tombstone of exactly that version answers as a tombstone.
    tv = version()
    assert c.delete("k", tv).status == 204
    r = c.request("GET", "/v1/kv/k", headers={"X-Simplekv-If-Version": tv})
    assert r.status == 404 and r.header("X-Simplekv-Tombstone") == "1"
    r = c.request("GET", "/v1/kv/k", headers={"X-Simplekv-If-Version": ver})
    assert r.status == 412 and r.header("X-Simplekv-Tombstone") == "1"


# ---- readers and the collector ----------------------------------------------

def test_overwritten_while_streaming(node):
    """A GET streams the version current when it began, to its end, even
    when the key is overwritten and the collector runs meanwhile; the old
    chunks go once the response is over."""
    d, c = node
    size = 24 * MIB
    old, new = Gen(40, size), Gen(41, size)
    assert put_stream(d.port, "k", old, version())[0] == 201
    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=60)
    conn.request("GET", "/v1/kv/k")
    resp = conn.getresponse()
    h = hashlib.sha256()
    first = resp.read(MIB)
    h.update(first)
    # Overwrite it, and give the collector time to run.
    assert put_stream(d.port, "k", new, version())[0] == 201
    assert get_stream(d.port, "k").sha == new.sha()
    time.sleep(2.5)
    s = c.stats()
    assert s["chunks"] == 2 * chunks_of(size)    # the old ones are kept
    assert s["chunk_uploads_pending"] == 1
    n = len(first)
    while True:
        piece = resp.read(MIB)
        if not piece:
            break
        h.update(piece)
        n += len(piece)
    conn.close()
    assert n == size and h.hexdigest() == old.sha()
    wait_stats(c, settled(chunks_of(size)))


def test_kill9_mid_upload(daemons):
    """kill -9 mid-upload: after a restart the old value, whole, and no
    chunk of the unfinished upload once the collector ran."""
    d = daemons.start()
    c = Client(d.port)
    old = Gen(50, 3 * MIB + 5)
    v_old = version()
    assert put_stream(d.port, "k", old, v_old)[0] == 201
    for cut in (CS + 1, 5 * MIB, 11 * MIB + 77):
        conn = put_stream(d.port, "k", Gen(51, 12 * MIB), version(),
                          stop_after=cut)
        # The upload has begun storing chunks (and may still be at it).
        wait_stats(c, lambda s: s["chunk_uploads_pending"] == 1)
        time.sleep(0.2)
        d.kill9()
        conn.close()
        c.close()
        d.start()
        g = get_stream(d.port, "k")
        assert g.status == 200 and g.sha == old.sha()
        assert g.header("X-Simplekv-Version") == v_old
        wait_stats(c, settled(chunks_of(old.size)))
    # kill -9 right after a large PUT was acknowledged: the new value, and
    # the old one's chunks are collected after the restart.
    new = Gen(52, 4 * MIB)
    v_new = version()
    assert put_stream(d.port, "k", new, v_new)[0] == 201
    d.kill9()
    c.close()
    d.start()
    g = get_stream(d.port, "k")
    assert g.sha == new.sha() and g.header("X-Simplekv-Version") == v_new
    wait_stats(c, settled(chunks_of(new.size)))


def test_aborted_upload_is_collected(node):
    """A client that goes away mid-upload leaves the old value, and its
    chunks are collected."""
    d, c = node
    old = Gen(53, 2 * MIB)
    assert put_stream(d.port, "k", old, version())[0] == 201
    for chunked in (False, True):
        conn = put_stream(d.port, "k", Gen(54, 8 * MIB), version(),
                          chunked=chunked, stop_after=3 * MIB + 5)
        time.sleep(0.3)
        conn.close()
        wait_stats(c, settled(chunks_of(old.size)))
        assert get_stream(d.port, "k").sha == old.sha()


def test_concurrent_large_puts_of_one_key(node):
    """Concurrent uploads of one key never share chunks: the newest
    version wins, whole, and the others' chunks go."""
    d, c = node
    size = 3 * MIB + 1
    vers = [version() for _ in range(4)]
    gens = [Gen(90 + i, size) for i in range(4)]
    results = [None] * 4

    def run(i):
        results[i] = put_stream(d.port, "k", gens[i], vers[i],
                                chunked=i % 2 == 1)[0]

    threads = [threading.Thread(target=run, args=(i,)) for i in (2, 0, 3, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results[3] == 201 and set(results) <= {201, 409}
    g = get_stream(d.port, "k")
    assert g.header("X-Simplekv-Version") == vers[3]
    assert g.sha == gens[3].sha()
    wait_stats(c, settled(chunks_of(size)))


# ---- corruption ----------------------------------------------------------------

def flip_in_file(path, marker):
    with open(path, "r+b") as f:
        data = f.read()
        at = data.find(marker)
        assert at >= 0, "marker not found in %s" % path
        assert data.find(marker, at + 1) < 0, "marker found twice"
        f.seek(at + len(marker) // 2)
        f.write(bytes([data[at + len(marker) // 2] ^ 0x01]))


def test_corrupt_value_is_never_served_and_quarantined(daemons):
    """A value failing its checksum (a chunk, or a small value's record)
    is never served, and this node drops its copy (corrupt_values counts
    it; its chunks are collected): it then answers as a node lacking the
    key, which the router's read repair fills again."""
    d = daemons.start()
    c = Client(d.port)
    size = 6 * CS + 1000
    gen = Gen(60, size)
    v_first = version()
    assert put_stream(d.port, "first", gen, v_first)[0] == 201
    gen2 = Gen(61, size)
    assert put_stream(d.port, "later", gen2, version())[0] == 201
    small = os.urandom(2000)
    assert c.put("small", small, version()).status == 201
    d.stop()
    # A byte of chunk 0 of "first", of chunk 4 of "later", of "small".
    # (Markers start a 1 MiB block of Gen: the only unique bytes.)
    flip_in_file(os.path.join(d.data_dir, "chunks.db"), gen.at(0, 64))
    flip_in_file(os.path.join(d.data_dir, "chunks.db"), gen2.at(4 * CS, 64))
    flip_in_file(os.path.join(d.data_dir, "records.db"), small[500:564])
    d.start()
    assert c.stats()["corrupt_values"] == 0
    # Chunks before the damaged one are served; a HEAD reads no chunk.
    g = get_stream(d.port, "later", {"Range": "bytes=0-%d" % (4 * CS - 1)})
    assert g.status == 206 and g.complete
    assert g.sha == gen2.range_sha(0, 4 * CS)
    assert get_stream(d.port, "later", method="HEAD").status == 200
    # Found mid-stream: the connection is closed short of the length, and
    # the copy is dropped.
    g = get_stream(d.port, "later")
    assert g.status == 200 and not g.complete
    assert g.n <= 4 * CS
    assert c.stats()["corrupt_values"] == 1
    assert get_stream(d.port, "later").status == 404
    # Found before the headers: the GET answers as a node without it.
    g = get_stream(d.port, "first", {"X-Simplekv-If-Version": v_first})
    assert g.status == 412, g.body
    assert g.header("X-Simplekv-Version") is None
    assert get_stream(d.port, "first").status == 404
    r = c.get("small")
    assert r.status == 404, r
    s = c.stats()
    assert s["corrupt_values"] == 3 and s["keys"] == 0
    # The damaged values' chunks are collected.
    wait_stats(c, settled(0))
    # Dropped for good: still absent after a restart; a write (read
    # repair's) stores a good copy again.
    d.stop()
    d.start()
    assert get_stream(d.port, "first").status == 404
    assert put_stream(d.port, "first", gen, v_first)[0] == 201
    g = get_stream(d.port, "first")
    assert g.status == 200 and g.sha == gen.sha()
    assert c.put("small", small, version()).status == 201
    assert c.get("small").body == small
    log = d.log_text()
    assert log.count("quarantined (this node's copy dropped") == 3, log


# ---- memory and the 1 GiB cases ---------------------------------------------

def rss_kib(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                k, v = line.split(":")
                out[k] = int(v.split()[0])
    return out


class Sampler(threading.Thread):
    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop_ = pid, 0, threading.Event()

    def run(self):
        while not self.stop_.is_set():
            self.peak = max(self.peak, rss_kib(self.pid)["VmRSS"])
            time.sleep(0.05)


def measured(d, fn):
    """Run fn; return (result, RSS growth in MiB: peak - before)."""
    base = rss_kib(d.proc.pid)["VmRSS"]
    s = Sampler(d.proc.pid)
    s.start()
    result = fn()
    s.stop_.set()
    s.join()
    peak = max(s.peak, rss_kib(d.proc.pid)["VmHWM"])
    return result, (peak - base) / 1024.0


@pytest.mark.skipif(not LONG or SANITIZED,
                    reason="slow (1 GiB each way): SKV_TEST_LONG=1, "
                           "not under ASan")
@pytest.mark.parametrize("chunked", [False, True])
def test_long_1gib_round_trip_bounded_memory(daemons, chunked):
    """A 1 GiB PUT and GET: storaged's RSS grows by at most 64 MiB.  The
    Berkeley DB cache is part of the RSS and fills up as the value passes
    through it, so it is given 16 MiB here (--cache-size; the default is
    64 MiB, whose filling alone would be the whole allowance)."""
    d = daemons.start(extra_args=["--cache-size", "16m"])
    c = Client(d.port)
    size = 1 << 30
    gen = Gen(70 + chunked, size)
    # Warm up: one large value through, so that the heap and the cache
    # reach their working size before the baseline.
    assert put_stream(d.port, "warm", Gen(69, 8 * MIB), version())[0] == 201
    get_stream(d.port, "warm")
    t = time.monotonic()
    (status, _, body), grew_put = measured(
        d, lambda: put_stream(d.port, "g", gen, version(), chunked=chunked))
    put_s = time.monotonic() - t
    assert status == 201, body
    t = time.monotonic()
    g, grew_get = measured(d, lambda: get_stream(d.port, "g"))
    get_s = time.monotonic() - t
    assert g.status == 200 and g.complete and g.n == size
    assert g.sha == gen.sha()
    print("1 GiB %s: PUT %.1f s (%.0f MB/s, RSS +%.1f MiB), GET %.1f s "
          "(%.0f MB/s, RSS +%.1f MiB)" % (
              "chunked" if chunked else "Content-Length", put_s,
              size / put_s / 1e6, grew_put, get_s, size / get_s / 1e6,
              grew_get))
    assert grew_put <= 64, grew_put
    assert grew_get <= 64, grew_get
    c.close()


def test_memory_bounded_100mib(daemons):
    """The same bound on a 100 MiB value, in the regular suite."""
    if SANITIZED:
        pytest.skip("ASan's allocator and shadow memory change the RSS")
    d = daemons.start(extra_args=["--cache-size", "16m"])
    size = 100 * MIB
    gen = Gen(80, size)
    assert put_stream(d.port, "warm", Gen(79, 8 * MIB), version())[0] == 201
    get_stream(d.port, "warm")
    (status, _, _), grew_put = measured(
        d, lambda: put_stream(d.port, "g", gen, version()))
    assert status == 201
    g, grew_get = measured(d, lambda: get_stream(d.port, "g"))
    assert g.sha == gen.sha()
    assert grew_put <= 64 and grew_get <= 64, (grew_put, grew_get)
