"""Namespaces (docs/protocol.md, "Namespaces"): /v1/ns/<name>/kv/<key>
and /v1/ns/<name>/keys address namespace <name>, whose keys never meet
another namespace's; /v1/kv/ and /v1/keys are the namespace "default";
GET /v1/namespaces lists them.  A namespace is created by its first write,
never by a read."""

import glob
import os
import random
import threading
import time

from urllib.parse import quote, unquote_to_bytes

import pytest

from conftest import EPOCH_UNIX_MS, Client, version

NAME_RULE = "a namespace name is 1 to 64 bytes of A-Z, a-z, 0-9, '_' and '-'"


def ns_path(ns, key_path):
    return "/v1/ns/%s/kv/%s" % (ns, key_path)


def put(c, ns, key_path, value, ver, headers=None):
    h = {"X-Simplekv-Version": ver}
    h.update(headers or {})
    return c.request("PUT", ns_path(ns, key_path), value, h)


def delete(c, ns, key_path, ver, headers=None):
    h = {"X-Simplekv-Version": ver}
    h.update(headers or {})
    return c.request("DELETE", ns_path(ns, key_path), None, h)


def get(c, ns, key_path, method="GET", headers=None):
    return c.request(method, ns_path(ns, key_path), None, headers)


def listing(c, ns=None, query=""):
    path = "/v1/keys" if ns is None else "/v1/ns/%s/keys" % ns
    r = c.request("GET", path + query)
    assert r.status == 200, r
    rows = [l.split("\t") for l in r.body.decode().splitlines()]
    return r, [(k, v, t) for v, t, k in rows]


def namespaces(c):
    r = c.request("GET", "/v1/namespaces")
    assert r.status == 200, r
    assert r.header("Content-Type") == "application/json"
    return r.json()["namespaces"]


def names(c):
    return [n["name"] for n in namespaces(c)]


def ns_files(d):
    return sorted(os.path.basename(p)
                  for p in glob.glob(os.path.join(d.data_dir, "ns-*")))


def now_ms():
    return int(time.time() * 1000) - EPOCH_UNIX_MS


def test_same_key_three_namespaces(node):
    d, c = node
    v1, v2, v3 = version(), version(), version()
    assert c.put("k", b"default value", v1).status == 201
    assert put(c, "alpha", "k", b"alpha value", v2).status == 201
    assert put(c, "beta", "k", b"beta value", v3).status == 201
    for ns, val, v in (("alpha", b"alpha value", v2),
                       ("beta", b"beta value", v3),
                       ("default", b"default value", v1)):
        r = get(c, ns, "k")
        assert r.status == 200 and r.body == val, r
        assert r.header("X-Simplekv-Version") == v
    r = c.get("k")
    assert r.status == 200 and r.body == b"default value"
    # Versions are compared per namespace: an older write to "beta" is
    # refused by beta's own newer version, not by anything elsewhere.
    r = put(c, "beta", "k", b"older", v1)
    assert r.status == 409 and r.header("X-Simplekv-Version") == v3
    # A tombstone in one namespace leaves the others alone.
    assert delete(c, "alpha", "k", version()).status == 204
    r = get(c, "alpha", "k")
    assert r.status == 404 and r.header("X-Simplekv-Tombstone") == "1"
    assert get(c, "beta", "k").status == 200
    assert c.get("k").status == 200
    # /v1/ns/default/kv/ is /v1/kv/.
    v4 = version()
    assert put(c, "default", "k", b"via ns", v4).status == 201
    r = c.get("k")
    assert r.body == b"via ns" and r.header("X-Simplekv-Version") == v4
    assert [n["name"] for n in namespaces(c)] == ["alpha", "beta",
                                                  "default"]


def test_keys_that_look_like_namespaces_never_cross(node):
    d, c = node
    # Keys holding NUL, slashes and text that looks like a namespace
    # prefix, path or file name, each written in one namespace and looked
    # for in every other.
    writes = [
        ("ns", b"\x00k"), ("ns", b"k"), ("ns", b"ns\x00"),
        ("default", b"ns\x00k"), ("default", b"ns/k"),
        ("default", b"ns-ns.records.db"), ("default", b"/v1/ns/ns/kv/k"),
        ("default", b"ns:ns"), ("ns2", b"\x00"), ("ns2", b"\x00\x00"),
        ("n", b"s\x00k"), ("n", b"s/k"), ("n", b"\xff"),
    ]
    expected = {}
    for ns, key in writes:
        val = ns.encode() + b"|" + key
        r = put(c, ns, quote(key, safe=""), val, version())
        assert r.status == 201, (ns, key, r)
        expected[(ns, key)] = val
    # The default namespace's raw-slash key through /v1/kv/ too.
    assert c.get("ns/k").body == b"default|ns/k"
    keys = {key for _, key in writes}
    for ns in ("ns", "ns2", "n", "default"):
        for key in keys:
            r = get(c, ns, quote(key, safe=""))
            if (ns, key) in expected:
                assert r.status == 200 and r.body == expected[(ns, key)]
            else:
                assert r.status == 404, (ns, key, r)
                assert r.header("X-Simplekv-Version") is None
        # Each listing holds exactly its namespace's keys.
        _, rows = listing(c, ns)
        assert sorted(unquote_to_bytes(k) for k, *_ in rows) == \
            sorted(k for n, k in expected if n == ns)


