"""Thousands of idle or half-sent connections must not lock routers out:
/v1/health, PUT and GET still answer promptly.  Connections that never
complete a request are closed after --first-request-timeout; connections
that did serve requests stay open for --idle-timeout (routers keep them in
their keepalive pools)."""

import resource
import socket
import time

import pytest

from conftest import Client, seq_version

MANY = 3000


@pytest.fixture(autouse=True)
def enough_fds():
    """This process opens MANY sockets at a time: raise its own limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = MANY + 1000
    if hard != resource.RLIM_INFINITY and hard < want:
        pytest.skip("RLIMIT_NOFILE hard limit %d is below %d" % (hard, want))
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def open_many(port, n, send=b""):
    socks = []
    try:
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            if send:
                s.sendall(send)
            socks.append(s)
    except BaseException:
        close_all(socks)
        raise
    return socks


def close_all(socks):
    for s in socks:
        s.close()


def timed(fn):
    t = time.monotonic()
    r = fn()
    return r, time.monotonic() - t


def assert_serves_promptly(port, n):
    c = Client(port, timeout=5)
    try:
        r, took = timed(lambda: c.request("GET", "/v1/health"))
        assert r.status == 200 and took < 1.0, (r, took)
        r, took = timed(lambda: c.put("busy", b"v%d" % n, seq_version(n)))
        assert r.status == 201 and took < 1.0, (r, took)
        r, took = timed(lambda: c.get("busy"))
        assert r.body == b"v%d" % n and took < 1.0, (r, took)
    finally:
        c.close()


def test_thousands_of_idle_and_half_sent_connections(daemons):
    d = daemons.start()
    idle = open_many(d.port, MANY)
    half = []
    try:
        time.sleep(0.5)  # let the server accept them all
        assert_serves_promptly(d.port, 1)
        # Half a request line each, never finished.
        half = open_many(d.port, MANY, send=b"GET /v1/hea")
        time.sleep(0.5)
        assert_serves_promptly(d.port, 2)
        # Fresh connections keep working, one after another.
        for i in range(20):
            r, took = timed(lambda: Client(d.port, timeout=5).request(
                "GET", "/v1/health"))
            assert r.status == 200 and took < 1.0, (i, took)
    finally:
        close_all(idle)
        close_all(half)
    assert_serves_promptly(d.port, 3)


def closed_by_server(s, wait):
    s.settimeout(wait)
    try:
        return s.recv(1) == b""
    except socket.timeout:
        return False
    except ConnectionResetError:
        return True


def test_first_request_timeout_closes_silent_connections(daemons):
    d = daemons.start(extra_args=["--first-request-timeout", "1s",
                                  "--idle-timeout", "30s"])
    silent = socket.create_connection(("127.0.0.1", d.port))
    half = socket.create_connection(("127.0.0.1", d.port))
    half.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n")
    # A connection that served a request is a router's keepalive
    # connection: it outlives the first-request timeout.
    served = Client(d.port)
    assert served.request("GET", "/v1/health").status == 200
    conn = served.conn
    try:
        t = time.monotonic()
        assert closed_by_server(silent, 10)
        assert closed_by_server(half, 10)
        assert time.monotonic() - t < 8
        time.sleep(1.5)
        assert served.request("GET", "/v1/health").status == 200
        assert served.conn is conn, "the keepalive connection was cut"
    finally:
        silent.close()
        half.close()
        served.close()


def test_idle_timeout_closes_idle_keepalive_connections(daemons):
    d = daemons.start(extra_args=["--first-request-timeout", "1s",
                                  "--idle-timeout", "2s"])
    c = Client(d.port)
    assert c.request("GET", "/v1/health").status == 200
    sock = c.conn.sock
    t = time.monotonic()
    assert closed_by_server(sock, 10)
    assert 1.5 < time.monotonic() - t < 8
    c.close()


def test_max_connections_is_a_limit(daemons):
    """Past --max-connections new connections wait (in the listen queue)
    instead of being served; as soon as some close, they are."""
    d = daemons.start(extra_args=["--max-connections", "50",
                                  "--threads", "1"])
    socks = open_many(d.port, 50)
    try:
        time.sleep(0.3)
        with pytest.raises(OSError):
            Client(d.port, timeout=1).request("GET", "/v1/health")
    finally:
        close_all(socks)
    time.sleep(0.3)
    assert Client(d.port, timeout=5).request("GET", "/v1/health").status \
        == 200


def test_low_open_files_limit_warns_and_serves(daemons):
    def low_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 512))
    d = daemons.start(preexec_fn=low_limit)
    log = d.log_text()
    assert "warning: the open-files limit" in log
    assert "hard limit 512" in log and "at most 384 connections" in log
    assert Client(d.port).request("GET", "/v1/health").status == 200
    with open("/proc/%d/limits" % d.proc.pid) as f:
        line = [ln for ln in f if ln.startswith("Max open files")][0]
    assert line.split()[3:5] == ["512", "512"], line


def test_open_files_limit_is_raised_to_match(daemons):
    def soft_1024():
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
    d = daemons.start(preexec_fn=soft_1024)
    with open("/proc/%d/limits" % d.proc.pid) as f:
        line = [ln for ln in f if ln.startswith("Max open files")][0]
    assert int(line.split()[3]) >= 8192 + 128, line
    assert "warning" not in d.log_text()
