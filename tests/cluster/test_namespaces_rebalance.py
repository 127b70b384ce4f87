"""Adding a storage node to a real cluster with two namespaces of
different N (issue 13; docs/cli.md, docs/membership.md): location / in
the namespace "default" with N=3, W=2, R=2, and location /two/ in the
namespace "two" with N=2, W=2, R=1.

Keys are written through the router on C0 (nodes a, b, c) in both
namespaces, many of them under the same names with different values,
some deleted; `skv put/get/ls --url .../two/` work in the namespace
"two".  Node d joins through the transition T, `skv rebalance` copies
every key to its new owners (the top N of its own namespace), the final
configuration C1 is loaded and `skv cleanup` removes the copies from
nodes that no longer own them.  Then, per namespace, every key has
exactly its namespace's N copies, all on its owners (placement
recomputed here from XXH3, not taken from skv; each node's listing of
that namespace, /v1/keys or /v1/ns/two/keys), with the version it had,
and every value reads back intact and distinct per namespace, through
the router and directly from an owner.
"""

import concurrent.futures
import json
import os
import subprocess
import urllib.parse

import requests

from test_rebalance import configure, owners

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SKV = os.environ.get("SKV_CLI") or os.path.join(TOP, "build", "skv")
N = {"default": 3, "two": 2}
N_DEFAULT = 400
N_TWO = 300          # the first SHARED of them named as in "default"
SHARED = 200
DELETED = range(0, 300, 37)   # deleted in both namespaces


def key_of(i):
    return b"ns/%05d" % i


def value_of(ns, i):
    return b"%s value of key %d " % (ns.encode(), i) + b"y" * (i % 50)


def keys_of(ns):
    return range(N_DEFAULT if ns == "default" else N_TWO)


def url_of(c, ns, k):
    return "%s%s%s" % (c.url, "/" if ns == "default" else "/two/",
                       urllib.parse.quote(k, safe=""))


def listing(node, ns):
    """{key bytes: (version, tombstone)} of one namespace on a node."""
    path = "/v1/keys" if ns == "default" else "/v1/ns/%s/keys" % ns
    r = requests.get(node.url + path, timeout=60)
    assert r.status_code == 200, r.text
    out = {}
    for line in r.text.splitlines():
        v, t, k = line.split("\t")
        out[urllib.parse.unquote_to_bytes(k)] = (v, t == "1")
    return out


def skv(*args, timeout=300):
    proc = subprocess.run([SKV] + [str(a) for a in args],
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=timeout)
    return proc.returncode, proc.stdout.decode(), proc.stderr.decode()


def write_c0(c):
    def put(job):
        ns, i = job
        with requests.Session() as s:
            r = s.put(url_of(c, ns, key_of(i)), data=value_of(ns, i),
                      headers={"Content-Type": "text/plain"}, timeout=30)
            assert r.status_code in (200, 201, 204), r.text
            if i in DELETED:
                r = s.delete(url_of(c, ns, key_of(i)), timeout=30)
                assert r.status_code == 204, r.text

    jobs = [(ns, i) for ns in N for i in keys_of(ns)]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(put, jobs))


def newest(c, ns, names="abc"):
    out = {}
    for n in names:
        for k, vt in listing(c.nodes[n], ns).items():
            out[k] = max(out.get(k, vt), vt)
    return out


def test_two_namespaces_add_a_node(cluster_factory, tmp_path):
    c = cluster_factory(n_nodes=4, replicas=3, w=2, r=2,
                        namespaces=[("/two/", "two", 2, 2, 1)])
    ports = {n: c.nodes[n].port for n in "abcd"}
    configure(c.router, "abc", ports, 1)
    write_c0(c)

    # skv names the namespace through the URL
    two = c.url + "/two/"
    f = tmp_path / "v"
    f.write_bytes(b"written by skv in two")
    rc, out, err = skv("--url", two, "put", "skv-key", f)
    assert rc == 0, err
    rc, out, err = skv("--url", two, "get", "skv-key")
    assert rc == 0 and out == "written by skv in two", (out, err)
    rc, out, err = skv("--url", c.url, "get", "skv-key")
    assert rc == 1, (out, err)     # not in "default"
    rc, out, err = skv("--url", two, "ls", "ns/0000")
    assert rc == 0 and out.split() == ["ns/%05d" % i for i in range(1, 10)]
    rc, out, err = skv("--url", two, "rm", "skv-key")
    assert rc == 0, err
    rc, out, err = skv("--url", two, "status", "--json")
    assert rc == 0, err
    st = json.loads(out)
    assert [(n["name"], n["replicas"]) for n in st["namespaces"]] == [
        ("default", 3), ("two", 2)]

    expected = {ns: newest(c, ns) for ns in N}
    assert len(expected["default"]) == N_DEFAULT
    assert len(expected["two"]) == N_TWO + 1   # and skv-key's tombstone

    # T: d joins
    configure(c.router, "abcd", ports, 2, previous={"d": 0})
    rc, out, err = skv("rebalance", "--router", two, "--json", "--wait", 30)
    assert rc == 0, (out, err)
    done = json.loads(out.splitlines()[-1])
    assert done["result"] == "complete" and done["failures"] == 0, done
    by_ns = {n["name"]: n for n in done["namespaces"]}
    assert by_ns["default"]["replicas"] == 3
    assert by_ns["two"]["replicas"] == 2
    assert by_ns["default"]["keys"] == N_DEFAULT
    assert by_ns["two"]["keys"] == N_TWO + 1
    for ns in N:
        lists = {n: listing(c.nodes[n], ns) for n in "abcd"}
        for k, vt in expected[ns].items():
            for o in owners("abcd", k, N[ns]):
                assert lists[o].get(k) == vt, (ns, k, o)

    # C1, cleanup
    configure(c.router, "abcd", ports, 3)
    rc, out, err = skv("cleanup", "--router", c.url, "--wait", 30)
    assert rc == 0, (out, err)
    for ns in N:
        lists = {n: listing(c.nodes[n], ns) for n in "abcd"}
        for k, vt in expected[ns].items():
            holders = {n for n in "abcd" if k in lists[n]}
            assert holders == owners("abcd", k, N[ns]), (ns, k, holders)
            assert all(lists[n][k] == vt for n in holders), (ns, k)
        # nothing else anywhere in this namespace
        assert set().union(*[set(l) for l in lists.values()]) == \
            set(expected[ns])

    # values intact and distinct per namespace: through the router, and
    # directly from one owner (the namespace's own storaged path)
    hdr = {"X-Simplekv-Epoch": "3"}
    with requests.Session() as s:
        for ns in N:
            for i in keys_of(ns):
                k = key_of(i)
                r = s.get(url_of(c, ns, k), timeout=30)
                if i in DELETED:
                    assert r.status_code == 404, (ns, i)
                    continue
                assert r.status_code == 200, (ns, i, r.text)
                assert r.content == value_of(ns, i), (ns, i)
                o = sorted(owners("abcd", k, N[ns]))[0]
                path = "/v1/kv/" if ns == "default" else "/v1/ns/two/kv/"
                r = s.get(c.nodes[o].url + path
                          + urllib.parse.quote(k, safe=""), headers=hdr,
                          timeout=30)
                assert r.status_code == 200, (ns, i, r.text)
                assert r.content == value_of(ns, i), (ns, i)
    assert value_of("default", 1) != value_of("two", 1)
    rc, out, err = skv("repair", "--router", c.url, "--wait", 30)
    assert rc == 0 and "differences: 0 keys" in out, (out, err)
