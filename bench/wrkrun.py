"""wrkrun - run one wrk measurement with bench/kv.lua and read its figures.

Every row of the benchmark table is one call of run(): the same wrk
settings (threads, connections, duration) for every row, so that the
ratios compare like with like.  wrk's own report goes to the terminal;
the figures come from the "BENCH-RESULT {json}" line that kv.lua's (or
etcd.lua's) done() prints.  start() and finish() let several wrk
processes run at once (the two-router rows).
"""

import json
import os
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
KV_LUA = os.path.join(HERE, "kv.lua")
ETCD_LUA = os.path.join(HERE, "etcd.lua")


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


class Combined:
    """Figures of several wrk processes run at the same time, each against
    its own server (the two-router rows): req/s summed, latencies the
    worst of them, errors summed."""

    def __init__(self, label, results):
        self.label = label
        self.parts = results
        self.requests = sum(r.requests for r in results)
        self.duration_s = max(r.duration_s for r in results)
        self.p50_us = max(r.p50_us for r in results)
        self.p99_us = max(r.p99_us for r in results)
        self.max_us = max(r.max_us for r in results)
        self.non_2xx = sum(r.non_2xx for r in results)
        self.socket_errors = sum(r.socket_errors for r in results)
        self.timeouts = sum(r.timeouts for r in results)

    @property
    def rps(self):
        return sum(r.rps for r in self.parts)

    @property
    def clean(self):
        return all(r.clean for r in self.parts)


class Running:
    """A wrk process started by start(); finish() waits for its figures."""

    def __init__(self, label, cmd, bound_s):
        self.label = label
        self.cmd = cmd
        self.bound_s = bound_s
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)


def start(label, url, mode, prefix="/", versioned=False, nkeys=10000,
          threads=2, connections=64, duration=10, timeout_s=2, close=False,
          script=KV_LUA, script_args=None):
    """Start wrk against url and return at once (a Running).

    mode is kv.lua's: get, put, mixed or static; close: a new connection
    per request.  Another script (etcd.lua) takes its own script_args
    instead of kv.lua's."""
    if script_args is None:
        script_args = [mode, prefix, "1" if versioned else "0",
                       str(nkeys)] + (["close"] if close else [])
    cmd = ["wrk", "-t%d" % threads, "-c%d" % connections,
           "-d%ds" % duration, "--timeout", "%ds" % timeout_s,
           "-s", script, url, "--"] + list(script_args)
    # wrk ends on its own after `duration`; the bound only guards against a
    # wrk that cannot stop (e.g. a server that never closes).
    return Running(label, cmd, duration + timeout_s + 30)


def finish(running, log=None):
    """Wait for a started wrk; returns its Result.  log (a file) receives
    wrk's full output."""
    try:
        out, _ = running.proc.communicate(timeout=running.bound_s)
    except subprocess.TimeoutExpired:
        running.proc.kill()
        running.proc.communicate()
        raise WrkError("%s: wrk did not finish within %ds"
                       % (running.label, running.bound_s))
    out = out.decode("utf-8", "replace")
    if log is not None:
        log.write("### %s\n$ %s\n%s\n" % (running.label,
                                           " ".join(running.cmd), out))
        log.flush()
    for line in out.splitlines():
        if line.startswith("BENCH-RESULT "):
            return Result(running.label,
                          json.loads(line[len("BENCH-RESULT "):]))
    raise WrkError("%s: wrk exited with %d and no result:\n%s"
                   % (running.label, running.proc.returncode, out))


def stop(running):
    """Kill a started wrk that is still running (a row that failed
    part-way: its other wrk must not outlive it)."""
    if running.proc.poll() is None:
        running.proc.kill()
        running.proc.communicate()


def run(label, url, mode, log=None, **kw):
    """Run wrk against url and wait for it; returns a Result (start()'s
    arguments)."""
    return finish(start(label, url, mode, **kw), log=log)
