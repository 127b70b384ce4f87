"""Large values through the router (over simplekv_stream_threshold, 1m by
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

LARGE = 3 * 1024 * 1024 + 11          # over the 1m threshold, 12+ chunks


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
    """Once a streamed value's headers went out, a replica that dies
    mid-body can only be reported by closing the connection: the client
    gets fewer bytes than Content-Length and then the end of the
    connection, never a short value taken for a whole one nor a
    keep-alive connection left open.  (The client's receive buffer is
    kept small: with Linux's autotuning, up to tcp_rmem's maximum of the
    value could already be on its way in the kernel.)"""
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
