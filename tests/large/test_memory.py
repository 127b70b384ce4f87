"""1 GiB through the router, once uploaded chunked and once with a
Content-Length, each read back whole (SHA-256 and Repr-Digest), while the
RSS (VmRSS) of every nginx worker and every storaged is sampled every
50 ms: none may grow by more than 64 MiB over its baseline, taken after a
warm-up value went through.  The figures are printed on a FIGURES line
(pytest -s shows it; `make test-large` passes -s)."""

import threading
import time

import pytest

from bigvalue import Gen, digest_header, get_stream, put_stream
from conftest import MIB, fits

GIB = 1 << 30
ALLOWANCE_MIB = 64


def rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return None


def nginx_workers(master_pid):
    """The master's children (its workers)."""
    path = "/proc/%d/task/%d/children" % (master_pid, master_pid)
    with open(path) as f:
        return [int(p) for p in f.read().split()]


class Sampler(threading.Thread):
    """Peak VmRSS of each process in procs (label -> pid) every 50 ms."""

    def __init__(self, procs):
        super().__init__(daemon=True)
        self.procs = dict(procs)
        self.base = {k: rss_kib(p) for k, p in self.procs.items()}
        self.peak = dict(self.base)
        self.samples = 0
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            self.sample()
            time.sleep(0.05)

    def sample(self):
        for k, p in self.procs.items():
            v = rss_kib(p)
            if v is not None:
                self.peak[k] = max(self.peak[k], v)
        self.samples += 1

    def stop(self):
        self.done.set()
        self.join()
        self.sample()

    def growth_mib(self):
        return {k: (self.peak[k] - self.base[k]) / 1024.0 for k in self.procs}


def processes(cluster):
    procs = {"storaged-%s" % n: node.proc.pid
             for n, node in cluster.nodes.items()}
    workers = nginx_workers(cluster.router.proc.pid)
    assert workers, "no nginx worker found"
    for i, pid in enumerate(workers):
        procs["nginx-worker-%d" % i] = pid
    return procs


def measured(cluster, fn):
    s = Sampler(processes(cluster))
    s.start()
    t = time.monotonic()
    try:
        result = fn()
    finally:
        s.stop()
    return result, s.growth_mib(), time.monotonic() - t, s.samples


@pytest.mark.parametrize("chunked", [True, False],
                         ids=["chunked", "content-length"])
@fits(GIB)
def test_1gib_round_trip_bounded_memory(cluster, chunked):
    # Warm up: a large value through, so that heaps and caches reach their
    # working size before the baseline.
    warm = Gen(5, 8 * MIB)
    assert put_stream(cluster.port, "/warm", warm)[0] == 201
    assert get_stream(cluster.port, "/warm").sha == warm.sha()

    chunks_before = {
        n: cluster.wait_stats(n, lambda s: s["chunk_uploads_pending"] == 0)[
            "chunks"] for n in cluster.names}
    gen = Gen(900 + chunked, GIB)
    gen.sha()                       # hashed before, not while measuring
    key = "/gib-%s" % ("chunked" if chunked else "length")
    (status, _, body), grew_put, put_s, n_put = measured(
        cluster, lambda: put_stream(cluster.port, key, gen, chunked=chunked))
    assert status == 201, body
    g, grew_get, get_s, n_get = measured(
        cluster, lambda: get_stream(cluster.port, key))
    print("FIGURES large-memory %s %d MiB: PUT %.1f s (%.0f MB/s) GET %.1f s "
          "(%.0f MB/s); RSS growth MiB PUT {%s} GET {%s}; samples %d/%d" % (
              "chunked" if chunked else "content-length", GIB >> 20, put_s,
              GIB / put_s / 1e6, get_s, GIB / get_s / 1e6,
              ", ".join("%s: %.1f" % kv for kv in sorted(grew_put.items())),
              ", ".join("%s: %.1f" % kv for kv in sorted(grew_get.items())),
              n_put, n_get))
    assert g.status == 200 and g.complete and g.n == GIB, g
    assert g.sha == gen.sha()
    assert g.header("Repr-Digest") == digest_header(gen.sha())
    over = {k: v for k, v in list(grew_put.items()) + list(grew_get.items())
            if v > ALLOWANCE_MIB}
    assert not over, "RSS grew by more than %d MiB: %r" % (ALLOWANCE_MIB,
                                                           over)
    # Free the disk (3 GiB) for the next case, and let every node's
    # collector finish with the value's 4096 chunks before it starts.
    assert cluster.delete(key) == 204
    for name in cluster.names:
        cluster.wait_stats(name, lambda s: s["chunk_uploads_pending"] == 0
                           and s["chunks"] == chunks_before[name],
                           timeout=600, what="the 1 GiB value's chunks "
                                             "collected")
