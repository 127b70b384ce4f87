"""Replica answers kept in memory are sized by their Content-Length (and
large values are not kept at all: the last test).  A
storaged 204 (tombstone stored) has none, as HTTP requires, and nginx would
then reserve the snippet's whole subrequest_output_buffer_size (16m) for
each replica answer of every DELETE.  The worker's peak address-space size
(VmPeak) shows such a reservation even though its pages are never
touched."""

import subprocess

import requests


def _vm_peak_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmPeak:"):
                return int(line.split()[1])
    raise AssertionError("no VmPeak for pid %d" % pid)


def test_delete_does_not_reserve_the_whole_subrequest_buffer(
        cluster_factory):
    c = cluster_factory()
    workers = subprocess.check_output(
        ["pgrep", "-P", str(c.router.proc.pid)]).split()
    assert len(workers) == 1
    worker = int(workers[0])

    s = requests.Session()
    # warm up connections and pools with writes and reads, not deletes
    for i in range(5):
        assert s.put(c.url + "/w%d" % i, data=b"v", timeout=10).status_code \
            == 201
        assert s.get(c.url + "/w%d" % i, timeout=10).status_code == 200
    before = _vm_peak_kib(worker)
    for i in range(20):
        assert s.put(c.url + "/k%d" % i, data=b"v", timeout=10).status_code \
            == 201
        assert s.delete(c.url + "/k%d" % i, timeout=10).status_code == 204
    grown = _vm_peak_kib(worker) - before
    assert grown < 4096, "worker VmPeak grew by %d KiB over 20 DELETEs" % grown


def test_large_values_are_never_held_whole(cluster_factory):
    """A value over simplekv_stream_threshold (256k) is decided on the
    replicas' metadata and streamed from one replica, and a PUT is sent
    to each replica from nginx's request-body temp file: a 24 MiB value
    written and read back three times grows the worker's peak address
    space by far less than the value (with the value held whole anywhere,
    it would grow by at least its size)."""
    c = cluster_factory()
    workers = subprocess.check_output(
        ["pgrep", "-P", str(c.router.proc.pid)]).split()
    assert len(workers) == 1
    worker = int(workers[0])
    value = bytes(range(256)) * (24 * 4096)

    s = requests.Session()
    assert s.put(c.url + "/warm", data=b"v" * 2000000,
                 timeout=30).status_code == 201
    assert s.get(c.url + "/warm", timeout=30).status_code == 200
    before = _vm_peak_kib(worker)
    assert s.put(c.url + "/big", data=value, timeout=120).status_code == 201
    for _ in range(3):
        r = s.get(c.url + "/big", timeout=120)
        assert r.status_code == 200 and r.content == value
    grown = _vm_peak_kib(worker) - before
    assert grown < 8192, "worker VmPeak grew by %d KiB for a 24 MiB value" \
        % grown