def test_listing_is_scoped_and_names_its_namespace(node):
    d, c = node
    for i in range(5):
        assert put(c, "a", "p%d" % i, b"x", version()).status == 201
        assert put(c, "b", "p%d" % i, b"yy", version()).status == 201
    assert c.put("p9", b"z", version()).status == 201
    assert delete(c, "b", "p0", version()).status == 204
    r, rows = listing(c, "a")
    assert r.header("X-Simplekv-Namespace") == "a"
    assert [k for k, *_ in rows] == ["p0", "p1", "p2", "p3", "p4"]
    r, rows = listing(c, "b", "?prefix=p&after=p0&limit=2")
    assert r.header("X-Simplekv-Namespace") == "b"
    assert r.header("Content-Length") is not None      # an in-memory page
    assert [k for k, *_ in rows] == ["p1", "p2"]
    r, rows = listing(c, "b")
    assert rows[0][0] == "p0" and rows[0][2] == "1"    # the tombstone
    r, rows = listing(c)
    assert r.header("X-Simplekv-Namespace") == "default"
    assert [k for k, *_ in rows] == ["p9"]
    r, rows = listing(c, "default", "?limit=5")
    assert r.header("X-Simplekv-Namespace") == "default"
    assert [k for k, *_ in rows] == ["p9"]
    # A listing is read-only: HEAD works (headers only, and the keep-alive
    # connection stays usable: no stray last chunk), other methods are 405.
    for path in ("/v1/ns/a/keys", "/v1/keys", "/v1/ns/a/keys?limit=3"):
        r = c.request("HEAD", path)
        assert r.status == 200 and r.body == b""
        assert r.header("X-Simplekv-Namespace") == (
            "default" if path == "/v1/keys" else "a")
        r = c.request("GET", "/v1/health")
        assert r.status == 200, r
    r = c.request("PUT", "/v1/ns/a/keys", b"")
    assert r.status == 405 and r.header("Allow") == "GET, HEAD"
    # Bad arguments as for /v1/keys.
    r = c.request("GET", "/v1/ns/a/keys?limit=0")
    assert r.status == 400 and r.json()["error"] == "bad limit"


def test_namespaces_endpoint(node):
    d, c = node
    assert namespaces(c) == [{"name": "default", "keys": 0,
                              "tombstones": 0, "bytes": 0}]
    assert put(c, "zeta", "a", b"12345", version()).status == 201
    assert put(c, "zeta", "b", b"1", version()).status == 201
    assert delete(c, "zeta", "c", version()).status == 204
    assert delete(c, "Alpha-1_x", "gone", version()).status == 204
    assert c.put("d", b"123", version()).status == 201
    docs = namespaces(c)
    # Sorted by name, byte order ('A' < 'd' < 'z').
    assert docs == [
        {"name": "Alpha-1_x", "keys": 0, "tombstones": 1, "bytes": 0},
        {"name": "default", "keys": 1, "tombstones": 0, "bytes": 3},
        {"name": "zeta", "keys": 2, "tombstones": 1, "bytes": 6},
    ]
    s = c.stats()
    assert (s["keys"], s["tombstones"], s["bytes"]) == (3, 2, 9)
    assert s["namespaces"] == docs
    r = c.request("HEAD", "/v1/namespaces")
    assert r.status == 200
    r = c.request("DELETE", "/v1/namespaces")
    assert r.status == 405 and r.header("Allow") == "GET, HEAD"


def test_namespaces_need_the_token(daemons, tmp_path):
    tf = tmp_path / "token"
    tf.write_text("sekrit\n")
    d = daemons.start(extra_args=["--token-file", str(tf)], token="sekrit")
    c = Client(d.port)
    for path in ("/v1/namespaces", "/v1/ns/a/keys", "/v1/ns/a/kv/k"):
        r = c.request("GET", path)
        assert r.status == 401, (path, r)
    c.token = "sekrit"
    assert put(c, "a", "k", b"v", version()).status == 201
    assert names(c) == ["a", "default"]
    c.close()


