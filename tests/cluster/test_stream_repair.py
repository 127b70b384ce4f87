"""Large values through the router (over simplekv_stream_threshold, 256k by
default): a read decides on the replicas' metadata and streams the value
from one holder; a read that needs a repair reads the value into a temp
file, writes it back from there to the replicas lacking it, and answers
from it.  Each test checks the node itself afterwards."""

import hashlib
import os
import shutil
import socket
import threading
import time

import requests

LARGE = 3 * 1024 * 1024 + 11          # over the threshold, 12+ chunks


def _value(seed):
    # incompressible-looking bytes, different per seed
    out = bytearray()
    block = hashlib.sha256(seed).digest()
    while len(out) < LARGE:
        block = hashlib.sha256(block).digest()
        out += block * 64
    return bytes(out[:LARGE])


def _node_get(node, key):
    return requests.get(node.url + "/v1/kv/" + key, timeout=30)


def _wait_held(node, key, value, seconds=60):
    # a write answers after W acknowledgements: the last replica may still
    # be receiving it
    deadline = time.monotonic() + seconds
    while _node_get(node, key).content != value:
        assert time.monotonic() < deadline, "node never got the value"
        time.sleep(0.05)


def _no_temp_files(router):
    tmp = os.path.join(router.prefix, "tmp")
    left = []
    for root, _, files in os.walk(tmp):
        left += [os.path.join(root, f) for f in files]
    return left


def test_streamed_value_is_repaired_onto_a_wiped_replica(cluster_factory):
    """c is wiped while a value is written (a and b hold it); with a down,
    a read meets b (holder) and c (nothing): it must write the value back
    to c before answering, without holding it in memory, and answer it
    whole."""
    c = cluster_factory()
    value = _value(b"wiped")
    c.kill9("c")
    shutil.rmtree(c.nodes["c"].data_dir)
    with requests.Session() as s:
        r = s.put(c.url + "/bigwiped", data=value, timeout=60)
        assert r.status_code == 201, r.text
        etag = r.headers["ETag"]
    c.restart("c")
    assert _node_get(c.nodes["c"], "bigwiped").status_code == 404
    c.kill9("a")
    with requests.Session() as s:
        r = s.get(c.url + "/bigwiped", timeout=60)
        assert r.status_code == 200, r.text
        assert r.headers["ETag"] == etag
        assert r.headers["Content-Length"] == str(LARGE)
        assert r.content == value
    got = _node_get(c.nodes["c"], "bigwiped")
    assert got.status_code == 200
    assert '"%s"' % got.headers["X-Simplekv-Version"] == etag
    assert got.content == value
    assert "stopped after" not in c.router.error_log_text()
    assert _no_temp_files(c.router) == []


def test_streamed_value_is_repaired_onto_a_lagging_replica(cluster_factory):
    """c missed an overwrite (it holds the older large value); with a down,
    the read returns the newer one and leaves it on c."""
    c = cluster_factory()
    old, new = _value(b"old"), _value(b"new")
    with requests.Session() as s:
        assert s.put(c.url + "/biglag", data=old,
                     timeout=60).status_code == 201
        _wait_held(c.nodes["c"], "biglag", old)
        c.kill9("c")
        r = s.put(c.url + "/biglag", data=new, timeout=60)
        assert r.status_code == 201, r.text
        etag = r.headers["ETag"]
        c.restart("c")
        assert _node_get(c.nodes["c"], "biglag").content == old
        c.kill9("a")
        r = s.get(c.url + "/biglag", headers={"Range": "bytes=1000-1999"},
                  timeout=60)
        assert r.status_code == 206, r.text
        assert r.headers["Content-Range"] == "bytes 1000-1999/%d" % LARGE
        assert r.content == new[1000:2000]
        # the next read streams it (two holders now), whole and equal
        r = s.get(c.url + "/biglag", timeout=60)
        assert r.status_code == 200 and r.content == new
    got = _node_get(c.nodes["c"], "biglag")
    assert '"%s"' % got.headers["X-Simplekv-Version"] == etag
    assert got.content == new


