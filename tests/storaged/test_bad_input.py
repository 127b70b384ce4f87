"""Bad requests get the right status and a JSON error, and change nothing."""

import socket
import time

import pytest

from conftest import Client, seq_version

V1, V2 = seq_version(1), seq_version(2)


def assert_json_error(r, status):
    assert r.status == status, r
    assert r.header("Content-Type") == "application/json", r
    body = r.json()
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["detail"], str) and body["detail"]
    return body


@pytest.mark.parametrize("ver", [
    None, "", "0" * 32, "0" * 31 + "1" + "0", "1" * 31, "1" * 33,
    "ABCDEF" + "0" * 26, "g" + "0" * 31, " " + "1" * 31, "1" * 31 + " ",
])
def test_missing_or_malformed_version(shared_node, ver):
    d, c = shared_node
    c.put("k", b"original", V1)
    h = {} if ver is None else {"X-Simplekv-Version": ver}
    assert_json_error(c.request("PUT", "/v1/kv/k", b"bad", h), 400)
    assert_json_error(c.request("DELETE", "/v1/kv/k", None, h), 400)
    r = c.get("k")
    assert r.body == b"original" and r.header("X-Simplekv-Version") == V1


@pytest.mark.parametrize("path", ["%", "%4", "%zz", "a%g0", "ab%2"])
def test_bad_percent_encoding(shared_node, path):
    d, c = shared_node
    before = c.request("GET", "/v1/keys").body
    for method in ("GET", "HEAD", "DELETE"):
        r = c.request(method, "/v1/kv/" + path, None,
                      {"X-Simplekv-Version": V1})
        assert r.status == 400
    assert_json_error(c.put(path, b"v", V1), 400)
    assert c.request("GET", "/v1/keys").body == before


def test_empty_key(node):
    d, c = node
    assert_json_error(c.get(""), 400)
    assert_json_error(c.put("", b"v", V1), 400)


def test_key_length_limits(node):
    d, c = node
    assert c.put("a" * 1024, b"max", V1).status == 201
    assert c.put("%00" * 1024, b"max", V1).status == 201
    assert_json_error(c.put("a" * 1025, b"v", V1), 414)
    assert_json_error(c.put("%00" * 1025, b"v", V1), 414)
    assert_json_error(c.get("b" * 5000), 414)
    assert c.get("a" * 1024).body == b"max"


def test_method_not_allowed_with_allow(node):
    d, c = node
    for method in ("POST", "PATCH", "OPTIONS"):
        r = c.request(method, "/v1/kv/k", b"x", {"X-Simplekv-Version": V1})
        assert_json_error(r, 405)
        assert r.header("Allow") == "GET, HEAD, PUT, DELETE"
    for path in ("/v1/keys", "/v1/health", "/v1/stats"):
        for method in ("PUT", "DELETE", "POST"):
            r = c.request(method, path, b"", {"X-Simplekv-Version": V1})
            assert_json_error(r, 405)
            assert r.header("Allow") == "GET, HEAD"
    assert c.get("k").status == 404


def test_unknown_endpoint(node):
    d, c = node
    for path in ("/", "/v1", "/v1/kv", "/v2/kv/a", "/v1/keysx", "/k"):
        assert_json_error(c.request("GET", path), 404)


def test_content_type_too_long(node):
    d, c = node
    assert c.put("ct", b"v", V1, "t/" + "x" * 253).status == 201
    assert_json_error(c.put("ct", b"w", V2, "t/" + "x" * 254), 400)
    assert c.get("ct").body == b"v"


@pytest.mark.parametrize("query", [
    "?limit=0", "?limit=-1", "?limit=abc", "?limit=", "?limit=1x",
    "?prefix=%zz", "?after=%4", "?prefix=" + "a" * 1025,
])
def test_bad_listing_arguments(shared_node, query):
    d, c = shared_node
    assert_json_error(c.request("GET", "/v1/keys" + query), 400)


def raw_exchange(port, head, body=b"", wait=10.0):
    """Send raw bytes and read until the server closes or wait passes."""
    s = socket.create_connection(("127.0.0.1", port), timeout=wait)
    try:
        s.sendall(head + body)
        data = b""
        deadline = time.time() + wait
        while time.time() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            data += chunk
            if b"\r\n\r\n" in data:
                hdr, _, rest = data.partition(b"\r\n\r\n")
                for line in hdr.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        if len(rest) >= int(line.split(b":")[1]):
                            return data
        return data
    finally:
        s.close()


