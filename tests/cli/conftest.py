"""pytest set-up for the skv client suite.

One real cluster per test module: three storaged nodes (tests/lib/skvproc.py)
and nginx with the simplekv module (tests/lib/router.py), on loopback ports
21000-21499 (SKV_CLI_PORT_BASE moves them), stopped at the end even when
tests fail.  `run_skv` runs the client binary ($SKV_CLI, else build/skv) with a bounded timeout and a clean
environment (no proxy variables: traffic must stay on loopback).
"""

import os
import shutil
import subprocess
import sys
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.abspath(os.path.join(HERE, os.pardir, os.pardir))
sys.path.insert(0, os.path.join(TOP, "tests", "lib"))

from skvproc import Storaged  # noqa: E402

SKV = os.environ.get("SKV_CLI") or os.path.join(TOP, "build", "skv")

# Ports PORT_BASE .. PORT_BASE+499 (default 21000-21499); SKV_CLI_PORT_BASE
# moves them, so that a second copy can run beside it.
PORT_BASE = int(os.environ.get("SKV_CLI_PORT_BASE", "21000"))
NODE_PORTS = (PORT_BASE + 1, PORT_BASE + 2, PORT_BASE + 3)
ROUTER_PORT = PORT_BASE + 10
DOWN_PORT = PORT_BASE + 499  # nothing ever listens here
MAX_VALUE = 16 * 1024 * 1024  # = subrequest_output_buffer_size in conf/


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if k.lower() not in ("http_proxy", "https_proxy", "all_proxy",
                                "no_proxy", "simplekv_url")}
    # The ASan build of skv: stop at the first report, check for leaks.
    env.setdefault("ASAN_OPTIONS", "abort_on_error=1:detect_leaks=1")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    env.update(extra)
    return env


class Result:
    def __init__(self, proc):
        self.rc = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr.decode("utf-8", "replace")

    def __repr__(self):
        return "rc=%d stdout=%r stderr=%r" % (self.rc, self.out[:200],
                                              self.err[:2000])


def run_skv(*args, url=None, stdin=None, env=None, timeout=60):
    """Run skv; bytes stdin; returns Result (rc, out bytes, err text)."""
    argv = [SKV]
    if url is not None:
        argv += ["--url", url]
    argv += [str(a) if not isinstance(a, bytes) else a for a in args]
    proc = subprocess.run(argv, input=stdin,
                          stdin=None if stdin is not None
                          else subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          env=env or clean_env(), timeout=timeout)
    res = Result(proc)
    # A sanitizer report is a failure whatever the exit code says.
    assert "Sanitizer" not in res.err and "runtime error:" not in res.err, res
    return res


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    from router import Router

    base = tmp_path_factory.mktemp("cli-cluster")
    # nginx workers run as an unprivileged user and must reach the
    # router's temp dirs (bodies above client_body_buffer_size go to a
    # file): pytest's own tree is private to root, so the prefix lives
    # in a directory of its own that others may traverse.
    router_prefix = tempfile.mkdtemp(prefix="skv-cli-router-")
    os.chmod(router_prefix, 0o755)
    nodes = []
    try:
        for i, port in enumerate(NODE_PORTS):
            s = Storaged(port, base / ("node%d" % i) / "data",
                         extra_args=["--max-value-size", str(MAX_VALUE)])
            s.start()
            nodes.append(s)
        with Router(ROUTER_PORT, nodes, replicas=3, w=2, r=2,
                    prefix=router_prefix,
                    # Multi-MiB values on a busy test machine: the default
                    # 1s per replica is for small values.
                    replica_timeout="8s",
                    extra_location="simplekv_max_value_size %d;"
                    % MAX_VALUE,
                    # nginx's own body limit (default 1m) applies to the
                    # client location and again to the replica subrequests'
                    # internal location: above the module's limit in both,
                    # so that the module sees, and refuses, a value too big.
                    extra_http="client_max_body_size %d;" % (2 * MAX_VALUE)
                    ) as router:
            yield router, nodes
    finally:
        for s in nodes:
            s.stop()
        shutil.rmtree(router_prefix, ignore_errors=True)


@pytest.fixture
def url(cluster):
    router, _ = cluster
    return router.url
