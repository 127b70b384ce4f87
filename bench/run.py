#!/usr/bin/python3
"""run.py - `make bench`: throughput and latency of storaged and of the
router, each next to plain nginx, in ONE run so that the ratios compare
like with like; a slow-replica case; the router's worker memory after
10,000 requests and after the whole run.  Method: docs/benchmarks.md.

    /usr/bin/python3 bench/run.py [--duration 10] [--repeat 1] [--workers N]

Rows (wrk -t2 -c64 -d10s, keep-alive, 10,000 keys, 100-byte values):
  nginx static      plain nginx serving a 100-byte file
  storaged GET/PUT  storaged alone (PUTs carry fresh versions)
  proxy GET/PUT     plain nginx proxy_pass (keepalive) to one storaged
  router N3/N2      nginx + ngx_simplekv_module over three storaged
  slow replica      router N3 with one storaged SIGSTOPped for the run
"""

import argparse
import contextlib
import datetime
import json
import os
import shutil
import statistics
import sys
import tempfile

import fixtures as fx
import procstat
import wrkrun
from plain_nginx import STATIC_BODY

# (row, reference row, minimum ratio) from issues 2 and 3
TARGETS = (
    ("storaged GET", "nginx static", 0.6),
    ("storaged PUT", "nginx static", 0.3),
    ("router N3W2R2 GET", "proxy GET", 0.5),
    ("router N3W2R2 PUT", "proxy PUT", 0.4),
    ("router N2W2R1 GET", "proxy GET", 0.5),
    ("router N2W2R1 PUT", "proxy PUT", 0.4),
    # the same N=3 cluster with simplekv_read_fanout quorum
    ("router N3 quorum GET", "proxy GET", 0.5),
)
# Rows compared with a healthy row rather than held to a target.
COMPARE = (
    ("slow replica N3 GET", "router N3W2R2 GET"),
    ("slow replica N3 PUT", "router N3W2R2 PUT"),
)
# A client that sends its own versions (storaged and proxy PUT rows) may
# see 409s: two connections writing one key at about the same time, the
# older version arriving second.  storaged is right to refuse it; such a
# row still counts if 409s are all its non-2xx answers and at most this
# share of them.
MAX_409_SHARE = 0.01


class Row:
    def __init__(self, result, cpu_s, statuses=None, probe=None):
        self.result = result
        # CPU seconds all servers of the run used meanwhile (not wrk's)
        self.cpu_us_per_req = (cpu_s * 1e6 / result.requests
                               if result.requests else 0.0)
        self.statuses = statuses    # {status: count} seen by the server
        self.probe = probe          # LatencyProbe summary, or None

    def clean(self):
        """Every request answered, and any non-2xx an explained 409."""
        res = self.result
        if res.socket_errors or res.timeouts:
            return False
        if not res.non_2xx:
            return True
        if self.statuses is None:
            return False
        odd = {k: v for k, v in self.statuses.items() if k >= 300}
        return (set(odd) == {409}
                and odd[409] <= MAX_409_SHARE * res.requests)

    def as_json(self):
        res = self.result
        return {"rps": round(res.rps), "p50_us": res.p50_us,
                "p99_us": res.p99_us, "requests": res.requests,
                "cpu_us_per_req": round(self.cpu_us_per_req, 1),
                "non_2xx": res.non_2xx,
                "errors": res.socket_errors + res.timeouts,
                "statuses": self.statuses, "probe": self.probe}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=int, default=10,
                   help="seconds per wrk run (default 10)")
    p.add_argument("--repeat", type=int, default=1,
                   help="run every row this many times, in rounds, and "
                        "report medians (default 1)")
    p.add_argument("--threads", type=int, default=2,
                   help="wrk threads (default 2)")
    p.add_argument("--connections", type=int, default=64,
                   help="wrk connections (default 64)")
    p.add_argument("--workers", type=int, default=os.cpu_count(),
                   help="nginx worker_processes for every nginx "
                        "(default: the CPU count, like 'auto')")
    p.add_argument("--out", default=os.path.join(fx.TOP, "build", "bench"),
                   help="where wrk's output and the results go "
                        "(default build/bench)")
    p.add_argument("--keep", action="store_true",
                   help="keep the data and nginx prefixes (printed)")
    return p.parse_args()


