"""Request hygiene and version sanity: versions from the future, repeated
or conflicting framing headers, a malformed Content-Length, and memory that
a declared but unsent body must not cost."""

import socket
import time

import pytest

from conftest import EPOCH_UNIX_MS, Client, seq_version, version

V1, V2 = seq_version(1), seq_version(2)


def now_ms():
    return int(time.time() * 1000) - EPOCH_UNIX_MS


def assert_json_error(r, status, error=None):
    assert r.status == status, r
    assert r.header("Content-Type") == "application/json", r
    body = r.json()
    assert body["error"] and body["detail"]
    if error is not None:
        assert body["error"] == error, body
    return body


def read_until_close(s, wait=5.0):
    """Everything the server sends until it closes (or wait passes: then
    the last element is None)."""
    s.settimeout(wait)
    data = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return data, True
            data += chunk
    except socket.timeout:
        return data, False
    except ConnectionResetError:
        return data, True


def raw(port, data, wait=5.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=wait)
    try:
        s.sendall(data)
        return read_until_close(s, wait)
    finally:
        s.close()


# ---- versions from the future -------------------------------------------

@pytest.mark.parametrize("ahead", ["max", "2min"])
def test_version_from_the_future_is_refused(shared_node, ahead):
    d, c = shared_node
    key = "future-" + ahead
    assert c.put(key, b"original", V1).status == 201
    bad = "f" * 32 if ahead == "max" else version(ms=now_ms() + 120000)
    for r in (c.put(key, b"planted", bad), c.delete(key, bad)):
        body = assert_json_error(r, 400, "version from the future")
        assert "ahead of this node's clock" in body["detail"]
        assert "60.000 s" in body["detail"]
        assert "--max-clock-skew" in body["detail"]
    r = c.get(key)
    assert r.body == b"original" and r.header("X-Simplekv-Version") == V1
    # The key stays writable by ordinary versions.
    assert c.put(key, b"next", version()).status == 201
    assert c.get(key).body == b"next"


def test_version_slightly_ahead_is_accepted(shared_node):
    d, c = shared_node
    ahead = version(ms=now_ms() + 10000)
    assert c.put("ahead10s", b"v", ahead).status == 201
    assert c.get("ahead10s").header("X-Simplekv-Version") == ahead
    later = version(ms=now_ms() + 10000, logical=0xffff)
    assert c.delete("ahead10s", later).status == 204


def test_max_clock_skew_flag(daemons):
    d = daemons.start(extra_args=["--max-clock-skew", "500ms"])
    c = Client(d.port)
    body = assert_json_error(c.put("k", b"v", version(ms=now_ms() + 5000)),
                             400, "version from the future")
    assert "0.500 s" in body["detail"]
    assert c.put("k", b"v", version()).status == 201
    c.close()
    d.stop()
    # 0 turns the check off: even the highest version is stored.
    d = daemons.start(extra_args=["--max-clock-skew", "0"])
    c = Client(d.port)
    assert c.put("k", b"v", "f" * 32).status == 201


def warnings_for(d, held):
    return [l for l in d.log_text().splitlines()
            if "warning:" in l and "held version " + held in l]


