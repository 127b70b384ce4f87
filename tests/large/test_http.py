"""The large-value HTTP contract through the router (docs/router.md):
Range (a-b, a-, -n: 206 with Content-Range; unsatisfiable: 416; If-Range
with the ETag), a PUT whose Content-Digest does not match refused with
400 and stored nowhere, and a value over the limit refused with 413 by
the router and by storaged."""

import http.client

import pytest

from bigvalue import Gen, digest_header, get_stream, put_stream
from conftest import CS, LIMIT, MIB

SIZE = 3 * MIB + 77


@pytest.fixture(scope="module")
def value(cluster):
    gen = Gen(500, SIZE)
    status, hdrs, body = put_stream(cluster.port, "/ranged", gen)
    assert status == 201, body
    return gen


@pytest.mark.parametrize("spec,start,end", [
    ("bytes=0-0", 0, 0),
    ("bytes=100-199", 100, 199),
    ("bytes=%d-%d" % (CS - 10, CS + 9), CS - 10, CS + 9),   # across chunks
    ("bytes=%d-" % (2 * MIB + 5), 2 * MIB + 5, SIZE - 1),
    ("bytes=-500", SIZE - 500, SIZE - 1),
    ("bytes=%d-%d" % (SIZE - 10, SIZE + 1000), SIZE - 10, SIZE - 1),
    ("bytes=-%d" % (SIZE + 5), 0, SIZE - 1),
])
def test_range(cluster, value, spec, start, end):
    g = get_stream(cluster.port, "/ranged", {"Range": spec})
    assert g.status == 206, g
    assert g.header("Content-Range") == "bytes %d-%d/%d" % (start, end,
                                                            SIZE)
    assert g.complete and g.n == end - start + 1
    assert g.sha == value.range_sha(start, end - start + 1)
    # the digest of the whole value, not of the range (RFC 9530)
    assert g.header("Repr-Digest") == digest_header(value.sha())


@pytest.mark.parametrize("spec", ["bytes=%d-" % SIZE,
                                  "bytes=%d-%d" % (SIZE + 5, SIZE + 9)])
def test_range_not_satisfiable(cluster, value, spec):
    g = get_stream(cluster.port, "/ranged", {"Range": spec})
    assert g.status == 416, g
    assert g.header("Content-Range") == "bytes */%d" % SIZE


def test_if_range(cluster, value):
    etag = get_stream(cluster.port, "/ranged", method="HEAD").header("ETag")
    assert etag and etag.startswith('"')
    g = get_stream(cluster.port, "/ranged", {"Range": "bytes=10-19",
                                             "If-Range": etag})
    assert g.status == 206 and g.n == 10
    assert g.sha == value.range_sha(10, 10)
    other = '"%s"' % ("0" * 31 + "1")
    g = get_stream(cluster.port, "/ranged", {"Range": "bytes=10-19",
                                             "If-Range": other})
    assert g.status == 200 and g.complete and g.n == SIZE
    assert g.sha == value.sha()


def stored_nowhere(cluster, path):
    assert get_stream(cluster.port, path).status == 404
    for name, node in cluster.nodes.items():
        g = get_stream(node.port, "/v1/kv" + path)
        assert g.status == 404, (name, g)


@pytest.mark.parametrize("size", [2000, 2 * MIB + 1])
@pytest.mark.parametrize("chunked", [False, True],
                         ids=["content-length", "chunked"])
@pytest.mark.parametrize("header", ["Content-Digest", "Repr-Digest"])
def test_digest_mismatch_refused(cluster, size, chunked, header):
    gen = Gen(600 + size, size)
    wrong = Gen(601 + size, size)
    path = "/digest-%d-%d-%s" % (size, chunked, header)
    status, _, body = put_stream(cluster.port, path, gen, chunked=chunked,
                                 headers={header: digest_header(wrong.sha())})
    assert status == 400, body
    stored_nowhere(cluster, path)
    # the right digest is accepted
    status, _, body = put_stream(cluster.port, path, gen, chunked=chunked,
                                 headers={header: digest_header(gen.sha())})
    assert status == 201, body
    assert get_stream(cluster.port, path).sha == gen.sha()


def announce(port, path, length, headers=None):
    """A PUT announcing length bytes: the answer is read before sending
    any of them (a limit is enforced from Content-Length)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.putrequest("PUT", path, skip_accept_encoding=True)
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        conn.putheader("Content-Length", str(length))
        conn.endheaders()
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def test_over_the_limit_refused(cluster):
    from conftest import node_version
    status, body = announce(cluster.port, "/too-big", LIMIT + 1)
    assert status == 413, body
    node = cluster.nodes["a"]
    status, body = announce(node.port, "/v1/kv/too-big", LIMIT + 1,
                            {"X-Simplekv-Version": node_version()})
    assert status == 413, body
    stored_nowhere(cluster, "/too-big")
