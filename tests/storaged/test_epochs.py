"""The epoch fence (docs/protocol.md, "The epoch fence"): X-Simplekv-Epoch
on /v1/kv/* requests, the accepted window (GET/PUT /v1/epochs: forward
only, on disk before the answer, through restarts and kill -9), the 421
refusal, and the repair watermark's endpoint (GET/PUT
/v1/repair-watermark)."""

import socket
import threading
import time

import pytest

from conftest import EPOCH_UNIX_MS, Client, seq_version, version

V1, V2, V3 = seq_version(1), seq_version(2), seq_version(3)
U64_MAX = 2 ** 64 - 1
I64_MAX = 2 ** 63 - 1


def E(n):
    return {"X-Simplekv-Epoch": str(n)}


def set_window(c, lo, hi, status=200):
    r = c.put_json("/v1/epochs", {"min": lo, "max": hi})
    assert r.status == status, r
    return r


def window(c):
    r = c.request("GET", "/v1/epochs")
    assert r.status == 200 and r.header("Content-Type") == \
        "application/json", r
    return r.json()


def assert_refused(r, win):
    assert r.status == 421, r
    assert r.header("X-Simplekv-Epochs") == win, r
    if r.body:          # HEAD has none
        assert r.json()["error"] == "epoch refused", r
        assert r.json()["detail"]


def kv_requests(c, key, headers, ver, ver2):
    """One of each kv request: GET, HEAD, PUT ver, DELETE ver2, remove
    ver2."""
    h = dict(headers)
    return [
        c.request("GET", "/v1/kv/" + key, None, h),
        c.request("HEAD", "/v1/kv/" + key, None, h),
        c.request("PUT", "/v1/kv/" + key, b"v",
                  dict(h, **{"X-Simplekv-Version": ver})),
        c.request("DELETE", "/v1/kv/" + key, None,
                  dict(h, **{"X-Simplekv-Version": ver2})),
        c.request("DELETE", "/v1/kv/%s?remove&if-version=%s" % (key, ver2),
                  None, h),
    ]


# ---- before any window ---------------------------------------------------

def test_no_window_accepts_everything(node):
    d, c = node
    assert window(c) == {"min": None, "max": None}
    assert c.put("a", b"1", V1).status == 201
    assert c.request("PUT", "/v1/kv/a", b"2",
                     dict(E(7), **{"X-Simplekv-Version": V2})).status == 201
    assert c.request("GET", "/v1/kv/a", None, E(U64_MAX)).body == b"2"
    assert c.request("GET", "/v1/kv/a", None, E(0)).body == b"2"
    s = c.stats()
    assert s["epochs"] == {"min": None, "max": None}
    assert s["repair_watermark"] is None and s["lease"] is None


@pytest.mark.parametrize("value", [
    "", "abc", "-1", "+1", "1.0", "0x10", "1 2", "12a",
    str(U64_MAX + 1), "99999999999999999999", "1" * 21])
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_malformed_epoch_header_is_400(shared_node, value, method):
    d, c = shared_node
    h = {"X-Simplekv-Epoch": value, "X-Simplekv-Version": V1}
    r = c.request(method, "/v1/kv/bad-epoch", b"x" if method == "PUT"
                  else None, h)
    assert r.status == 400 and r.json()["error"] == "bad epoch", r
    assert c.get("bad-epoch").status == 404


def test_duplicate_epoch_header_is_400(shared_node):
    d, c = shared_node
    s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
    try:
        s.sendall(b"GET /v1/kv/dup HTTP/1.1\r\nHost: x\r\n"
                  b"X-Simplekv-Epoch: 3\r\nX-Simplekv-Epoch: 3\r\n\r\n")
        data = s.recv(65536)
    finally:
        s.close()
    assert data.startswith(b"HTTP/1.1 400"), data
    assert b"more than one X-Simplekv-Epoch" in data


