"""Values larger than nginx's defaults: a router configured with
simplekv_max_value_size above nginx's client_max_body_size default (1m)
must store and serve them whole, whether the body comes with a
Content-Length or chunked, and still refuse one byte over its own limit."""

import hashlib
import os

import requests

LIMIT = 3 * 1024 * 1024


def _cluster(cluster_factory):
    return cluster_factory(
        extra_location="simplekv_max_value_size 3m;",
        storaged_args=("--max-value-size", "8m"))


def test_value_over_nginx_default_body_size_round_trips(cluster_factory):
    c = _cluster(cluster_factory)
    value = os.urandom(LIMIT)
    r = requests.put(c.url + "/big", data=value, timeout=30,
                     headers={"Content-Type": "application/x-big"})
    assert r.status_code == 201, r.text
    g = requests.get(c.url + "/big", timeout=30)
    assert g.status_code == 200
    assert g.headers["Content-Type"] == "application/x-big"
    assert hashlib.sha256(g.content).digest() == \
        hashlib.sha256(value).digest()


def test_chunked_value_over_nginx_default_body_size(cluster_factory):
    c = _cluster(cluster_factory)
    value = os.urandom(2 * 1024 * 1024 + 17)

    def chunks():
        for i in range(0, len(value), 65536):
            yield value[i:i + 65536]

    r = requests.put(c.url + "/chunked", data=chunks(), timeout=30)
    assert r.status_code == 201, r.text
    g = requests.get(c.url + "/chunked", timeout=30)
    assert g.status_code == 200 and g.content == value


def test_one_byte_over_the_router_limit_is_413(cluster_factory):
    c = _cluster(cluster_factory)
    r = requests.put(c.url + "/over", data=b"x" * (LIMIT + 1), timeout=30)
    assert r.status_code == 413
    assert r.json()["error"] == "value too large"
    assert requests.get(c.url + "/over", timeout=10).status_code == 404
