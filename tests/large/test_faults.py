"""kill -9 of a storaged in the middle of a large upload, once sent to it
directly and once through the router: after its restart the key reads
either the old value or the new one, whole, never a mix, and once the
collector ran no chunk of the unfinished upload remains (the node's
/v1/stats "chunks" is what the values it holds need)."""

import threading
import time

from bigvalue import Gen, get_stream, put_stream
from conftest import LIMIT, MIB, chunks_of, node_version, \
    wait_held_everywhere

# through the router: long enough to catch the node mid-upload
ROUTER_NEW_SIZE = 200 * MIB if LIMIT >= 200 * MIB else 12 * MIB


def settled(expected_chunks):
    return lambda s: (s["chunk_uploads_pending"] == 0
                      and s["chunks"] == expected_chunks)


def test_kill9_mid_upload_direct(cluster):
    node = cluster.nodes["a"]
    path = "/direct-kill"
    old = Gen(300, 3 * MIB + 5)
    v_old = node_version()
    assert put_stream(node.port, "/v1/kv" + path, old,
                      headers={"X-Simplekv-Version": v_old})[0] == 201
    base = cluster.wait_stats("a", lambda s: s["chunk_uploads_pending"] == 0)
    conn = put_stream(node.port, "/v1/kv" + path, Gen(301, 12 * MIB),
                      headers={"X-Simplekv-Version": node_version()},
                      stop_after=9 * MIB + 7)
    # The upload is storing chunks (and may still be at it).
    cluster.wait_stats("a", lambda s: s["chunk_uploads_pending"] == 1
                       and s["chunks"] > base["chunks"], what="upload")
    node.kill9()
    conn.close()
    node.start()
    g = get_stream(node.port, "/v1/kv" + path)
    assert g.status == 200 and g.complete, g
    assert g.sha == old.sha()
    assert g.header("X-Simplekv-Version") == v_old
    cluster.wait_stats("a", settled(base["chunks"]),
                       what="unfinished upload's chunks collected")


def test_kill9_mid_upload_through_router(cluster):
    path = "/router-kill"
    old = Gen(310, 5 * MIB + 3)
    new = Gen(311, ROUTER_NEW_SIZE)
    assert put_stream(cluster.port, path, old)[0] == 201
    wait_held_everywhere(cluster, path, old)
    base = cluster.wait_stats("b", lambda s: s["chunk_uploads_pending"] == 0)
    result = {}

    def upload():
        result["put"] = put_stream(cluster.port, path, new)

    t = threading.Thread(target=upload)
    t.start()
    # Kill b once the router's upload to it is storing chunks.
    deadline = time.monotonic() + 300
    killed = False
    while t.is_alive() and time.monotonic() < deadline:
        s = cluster.stats("b")
        if s["chunk_uploads_pending"] >= 1 and s["chunks"] > base["chunks"]:
            cluster.nodes["b"].kill9()
            killed = True
            break
        time.sleep(0.005)
    t.join(600)
    assert killed, "never saw the upload reach node b (it ended first)"
    status = result["put"][0]
    # a and c stored it: 201; the quorum (W=2) holds without b.
    assert status == 201, result["put"]
    cluster.nodes["b"].start()
    # b: the old value or the new one, whole, and the chunks that one
    # needs, no more.
    g = get_stream(cluster.nodes["b"].port, "/v1/kv" + path)
    assert g.status == 200 and g.complete, g
    assert g.sha in (old.sha(), new.sha()), "a mix of old and new"
    held = old if g.sha == old.sha() else new
    cluster.wait_stats("b", settled(base["chunks"] - chunks_of(old.size)
                                    + chunks_of(held.size)),
                       what="unfinished upload's chunks collected")
    # Through the router: the new value, whole.
    g = get_stream(cluster.port, path)
    assert g.status == 200 and g.complete and g.sha == new.sha(), g
    assert cluster.delete(path) == 204
