"""skv against a real cluster: three storaged nodes and nginx with the
simplekv module (N=3, W=2, R=2).  Every value written by skv is also checked
through plain HTTP (requests), so the client cannot agree with itself about
something the router did not store."""

import hashlib
import http.client
import json
import os
import subprocess
import urllib.parse

import pytest
import requests

from conftest import SKV, clean_env, run_skv

TIMEOUT = 10


class Direct:
    """A plain HTTP answer: status_code, headers, content."""

    def __init__(self, resp):
        self.status_code = resp.status
        self.headers = resp.headers
        self.content = resp.read()


def direct_get(url, key_bytes):
    # http.client sends the path as given: requests would squash the key
    # "." ("/.") like a dot-segment.  Keys nginx refuses in a path (a NUL
    # byte) are named in the query string.
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port,
                                      timeout=TIMEOUT)
    enc = urllib.parse.quote(key_bytes, safe="")
    try:
        conn.request("GET", "/?key=" + enc if b"\0" in key_bytes
                     else "/" + enc)
        return Direct(conn.getresponse())
    finally:
        conn.close()


def test_put_get_rm_roundtrip(url, tmp_path):
    r = run_skv("put", "greeting", url=url, stdin=b"hello world")
    assert r.rc == 0 and r.out == b"" and r.err == "", r

    assert direct_get(url, b"greeting").content == b"hello world"

    r = run_skv("get", "greeting", url=url)
    assert r.rc == 0 and r.out == b"hello world" and r.err == "", r

    r = run_skv("rm", "greeting", url=url)
    assert r.rc == 0 and r.err == "", r
    assert direct_get(url, b"greeting").status_code == 404

    r = run_skv("get", "greeting", url=url)
    assert r.rc == 1 and r.out == b"", r
    assert r.err.startswith("skv: GET /greeting: 404") and \
        r.err.count("\n") == 1, r


def test_put_from_file_with_content_type(url, tmp_path):
    f = tmp_path / "v.json"
    f.write_bytes(b'{"a": 1}')
    r = run_skv("put", "-t", "application/json", "doc", str(f), url=url)
    assert r.rc == 0, r
    resp = direct_get(url, b"doc")
    assert resp.status_code == 200
    assert resp.content == b'{"a": 1}'
    assert resp.headers["Content-Type"].startswith("application/json")


def test_put_verbose_reports_the_version(url):
    r = run_skv("-v", "put", "versioned", url=url, stdin=b"x")
    assert r.rc == 0, r
    etag = direct_get(url, b"versioned").headers["ETag"]
    assert "stored /versioned, version " + etag in r.err, r


def test_url_from_environment(url):
    r = run_skv("put", "via-env", stdin=b"env",
                env=clean_env(SIMPLEKV_URL=url + "/"))
    assert r.rc == 0, r
    r = run_skv("get", "via-env", "-o", "-",
                env=clean_env(SIMPLEKV_URL=url))
    assert r.rc == 0 and r.out == b"env", r


def test_empty_value(url):
    r = run_skv("put", "empty", "/dev/null", url=url)
    assert r.rc == 0, r
    r = run_skv("get", "empty", url=url)
    assert r.rc == 0 and r.out == b"", r


@pytest.mark.parametrize("key", [
    "with space", "a/b/c", "/leading/slash", "ünïcødé ✓", "100%", "a+b",
    "q?x=1&y#frag", ".", "a/../b", "-dash", "~tilde", "tab\there", "'\"<>",
])
def test_awkward_keys_roundtrip(url, key):
    value = ("value of " + key).encode()
    args = ["put", "--", key] if key.startswith("-") else ["put", key]
    r = run_skv(*args, url=url, stdin=value)
    assert r.rc == 0, r
    # The router saw exactly these bytes as the key.
    assert direct_get(url, key.encode()).content == value
    args = ["get", "--", key] if key.startswith("-") else ["get", key]
    r = run_skv(*args, url=url)
    assert r.rc == 0 and r.out == value, r