def test_largest_epoch_parses(node):
    d, c = node
    set_window(c, 5, I64_MAX)
    assert c.request("GET", "/v1/kv/x", None, E(I64_MAX)).status == 404
    # Well formed but outside the window: 421, not 400.
    assert_refused(c.request("GET", "/v1/kv/x", None, E(U64_MAX)),
                   "5-%d" % I64_MAX)
    assert_refused(c.request("GET", "/v1/kv/x", None, E(4)),
                   "5-%d" % I64_MAX)
    # Leading zeros are still decimal.
    assert c.request("GET", "/v1/kv/x", None, E("0005")).status == 404


# ---- the fence -----------------------------------------------------------

def test_window_fences_every_kv_request(node):
    d, c = node
    assert c.put("k", b"v", V1).status == 201
    set_window(c, 4, 6)
    for headers in ({}, E(3), E(7), E(U64_MAX), E(0)):
        for r in kv_requests(c, "k", headers, V2, V3):
            assert_refused(r, "4-6")
    # Nothing changed.
    r = c.request("GET", "/v1/kv/k", None, E(4))
    assert r.status == 200 and r.body == b"v" and \
        r.header("X-Simplekv-Version") == V1
    for e in (4, 5, 6):
        assert c.request("GET", "/v1/kv/k", None, E(e)).status == 200
    s = c.stats()
    assert s["requests"]["by_status"]["421"] == 25
    assert (s["keys"], s["bytes"]) == (1, 1)


def test_accepted_requests_work_inside_the_window(node):
    d, c = node
    set_window(c, 2, 2)
    rs = kv_requests(c, "k", E(2), V1, V2)
    assert [r.status for r in rs] == [404, 404, 201, 204, 204]


def test_unfenced_endpoints(node):
    """Listings, health, stats and the membership endpoints answer
    without an epoch (tools need them)."""
    d, c = node
    assert c.request("PUT", "/v1/kv/a", b"1",
                     {"X-Simplekv-Version": V1}).status == 201
    set_window(c, 9, 9)
    r = c.request("GET", "/v1/keys")
    assert r.status == 200 and r.body.endswith(b"\ta\n"), r
    assert c.request("GET", "/v1/keys?limit=5").status == 200
    assert c.request("GET", "/v1/health").status == 200
    assert c.stats()["epochs"] == {"min": 9, "max": 9}
    assert window(c) == {"min": 9, "max": 9}
    assert c.request("GET", "/v1/repair-watermark").status == 200


def test_refused_put_keeps_the_connection_usable(node):
    """A 421 PUT is answered before its body is read (the connection is
    then closed); a refused GET keeps its keep-alive connection."""
    d, c = node
    set_window(c, 1, 1)
    r = c.request("GET", "/v1/kv/a")
    assert_refused(r, "1-1")
    conn = c.conn
    assert conn is not None
    assert c.request("GET", "/v1/kv/a", None, E(1)).status == 404
    assert c.conn is conn
    r = c.request("PUT", "/v1/kv/a", b"x" * 10,
                  {"X-Simplekv-Version": V1})
    assert_refused(r, "1-1")
    assert c.request("GET", "/v1/kv/a", None, E(1)).status == 404


def send_headers_only(port, epoch, length):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(("PUT /v1/kv/slow HTTP/1.1\r\nHost: x\r\n"
               "X-Simplekv-Epoch: %d\r\nX-Simplekv-Version: %s\r\n"
               "Content-Length: %d\r\n\r\n" % (epoch, V1, length)).encode())
    return s


def test_window_moved_while_a_body_arrives(node):
    """A PUT admitted on its headers is checked again when its body has
    arrived: the window moved meanwhile, so it is refused."""
    d, c = node
    set_window(c, 1, 1)
    s = send_headers_only(d.port, 1, 5)
    try:
        time.sleep(0.2)
        set_window(c, 2, 2)
        s.sendall(b"hello")
        data = s.recv(65536)
    finally:
        s.close()
    assert data.startswith(b"HTTP/1.1 421"), data
    assert b"X-Simplekv-Epochs: 2-2" in data
    assert c.request("GET", "/v1/kv/slow", None, E(2)).status == 404


