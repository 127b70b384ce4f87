#!/usr/bin/python3
"""run.py - `make bench`: throughput and latency of storaged and of the
router, each next to plain nginx, in ONE run so that the ratios compare
like with like; a slow-replica case; the router's worker memory after
10,000 requests and after the whole run.  Method: docs/benchmarks.md.

    /usr/bin/python3 bench/run.py [--duration 10] [--repeat 1] [--workers N]
        [--baseline-module SO [--baseline-snippet CONF]] [--no-etcd]

Rows (wrk -t2 -c64 -d10s, keep-alive, 10,000 keys, 100-byte values):
  nginx static      plain nginx serving a 100-byte file
  storaged GET/PUT  storaged alone (PUTs carry fresh versions)
  proxy GET/PUT     plain nginx proxy_pass (keepalive) to one storaged
  router N3/N2      nginx + ngx_simplekv_module over three storaged
  PUT hot           6 hot keys through one router, and through two
                    routers at once (two wrk processes)
  baseline ...      with --baseline-module: the router rows again with
                    another build of the module, in the same run
  slow replica      router N3 with one storaged SIGSTOPped for the run
  etcd GET/PUT      a 3-member etcd cluster through its v3 JSON gateway
"""

import argparse
import contextlib
import datetime
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

import etcd
import fixtures as fx
import procstat
import wrkrun
from plain_nginx import STATIC_BODY

# (row, reference row, minimum ratio) from issues 2 and 3
TARGETS = (
    ("storaged GET", "nginx static", 0.6),
    ("storaged PUT", "nginx static", 0.3),
    # issue 10: the default configuration (quorum reads, hedged)
    ("router N3W2R2 GET", "proxy GET", 0.6),
    ("router N3W2R2 PUT", "proxy PUT", 0.45),
    ("router N2W2R1 GET", "proxy GET", 0.5),
    ("router N2W2R1 PUT", "proxy PUT", 0.4),
    # the same N=3 cluster asking every replica on every read
    ("router N3 all-replica GET", "proxy GET", 0.5),
)
# Rows compared with a healthy row rather than held to a target.
COMPARE = (
    ("slow replica N3 GET", "router N3W2R2 GET"),
    ("slow replica N3 PUT", "router N3W2R2 PUT"),
    ("router N3 PUT hot, 1 router", "router N3W2R2 PUT"),
    ("router N3 PUT hot, 2 routers", "router N3 PUT hot, 1 router"),
    ("etcd GET", "router N3W2R2 GET"),
    ("etcd PUT", "router N3W2R2 PUT"),
)
# Rows measured a second time with the baseline build (--baseline-module),
# each right after its own row, labelled BASELINE + row.
BASELINE = "baseline "
BASELINE_ROWS = ("router N3W2R2 GET", "router N3W2R2 PUT",
                 "router N3 all-replica GET", "router N2W2R1 GET",
                 "router N2W2R1 PUT", "router N3 PUT hot, 1 router",
                 "router N3 PUT hot, 2 routers")
# Uncontended PUT through one router: at most this much slower than the
# baseline build (issue 14).
BASELINE_PUT_ROW = "router N3W2R2 PUT"
MAX_PUT_SLOWDOWN = 0.15
# Rows whose every answer must be 2xx (issue 14: concurrent writes through
# different routers never fail)
NO_FAILURE_ROWS = ("router N3 PUT hot, 1 router",
                   "router N3 PUT hot, 2 routers")
# A client that sends its own versions (storaged and proxy PUT rows) may
# see 409s: two connections writing one key at about the same time, the
# older version arriving second.  storaged is right to refuse it; such a
# row still counts if 409s are all its non-2xx answers and at most this
# share of them.
MAX_409_SHARE = 0.01