@pytest.mark.parametrize("key", [
    b"..", b"../up", b"x/../../y", b"a/./b", b"_simplekv/status",
    b"x/../_simplekv/status", b"nul\x00byte", b"\x00",
])
def test_keys_nginx_would_refuse_or_rewrite_in_a_path(url, key):
    # nginx refuses an encoded NUL or a path above "/", resolves "." and
    # ".." segments, and routes "/_simplekv/..." to the router's own
    # locations: skv names such keys in the query string (?key=).
    value = b"value of " + key
    r = run_skv("--hex", "put", key.hex(), url=url, stdin=value)
    assert r.rc == 0, r
    r = run_skv("--hex", "get", key.hex(), url=url)
    assert r.rc == 0 and r.out == value, r
    resp = requests.get(url + "/", params={"key": key}, timeout=TIMEOUT)
    assert resp.status_code == 200 and resp.content == value
    r = run_skv("--hex", "rm", key.hex(), url=url)
    assert r.rc == 0, r
    r = run_skv("--hex", "get", key.hex(), url=url)
    assert r.rc == 1, r


def test_binary_keys_by_hex_and_encoded(url):
    raw = bytes([0, 1, 2, 0xff, 0x0a, 0x25, 0x2f, 0x80, 0x7f, 0x20])
    r = run_skv("--hex", "put", raw.hex(), url=url, stdin=b"binary")
    assert r.rc == 0, r
    assert direct_get(url, raw).content == b"binary"

    enc = "".join("%%%02X" % b for b in raw)
    r = run_skv("--encoded", "get", enc, url=url)
    assert r.rc == 0 and r.out == b"binary", r
    r = run_skv("-x", "get", raw.hex().upper(), url=url)
    assert r.rc == 0 and r.out == b"binary", r

    r = run_skv("-e", "rm", enc.lower(), url=url)
    assert r.rc == 0, r
    assert direct_get(url, raw).status_code == 404


def test_longest_key(url):
    key = "k" * 1024
    r = run_skv("put", key, url=url, stdin=b"long")
    assert r.rc == 0, r
    r = run_skv("get", key, url=url)
    assert r.rc == 0 and r.out == b"long", r


def big_file(path, size):
    """A file of pseudo-random bytes; returns its sha256."""
    h = hashlib.sha256()
    block = hashlib.sha256(b"seed").digest() * 2048  # 64 KiB
    with open(path, "wb") as f:
        left, i = size, 0
        while left > 0:
            chunk = (block[i % 64:] + block[:i % 64])[:min(left, len(block))]
            f.write(chunk)
            h.update(chunk)
            left -= len(chunk)
            i += 1
    return h.hexdigest()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def test_large_value_streams_from_pipe_and_file(url, tmp_path):
    size = 8 * 1024 * 1024 + 7
    src = tmp_path / "big"
    digest = big_file(src, size)

    # From a pipe: unknown length, sent chunked.
    with open(src, "rb") as f:
        proc = subprocess.run([SKV, "--url", url, "put", "big-pipe"],
                              stdin=f, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=clean_env(),
                              timeout=120)
    assert proc.returncode == 0, proc.stderr
    # (stdin here is a regular file; force a real pipe too.)
    cat = subprocess.Popen(["cat", str(src)], stdout=subprocess.PIPE)
    try:
        proc = subprocess.run([SKV, "--url", url, "put", "big-chunked"],
                              stdin=cat.stdout, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=clean_env(),
                              timeout=120)
    finally:
        cat.stdout.close()
        cat.wait(10)
    assert proc.returncode == 0, proc.stderr

    # From a named file: Content-Length.
    r = run_skv("put", "big-file", str(src), url=url, timeout=120)
    assert r.rc == 0, r

    for key in ("big-pipe", "big-chunked", "big-file"):
        out = tmp_path / (key + ".out")
        r = run_skv("get", key, "-o", str(out), url=url, timeout=120)
        assert r.rc == 0 and r.out == b"", r
        assert out.stat().st_size == size
        assert sha256_file(out) == digest, key

    # To stdout.
    r = run_skv("get", "big-file", url=url, timeout=120)
    assert r.rc == 0 and len(r.out) == size, r
    assert hashlib.sha256(r.out).hexdigest() == digest


