"""Hostile clients against the router (nginx + ngx_simplekv_module), with
raw sockets: internal headers smuggled towards storaged, malformed
framing, pipelining, oversized headers and URIs.  Every answer must be
the documented JSON error (docs/router.md; {"error", "detail"}) or a
clean close, nothing may be stored (every node's own listing and the
router's listing are read back), and a probe client keeps working
throughout (its p99 is printed as a PROBE line and kept in
build/hostile-results/).

t/023-bad-input.t already covers: an endless chunked upload, a non-hex
chunk size ("zz"), two different Content-Lengths, one header over the
buffers, one request line over them.  These tests do not repeat those.
"""

import re
import time
import urllib.parse

import pytest
import requests

from conftest import (Probe, assert_json_error_or_close, exchange,
                      parse_responses)

FUTURE = "ffffffffffff0000" + "0000000000000bad"


def _req(method, path, headers=(), body=b"", version="HTTP/1.1"):
    lines = ["%s %s %s" % (method, path, version), "Host: hostile"]
    lines += list(headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _requests_to_node(recorded, key):
    """The requests the router sent node a for key: (request line,
    [(header, value)]) each."""
    out = []
    path = "/v1/kv/" + urllib.parse.quote(key, safe="")
    for m in re.finditer(rb"(?:GET|HEAD|PUT|DELETE) ([^ ]+) HTTP/1\.1\r\n"
                         rb"((?:[^\r\n]+\r\n)*)\r\n", recorded):
        if m.group(1).decode("latin-1").split("?")[0] != path:
            continue
        headers = []
        for line in m.group(2).decode("latin-1").split("\r\n"):
            if line:
                k, _, v = line.partition(":")
                headers.append((k.strip().lower(), v.strip()))
        out.append((m.group(0).split(b"\r\n")[0].decode("latin-1"),
                    headers))
    return out


SMUGGLED = [
    "X-Simplekv-Version: " + FUTURE,
    "X-Simplekv-Epoch: 18446744073709551615",
    "X-Simplekv-Held: yes",
    "X-Simplekv-Tombstone: 1",
    "X-Simplekv-Epochs: 0-99",
    "Authorization: Bearer not-the-token",
    "Connection: keep-alive, X-Simplekv-Version",
]


def test_internal_headers_never_reach_storaged(hc):
    """X-Simplekv-* and Authorization sent by a client do not reach
    storaged: each replica request carries exactly the router's version
    (the one in the client's ETag), the router's token, the router's
    epoch and nothing else of the client's."""
    with Probe(hc.router.url, "smuggle") as probe:
        hc.recorder.clear()
        key = "smuggle-put"
        data, closed = exchange(hc.router.port, _req(
            "PUT", "/" + key, SMUGGLED + ["Content-Length: 5",
                                          "Connection: close"], b"value"))
        (resp,), _ = parse_responses(data)
        assert resp.status == 201, resp
        etag = resp.header("ETag").strip('"')
        assert etag != FUTURE
        # DELETE and GET with the same headers
        data, _ = exchange(hc.router.port, _req(
            "GET", "/" + key, SMUGGLED + ["Connection: close"]))
        (resp,), _ = parse_responses(data)
        assert (resp.status, resp.body) == (200, b"value"), resp
        assert resp.header("ETag").strip('"') == etag
        data, _ = exchange(hc.router.port, _req(
            "DELETE", "/smuggle-del", SMUGGLED + ["Connection: close"]))
        (resp,), _ = parse_responses(data)
        assert resp.status == 204, resp
        deleted = resp.header("ETag").strip('"')

        # a read asks two of the three replicas first (quorum reads),
        # so node a (behind the recorder) sees the GET of only some keys:
        # GET six more with the same headers
        gets = ["smuggle-get-%d" % i for i in range(6)]
        for k in gets:
            data, _ = exchange(hc.router.port, _req(
                "PUT", "/" + k, ["Content-Length: 1",
                                 "Connection: close"], b"g"))
            assert parse_responses(data)[0][0].status == 201
            data, _ = exchange(hc.router.port, _req(
                "GET", "/" + k, SMUGGLED + ["Connection: close"]))
            (resp,), _ = parse_responses(data)
            assert (resp.status, resp.body) == (200, b"g"), resp

        def gets_sent(text):
            return [r for k in gets for r in _requests_to_node(text, k)
                    if r[0].startswith("GET")]

        deadline = time.monotonic() + 5
        while True:
            text = hc.recorder.text()
            sent = (_requests_to_node(text, key)
                    + _requests_to_node(text, "smuggle-del"))
            if (len(sent) >= 2 and gets_sent(text)) \
                    or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert len(sent) >= 2, hc.recorder.text()[-2000:]
        assert gets_sent(text), hc.recorder.text()[-2000:]
        sent += gets_sent(text)
        for line, headers in sent:
            names = [k for k, _ in headers]
            assert "x-simplekv-held" not in names, (line, headers)
            assert "x-simplekv-tombstone" not in names, (line, headers)
            assert "x-simplekv-epochs" not in names, (line, headers)
            assert names.count("authorization") == 1, (line, headers)
            assert dict(headers)["authorization"] == \
                "Bearer " + hc.token, (line, headers)
            assert names.count("x-simplekv-epoch") <= 1, (line, headers)
            assert dict(headers).get("x-simplekv-epoch", "0") == "0"
            versions = [v for k, v in headers if k == "x-simplekv-version"]
            if line.startswith(("PUT", "DELETE")):
                assert versions in ([etag], [deleted]), (line, headers)
            else:
                assert versions == [], (line, headers)
        for name in hc.nodes:
            status, headers, body = hc.node_get(name, key)
            assert (status, body) == (200, b"value"), name
            assert headers["X-Simplekv-Version"] == etag
            status, headers, _ = hc.node_get(name, "smuggle-del")
            assert status == 404 and \
                headers["X-Simplekv-Version"] == deleted
    probe.check("smuggled-internal-headers")


@pytest.mark.parametrize("key", [
    "inj\r\nX-Simplekv-Version: " + FUTURE,
    "inj HTTP/1.1\r\nHost: x\r\n\r\nDELETE /v1/kv/victim",
    "inj/../../v1/epochs",
])
def test_key_bytes_cannot_inject_into_the_replica_request(hc, key):
    """A key holding CR LF, spaces or dots is one key: percent-encoded on
    the replica request, stored as those bytes, nothing else."""
    hc.recorder.clear()
    # in ?key=: nginx decodes a path before matching, and refuses one
    # that climbs above / (docs/router.md)
    url = hc.router.url + "/?key=" + urllib.parse.quote(key, safe="")
    r = requests.put(url, data=b"v", timeout=5)
    assert r.status_code == 201, (r.status_code, r.text)
    sent = _requests_to_node(hc.recorder.text(), key)
    assert sent, hc.recorder.text()[-1000:]
    for line, headers in sent:
        assert [k for k, _ in headers].count("x-simplekv-version") == 1
    for name in hc.nodes:
        status, _, body = hc.node_get(name, key)
        assert (status, body) == (200, b"v"), name
        assert hc.node_keys(name, "victim") == []
    r = requests.get(url, timeout=5)
    assert (r.status_code, r.content) == (200, b"v")


# Each case: (name, raw request after the request line and Host, allowed
# statuses).  The request writes the key frm-<name>-x; a second request
# (PUT frm-<name>-smuggled) follows in the same packet: if the framing
# were misread it would run.  Nothing may be stored under frm-<name>-.
FRAMING = [
    ("cl-and-te", ["Content-Length: 5", "Transfer-Encoding: chunked"],
     b"3\r\nabc\r\n0\r\n\r\n", (400,)),
    ("te-and-cl", ["Transfer-Encoding: chunked", "Content-Length: 5"],
     b"3\r\nabc\r\n0\r\n\r\n", (400,)),
    ("two-te", ["Transfer-Encoding: chunked", "Transfer-Encoding: chunked"],
     b"3\r\nabc\r\n0\r\n\r\n", (400, 501)),
    ("te-gzip-chunked", ["Transfer-Encoding: gzip, chunked"],
     b"3\r\nabc\r\n0\r\n\r\n", (400, 501)),
    ("te-identity", ["Transfer-Encoding: identity", "Content-Length: 3"],
     b"abc", (400, 501)),
    ("te-http10", ["Transfer-Encoding: chunked"],
     b"3\r\nabc\r\n0\r\n\r\n", (400,)),
    ("same-cl-twice", ["Content-Length: 3", "Content-Length: 3"], b"abc",
     (400,)),
    ("cl-list", ["Content-Length: 3, 3"], b"abc", (400,)),
    ("cl-plus", ["Content-Length: +3"], b"abc", (400,)),
    ("cl-negative", ["Content-Length: -1"], b"abc", (400,)),
    ("cl-hex", ["Content-Length: 0x3"], b"abc", (400,)),
    ("cl-huge", ["Content-Length: 99999999999999999999999"], b"abc",
     (400, 413)),
    ("chunk-negative", ["Transfer-Encoding: chunked"],
     b"-3\r\nabc\r\n0\r\n\r\n", (400,)),
    ("chunk-overflow", ["Transfer-Encoding: chunked"],
     b"fffffffffffffffffffff\r\nabc\r\n0\r\n\r\n", (400, 413)),
    ("chunk-0x", ["Transfer-Encoding: chunked"],
     b"0x3\r\nabc\r\n0\r\n\r\n", (400,)),
    ("chunk-too-long", ["Transfer-Encoding: chunked"],
     b"2\r\nabc\r\n0\r\n\r\n", (400,)),
    ("chunk-no-crlf", ["Transfer-Encoding: chunked"],
     b"3\r\nabcX0\r\n\r\n", (400,)),
    ("two-hosts", ["Host: other", "Content-Length: 3"], b"abc", (400,)),
    ("nul-in-header", ["X-A: a\x00b", "Content-Length: 3"], b"abc",
     (400,)),
    ("obs-fold", ["X-A: a", " X-Simplekv-Version: " + FUTURE,
                  "Content-Length: 3"], b"abc", (400,)),
    ("cr-in-value", ["X-A: a\rX-Simplekv-Version: " + FUTURE,
                     "Content-Length: 3"], b"abc", (400,)),
]


@pytest.mark.parametrize("name,headers,body,statuses", FRAMING,
                         ids=[f[0] for f in FRAMING])
def test_malformed_framing_is_refused_and_stores_nothing(
        hc, name, headers, body, statuses):
    prefix = "frm-%s-" % name
    version = "HTTP/1.0" if name == "te-http10" else "HTTP/1.1"
    smuggled = _req("PUT", "/%ssmuggled" % prefix, ["Content-Length: 1"],
                    b"s")
    payload = _req("PUT", "/%sx" % prefix, headers, body, version) + smuggled
    data, closed = exchange(hc.router.port, payload, timeout=5)
    assert_json_error_or_close(data, closed, statuses, name)
    hc.assert_nothing_stored(prefix)


def test_pipelined_requests_are_answered_in_order(hc):
    """Five requests in one packet, bodies included: five answers, in
    order, each what it would be alone."""
    reqs = (_req("PUT", "/pipe-1", ["Content-Length: 3"], b"one")
            + _req("GET", "/pipe-1")
            + _req("DELETE", "/pipe-1")
            + _req("GET", "/pipe-1")
            + _req("PUT", "/pipe-2", ["Transfer-Encoding: chunked"],
                   b"3\r\ntwo\r\n0\r\n\r\n")
            + _req("HEAD", "/pipe-2")
            + _req("GET", "/pipe-2", ["Connection: close"]))
    data, closed = exchange(hc.router.port, reqs, timeout=10)
    resps, rest = parse_responses(data, head_only=(5,))
    assert rest == b"" and closed, data[-500:]
    got = [(r.status, r.body) for r in resps]
    assert [s for s, _ in got] == [201, 200, 204, 404, 201, 200, 200], got
    assert got[1][1] == b"one" and got[6][1] == b"two", got
    assert resps[3].json()["error"], resps[3]


def test_pipelined_request_after_a_refused_one_is_not_run(hc):
    """A request that nginx refuses closes the connection: what follows
    in the same packet is not run, whatever it looks like."""
    reqs = (_req("PUT", "/pipe-bad-x", ["Content-Length: 3",
                                        "Content-Length: 4"], b"abc")
            + _req("PUT", "/pipe-bad-after", ["Content-Length: 1"], b"a"))
    data, closed = exchange(hc.router.port, reqs)
    assert_json_error_or_close(data, closed, (400,), "pipelined after 400")
    hc.assert_nothing_stored("pipe-bad-")


@pytest.mark.parametrize("case", ["many-headers", "long-uri", "long-key",
                                  "long-query", "long-header-name"])
def test_oversized_requests_get_a_json_error(hc, case):
    """Headers and URIs over nginx's buffers (large_client_header_buffers
    4 8k, the default) or the key limit: JSON 414/431/400, nothing
    stored."""
    prefix = "big-%s-" % case
    if case == "many-headers":
        # each fits a buffer, all of them do not
        headers = ["X-H%d: %s" % (i, "h" * 100) for i in range(400)]
        payload = _req("PUT", "/%sx" % prefix, headers + [
            "Content-Length: 1"], b"x")
        statuses = (400, 431)
    elif case == "long-uri":
        payload = _req("PUT", "/%s%s" % (prefix, "u" * 9000),
                       ["Content-Length: 1"], b"x")
        statuses = (414,)
    elif case == "long-key":
        # fits nginx's buffers; over the 1024-byte key limit
        payload = _req("PUT", "/%s%s" % (prefix, "%41" * 1025),
                       ["Content-Length: 1"], b"x")
        statuses = (414,)
    elif case == "long-query":
        payload = _req("PUT", "/%sx?%s" % (prefix, "q=" + "q" * 9000),
                       ["Content-Length: 1"], b"x")
        statuses = (414,)
    else:
        payload = _req("PUT", "/%sx" % prefix, [
            "X-" + "n" * 9000 + ": 1", "Content-Length: 1"], b"x")
        statuses = (400, 431)
    data, closed = exchange(hc.router.port, payload)
    resps, rest = parse_responses(data)
    assert len(resps) == 1 and rest == b"", data[:500]
    r = resps[0]
    assert r.status in statuses, r
    assert r.header("Content-Type").startswith("application/json"), r
    assert r.json()["error"], r
    hc.assert_nothing_stored(prefix)