class Row:
    def __init__(self, result, cpu_s, statuses=None, probe=None,
                 counters=None):
        self.result = result
        # the router's own counters meanwhile (version queries, retries)
        self.counters = counters
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
                "statuses": self.statuses, "probe": self.probe,
                "router_counters": self.counters}


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
    p.add_argument("--baseline-module", metavar="SO",
                   help="another build of ngx_http_simplekv_module.so: run "
                        "the router rows again with it, in the same run "
                        "(rows 'baseline ...')")
    p.add_argument("--baseline-snippet", metavar="CONF",
                   help="that build's simplekv_proxy.conf (default: "
                        "conf/simplekv_proxy.conf of the tree the module "
                        "was built in, SO/../../conf/)")
    p.add_argument("--no-etcd", action="store_true",
                   help="leave out the etcd rows")
    args = p.parse_args()
    if args.baseline_snippet and not args.baseline_module:
        p.error("--baseline-snippet needs --baseline-module")
    if args.baseline_module:
        args.baseline_module = os.path.abspath(args.baseline_module)
        if not os.path.isfile(args.baseline_module):
            p.error("--baseline-module: no file %s" % args.baseline_module)
        if not args.baseline_snippet:
            args.baseline_snippet = os.path.join(
                os.path.dirname(os.path.dirname(args.baseline_module)),
                "conf", "simplekv_proxy.conf")
        args.baseline_snippet = os.path.abspath(args.baseline_snippet)
        if not os.path.isfile(args.baseline_snippet):
            p.error("--baseline-snippet: no file %s (the proxy snippet of "
                    "the baseline build)" % args.baseline_snippet)
    return args


def fmt_ms(us):
    return "%.2f" % (us / 1000.0)


def memory_line(requests, workers):
    per = "; ".join("pid %d VmRSS %d KiB, RssAnon %d KiB" % w
                    for w in workers)
    return "  after %8d requests: %s" % (requests, per)


def sum_statuses(*counts):
    out = {}
    for c in counts:
        for k, v in c.items():
            out[k] = out.get(k, 0) + v
    return out


