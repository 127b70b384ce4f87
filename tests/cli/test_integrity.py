"""skv's integrity checks and broken transfers, against a tiny fake router
(an http.server in this process) that can lie and break on demand:
`put` of a file sends the file's Content-Digest (RFC 9530 sha-256); from a
pipe the value is hashed as it is sent and checked against the answer's
Repr-Digest; `get` checks the Repr-Digest it receives (a mismatch is exit 3
and `-o FILE` is left untouched); a server that dies mid-GET or mid-PUT is
exit 3, and nothing is retried (the fake router counts the requests).
Ports PORT_BASE + 200..209."""

import base64
import hashlib
import os
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import PORT_BASE, run_skv

PORT = PORT_BASE + 200
VALUE = os.urandom(3 * 1024 * 1024 + 5)


def field(data):
    return "sha-256=:%s:" % base64.b64encode(
        hashlib.sha256(data).digest()).decode()


class Fake(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port):
        super().__init__(("127.0.0.1", port), Handler)
        self.requests = []          # (method, path, headers, body or None)
        self.lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def record(self, body):
        with self.server.lock:
            self.server.requests.append(
                (self.command, self.path, dict(self.headers), body))

    def read_body(self, limit=None):
        """The request body (Content-Length or chunked); at most limit
        bytes are read when given."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
                if limit is not None and len(out) >= limit:
                    return out
        n = int(self.headers.get("Content-Length", "0"))
        return self.rfile.read(n if limit is None else min(n, limit))

    def answer(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def cut(self):
        """Die like a killed server: close the socket, no answer."""
        self.wfile.flush()
        self.connection.shutdown(socket.SHUT_RDWR)
        self.connection.close()
        self.close_connection = True

    def do_GET(self):
        self.record(None)
        key = self.path.lstrip("/")
        if key == "right":
            self.answer(200, VALUE, [("Repr-Digest", field(VALUE)),
                                     ("ETag", '"1"')])
        elif key == "wrong":
            self.answer(200, VALUE, [("Repr-Digest", field(b"other"))])
        elif key == "several":
            self.answer(200, VALUE, [(
                "Repr-Digest", "sha-512=:%s:, %s" % (
                    base64.b64encode(hashlib.sha512(VALUE).digest())
                    .decode(), field(VALUE)))])
        elif key == "malformed":
            self.answer(200, VALUE, [("Repr-Digest", "sha-256=:abc:")])
        elif key == "none":
            self.answer(200, VALUE)
        elif key == "cut":
            self.send_response(200)
            self.send_header("Content-Length", str(len(VALUE)))
            self.send_header("Repr-Digest", field(VALUE))
            self.end_headers()
            self.wfile.write(VALUE[:len(VALUE) // 3])
            self.cut()
        else:
            self.answer(404, b'{"error": "not found"}')

    def do_PUT(self):
        key = self.path.lstrip("/")
        if key == "cut":
            self.record(self.read_body(limit=1024 * 1024))
            self.cut()
            return
        body = self.read_body()
        self.record(body)
        if key == "lying":
            self.answer(201, b"", [("ETag", '"2"'),
                                   ("Repr-Digest", field(b"other"))])
        elif key == "echo":
            self.answer(201, b"", [("ETag", '"2"'),
                                   ("Repr-Digest", field(body))])
        else:
            self.answer(201, b"", [("ETag", '"2"')])


@pytest.fixture
def fake():
    srv = Fake(PORT)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


URL = "http://127.0.0.1:%d" % PORT


def test_put_of_a_file_sends_its_content_digest(fake, tmp_path):
    src = tmp_path / "v"
    src.write_bytes(VALUE)
    r = run_skv("-v", "put", "plain", str(src), url=URL)
    assert r.rc == 0, r
    (method, path, headers, body), = fake.requests
    assert method == "PUT" and body == VALUE
    assert headers["Content-Digest"] == field(VALUE)
    assert "Content-Digest sent" in r.err


def test_put_of_an_empty_file_sends_the_empty_digest(fake, tmp_path):
    src = tmp_path / "empty"
    src.write_bytes(b"")
    r = run_skv("put", "plain", str(src), url=URL)
    assert r.rc == 0, r
    assert fake.requests[0][2]["Content-Digest"] == field(b"")


def test_put_from_a_pipe_checks_the_answers_repr_digest(fake):
    r = run_skv("-v", "put", "echo", "-", stdin=VALUE, url=URL)
    assert r.rc == 0, r
    assert "Repr-Digest checked" in r.err
    (_, _, headers, body), = fake.requests
    assert body == VALUE and "Content-Digest" not in headers
    r = run_skv("put", "lying", "-", stdin=VALUE, url=URL)
    assert r.rc == 3 and "digest mismatch" in r.err, r


@pytest.mark.parametrize("key", ["right", "several"])
def test_get_verifies_the_repr_digest(fake, tmp_path, key):
    out = tmp_path / "out"
    r = run_skv("-v", "get", key, "-o", str(out), url=URL)
    assert r.rc == 0, r
    assert "Repr-Digest checked" in r.err
    assert out.read_bytes() == VALUE
    r = run_skv("get", key, url=URL)
    assert r.rc == 0 and r.out == VALUE, r


def test_get_without_a_repr_digest_is_accepted(fake):
    r = run_skv("-v", "get", "none", url=URL)
    assert r.rc == 0 and r.out == VALUE, r
    assert "no Repr-Digest to check" in r.err


@pytest.mark.parametrize("key,words", [("wrong", "digest mismatch"),
                                       ("malformed", "malformed")])
def test_get_refuses_a_bad_repr_digest(fake, tmp_path, key, words):
    out = tmp_path / "out"
    out.write_bytes(b"previous")
    r = run_skv("get", key, "-o", str(out), url=URL)
    assert r.rc == 3 and words in r.err, r
    assert len(r.err.strip().splitlines()) == 1, r
    assert out.read_bytes() == b"previous"
    assert [p for p in os.listdir(tmp_path) if p != "out"] == []
    # to stdout the bytes are out already: the error says so
    r = run_skv("get", key, url=URL)
    assert r.rc == 3 and "not the stored value" in r.err, r
    assert len(fake.requests) == 2      # nothing retried


def test_get_cut_mid_body_is_exit_3_and_not_retried(fake, tmp_path):
    out = tmp_path / "out"
    r = run_skv("get", "cut", "-o", str(out), url=URL)
    assert r.rc == 3, r
    assert "transfer failed" in r.err, r
    assert not out.exists()
    assert os.listdir(tmp_path) == []
    assert len(fake.requests) == 1


@pytest.mark.parametrize("from_pipe", [False, True],
                         ids=["file", "pipe"])
def test_put_cut_mid_body_is_exit_3_and_not_retried(fake, tmp_path,
                                                    from_pipe):
    src = tmp_path / "v"
    src.write_bytes(VALUE)
    if from_pipe:
        r = run_skv("put", "cut", "-", stdin=VALUE, url=URL)
    else:
        r = run_skv("put", "cut", str(src), url=URL)
    assert r.rc == 3, r
    assert len(r.err.strip().splitlines()) == 1, r
    assert len(fake.requests) == 1
