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


def _trickle_until_closed(socks, every, limit):
    """Send one header byte on each socket every `every` seconds until
    the server closes it; returns the seconds each took to be closed
    (None: still open after `limit`)."""
    t0 = time.monotonic()
    closed = [None] * len(socks)
    while time.monotonic() - t0 < limit and None in closed:
        time.sleep(every)
        for i, s in enumerate(socks):
            if closed[i] is not None:
                continue
            try:
                s.sendall(b"a")
            except OSError:
                closed[i] = time.monotonic() - t0
    return closed


def test_trickled_headers_are_cut_at_the_first_request_timeout(daemons):
    """Slowloris: headers sent a byte every 0.3 s never let the
    connection go without traffic for the 1 s --first-request-timeout,
    yet the connection is closed about 1 s after it opened: the timeout
    bounds the first request's line and headers, not only the silence
    (storaged/headguard.c).  Found by tests/hostile/."""
    d = daemons.start(extra_args=["--first-request-timeout", "1s",
                                  "--idle-timeout", "30s"])
    socks = open_many(d.port, 50, b"PUT /v1/kv/slow HTTP/1.1\r\nX-Slow: ")
    line = open_many(d.port, 50, b"GET /v1/he")     # the request line too
    try:
        closed = _trickle_until_closed(socks + line, 0.3, 8)
        assert None not in closed, "%d of %d trickling connections open " \
            "after 8 s" % (closed.count(None), len(closed))
        assert max(closed) < 1.0 + 0.5 + 1.0, max(closed)
    finally:
        close_all(socks + line)
    assert_serves_promptly(d.port, 4)
    c = Client(d.port)
    try:
        assert c.get("slow").status == 404
    finally:
        c.close()


def test_first_request_deadline_spares_slow_bodies_and_served_connections(
        daemons):
    """Only the headers have the deadline: a first request whose headers
    came at once may send its body slowly (traffic within the timeout),
    and a connection that served a request is a keep-alive one."""
    d = daemons.start(extra_args=["--first-request-timeout", "1s",
                                  "--idle-timeout", "30s"])
    body = b"x" * 12
    s = socket.create_connection(("127.0.0.1", d.port), timeout=10)
    served = Client(d.port)
    try:
        assert served.request("GET", "/v1/health").status == 200
        conn = served.conn
        s.sendall(b"PUT /v1/kv/slowbody HTTP/1.1\r\nHost: x\r\n"
                  b"X-Simplekv-Version: %s\r\nContent-Length: %d\r\n\r\n"
                  % (seq_version(1).encode(), len(body)))
        for i in range(len(body)):          # 12 x 0.25 s = 3 s
            time.sleep(0.25)
            s.sendall(body[i:i + 1])
        answer = s.recv(4096)
        assert answer.startswith(b"HTTP/1.1 201"), answer
        assert served.request("GET", "/v1/health").status == 200
        assert served.conn is conn, "the keepalive connection was cut"
    finally:
        s.close()
        served.close()
    c = Client(d.port)
    try:
        r = c.get("slowbody")
        assert (r.status, r.body) == (200, body)
    finally:
        c.close()


def test_a_refused_token_closes_the_connection(daemons, tmp_path):
    """A 401 closes the connection, so that only a client with the token
    keeps one past its first request (where the headers' deadline no
    longer applies)."""
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    d = daemons.start(extra_args=["--token-file", str(token)],
                      token="s3cret")
    s = socket.create_connection(("127.0.0.1", d.port), timeout=10)
    try:
        s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        assert data.startswith(b"HTTP/1.1 401"), data
        assert b"\r\nConnection: close\r\n" in data, data
    finally:
        s.close()