def test_no_write_of_the_old_window_lands_after_the_change(node):
    """Writers of epoch 1 run while the window moves to [2, 2]: once the
    PUT /v1/epochs has answered, no epoch-1 write commits any more (the
    listing taken right after the answer is final)."""
    d, c = node
    set_window(c, 1, 1)
    stop = threading.Event()
    errors = []

    def writer(w):
        cl = Client(d.port)
        n = 0
        try:
            while not stop.is_set():
                n += 1
                r = cl.request("PUT", "/v1/kv/w%d-%d" % (w, n), b"x" * 2000,
                               dict(E(1), **{"X-Simplekv-Version": V1}))
                if r.status == 421:
                    return
                if r.status != 201:
                    errors.append(r)
                    return
        finally:
            cl.close()

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    set_window(c, 2, 2)
    before = c.request("GET", "/v1/keys").body
    for t in threads:
        t.join(30)
    stop.set()
    assert not errors, errors
    after = c.request("GET", "/v1/keys").body
    assert before == after
    assert before.count(b"\n") > 8


# ---- PUT /v1/epochs ------------------------------------------------------

def test_window_only_moves_forward(node):
    d, c = node
    assert set_window(c, 3, 5).json() == {"min": 3, "max": 5}
    assert set_window(c, 3, 5).json() == {"min": 3, "max": 5}   # again
    for lo, hi in ((2, 5), (3, 4), (2, 6), (4, 4), (0, 0)):
        r = set_window(c, lo, hi, 409)
        body = r.json()
        assert (body["min"], body["max"]) == (3, 5), body
        assert body["error"] and body["detail"]
        assert r.header("X-Simplekv-Epochs") == "3-5"
    assert set_window(c, 3, 6).json() == {"min": 3, "max": 6}
    assert set_window(c, 6, 6).json() == {"min": 6, "max": 6}
    assert set_window(c, 7, 9).json() == {"min": 7, "max": 9}
    assert window(c) == {"min": 7, "max": 9}


@pytest.mark.parametrize("body", [
    '{"min": 2, "max": 1}', '{"min": -1, "max": 1}', '{"min": 1}',
    '{"max": 1}', '{"min": 1, "max": 2, "x": 3}', '{"min": 1.0, "max": 2}',
    '{"min": "1", "max": 2}', '{"min": null, "max": null}', '[1, 2]',
    '{"min": 1, "max": 18446744073709551615}', 'nonsense', '',
    '{"min": 1, "max": 2', '5'])
def test_bad_window_bodies(shared_node, body):
    d, c = shared_node
    r = c.put_json("/v1/epochs", body)
    assert r.status == 400, r
    assert r.json()["error"] in ("bad epochs", "bad json"), r
    assert window(c) == {"min": None, "max": None}


def test_epoch_endpoints_methods_and_size(shared_node):
    d, c = shared_node
    for path in ("/v1/epochs", "/v1/repair-watermark"):
        for m in ("DELETE", "POST"):
            r = c.request(m, path)
            assert r.status == 405 and r.header("Allow") == \
                "GET, HEAD, PUT", r
        r = c.request("HEAD", path)
        assert r.status == 200 and r.body == b""
        r = c.put_json(path, '{"min": 1, "max": 1, "pad": "%s"}'
                       % ("x" * 5000))
        assert r.status == 413, r
    r = c.request("PUT", "/v1/epochs", b"")
    assert r.status == 400


def test_window_survives_restart_and_kill9(daemons):
    d = daemons.start()
    c = Client(d.port)
    set_window(c, 10, 11)
    c.close()
    d.stop()
    d.start()
    c = Client(d.port)
    assert window(c) == {"min": 10, "max": 11}
    assert_refused(c.get("a"), "10-11")
    set_window(c, 11, 11)
    d.kill9()             # right after the answer
    c.close()
    d.start()
    c = Client(d.port)
    assert window(c) == {"min": 11, "max": 11}
    assert c.request("GET", "/v1/kv/a", None, E(11)).status == 404
    set_window(c, 10, 12, 409)
    c.close()