def test_reads_never_create(node):
    d, c = node
    before = namespaces(c)
    for method in ("GET", "HEAD"):
        r = get(c, "ghost", "k", method)
        assert r.status == 404, r
        assert r.header("X-Simplekv-Version") is None
    r, rows = listing(c, "ghost")
    assert rows == [] and r.header("X-Simplekv-Namespace") == "ghost"
    r, rows = listing(c, "ghost", "?limit=10")
    assert rows == [] and r.header("X-Simplekv-Namespace") == "ghost"
    r = c.request("DELETE", ns_path("ghost", "k") + "?remove&if-version="
                  + version())
    assert r.status == 404, r
    # Refused writes create nothing either.
    r = put(c, "ghost", "k", b"v", "bad")
    assert r.status == 400
    r = c.request("PUT", ns_path("ghost", "k"), b"v")
    assert r.status == 400
    r = c.request("PUT", ns_path("ghost", ""), b"v",
                  {"X-Simplekv-Version": version()})
    assert r.status == 400
    assert namespaces(c) == before
    assert ns_files(d) == []
    # The first write creates it, files and all.
    assert put(c, "ghost", "k", b"v", version()).status == 201
    assert names(c) == ["default", "ghost"]
    assert ns_files(d) == ["ns-ghost.chunks.db", "ns-ghost.index.db",
                           "ns-ghost.records.db"]


@pytest.mark.parametrize("name", [
    "", "x" * 65, "a.b", "..", ".", "%2F", "a%2Fb", "%2E%2E", "a%20b",
    "a+b", "a:b", "%00", "caf%C3%A9", "a~b", "a%2Db",
])
def test_bad_names_are_400(shared_node, name):
    d, c = shared_node
    for method, path, body in (
            ("GET", ns_path(name, "k"), None),
            ("PUT", ns_path(name, "k"), b"v"),
            ("DELETE", ns_path(name, "k"), None),
            ("GET", "/v1/ns/%s/keys" % name, None)):
        r = c.request(method, path, body, {"X-Simplekv-Version": version()})
        assert r.status == 400, (path, r)
        assert r.json() == {"error": "bad namespace", "detail": NAME_RULE}
    assert "ns-" not in "".join(os.listdir(d.data_dir))


def test_longest_name_and_every_character(node):
    d, c = node
    for name in ("x" * 64, "AZaz09_-", "-", "_", "0"):
        assert put(c, name, "k", name.encode(), version()).status == 201
        assert get(c, name, "k").body == name.encode()
    assert len(names(c)) == 6


@pytest.mark.parametrize("path", [
    "/v1/ns", "/v1/ns/", "/v1/ns/a", "/v1/ns/a/", "/v1/ns/a/kv",
    "/v1/ns/a/keys/", "/v1/ns/a/keys/x", "/v1/ns/a/other", "/v1/ns/a/b/kv/k",
    "/v1/ns/a.b/other", "/v1/namespaces/", "/v1/ns/a/namespaces",
])
def test_unknown_paths_under_ns_are_404(shared_node, path):
    d, c = shared_node
    r = c.request("GET", path)
    assert r.status == 404, (path, r)
    assert r.json()["error"] == "not found"


def test_remove_if_version_in_a_namespace(node):
    d, c = node
    v1, v2 = version(), version()
    assert put(c, "r", "k", b"ns", v1).status == 201
    assert c.put("k", b"default", v2).status == 201
    # The default namespace's version is not the one in "r".
    r = c.request("DELETE", ns_path("r", "k") + "?remove&if-version=" + v2)
    assert r.status == 409 and r.header("X-Simplekv-Version") == v1
    r = c.request("DELETE", ns_path("r", "k") + "?remove&if-version=" + v1)
    assert r.status == 204, r
    r = get(c, "r", "k")
    assert r.status == 404 and r.header("X-Simplekv-Version") is None
    assert c.get("k").body == b"default"
    r = c.request("DELETE", ns_path("r", "k") + "?remove&if-version=" + v1)
    assert r.status == 404
    r = c.request("DELETE", ns_path("r", "k") + "?remove")
    assert r.status == 400
    s = c.stats()
    assert s["copies_removed"] == 1
    assert {n["name"]: n["keys"] for n in namespaces(c)} == {"default": 1,
                                                            "r": 0}