def test_a_stream_cut_mid_body_closes_the_client_connection(cluster_factory):
    """Once a streamed value's headers went out, a body cut short that no
    other holder can continue (here every node is killed) can only be
    reported by closing the connection: the client gets fewer bytes than
    Content-Length and then the end of the connection, never a short
    value taken for a whole one nor a keep-alive connection left open.
    (The client's receive buffer is kept small: with Linux's autotuning,
    up to tcp_rmem's maximum of the value could already be on its way in
    the kernel.)"""
    c = cluster_factory()
    # more than the kernel's socket buffers on the way can hold (up to
    # tcp_rmem's maximum, 32 MiB here, on the router's side), written to
    # each node directly, at once
    size = 160 * 1024 * 1024
    value = bytes(range(256)) * (size // 256)
    ms = int(time.time() * 1000) - 1577836800000
    version = "%016x%016x" % (ms << 16, 0x5eed0001)
    writers = [threading.Thread(target=lambda n=n: requests.put(
        c.nodes[n].url + "/v1/kv/bigcut", data=value, timeout=300,
        headers={"X-Simplekv-Version": version})) for n in "abc"]
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    for n in "abc":
        assert requests.head(c.nodes[n].url + "/v1/kv/bigcut",
                             timeout=30).status_code == 200
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    sock.settimeout(60)
    sock.connect(("127.0.0.1", c.router.port))
    sock.sendall(b"GET /bigcut HTTP/1.1\r\nHost: x\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, got = data.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200 ")
    assert b"Content-Length: %d" % size in head
    while len(got) < 1024 * 1024:
        got += sock.recv(65536)
    for name in "abc":
        c.kill9(name)
    while True:
        chunk = sock.recv(1024 * 1024)
        if not chunk:
            break                    # the router closed the connection
        got += chunk
    sock.close()
    assert len(got) < size
    assert value[:len(got)] == got
    assert "closing the client's connection" in c.router.error_log_text()


RESUME_SIZE = 40 * 1024 * 1024 + 7


def _resume_value():
    block = hashlib.sha256(b"resume").digest() * 2048       # 64 KiB
    out = bytearray()
    while len(out) < RESUME_SIZE:
        block = hashlib.sha256(block).digest() + block[32:]
        out += block
    return bytes(out[:RESUME_SIZE])


def _put_everywhere(c, key, value, names=None, later_ms=0):
    """The same version on every node (or those named) at once, written
    to each directly."""
    ms = int(time.time() * 1000) - 1577836800000 + later_ms
    version = "%016x%016x" % (ms << 16, 0x5eed0002)
    codes = {}

    def put(n):
        codes[n] = requests.put(
            c.nodes[n].url + "/v1/kv/" + key, data=value, timeout=300,
            headers={"X-Simplekv-Version": version}).status_code
    writers = [threading.Thread(target=put, args=(n,))
               for n in (names or c.names)]
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    assert set(codes.values()) == {201}, codes


def _sending_node(c, seconds=60):
    """The node whose connection has bytes waiting in its send queue: the
    one streaming to the router while the client does not read (found in
    /proc/net/tcp*, by the node's port as the local end)."""
    ports = {c.nodes[n].port: n for n in c.names}
    deadline = time.monotonic() + seconds
    while True:
        queued = {}
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                with open(table) as f:
                    lines = f.readlines()[1:]
            except OSError:
                continue
            for line in lines:
                fields = line.split()
                port = int(fields[1].rsplit(":", 1)[1], 16)
                tx = int(fields[4].split(":")[0], 16)
                if fields[3] == "01" and port in ports and tx > 0:
                    queued[ports[port]] = queued.get(ports[port], 0) + tx
        if len(queued) == 1:
            return next(iter(queued))
        assert time.monotonic() < deadline, (
            "no single node is sending: %r" % queued)
        time.sleep(0.05)


def _slow_get(c, request, before_kill=None):
    """A client that reads the answer's head and 1 MiB of its body, then
    stops reading (a small receive buffer: the router's stream stalls on
    it), kills the node that streams it (after before_kill(its name)),
    then reads to the end of the answer (Content-Length) or of the
    connection."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    sock.settimeout(120)
    sock.connect(("127.0.0.1", c.router.port))
    sock.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, got = data.split(b"\r\n\r\n", 1)
    length = None
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    assert length is not None, head
    while len(got) < 1024 * 1024:
        got += sock.recv(65536)
    victim = _sending_node(c)
    if before_kill:
        before_kill(victim)
    c.kill9(victim)
    while len(got) < length:
        chunk = sock.recv(1024 * 1024)
        if not chunk:
            break
        got += chunk
    return sock, head, got, victim


def _resumes(c):
    return requests.get(c.url + "/_simplekv/status",
                        timeout=30).json()["stream_resumes"]


def test_a_stream_cut_mid_body_continues_from_another_replica(
        cluster_factory):
    """The node streaming a large value is killed mid-body: the router
    goes on from another holder of the same version (a Range from the
    bytes already sent), and the client gets one whole, right answer on a
    connection that stays usable."""
    c = cluster_factory()
    value = _resume_value()
    _put_everywhere(c, "bigresume", value)
    assert _resumes(c) == 0
    sock, head, got, victim = _slow_get(
        c, b"GET /bigresume HTTP/1.1\r\nHost: x\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), head
    assert len(got) == RESUME_SIZE
    assert hashlib.sha256(got).digest() == hashlib.sha256(value).digest()
    # the answer ended where it should: the connection is kept alive
    sock.sendall(b"HEAD /bigresume HTTP/1.1\r\nHost: x\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "the router closed a connection after a whole answer"
        data += chunk
    assert data.startswith(b"HTTP/1.1 200 "), data
    sock.close()
    log = c.router.error_log_text()
    assert "continuing a value" in log
    assert "closing the client's connection" not in log
    assert _resumes(c) >= 1


def test_a_ranged_stream_cut_mid_body_continues(cluster_factory):
    """The same for a client's Range: the continuation asks for the rest
    of that range only, and the client gets exactly its bytes."""
    c = cluster_factory()
    value = _resume_value()
    _put_everywhere(c, "bigresumerange", value)
    first, last = 3 * 1024 * 1024 + 5, RESUME_SIZE - 1024 * 1024 - 9
    sock, head, got, victim = _slow_get(
        c, b"GET /bigresumerange HTTP/1.1\r\nHost: x\r\n"
           b"Range: bytes=%d-%d\r\n\r\n" % (first, last))
    sock.close()
    assert head.startswith(b"HTTP/1.1 206 "), head
    assert (b"Content-Range: bytes %d-%d/%d" % (first, last, RESUME_SIZE)
            in head), head
    assert len(got) == last - first + 1
    assert got == value[first:last + 1]
    assert "continuing a value" in c.router.error_log_text()
    assert _resumes(c) >= 1


def test_a_continuation_no_holder_can_give_closes_the_connection(
        cluster_factory):
    """The streaming node is killed mid-body after the other two replaced
    the value with a newer version: each answers the continuation's
    pinned GET with 412 before any body, no holder is left, and only then
    is the client's connection closed short of Content-Length."""
    c = cluster_factory()
    value = _resume_value()
    _put_everywhere(c, "bigresumegone", value)

    def replace_elsewhere(victim):
        _put_everywhere(c, "bigresumegone", b"newer",
                        names=[n for n in c.names if n != victim],
                        later_ms=1000)
    sock, head, got, victim = _slow_get(
        c, b"GET /bigresumegone HTTP/1.1\r\nHost: x\r\n\r\n",
        before_kill=replace_elsewhere)
    assert sock.recv(65536) == b""        # closed, not kept alive
    sock.close()
    assert head.startswith(b"HTTP/1.1 200 "), head
    assert len(got) < RESUME_SIZE
    assert got == value[:len(got)]
    log = c.router.error_log_text()
    assert log.count("answered 412") == 2, log[-4000:]
    assert "closing the client's connection" in log
    assert _resumes(c) == 2