def test_progress_bar(url, tmp_path):
    src = tmp_path / "big"
    big_file(src, 6 * 1024 * 1024)

    # stderr is a pipe here: by default no bar, whatever the size.
    r = run_skv("put", "progress", str(src), url=url, timeout=120)
    assert r.rc == 0 and r.err == "", r

    r = run_skv("--progress", "put", "progress", str(src), url=url,
                timeout=120)
    assert r.rc == 0, r
    assert "100%" in r.err and "6.0 MiB / 6.0 MiB" in r.err, r

    r = run_skv("--progress", "get", "progress", "-o",
                str(tmp_path / "out"), url=url, timeout=120)
    assert r.rc == 0 and "100%" in r.err, r

    # From a pipe the size is unknown: a count and a rate, no percentage.
    with open(src, "rb") as f:
        data = f.read()
    cat = subprocess.Popen([SKV, "--url", url, "--progress", "put",
                            "progress-pipe"], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=clean_env())
    out, err = cat.communicate(data, timeout=120)
    assert cat.returncode == 0, err
    assert b"6.0 MiB" in err and b"%" not in err and b"/s" in err, err

    # Small values never show one.
    r = run_skv("--progress", "put", "small", url=url, stdin=b"x")
    assert r.rc == 0 and r.err == "", r


def test_progress_bar_on_a_terminal(url, tmp_path):
    import pty

    src = tmp_path / "big"
    big_file(src, 5 * 1024 * 1024)
    master, slave = pty.openpty()
    try:
        proc = subprocess.run([SKV, "--url", url, "put", "tty", str(src)],
                              stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=slave,
                              env=clean_env(), timeout=120)
        os.close(slave)
        slave = None
        seen = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the terminal has no writer left
                break
            if not chunk:
                break
            seen += chunk
    finally:
        if slave is not None:
            os.close(slave)
        os.close(master)
    assert proc.returncode == 0, seen
    assert b"100%" in seen and b"\r" in seen, seen


def test_get_missing_key_keeps_existing_output_file(url, tmp_path):
    out = tmp_path / "value"
    out.write_bytes(b"previous")
    r = run_skv("get", "never-written", "-o", str(out), url=url)
    assert r.rc == 1, r
    assert "404" in r.err
    assert out.read_bytes() == b"previous"
    assert os.listdir(tmp_path) == ["value"]

    run_skv("put", "now-written", url=url, stdin=b"new")
    r = run_skv("get", "now-written", "-o", str(out), url=url)
    assert r.rc == 0, r
    assert out.read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["value"]


def test_get_to_a_full_device_is_exit_3(url):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    r = run_skv("put", "to-full", url=url, stdin=b"x" * 100000)
    assert r.rc == 0, r
    r = run_skv("get", "to-full", "-o", "/dev/full", url=url)
    assert r.rc == 3, r
    assert "No space left on device" in r.err and r.err.count("\n") == 1, r


def test_value_too_large_shows_413_and_the_routers_message(cluster, tmp_path):
    from conftest import MAX_VALUE

    router, _ = cluster
    src = tmp_path / "too-big"
    with open(src, "wb") as f:
        f.truncate(MAX_VALUE + 1)

    # What the router itself says, asked directly.
    with open(src, "rb") as f:
        resp = requests.put(router.url + "/too-big", data=f,
                            timeout=60)
    assert resp.status_code == 413
    body = resp.json()

    for args, stdin in ((("put", "too-big", str(src)), None),):
        r = run_skv(*args, url=router.url, stdin=stdin, timeout=120)
        assert r.rc == 3, r
        assert r.err.startswith("skv: PUT /too-big: 413"), r
        assert r.err.count("\n") == 1, r
        assert body["error"] in r.err, (body, r)
        if body.get("detail"):
            assert body["detail"] in r.err, (body, r)
    assert direct_get(router.url, b"too-big").status_code == 404


def status_rows(text):
    """The node table of `skv status`: {name: {column: cell}}."""
    lines = text.splitlines()
    header = [i for i, l in enumerate(lines) if l.startswith("NODE ")]
    assert len(header) == 1, text
    cols = lines[header[0]].split()
    rows = {}
    for line in lines[header[0] + 1:]:
        cells = line.split()
        assert len(cells) == len(cols), text
        rows[cells[0]] = dict(zip(cols[1:], cells[1:]))
    return rows