def test_epoch_fence_under_ns(node):
    d, c = node
    assert c.put_json("/v1/epochs", {"min": 3, "max": 3}).status == 200
    e3 = {"X-Simplekv-Epoch": "3"}
    for hdrs in ({}, {"X-Simplekv-Epoch": "2"}):
        r = put(c, "f", "k", b"v", version(), hdrs)
        assert r.status == 421 and r.json()["error"] == "epoch refused"
        assert r.header("X-Simplekv-Epochs") == "3-3"
        r = get(c, "f", "k", headers=hdrs)
        assert r.status == 421
        r = delete(c, "f", "k", version(), hdrs)
        assert r.status == 421
    # Refused writes did not create the namespace.
    assert names(c) == ["default"] and ns_files(d) == []
    v = version()
    assert put(c, "f", "k", b"v", v, e3).status == 201
    assert get(c, "f", "k", headers=e3).body == b"v"
    r = c.request("DELETE", ns_path("f", "k") + "?remove&if-version=" + v)
    assert r.status == 421
    r = c.request("GET", ns_path("f", "k"), None,
                  {"X-Simplekv-Epoch": "x"})
    assert r.status == 400 and r.json()["error"] == "bad epoch"
    # Listings and /v1/namespaces are not fenced.
    _, rows = listing(c, "f")
    assert [k for k, *_ in rows] == ["k"]
    assert names(c) == ["default", "f"]


def test_restart_keeps_namespaces_and_data(daemons):
    d = daemons.start()
    c = Client(d.port)
    expect = {}
    for ns in ("one", "two", "default", "three-3"):
        for i in range(20):
            v = version()
            val = ("%s-%d" % (ns, i)).encode()
            assert put(c, ns, "k%02d" % i, val, v).status == 201
            expect[(ns, "k%02d" % i)] = (val, v)
        assert delete(c, ns, "gone", version()).status == 204
    docs = namespaces(c)
    c.close()
    d.stop()
    d = daemons.start(data_dir=d.data_dir)
    c = Client(d.port)
    assert namespaces(c) == docs
    for (ns, k), (val, v) in expect.items():
        r = get(c, ns, k)
        assert r.status == 200 and r.body == val, (ns, k, r)
        assert r.header("X-Simplekv-Version") == v
    for ns in ("one", "two", "default", "three-3"):
        r, rows = listing(c, ns)
        assert len(rows) == 21
    # kill -9 too (recovery at start).
    assert put(c, "four", "k", b"4", version()).status == 201
    c.close()
    d.kill9()
    d = daemons.start(data_dir=d.data_dir)
    c = Client(d.port)
    assert names(c) == ["default", "four", "one", "three-3", "two"]
    assert get(c, "four", "k").body == b"4"
    c.close()


