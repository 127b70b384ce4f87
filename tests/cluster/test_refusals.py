"""Definite refusals against unknown outcomes, and version sanity.

A write that every replica refused (a 4xx or 507, or a node that could not
be reached before anything was sent) certainly was not applied: the client
gets the refusal (413, 507, or 500 for a token mismatch) with "the write
was not applied", never "503 ... may or may not have been applied".

A version far ahead of every clock (planted, corrupt, or written by a node
that ran without the skew check) must neither poison its key nor drag the
router's clock into the future."""

import time

import requests

SKV_EPOCH_MS = 1577836800000
ORIGIN = 0x0123456789abcdef


def version_at(ms_since_unix, counter=0, origin=ORIGIN):
    hlc = ((ms_since_unix - SKV_EPOCH_MS) << 16) | counter
    return "%016x%016x" % (hlc, origin)


def node_put(node, key, value, version):
    return requests.put("%s/v1/kv/%s" % (node.url, key), data=value,
                        headers={"X-Simplekv-Version": version},
                        timeout=10)


def test_value_the_nodes_refuse_is_413_not_applied(cluster_factory):
    # the router would take 64k, the nodes take 1k
    c = cluster_factory(storaged_args=("--max-value-size", "1k"),
                        extra_location="simplekv_max_value_size 64k;")
    r = requests.put(c.url + "/big", data=b"x" * 2048, timeout=10)
    assert r.status_code == 413, r.text
    assert r.headers["Content-Type"] == "application/json"
    body = r.json()
    assert body["error"] == "value too large"
    assert "not applied" in body["detail"], body
    assert requests.get(c.url + "/big", timeout=10).status_code == 404
    # a value both accept still works
    assert requests.put(c.url + "/small", data=b"y" * 100,
                        timeout=10).status_code == 201


def test_all_nodes_down_write_is_not_applied(cluster_factory):
    c = cluster_factory()
    for name in "abc":
        c.kill9(name)
    r = requests.put(c.url + "/nobody", data=b"v", timeout=10)
    assert r.status_code == 503, r.text
    assert "not applied" in r.json()["detail"], r.text


def test_planted_future_version_does_not_poison_the_key(cluster_factory):
    """Plant a far-future version on every replica of a key with nodes run
    without the skew check, then restart them with the default check: the
    key stays writable through the router, and the router's versions stay
    near the present."""
    c = cluster_factory(storaged_args=("--max-clock-skew", "0"))
    future = version_at(int(time.time() * 1000) + 3600 * 1000)
    for node in c.nodes.values():
        assert node_put(node, "poisoned", b"planted", future).status_code \
            in (200, 201)
    for name, node in c.nodes.items():
        node.extra_args = list(a for a in node.extra_args
                                if a not in ("--max-clock-skew", "0"))
        node.stop()
        node.start()

    # the planted value is no answer at all: never returned
    r = requests.get(c.url + "/poisoned", timeout=10)
    assert r.status_code != 200 or r.content != b"planted", r.text

    r = requests.put(c.url + "/poisoned", data=b"fresh", timeout=10)
    assert r.status_code == 201, r.text
    etag = r.headers["ETag"].strip('"')
    # the router did not adopt the planted version
    assert etag < future, (etag, future)
    assert int(etag[:16], 16) >> 16 < (int(time.time() * 1000)
                                       - SKV_EPOCH_MS + 120 * 1000)

    r = requests.get(c.url + "/poisoned", timeout=10)
    assert r.status_code == 200 and r.content == b"fresh", r.text

    status = requests.get(c.url + "/_simplekv/status", timeout=10).json()
    assert status["versions_not_adopted"] >= 1, status
