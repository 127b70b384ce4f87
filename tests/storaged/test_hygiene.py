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