def test_value_too_large_refused_before_body(daemons):
    d = daemons.start(extra_args=["--max-value-size", "1k"])
    c = Client(d.port)
    assert c.put("max", b"x" * 1024, V1).status == 201
    assert_json_error(c.put("big", b"x" * 1025, V1), 413)
    # Content-Length says 1 GB and no body follows: the answer must come
    # from the headers alone.
    head = (b"PUT /v1/kv/huge HTTP/1.1\r\nHost: x\r\n"
            b"X-Simplekv-Version: " + V1.encode() + b"\r\n"
            b"Content-Length: 1000000000\r\n\r\n")
    t0 = time.time()
    reply = raw_exchange(d.port, head, wait=5)
    assert reply.startswith(b"HTTP/1.1 413"), reply
    assert time.time() - t0 < 4
    assert c.get("huge").status == 404
    assert c.get("big").status == 404


@pytest.mark.parametrize("path,ver,status", [
    ("/v1/kv/ok", "nope", 400), ("/v1/kv/%zz", None, 400),
    ("/v1/kv/" + "k" * 1025, None, 414),
])
def test_bad_put_refused_before_body(shared_node, path, ver, status):
    d, c = shared_node
    head = ("PUT %s HTTP/1.1\r\nHost: x\r\nX-Simplekv-Version: %s\r\n"
            "Content-Length: 100000000\r\n\r\n" % (path, ver or V1))
    reply = raw_exchange(d.port, head.encode(), wait=5)
    assert reply.startswith(b"HTTP/1.1 %d" % status), reply


def test_chunked_value_too_large(daemons):
    d = daemons.start(extra_args=["--max-value-size", "4k"])
    c = Client(d.port)

    def gen(n):
        for _ in range(n):
            yield b"y" * 1000
    r = c.request("PUT", "/v1/kv/chunky", gen(4), {"X-Simplekv-Version": V1})
    assert r.status == 201
    c.close()
    r = c.request("PUT", "/v1/kv/chunky", gen(50), {"X-Simplekv-Version": V2})
    assert_json_error(r, 413)
    c.close()
    r = c.get("chunky")
    assert r.body == b"y" * 4000 and r.header("X-Simplekv-Version") == V1


def test_endless_chunked_value_is_cut_off(daemons):
    """Past the limit a chunked body is dropped, but not forever: after
    about 1 MiB more the connection is closed."""
    d = daemons.start(extra_args=["--max-value-size", "4k"])
    s = socket.create_connection(("127.0.0.1", d.port), timeout=10)
    s.sendall(b"PUT /v1/kv/endless HTTP/1.1\r\nHost: x\r\n"
              b"X-Simplekv-Version: " + V1.encode() + b"\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n")
    chunk = b"10000\r\n" + b"z" * 0x10000 + b"\r\n"
    sent, cut = 0, False
    try:
        while sent < 64 << 20:
            s.sendall(chunk)
            sent += 0x10000
    except (BrokenPipeError, ConnectionResetError):
        cut = True
    finally:
        s.close()
    assert cut, "the server read %d bytes of an oversized value" % sent
    assert sent < 16 << 20
    assert d.alive()
    assert Client(d.port).get("endless").status == 404


def test_token_auth(daemons, tmp_path):
    tf = tmp_path / "token"
    tf.write_text("s3cret-token\n")
    d = daemons.start(extra_args=["--token-file", str(tf)],
                      token="s3cret-token")
    anon = Client(d.port)
    for path in ("/v1/health", "/v1/stats", "/v1/keys", "/v1/kv/a"):
        r = anon.request("GET", path)
        assert_json_error(r, 401)
        assert r.header("WWW-Authenticate") == "Bearer"
    for bad in ("Bearer wrong", "Bearer s3cret-toke", "Bearer s3cret-tokenX",
                "bearer s3cret-token", "Basic czNjcmV0LXRva2Vu", "s3cret-token",
                "Bearer  s3cret-token", ""):
        r = anon.request("PUT", "/v1/kv/a", b"v",
                         {"X-Simplekv-Version": V1, "Authorization": bad})
        assert_json_error(r, 401)
    good = Client(d.port, token="s3cret-token")
    assert good.request("GET", "/v1/kv/a").status == 404
    assert good.put("a", b"v", V1).status == 201
    assert good.get("a").body == b"v"
    assert good.request("GET", "/v1/health").status == 200


def test_garbage_requests_do_not_hurt(node):
    d, c = node
    c.put("safe", b"v", V1)
    for junk in (b"\x00\x01\x02\r\n\r\n", b"GET\r\n\r\n",
                 b"GET /v1/kv/a HTTP/9.9\r\n\r\n",
                 b"PUT /v1/kv/a HTTP/1.1\r\nContent-Length: x\r\n\r\n",
                 b"GET /" + b"a" * 100000 + b" HTTP/1.1\r\n\r\n"):
        raw_exchange(d.port, junk, wait=2)
    assert d.alive()
    assert c.get("safe").body == b"v"