def test_held_future_version_yields_to_a_sane_write(daemons):
    """A key holding a version too far ahead (stored with the check off)
    is writable again once the check is on: the held version counts as
    older than any sane one.  With the check off, 409 as before."""
    far = "f" * 32
    ten_min = version(ms=now_ms() + 600000, origin=0xB7)
    year = version(ms=now_ms() + 365 * 86400000, origin=0xC9)
    planted = {"p-max": far, "p-10min": ten_min, "p-tomb": year,
               "p-kept": far}
    d = daemons.start(extra_args=["--max-clock-skew", "0"])
    data = d.data_dir
    c = Client(d.port)
    assert c.put("p-max", b"poison", far).status == 201
    assert c.put("p-10min", b"poison", ten_min).status == 201
    assert c.delete("p-tomb", year).status == 204
    assert c.put("p-kept", b"poison", far).status == 201
    # The check off: today's behaviour, every sane write is refused.
    for key, held in planted.items():
        for r in (c.put(key, b"new", version()), c.delete(key, version())):
            assert r.status == 409, r
            assert r.header("X-Simplekv-Version") == held
    c.close()
    d.stop()
    assert not warnings_for(d, far) and not warnings_for(d, ten_min)

    # The same data with the default skew (60 s).
    d = daemons.start(data_dir=data)
    c = Client(d.port)
    # A GET answers what is held, as before (the router ignores it).
    r = c.get("p-max")
    assert r.status == 200 and r.header("X-Simplekv-Version") == far
    r = c.get("p-tomb")
    assert r.status == 404 and r.header("X-Simplekv-Version") == year
    assert r.header("X-Simplekv-Tombstone") == "1"

    v1 = version()
    r = c.put("p-max", b"fresh", v1, content_type="text/plain")
    assert r.status == 201, r
    assert r.header("X-Simplekv-Version") == v1
    r = c.get("p-max")
    assert r.status == 200 and r.body == b"fresh", r
    assert r.header("X-Simplekv-Version") == v1
    assert r.header("Content-Type") == "text/plain"
    # From now on the ordinary rule: an older write is refused.
    assert c.put("p-max", b"older", version(ms=now_ms() - 60000)).status \
        == 409

    v2 = version()
    r = c.delete("p-10min", v2)
    assert r.status == 204, r
    assert r.header("X-Simplekv-Version") == v2
    r = c.get("p-10min")
    assert r.status == 404 and r.header("X-Simplekv-Version") == v2
    assert r.header("X-Simplekv-Tombstone") == "1"

    v3 = version()
    assert c.put("p-tomb", b"back", v3).status == 201
    r = c.get("p-tomb")
    assert r.status == 200 and r.body == b"back"
    assert r.header("X-Simplekv-Version") == v3
    assert r.header("X-Simplekv-Tombstone") is None

    # A version ahead by less than the skew is valid: it still wins.
    ahead = version(ms=now_ms() + 30000)
    assert c.put("ahead30s", b"v", ahead).status == 201
    r = c.put("ahead30s", b"w", version())
    assert r.status == 409 and r.header("X-Simplekv-Version") == ahead

    # The counters followed the replacements (value <-> tombstone).
    s = c.request("GET", "/v1/stats").json()
    assert (s["keys"], s["tombstones"]) == (4, 1), s
    assert s["bytes"] == len(b"fresh" b"back" b"poison" b"v"), s
    c.close()
    d.stop()
    # One warning per replaced key, naming the key length and the version.
    for key, held in (("p-max", far), ("p-10min", ten_min),
                      ("p-tomb", year)):
        lines = warnings_for(d, held)
        assert len(lines) == 1, d.log_text()[-3000:]
        assert "a %d-byte key" % len(key) in lines[0]
    assert not [l for l in d.log_text().splitlines()
                if "ahead30s" in l or ("warning:" in l and ahead in l)]

    # The check off again: p-kept, never rewritten, still refuses.
    d = daemons.start(data_dir=data, extra_args=["--max-clock-skew", "0"])
    c = Client(d.port)
    r = c.put("p-kept", b"new", version())
    assert r.status == 409 and r.header("X-Simplekv-Version") == far
    assert c.delete("p-kept", version()).status == 409
    assert c.get("p-kept").body == b"poison"
    assert c.get("p-max").body == b"fresh"
    c.close()


# ---- repeated and conflicting headers -----------------------------------

def put_head(extra, key="dup"):
    return (b"PUT /v1/kv/" + key.encode() + b" HTTP/1.1\r\nHost: x\r\n"
            + extra + b"\r\n")


def test_two_version_headers_are_refused(shared_node):
    d, c = shared_node
    c.put("dupver", b"original", V1)
    for method in (b"PUT", b"DELETE"):
        req = (method + b" /v1/kv/dupver HTTP/1.1\r\nHost: x\r\n"
               b"X-Simplekv-Version: " + V2.encode() + b"\r\n"
               b"X-Simplekv-Version: " + seq_version(3).encode() + b"\r\n"
               b"Content-Length: 3\r\n\r\nnew")
        data, _ = raw(d.port, req, wait=3)
        assert data.startswith(b"HTTP/1.1 400 "), data
        assert b'"error":"bad version"' in data
        assert b"more than one X-Simplekv-Version" in data
    r = c.get("dupver")
    assert r.body == b"original" and r.header("X-Simplekv-Version") == V1


