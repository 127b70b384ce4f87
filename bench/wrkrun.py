"""wrkrun - run one wrk measurement with bench/kv.lua and read its figures.

Every row of the benchmark table is one call of run(): the same wrk
settings (threads, connections, duration) for every row, so that the
ratios compare like with like.  wrk's own report goes to the terminal;
the figures come from the "BENCH-RESULT {json}" line that kv.lua's done()
prints.
"""

import json
import os
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
KV_LUA = os.path.join(HERE, "kv.lua")


class WrkError(RuntimeError):
    pass


class Result:
    """Figures of one wrk run.  Latencies in microseconds."""

    def __init__(self, label, fields):
        self.label = label
        self.requests = fields["requests"]
        self.duration_s = fields["duration_us"] / 1e6
        self.p50_us = fields["p50_us"]
        self.p99_us = fields["p99_us"]
        self.max_us = fields["max_us"]
        # responses that were not 2xx/3xx (a 409, a 503, a 404 ...)
        self.non_2xx = fields["errors_status"]
        # socket errors and wrk's own per-request timeouts
        self.socket_errors = (fields["errors_connect"] + fields["errors_read"]
                              + fields["errors_write"])
        self.timeouts = fields["errors_timeout"]

    @property
    def rps(self):
        return self.requests / self.duration_s if self.duration_s else 0.0

    @property
    def clean(self):
        return self.non_2xx == 0 and self.socket_errors == 0 \
            and self.timeouts == 0


def run(label, url, mode, prefix="/", versioned=False, nkeys=10000,
        threads=2, connections=64, duration=10, timeout_s=2, close=False,
        log=None):
    """Run wrk against url; returns a Result.

    mode is kv.lua's: get, put, mixed or static; close: a new connection
    per request.  log (a file) receives wrk's full output."""
    cmd = ["wrk", "-t%d" % threads, "-c%d" % connections,
           "-d%ds" % duration, "--timeout", "%ds" % timeout_s,
           "-s", KV_LUA, url, "--", mode, prefix,
           "1" if versioned else "0", str(nkeys)] + (["close"] if close
                                                     else [])
    # wrk ends on its own after `duration`; the bound only guards against a
    # wrk that cannot stop (e.g. a server that never closes).
    try:
        res = subprocess.run(cmd, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             timeout=duration + timeout_s + 30)
    except subprocess.TimeoutExpired:
        raise WrkError("%s: wrk did not finish within %ds"
                       % (label, duration + timeout_s + 30))
    out = res.stdout.decode("utf-8", "replace")
    if log is not None:
        log.write("### %s\n$ %s\n%s\n" % (label, " ".join(cmd), out))
        log.flush()
    for line in out.splitlines():
        if line.startswith("BENCH-RESULT "):
            return Result(label, json.loads(line[len("BENCH-RESULT "):]))
    raise WrkError("%s: wrk exited with %d and no result:\n%s"
                   % (label, res.returncode, out))