def test_status_table_and_json(cluster):
    router, nodes = cluster
    r = run_skv("status", "--json", url=router.url)
    assert r.rc == 0, r
    doc = json.loads(r.out)
    assert doc == requests.get(router.url + "/_simplekv/status",
                               timeout=TIMEOUT).json()

    r = run_skv("status", url=router.url)
    assert r.rc == 0 and r.err == "", r
    rows = status_rows(r.out.decode())
    # the namespaces, with their quorums, in a table of their own
    lines = r.out.decode().splitlines()
    ns_head = [i for i, l in enumerate(lines) if l.startswith("NAMESPACE ")]
    assert len(ns_head) == 1, r
    cols = lines[ns_head[0]].split()
    ns_row = dict(zip(cols, lines[ns_head[0] + 1].split()))
    assert ns_row["NAMESPACE"] == "default" and ns_row["replicas"] == "3", r
    assert sorted(rows) == ["a", "b", "c"], r
    by_name = {n["name"]: n for n in doc["nodes"]}
    for name, row in rows.items():
        assert row["up"] == "up", r
        # Counters are shown as the router gave them (the table was read
        # after the JSON: they can only have grown).
        assert int(row["failures"]) >= by_name[name]["failures"]
        if "latency_avg_ms" in row:
            assert float(row["latency_avg_ms"]) >= 0
    # Every other scalar of the JSON is listed above the table.
    for key in doc:
        if key != "nodes" and not isinstance(doc[key], (dict, list)):
            assert ("\n%s: " % key) in "\n" + r.out.decode(), r


def test_status_shows_a_node_down(cluster):
    router, nodes = cluster
    victim = nodes[2]
    victim.stop()
    try:
        # The router notices when a replica request to the node fails.
        for i in range(10):
            run_skv("put", "probe-%d" % i, url=router.url, stdin=b"p")
        r = run_skv("status", url=router.url)
        assert r.rc == 0, r
        rows = status_rows(r.out.decode())
        assert rows["c"]["up"] == "DOWN", r
        assert int(rows["c"]["failures"]) > 0, r
        assert rows["a"]["up"] == "up" and rows["b"]["up"] == "up", r
    finally:
        victim.start()


def test_quorum_lost_gives_503_with_the_routers_message(cluster):
    router, nodes = cluster
    for s in nodes[1:]:
        s.stop()
    try:
        resp = requests.put(router.url + "/no-quorum", data=b"v",
                            timeout=TIMEOUT)
        assert resp.status_code in (503, 504)
        body = resp.json()
        r = run_skv("put", "no-quorum-2", url=router.url, stdin=b"v",
                    timeout=30)
        assert r.rc == 3, r
        assert r.err.startswith("skv: PUT /no-quorum-2: %d"
                                % resp.status_code), r
        assert body["error"] in r.err, (body, r)
        assert r.err.count("\n") == 1, r
    finally:
        for s in nodes[1:]:
            s.start()


def test_ls_follows_cursors_and_skips_deleted(url):
    keys = [b"ls/a", b"ls/b b", b"ls/c/\xc3\xbc", b"ls/d", b"ls/e%",
            b"ls/f", b"ls/\x00bin\xff"]
    for k in keys:
        r = run_skv("--hex", "put", k.hex(), url=url, stdin=b"v")
        assert r.rc == 0, r
    run_skv("put", "lt/other", url=url, stdin=b"v")
    run_skv("put", "ls/gone", url=url, stdin=b"v")
    run_skv("rm", "ls/gone", url=url)

    want = sorted(keys)
    # Small pages: several cursors to follow.
    r = run_skv("--hex", "ls", b"ls/".hex(), "--page-size", "2", url=url)
    assert r.rc == 0, r
    assert r.out.decode().split() == [k.hex() for k in want]

    r = run_skv("--encoded", "ls", "ls%2F", url=url)
    assert r.rc == 0, r
    assert [urllib.parse.unquote_to_bytes(l)
            for l in r.out.decode().split()] == want

    r = run_skv("ls", "ls/d", url=url)
    assert r.rc == 0 and r.out == b"ls/d\n", r

    r = run_skv("ls", "no-such-prefix/", url=url)
    assert r.rc == 0 and r.out == b"", r

    # A prefix with a NUL byte goes in the query string (?list&prefix=).
    r = run_skv("-x", "ls", b"ls/\x00".hex(), url=url)
    assert r.rc == 0 and r.out == (b"ls/\x00bin\xff".hex() + "\n").encode(), r


def test_ls_many_pages(url):
    keys = sorted(b"pages/%03d" % i for i in range(57))
    for k in keys:
        r = run_skv("put", k, url=url, stdin=b"v")
        assert r.rc == 0, r
    r = run_skv("ls", "pages/", "--page-size", "10", url=url)
    assert r.rc == 0, r
    assert r.out.split(b"\n")[:-1] == keys
    r = run_skv("ls", "pages/", url=url)
    assert r.rc == 0 and r.out.split(b"\n")[:-1] == keys, r