def build_id(path):
    """A build of the module told apart from others: the start of its
    sha256 and when it was built."""
    try:
        with open(path, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()[:12]
        built = datetime.datetime.fromtimestamp(
            os.stat(path).st_mtime, datetime.timezone.utc)
    except OSError as e:
        return "%s (%s)" % (path, e.strerror)
    return "%s (sha256 %s..., built %s)" % (
        path, digest, built.strftime("%Y-%m-%d %H:%M UTC"))


def error_log_lines(label, router, samples=3):
    """The router's error.log at level warn and above, counted by level,
    with a few examples: why a row had non-2xx answers."""
    text = router.error_log_text()
    found = [line for line in text.splitlines()
             if re.search(r"\[(warn|error|crit|alert|emerg)\]", line)]
    if not found:
        return []
    levels = {}
    for line in found:
        level = re.search(r"\[(\w+)\]", line).group(1)
        levels[level] = levels.get(level, 0) + 1
    out = ["  %s (%s): %s" % (label, router.url, ", ".join(
        "%d [%s]" % (v, k) for k, v in sorted(levels.items())))]
    # errors first: they explain a failed answer; warnings (a replica
    # timing out in the slow-replica rows) next
    found.sort(key=lambda line: "[warn]" in line)
    out.extend("    %s" % line[:300] for line in found[:samples])
    return out


def etcd_version():
    try:
        out = subprocess.run([etcd.ETCD, "--version"], capture_output=True,
                             timeout=10).stdout.decode("utf-8", "replace")
    except (OSError, subprocess.TimeoutExpired):
        return "etcd"
    first = out.splitlines()[0] if out else "etcd"
    return first.replace("etcd Version:", "etcd").strip()


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
    notes = []      # said under the table (rows skipped, settings)
    servers = []    # pids of every server (nginx masters, storaged, etcd)
    storaged_setup = "?"    # as storaged itself reports it at start

    def measure(label, urls, mode, prefix="/", versioned=False,
                statuses=None, probe=False, nkeys=fx.NKEYS,
                script=wrkrun.KV_LUA, script_args=None, counters=None):
        """One row: wrk against url, or against each of a list of urls at
        once (threads and connections shared out between them).  Returns
        the requests the first url answered."""
        urls = [urls] if isinstance(urls, str) else list(urls)
        before = statuses() if statuses else None
        counters_before = counters() if counters else None
        cpu_before = procstat.tree_cpu_seconds(servers)
        with contextlib.ExitStack() as probing:
            prober = (probing.enter_context(fx.LatencyProbe(urls[0]))
                      if probe else None)
            running = []
            try:
                for url in urls:
                    running.append(wrkrun.start(
                        label, url, mode, prefix=prefix,
                        versioned=versioned, nkeys=nkeys,
                        threads=max(1, args.threads // len(urls)),
                        connections=max(1, args.connections // len(urls)),
                        duration=args.duration, script=script,
                        script_args=script_args))
                results = [wrkrun.finish(r, log=log) for r in running]
            finally:
                for r in running:
                    wrkrun.stop(r)
        res = results[0] if len(results) == 1 else \
            wrkrun.Combined(label, results)
        cpu = procstat.tree_cpu_seconds(servers) - cpu_before
        row = Row(res, cpu, fx.status_delta(before, statuses())
                  if statuses else None,
                  prober.summary() if prober else None,
                  fx.status_delta(counters_before, counters())
                  if counters else None)
        rounds[-1][label] = row
        print("  %-37s %8.0f req/s  p99 %8s ms  %4.0f us CPU/req  "
              "non-2xx %s  errors %d"
              % (label, res.rps, fmt_ms(res.p99_us), row.cpu_us_per_req,
                 non_2xx_text([row]), res.socket_errors + res.timeouts),
              flush=True)
        if row.probe:
            print("  %-37s probe: %s" % ("", row.probe), flush=True)
        return results[0].requests + (len(prober.latencies_ms)
                                      if prober else 0)

    try:
        with contextlib.ExitStack() as stack:
            print("starting servers in %s" % workdir, flush=True)
            alone = fx.start_storaged(stack, fx.STORAGED_ALONE_PORT, workdir,
                                      "storaged-alone")
            storaged_setup = fx.storaged_settings(alone)
            nodes = fx.start_nodes(stack, workdir)
            plain = fx.start_plain_nginx(stack, alone.port, args.workers,
                                         workdir)
            servers.extend([alone.proc.pid, plain.proc.pid]
                           + [n.proc.pid for n in nodes])

            def routers(build, offset):
                """The four routers of one build of the module: N3, N2,
                N3 with all-replica reads, and N3's twin (same
                configuration) for the two-router rows;
                {name: (router, statuses)}."""
                out = {}
                for name, port, n, w, r, extra in (
                        ("n3", fx.ROUTER_N3_PORT, 3, 2, 2, ""),
                        ("n2", fx.ROUTER_N2_PORT, 2, 2, 1, ""),
                        ("n3q", fx.ROUTER_N3Q_PORT, 3, 2, 2,
                         "simplekv_read_fanout all;"),
                        ("twin", fx.ROUTER_N3_TWIN_PORT, 3, 2, 2, "")):
                    rt = fx.start_router(stack, port + offset, nodes, n, w,
                                         r, args.workers, workdir, extra,
                                         build=build)
                    servers.append(rt.proc.pid)
                    out[name] = (rt, (lambda u: lambda:
                                      fx.router_statuses(u))(rt.url),
                                 (lambda u: lambda:
                                  fx.router_counters(u))(rt.url))
                return out

            now = routers(None, 0)
            builds = [("", now)]
            notes.append("this build: %s" % build_id(
                fx.router_lib.MODULE))
            if args.baseline_module:
                base = routers((args.baseline_module, args.baseline_snippet),
                               fx.BASELINE_OFFSET)
                builds.append((BASELINE, base))
                notes.append("baseline: %s with %s (rows 'baseline ...', "
                             "each measured right after its own row)"
                             % (build_id(args.baseline_module),
                                args.baseline_snippet))
            r3 = now["n3"][0]
            alone_st = lambda: fx.storaged_statuses(alone.url)   # noqa

            print("preloading %d keys (100-byte values)" % fx.NKEYS,
                  flush=True)
            fx.preload(alone.url, "/v1/kv/", versioned=True)
            # through the N=3 router: every node holds every key, so the
            # other routers (same nodes, same placement order) find them
            fx.preload(r3.url, "/", versioned=False)
            r3_requests = fx.NKEYS
            memory.append(memory_line(r3_requests,
                                      procstat.workers_kib(r3.proc.pid)))

            # each row must measure what it claims
            k = fx.key(0)
            fx.check_get(plain.url, "/static100", STATIC_BODY)
            fx.check_get(alone.url, "/v1/kv/" + k, fx.VALUE)
            fx.check_get(plain.url, "/" + k, fx.VALUE)
            fx.check_put(plain.url, "/" + k, versioned=True)
            for _, rts in builds:
                for rt, _, _ in rts.values():
                    fx.check_get(rt.url, "/" + k, fx.VALUE)
                fx.check_put(rts["n2"][0].url, "/" + k, versioned=False)

            etcd_cluster = None
            etcd_url = None
            etcd_missing = "left out (--no-etcd)" if args.no_etcd \
                else etcd.available()
            if etcd_missing:
                notes.append("etcd rows skipped: %s" % etcd_missing)

            def start_etcd():
                """Started only for its own rows (stop_etcd after them),
                so that its heartbeats cost the other rows nothing."""
                cluster = etcd.EtcdCluster(workdir)
                stack.callback(cluster.stop)
                print("starting a 3-member etcd cluster, preloading %d keys"
                      % fx.NKEYS, flush=True)
                cluster.start()
                cluster.preload([fx.key(i) for i in range(fx.NKEYS)],
                                fx.VALUE)
                url = cluster.leader_url()
                cluster.check_get(url, fx.key(0), fx.VALUE)
                cluster.check_put(url, fx.key(0), fx.VALUE)
                servers.extend(cluster.pids)
                if any(n.startswith("etcd: ") for n in notes):
                    return cluster, url
                notes.append(
                    "etcd: %s, 3 members on loopback, fresh data dirs and "
                    "started anew in every round, "
                    "default durability (WAL fsynced before a write is "
                    "acknowledged; no --unsafe-no-fsync), linearizable "
                    "ranges (etcd's default); wrk against the leader's v3 "
                    "JSON gateway (%s), bench/etcd.lua"
                    % (etcd_version(), url))
                return cluster, url

            def stop_etcd(cluster):
                for pid in cluster.pids:
                    servers.remove(pid)
                cluster.stop()

            def router_rows(name, label, mode, probe=False):
                """The row on this build's router, then on the baseline
                build's, one right after the other."""
                total = 0
                for prefix_label, rts in builds:
                    rt, st, cnt = rts[name]
                    n = measure(prefix_label + label, rt.url, mode,
                                statuses=st, probe=probe, counters=cnt)
                    if rts is now and name == "n3":
                        total += n
                return total

            def hot_rows():
                total = 0
                for prefix_label, rts in builds:
                    (rt, st, cnt), (twin, twin_st, twin_cnt) = \
                        rts["n3"], rts["twin"]
                    n = measure(prefix_label + "router N3 PUT hot, 1 router",
                                rt.url, "put", statuses=st,
                                nkeys=fx.HOT_KEYS, counters=cnt)
                    n += measure(prefix_label +
                                 "router N3 PUT hot, 2 routers",
                                 [rt.url, twin.url], "put",
                                 statuses=lambda: sum_statuses(st(),
                                                               twin_st()),
                                 nkeys=fx.HOT_KEYS,
                                 counters=lambda: sum_statuses(cnt(),
                                                               twin_cnt()))
                    if rts is now:
                        total += n
                return total

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
                r3_requests += router_rows("n3", "router N3W2R2 GET", "get",
                                           probe=True)
                r3_requests += router_rows("n3", "router N3W2R2 PUT", "put")
                router_rows("n3q", "router N3 all-replica GET", "get")
                router_rows("n2", "router N2W2R1 GET", "get")
                router_rows("n2", "router N2W2R1 PUT", "put")
                r3_requests += hot_rows()
                r3_st, r3_cnt = now["n3"][1], now["n3"][2]
                with fx.Stopped(nodes[2]):
                    r3_requests += measure("slow replica N3 GET", r3.url,
                                           "get", statuses=r3_st, probe=True,
                                           counters=r3_cnt)
                    r3_requests += measure("slow replica N3 PUT", r3.url,
                                           "put", statuses=r3_st,
                                           counters=r3_cnt)
                if not etcd_missing:
                    # A fresh cluster in every round, stopped after its
                    # rows: left running, its heartbeats, compactions and
                    # snapshots (after a round's PUTs) cost the next
                    # round's rows CPU, and counted in their CPU column.
                    try:
                        etcd_cluster, etcd_url = start_etcd()
                    except etcd.EtcdError as e:
                        etcd_missing = "etcd did not start: %s" % e
                        notes.append("etcd rows skipped: %s"
                                     % str(e).splitlines()[0])
                        print(etcd_missing, file=sys.stderr)
                    if etcd_cluster is not None:
                        for mode in ("get", "put"):
                            measure("etcd %s" % mode.upper(), etcd_url, mode,
                                    script=wrkrun.ETCD_LUA,
                                    script_args=[mode, str(fx.NKEYS)])
                        stop_etcd(etcd_cluster)
                        etcd_cluster = None
            memory.append(memory_line(r3_requests,
                                      procstat.workers_kib(r3.proc.pid)))
            logged = []
            for prefix_label, rts in builds:
                for name, (rt, _, _) in rts.items():
                    logged.extend(error_log_lines(
                        "%srouter %s" % (prefix_label or "this build's ",
                                         name), rt))
            if logged:
                notes.append("router error.log lines (warn and above) over "
                             "the whole run:")
                notes.extend(logged)
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
                           rounds, memory, notes, storaged_setup)
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


def format_report(args, started, load_before, load_after, rounds, memory,
                  notes=(), storaged_setup="?"):
    """One line per row: medians over the rounds; ratios are the median of
    each round's ratio (a row against its reference of the same round)."""
    ratio_of = {row: (ref, minimum) for row, ref, minimum in TARGETS}
    ratio_of.update({row: (ref, None) for row, ref in COMPARE})
    # a baseline row against the same reference, for reading only: the
    # targets are counted for this tree's build
    ratio_of.update({BASELINE + row: (ratio_of[row][0], None)
                     for row in BASELINE_ROWS if row in ratio_of})
    labels = list(rounds[0]) if rounds else []
    width = max([20] + [len(label) for label in labels])
    lines = [
        "simplekv benchmark, %s" % started.strftime("%Y-%m-%d %H:%M UTC"),
        "machine: %s; loopback; wrk and all servers share the CPUs"
        % fx.machine_description(),
        "wrk -t%d -c%d -d%ds keep-alive, %d round(s), medians; %d keys, "
        "100-byte values (hot rows: %d keys); nginx worker_processes %d; "
        "storaged defaults (%s)"
        % (args.threads, args.connections, args.duration, len(rounds),
           fx.NKEYS, fx.HOT_KEYS, args.workers, storaged_setup),
        "load average (1 min) before %.2f, after %.2f"
        % (load_before[0], load_after[0]),
        "",
        "%-*s %8s %7s %8s %7s %6s  %-14s %s" % (
            width, "row", "req/s", "p50 ms", "p99 ms", "CPU us", "errors",
            "non-2xx", "ratio (target); CPU ratio"),
    ]
    verdicts = []
    for label in labels:
        runs = [rnd[label] for rnd in rounds if label in rnd]
        rps = median([r.result.rps for r in runs])
        errors = sum(r.result.socket_errors + r.result.timeouts
                     for r in runs)
        ratio = ""
        if label in ratio_of and ratio_of[label][0] in rounds[0]:
            ref, minimum = ratio_of[label]
            pairs = [(rnd[label], rnd[ref]) for rnd in rounds
                     if label in rnd and ref in rnd]
            value = median([a.result.rps / b.result.rps for a, b in pairs
                            if b.result.rps])
            ratio = "%.2fx %s" % (value, ref)
            if minimum is not None:
                met = value >= minimum and all(r.clean() for r in runs)
                ratio += " (>= %g: %s)" % (minimum,
                                             "met" if met else "MISSED")
                verdicts.append(met)
            cpu_ratio = median([b.cpu_us_per_req / a.cpu_us_per_req
                                for a, b in pairs if a.cpu_us_per_req])
            if cpu_ratio:
                ratio += "; %.2f" % cpu_ratio
        lines.append("%-*s %8.0f %7s %8s %7.0f %6d  %-14s %s" % (
            width, label, rps,
            fmt_ms(median([r.result.p50_us for r in runs])),
            fmt_ms(median([r.result.p99_us for r in runs])),
            median([r.cpu_us_per_req for r in runs]), errors,
            non_2xx_text(runs), ratio))
    lines.append("")
    lines.append("targets met: %d of %d (a target counts only if every "
                 "request was answered; 409s from racing writes of the "
                 "client's own versions are allowed up to %g%%)"
                 % (sum(verdicts), len(verdicts), MAX_409_SHARE * 100))
    lines.append("CPU us: CPU time of all servers (nginx, storaged, etcd; "
                 "not wrk) per request; CPU ratio: reference's CPU/req over "
                 "the row's, the req/s ratio CPU cost alone predicts "
                 "(steadier on a busy machine)")
    lines.append("two-router rows: two wrk processes started together, "
                 "-t%d -c%d each against its own router; req/s summed, "
                 "p50/p99 the worse of the two"
                 % (max(1, args.threads // 2), max(1, args.connections // 2)))
    lines.extend(contention_lines(rounds))
    lines.extend(counter_lines(rounds, width))
    lines.extend(baseline_lines(rounds))
    if notes:
        lines.append("")
        lines.extend(notes)
    probes = [("%s%s" % (label, " (round %d)" % (n + 1)
                         if len(rounds) > 1 else ""), row.probe)
              for n, rnd in enumerate(rounds)
              for label, row in rnd.items() if row.probe]
    if probes:
        lines.append("")
        lines.append("answer latency of single requests on fresh "
                     "connections, probed during a row:")
        lines.extend("  %-*s %s" % (width, label, text)
                     for label, text in probes)
    lines.append("")
    lines.append("router N3W2R2 nginx workers (memory per worker):")
    lines.extend(memory)
    return "\n".join(lines) + "\n"


def contention_lines(rounds):
    """Hot-key rows of this build: every answer must be 2xx."""
    out = []
    for label in NO_FAILURE_ROWS:
        runs = [rnd[label] for rnd in rounds if label in rnd]
        if not runs:
            continue
        bad = sum(r.result.non_2xx + r.result.socket_errors
                  + r.result.timeouts for r in runs)
        out.append("  %s: %d non-2xx or failed of %d requests (target 0: "
                   "%s)" % (label, bad, sum(r.result.requests for r in runs),
                            "met" if bad == 0 else "MISSED"))
    if out:
        out.insert(0, "")
        out.insert(1, "concurrent writes (hot keys):")
    return out


def counter_lines(rounds, width):
    """What the router's own counters say a row's writes cost: writes that
    asked the replicas' versions first (an extra round), retries after a
    409; per request of the row, summed over rounds."""
    out = []
    for label in (rounds[0] if rounds else {}):
        runs = [rnd[label] for rnd in rounds if label in rnd]
        if all(r.counters is None for r in runs):
            continue
        requests = sum(r.result.requests for r in runs) or 1
        total = sum_statuses(*[r.counters or {} for r in runs])
        out.append("  %-*s %s" % (width, label, ", ".join(
            "%s %d (%.1f%%)" % (name.replace("_", " "), total.get(name, 0),
                                100.0 * total.get(name, 0) / requests)
            for name in fx.ROUTER_COUNTERS)))
    if out:
        out[0:0] = ["", "router counters during each row (per request of "
                    "the row; builds without a counter show 0):"]
    return out


def baseline_lines(rounds):
    """This build against the baseline build, row by row (medians over
    rounds of each round's ratio)."""
    out = []
    for row in BASELINE_ROWS:
        pairs = [(rnd[row], rnd[BASELINE + row]) for rnd in rounds
                 if row in rnd and BASELINE + row in rnd]
        if not pairs:
            continue
        rps = median([a.result.rps / b.result.rps for a, b in pairs
                      if b.result.rps])
        cpu = median([a.cpu_us_per_req / b.cpu_us_per_req for a, b in pairs
                      if b.cpu_us_per_req])
        text = ("  %-30s req/s %+5.1f%% (%.0f vs %.0f), CPU/req %+5.1f%% "
                "(%.0f vs %.0f us)" % (
                    row, (rps - 1) * 100,
                    median([a.result.rps for a, _ in pairs]),
                    median([b.result.rps for _, b in pairs]),
                    (cpu - 1) * 100,
                    median([a.cpu_us_per_req for a, _ in pairs]),
                    median([b.cpu_us_per_req for _, b in pairs])))
        if row == BASELINE_PUT_ROW:
            text += " (target: at most %d%% slower: %s)" % (
                MAX_PUT_SLOWDOWN * 100,
                "met" if rps >= 1 - MAX_PUT_SLOWDOWN else "MISSED")
        out.append(text)
    if out:
        out[0:0] = ["", "this build vs the baseline build (same run; "
                    "this build's figure first):"]
    return out


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