def test_concurrent_window_changes_end_at_the_highest(node):
    d, c = node
    results = []
    lock = threading.Lock()

    def setter(i):
        cl = Client(d.port)
        for k in range(10):
            n = 1 + (i * 7 + k * 3) % 40
            r = cl.put_json("/v1/epochs", {"min": n, "max": n + 1})
            with lock:
                results.append((n, r.status, r.json()))
        cl.close()

    threads = [threading.Thread(target=setter, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    top = max(n for n, _, _ in results)
    assert window(c) == {"min": top, "max": top + 1}
    for n, status, body in results:
        assert status in (200, 409), (n, status, body)
        if status == 200:
            assert (body["min"], body["max"]) == (n, n + 1)
        else:
            assert body["min"] > n


# ---- the repair watermark ------------------------------------------------

def test_repair_watermark_forward_only(node):
    d, c = node
    r = c.request("GET", "/v1/repair-watermark")
    assert r.status == 200 and r.json() == {"version": None}
    assert c.set_repair_watermark(V2).json() == {"version": V2}
    assert c.set_repair_watermark(V2).json() == {"version": V2}
    r = c.put_json("/v1/repair-watermark", {"version": V1})
    assert r.status == 409 and r.json()["version"] == V2, r
    assert r.json()["error"] and r.json()["detail"]
    assert c.set_repair_watermark(V3).json() == {"version": V3}
    assert c.request("GET", "/v1/repair-watermark").json() == \
        {"version": V3}
    assert c.stats()["repair_watermark"] == V3


def now_ms():
    return int(time.time() * 1000) - EPOCH_UNIX_MS


@pytest.mark.parametrize("body", [
    '{"version": null}', '{}', '{"version": "%s", "x": 1}' % V1,
    '{"version": "%s"}' % V1.upper(), '{"version": "%s"}' % ("0" * 32),
    '{"version": "%s"}' % V1[:31], '{"version": 5}', '"%s"' % V1, 'x'])
def test_bad_repair_watermark_bodies(shared_node, body):
    d, c = shared_node
    r = c.put_json("/v1/repair-watermark", body)
    assert r.status == 400, r
    assert c.request("GET", "/v1/repair-watermark").json() == \
        {"version": None}


def test_repair_watermark_from_the_future_is_refused(shared_node):
    d, c = shared_node
    r = c.put_json("/v1/repair-watermark",
                   {"version": version(ms=now_ms() + 3600000)})
    assert r.status == 400 and r.json()["error"] == \
        "version from the future", r


def test_repair_watermark_survives_restart_and_kill9(daemons):
    d = daemons.start()
    c = Client(d.port)
    c.set_repair_watermark(V1)
    c.close()
    d.stop()
    d.start()
    c = Client(d.port)
    assert c.request("GET", "/v1/repair-watermark").json() == \
        {"version": V1}
    c.set_repair_watermark(V2)
    d.kill9()
    c.close()
    d.start()
    c = Client(d.port)
    assert c.request("GET", "/v1/repair-watermark").json() == \
        {"version": V2}
    c.close()


def test_membership_endpoints_need_the_token(daemons, tmp_path):
    tf = tmp_path / "token"
    tf.write_text("s3cret\n")
    d = daemons.start(extra_args=["--token-file", str(tf)], token="s3cret")
    c = Client(d.port)
    for method, path, body in (
            ("GET", "/v1/epochs", None),
            ("PUT", "/v1/epochs", '{"min": 1, "max": 1}'),
            ("GET", "/v1/repair-watermark", None),
            ("PUT", "/v1/repair-watermark", '{"version": "%s"}' % V1),
            ("PUT", "/v1/lease", '{"holder": "a", "ttl_ms": 1000}'),
            ("DELETE", "/v1/lease?holder=a", None)):
        r = c.request(method, path, body)
        assert r.status == 401, (method, path, r)
    c.token = "s3cret"
    assert window(c) == {"min": None, "max": None}
    assert c.request("GET", "/v1/repair-watermark").json() == \
        {"version": None}
    set_window(c, 1, 1)
    assert window(c) == {"min": 1, "max": 1}
    c.close()
