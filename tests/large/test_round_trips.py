"""Values of every size class round-trip through the router (N=3 W=2
R=2): empty, one byte, exactly one chunk (256 KiB) and one byte either
side of it, and 100 MiB, each uploaded with a Content-Length and chunked;
the body read back and its Repr-Digest match the generated value's
SHA-256, and at least W nodes hold it (by their own Repr-Digest).  The
1 GiB cases are in test_memory.py (measured while they run)."""

import pytest

from bigvalue import Gen, digest_header, get_stream, put_stream
from conftest import CS, MIB, fits

SIZES = [0, 1, CS - 1, CS, CS + 1, 100 * MIB]


@pytest.mark.parametrize("chunked", [False, True],
                         ids=["content-length", "chunked"])
@pytest.mark.parametrize("size", [
    pytest.param(s, marks=fits(s), id=str(s)) for s in SIZES])
def test_round_trip(cluster, size, chunked):
    gen = Gen(size * 2 + chunked, size)
    key = "/rt-%d-%s" % (size, "chunked" if chunked else "length")
    status, hdrs, body = put_stream(cluster.port, key, gen, chunked=chunked,
                                    headers={"Content-Type":
                                             "application/x-test"})
    assert status == 201, body
    g = get_stream(cluster.port, key)
    assert g.status == 200, g
    assert g.complete and g.n == size
    assert g.sha == gen.sha()
    assert g.header("Repr-Digest") == digest_header(gen.sha())
    assert g.header("Content-Type") == "application/x-test"
    # HEAD: the same headers, no body.
    h = get_stream(cluster.port, key, method="HEAD")
    assert h.status == 200 and h.n == 0
    assert h.header("Content-Length") == str(size)
    assert h.header("Repr-Digest") == digest_header(gen.sha())
    # At least W replicas hold this value, digest and all.
    holders = [n for n, node in cluster.nodes.items()
               if get_stream(node.port, "/v1/kv" + key,
                             method="HEAD").header("Repr-Digest")
               == digest_header(gen.sha())]
    assert len(holders) >= 2, holders