@pytest.mark.parametrize("durability", ["process", "fsync"])
def test_kill9_during_first_writes_to_new_namespaces(daemons, durability):
    """Writers create namespaces as they go; kill -9 mid-stream: every
    acknowledged write, and so its namespace, is there after restart."""
    d = daemons.start(durability=durability)
    acked = {}
    lock = threading.Lock()
    stop = threading.Event()

    def writer(w):
        c = Client(d.port, timeout=5)
        rng = random.Random(w)
        n = 0
        try:
            while not stop.is_set():
                ns = "w%d-%d" % (w, n // 5)   # a new namespace every 5
                key = "k%d" % rng.randrange(1000)
                v = version()
                try:
                    r = put(c, ns, key, ns.encode() + b"/" + v.encode(), v)
                except OSError:
                    return          # killed under us: expected
                if r.status != 201:
                    return
                with lock:
                    acked[(ns, key)] = v
                n += 1
        finally:
            c.close()

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    deadline = time.time() + 30
    while time.time() < deadline:
        with lock:
            if len(acked) >= 300:
                break
        time.sleep(0.05)
    d.kill9()
    stop.set()
    for t in threads:
        t.join(30)
    assert len(acked) >= 300
    d = daemons.start(data_dir=d.data_dir)
    c = Client(d.port)
    held = set(names(c))
    missing = []
    for (ns, key), v in acked.items():
        r = get(c, ns, key)
        # A later write of the key may have been applied but not answered.
        if ns not in held or r.status != 200 or \
                r.header("X-Simplekv-Version") < v:
            missing.append((ns, key, v, r))
    assert not missing, missing[:5]
    # Files and names agree: every recorded namespace has its pair.
    files = ns_files(d)
    for ns in held - {"default"}:
        assert "ns-%s.index.db" % ns in files
        assert "ns-%s.records.db" % ns in files
        assert "ns-%s.chunks.db" % ns in files
    c.close()


def test_purge_in_namespaces(daemons):
    """The purge covers every namespace, with the same rule: older than
    the grace and below the repair watermark."""
    d = daemons.start(extra_args=["--tombstone-grace", "1"])
    c = Client(d.port)
    t = now_ms()
    spaces = ("p1", "p2", "default", "zz")
    for ns in spaces:
        assert delete(c, ns, "t", version(ms=t - 60000)).status == 204
        assert put(c, ns, "live", b"v", version(ms=t - 90000)).status == 201
    # Old enough, but above the watermark set below: kept.
    assert delete(c, "p2", "above", version(ms=t - 20000)).status == 204
    # No repair watermark: nothing purged anywhere.
    time.sleep(2.5)
    assert c.stats()["tombstones_purged"] == 0
    c.set_repair_watermark(version(ms=t - 30000))
    deadline = time.time() + 20
    while c.stats()["tombstones_purged"] < 4 and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(1.5)     # more sweeps: still exactly those four
    assert c.stats()["tombstones_purged"] == 4
    for ns in spaces:
        r = get(c, ns, "t")
        assert r.status == 404 and r.header("X-Simplekv-Version") is None
        assert get(c, ns, "live").status == 200
    r = get(c, "p2", "above")
    assert r.status == 404 and r.header("X-Simplekv-Tombstone") == "1"
    docs = {n["name"]: n for n in namespaces(c)}
    assert {ns: docs[ns]["tombstones"] for ns in spaces} == {
        "p1": 0, "p2": 1, "default": 0, "zz": 0}
    assert {ns: docs[ns]["keys"] for ns in spaces} == dict.fromkeys(spaces,
                                                                    1)
    s = c.stats()
    assert (s["tombstones"], s["keys"]) == (1, 4)
    c.close()


def test_no_purge_in_a_namespace_during_a_transition(daemons):
    d = daemons.start(extra_args=["--tombstone-grace", "1"])
    c = Client(d.port)
    assert c.put_json("/v1/epochs", {"min": 4, "max": 5}).status == 200
    e = {"X-Simplekv-Epoch": "5"}
    assert delete(c, "tr", "gone", version(ms=now_ms() - 60000), e)\
        .status == 204
    c.set_repair_watermark(version())
    time.sleep(3.5)
    r = get(c, "tr", "gone", headers=e)
    assert r.status == 404 and r.header("X-Simplekv-Tombstone") == "1"
    assert c.put_json("/v1/epochs", {"min": 5, "max": 5}).status == 200
    deadline = time.time() + 15
    while c.stats()["tombstones_purged"] == 0 and time.time() < deadline:
        time.sleep(0.2)
    r = get(c, "tr", "gone", headers=e)
    assert r.status == 404 and r.header("X-Simplekv-Version") is None
    c.close()


def test_concurrent_first_writes_create_once(daemons):
    d = daemons.start(extra_args=["--threads", "8"])
    n_threads, per_thread = 16, 8
    start = threading.Barrier(n_threads)
    results = []
    lock = threading.Lock()

    def writer(w):
        c = Client(d.port)
        start.wait()
        try:
            for i in range(per_thread):
                ns = "hot" if i % 2 == 0 else "hot%d" % (i % 3)
                r = put(c, ns, "w%d-%d" % (w, i), b"v", version())
                with lock:
                    results.append((ns, r.status))
        finally:
            c.close()

    threads = [threading.Thread(target=writer, args=(w,))
               for w in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == n_threads * per_thread
    assert all(status == 201 for _, status in results), results
    c = Client(d.port)
    docs = namespaces(c)
    assert [n["name"] for n in docs] == ["default", "hot", "hot0", "hot1",
                                         "hot2"]
    counts = {}
    for ns, _ in results:
        counts[ns] = counts.get(ns, 0) + 1
    assert {n["name"]: n["keys"] for n in docs} == dict(counts, default=0)
    assert ns_files(d) == sorted("ns-%s.%s.db" % (ns, f)
                                 for ns in counts
                                 for f in ("chunks", "index", "records"))
    # And after a restart, each once.
    c.close()
    d.stop()
    d = daemons.start(data_dir=d.data_dir)
    c = Client(d.port)
    assert namespaces(c) == docs
    c.close()


def test_help_describes_the_paths():
    import subprocess
    from skvproc import default_binary
    r = subprocess.run([default_binary(), "--help"], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode == 0
    for path in ("/v1/kv/<key>", "/v1/keys", "/v1/ns/<name>/kv/<key>",
                 "/v1/ns/<name>/keys", "/v1/namespaces"):
        assert path in r.stdout, path