def fmt_ms(us):
    return "%.2f" % (us / 1000.0)


def memory_line(requests, workers):
    per = "; ".join("pid %d VmRSS %d KiB, RssAnon %d KiB" % w
                    for w in workers)
    return "  after %8d requests: %s" % (requests, per)


def main():
    args = parse_args()
    fx.interrupt_on_signals()
    os.makedirs(args.out, exist_ok=True)
    workdir = tempfile.mkdtemp(prefix="skv-bench-")
    # nginx workers run as an unprivileged user and must read the static
    # file under it (mkdtemp makes the directory private)
    os.chmod(workdir, 0o755)
    log = open(os.path.join(args.out, "wrk-output.txt"), "w")
    started = datetime.datetime.now(datetime.timezone.utc)
    load_before = os.getloadavg()
    rounds = []     # one {label: Row} per round
    memory = []
    servers = []    # pids of every server (nginx masters, storaged)

    def measure(label, url, mode, prefix="/", versioned=False,
                statuses=None, probe=False):
        before = statuses() if statuses else None
        cpu_before = procstat.tree_cpu_seconds(servers)
        with contextlib.ExitStack() as probing:
            prober = (probing.enter_context(fx.LatencyProbe(url))
                      if probe else None)
            res = wrkrun.run(label, url, mode, prefix=prefix,
                             versioned=versioned, threads=args.threads,
                             connections=args.connections,
                             duration=args.duration, log=log)
        cpu = procstat.tree_cpu_seconds(servers) - cpu_before
        row = Row(res, cpu, fx.status_delta(before, statuses())
                  if statuses else None,
                  prober.summary() if prober else None)
        rounds[-1][label] = row
        print("  %-20s %8.0f req/s  p99 %8s ms  %4.0f us CPU/req  non-2xx %s"
              "  errors %d" % (label, res.rps, fmt_ms(res.p99_us),
                               row.cpu_us_per_req, non_2xx_text([row]),
                               res.socket_errors + res.timeouts), flush=True)
        if row.probe:
            print("  %-20s probe: %s" % ("", row.probe), flush=True)
        return res.requests + (len(prober.latencies_ms) if prober else 0)

    try:
        with contextlib.ExitStack() as stack:
            print("starting servers in %s" % workdir, flush=True)
            alone = fx.start_storaged(stack, fx.STORAGED_ALONE_PORT, workdir,
                                      "storaged-alone")
            nodes = fx.start_nodes(stack, workdir)
            plain = fx.start_plain_nginx(stack, alone.port, args.workers,
                                         workdir)
            r3 = fx.start_router(stack, fx.ROUTER_N3_PORT, nodes, 3, 2, 2,
                                 args.workers, workdir)
            r2 = fx.start_router(stack, fx.ROUTER_N2_PORT, nodes, 2, 2, 1,
                                 args.workers, workdir)
            r3q = fx.start_router(stack, fx.ROUTER_N3Q_PORT, nodes, 3, 2, 2,
                                  args.workers, workdir,
                                  "simplekv_read_fanout quorum;")
            servers.extend([alone.proc.pid, plain.proc.pid, r3.proc.pid,
                            r2.proc.pid, r3q.proc.pid]
                           + [n.proc.pid for n in nodes])
            alone_st = lambda: fx.storaged_statuses(alone.url)   # noqa
            r3_st = lambda: fx.router_statuses(r3.url)           # noqa
            r2_st = lambda: fx.router_statuses(r2.url)           # noqa
            r3q_st = lambda: fx.router_statuses(r3q.url)         # noqa

            print("preloading %d keys (100-byte values)" % fx.NKEYS,
                  flush=True)
            fx.preload(alone.url, "/v1/kv/", versioned=True)
            # through the N=3 router: every node holds every key, so the
            # N=2 router (same nodes, same placement order) finds them too
            fx.preload(r3.url, "/", versioned=False)
            r3_requests = fx.NKEYS
            memory.append(memory_line(r3_requests,
                                      procstat.workers_kib(r3.proc.pid)))

            # each row must measure what it claims
            k = fx.key(0)
            fx.check_get(plain.url, "/static100", STATIC_BODY)
            fx.check_get(alone.url, "/v1/kv/" + k, fx.VALUE)
            fx.check_get(plain.url, "/" + k, fx.VALUE)
            fx.check_get(r3.url, "/" + k, fx.VALUE)
            fx.check_get(r2.url, "/" + k, fx.VALUE)
            fx.check_get(r3q.url, "/" + k, fx.VALUE)
            fx.check_put(plain.url, "/" + k, versioned=True)
            fx.check_put(r2.url, "/" + k, versioned=False)
            r3_requests += 1

            for n in range(args.repeat):
                print("round %d of %d: wrk -t%d -c%d -d%ds, nginx workers %d"
                      % (n + 1, args.repeat, args.threads, args.connections,
                         args.duration, args.workers), flush=True)
                rounds.append({})
                measure("nginx static", plain.url + "/static100", "static")
                measure("storaged GET", alone.url, "get", "/v1/kv/",
                        statuses=alone_st)
                measure("storaged PUT", alone.url, "put", "/v1/kv/", True,
                        statuses=alone_st)
                measure("proxy GET", plain.url, "get", statuses=alone_st)
                measure("proxy PUT", plain.url, "put", versioned=True,
                        statuses=alone_st)
                r3_requests += measure("router N3W2R2 GET", r3.url, "get",
                                       statuses=r3_st, probe=True)
                r3_requests += measure("router N3W2R2 PUT", r3.url, "put",
                                       statuses=r3_st)
                measure("router N3 quorum GET", r3q.url, "get",
                        statuses=r3q_st)
                measure("router N2W2R1 GET", r2.url, "get", statuses=r2_st)
                measure("router N2W2R1 PUT", r2.url, "put", statuses=r2_st)
                with fx.Stopped(nodes[2]):
                    r3_requests += measure("slow replica N3 GET", r3.url,
                                           "get", statuses=r3_st, probe=True)
                    r3_requests += measure("slow replica N3 PUT", r3.url,
                                           "put", statuses=r3_st)
            memory.append(memory_line(r3_requests,
                                      procstat.workers_kib(r3.proc.pid)))
    except KeyboardInterrupt:
        print("\ninterrupted: servers stopped", file=sys.stderr)
        return 130
    finally:
        log.close()
        if args.keep:
            print("kept %s" % workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    report = format_report(args, started, load_before, os.getloadavg(),
                           rounds, memory)
    print()
    print(report, end="")
    with open(os.path.join(args.out, "results.txt"), "w") as f:
        f.write(report)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump([{label: r.as_json() for label, r in rnd.items()}
                   for rnd in rounds], f, indent=1)
    print("(wrk's full output: %s)" % os.path.join(args.out,
                                                    "wrk-output.txt"))
    return 0


def median(values):
    return statistics.median(values) if values else 0.0


def format_report(args, started, load_before, load_after, rounds, memory):
    """One line per row: medians over the rounds; ratios are the median of
    each round's ratio (a row against its reference of the same round)."""
    ratio_of = {row: (ref, minimum) for row, ref, minimum in TARGETS}
    ratio_of.update({row: (ref, None) for row, ref in COMPARE})
    lines = [
        "simplekv benchmark, %s" % started.strftime("%Y-%m-%d %H:%M UTC"),
        "machine: %s; loopback; wrk, nginx and storaged share the CPUs"
        % fx.machine_description(),
        "wrk -t%d -c%d -d%ds keep-alive, %d round(s), medians; %d keys, "
        "100-byte values; nginx worker_processes %d; storaged defaults "
        "(4 threads, durability process)"
        % (args.threads, args.connections, args.duration, len(rounds),
           fx.NKEYS, args.workers),
        "load average (1 min) before %.2f, after %.2f"
        % (load_before[0], load_after[0]),
        "",
        "%-20s %8s %7s %8s %7s %6s  %-14s %s" % (
            "row", "req/s", "p50 ms", "p99 ms", "CPU us", "errors",
            "non-2xx", "ratio (target); CPU ratio"),
    ]
    verdicts = []
    for label in (rounds[0] if rounds else {}):
        runs = [rnd[label] for rnd in rounds if label in rnd]
        rps = median([r.result.rps for r in runs])
        errors = sum(r.result.socket_errors + r.result.timeouts
                     for r in runs)
        ratio = ""
        if label in ratio_of:
            ref, minimum = ratio_of[label]
            pairs = [(rnd[label], rnd[ref]) for rnd in rounds
                     if label in rnd and ref in rnd]
            value = median([a.result.rps / b.result.rps for a, b in pairs
                            if b.result.rps])
            ratio = "%.2fx %s" % (value, ref)
            if minimum is not None:
                met = value >= minimum and all(r.clean() for r in runs)
                ratio += " (>= %.1f: %s)" % (minimum,
                                             "met" if met else "MISSED")
                verdicts.append(met)
            cpu_ratio = median([b.cpu_us_per_req / a.cpu_us_per_req
                                for a, b in pairs if a.cpu_us_per_req])
            if cpu_ratio:
                ratio += "; %.2f" % cpu_ratio
        lines.append("%-20s %8.0f %7s %8s %7.0f %6d  %-14s %s" % (
            label, rps, fmt_ms(median([r.result.p50_us for r in runs])),
            fmt_ms(median([r.result.p99_us for r in runs])),
            median([r.cpu_us_per_req for r in runs]), errors,
            non_2xx_text(runs), ratio))
    lines.append("")
    lines.append("targets met: %d of %d (a target counts only if every "
                 "request was answered; 409s from racing writes of the "
                 "client's own versions are allowed up to %g%%)"
                 % (sum(verdicts), len(verdicts), MAX_409_SHARE * 100))
    lines.append("CPU us: CPU time of all servers (nginx, storaged; not wrk) "
                 "per request; CPU ratio: reference's CPU/req over the row's, "
                 "the req/s ratio CPU cost alone predicts (steadier on a "
                 "busy machine)")
    probes = [("%s%s" % (label, " (round %d)" % (n + 1)
                         if len(rounds) > 1 else ""), row.probe)
              for n, rnd in enumerate(rounds)
              for label, row in rnd.items() if row.probe]
    if probes:
        lines.append("")
        lines.append("answer latency of single requests on fresh "
                     "connections, probed during a row:")
        lines.extend("  %-30s %s" % p for p in probes)
    lines.append("")
    lines.append("router N3W2R2 nginx workers (memory per worker):")
    lines.extend(memory)
    return "\n".join(lines) + "\n"


def non_2xx_text(runs):
    """Non-2xx answers of a row over all rounds, with the statuses the
    server counted, e.g. "384 (384x409)"."""
    total = sum(r.result.non_2xx for r in runs)
    if not total:
        return "0"
    seen = {}
    for r in runs:
        for k, v in (r.statuses or {}).items():
            if k >= 300:
                seen[k] = seen.get(k, 0) + v
    if not seen:
        return "%d" % total
    return "%d (%s)" % (total, " ".join("%dx%d" % (v, k)
                                        for k, v in sorted(seen.items())))


if __name__ == "__main__":
    sys.exit(main())