@pytest.mark.parametrize("headers,detail", [
    (b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n",
     b"Content-Length together with Transfer-Encoding"),
    (b"Content-Length: 3\r\nContent-Length: 3\r\n",
     b"more than one Content-Length"),
    (b"Content-Length: 3\r\nContent-Length: 4\r\n",
     b"more than one Content-Length"),
    (b"Transfer-Encoding: gzip, chunked\r\n", b"Transfer-Encoding"),
    (b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
     b"Transfer-Encoding"),
])
def test_ambiguous_framing_is_refused(shared_node, headers, detail):
    d, c = shared_node
    req = put_head(b"X-Simplekv-Version: " + V1.encode() + b"\r\n" + headers,
                   key="framing") + b"3\r\nabc\r\n0\r\n\r\n"
    data, closed = raw(d.port, req, wait=3)
    assert data.startswith(b"HTTP/1.1 400 "), data
    assert b"Content-Type: application/json" in data
    assert b'"error":"bad request"' in data and detail in data
    # The framing is ambiguous, so nothing after it may be read as a
    # request: the connection is closed.
    assert closed
    assert c.get("framing").status == 404


@pytest.mark.parametrize("cl,status", [
    (b"abc", 400), (b"-3", 400), (b"+3", 400), (b"3, 3", 400),
    (b"99999999999999999999999", 413),
])
def test_malformed_content_length(shared_node, cl, status):
    """libmicrohttpd 0.9.75 answers these itself, before storaged sees the
    request: the status is right, the body is its HTML (not JSON), and the
    connection is closed.  Nothing is stored."""
    d, c = shared_node
    req = put_head(b"X-Simplekv-Version: " + V1.encode() + b"\r\n"
                   b"Content-Length: " + cl + b"\r\n", key="badcl") + b"abc"
    data, closed = raw(d.port, req, wait=3)
    assert data.startswith(b"HTTP/1.1 %d " % status), data
    assert closed
    assert c.get("badcl").status == 404
    assert c.request("GET", "/v1/health").status == 200


# ---- memory -------------------------------------------------------------

def proc_kib(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(field)


def test_declared_length_is_not_allocated_up_front(daemons):
    """A PUT declaring 1 GiB that sends nothing costs no memory: the value
    is buffered as it arrives."""
    d = daemons.start(extra_args=["--max-value-size", "1g"])
    c = Client(d.port)
    assert c.put("warm", b"x" * 100000, V1).status == 201
    pid = d.proc.pid
    rss0, vm0 = proc_kib(pid, "VmRSS"), proc_kib(pid, "VmSize")
    socks = []
    for i in range(4):
        s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
        s.sendall(put_head(b"X-Simplekv-Version: " + V2.encode() + b"\r\n"
                           b"Content-Length: 1073741824\r\n",
                           key="huge%d" % i))
        socks.append(s)
    time.sleep(1.0)
    try:
        assert c.request("GET", "/v1/health").status == 200
        rss1, vm1 = proc_kib(pid, "VmRSS"), proc_kib(pid, "VmSize")
        # Eager allocation shows in the address space at once (the pages
        # are only touched as bytes arrive): 4 GiB here.
        assert vm1 - vm0 < 256 * 1024, (vm0, vm1)
        assert rss1 - rss0 < 64 * 1024, (rss0, rss1)
        # Bytes that do arrive are kept, and a complete body is stored.
        socks[0].sendall(b"y" * 300000)
        time.sleep(0.3)
        assert proc_kib(pid, "VmRSS") - rss0 < 64 * 1024
    finally:
        for s in socks:
            s.close()
    assert c.get("huge0").status == 404
    value = bytes(range(256)) * 5000
    assert c.put("grown", value, V2).status == 201
    assert c.get("grown").body == value
