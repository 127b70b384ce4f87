#!/usr/bin/python3
"""memory.py - `make bench-memory`: does an nginx worker of the router
grow per request?  Resident memory of each worker of a router (N=3, W=2,
R=2 over three storaged) after 10,000 requests and then after every chunk
of a mixed GET/PUT wrk load up to 1,000,000 requests.  A leak shows as a
steady climb from chunk to chunk, reported as bytes per request over the
second half of the run; the step from 10,000 to the first chunk is
warm-up (connection pools and buffers growing to the peak concurrency,
the stats zone's pages touched).

    /usr/bin/python3 bench/memory.py [--requests 1000000] [--chunk 30]
"""

import argparse
import contextlib
import os
import shutil
import sys
import tempfile

import fixtures as fx
import procstat
import wrkrun


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=1000000,
                   help="stop once the router has answered this many "
                        "(default 1000000)")
    p.add_argument("--chunk", type=int, default=30,
                   help="seconds per wrk run between readings (default 30)")
    p.add_argument("--workers", type=int, default=os.cpu_count(),
                   help="nginx worker_processes (default: the CPU count)")
    p.add_argument("--out", default=os.path.join(fx.TOP, "build", "bench"),
                   help="where wrk's output and the results go")
    return p.parse_args()


def reading(requests, workers):
    total = sum(w[1] for w in workers)
    anon = sum(w[2] for w in workers)
    per = ", ".join("%d/%d" % (w[1], w[2]) for w in workers)
    return (requests, total, anon,
            "%9d requests: VmRSS %6d KiB, RssAnon %6d KiB (all workers; "
            "per worker VmRSS/RssAnon %s)" % (requests, total, anon, per))


def main():
    args = parse_args()
    fx.interrupt_on_signals()
    os.makedirs(args.out, exist_ok=True)
    workdir = tempfile.mkdtemp(prefix="skv-bench-mem-")
    log = open(os.path.join(args.out, "memory-wrk-output.txt"), "w")
    readings = []

    def record(requests, master_pid):
        r = reading(requests, procstat.workers_kib(master_pid))
        readings.append(r)
        print(r[3], flush=True)

    try:
        with contextlib.ExitStack() as stack:
            nodes = fx.start_nodes(stack, workdir)
            r3 = fx.start_router(stack, fx.ROUTER_N3_PORT, nodes, 3, 2, 2,
                                 args.workers, workdir)
            before = fx.router_statuses(r3.url)
            fx.preload(r3.url, "/", versioned=False)
            done = fx.NKEYS
            record(done, r3.proc.pid)
            while done < args.requests:
                res = wrkrun.run("memory", r3.url, "mixed",
                                 duration=args.chunk, log=log)
                done += res.requests
                record(done, r3.proc.pid)
            statuses = fx.status_delta(before, fx.router_statuses(r3.url))
            if r3.crashes():
                print("nginx worker crashes:\n" + "\n".join(r3.crashes()))
                return 1
    except KeyboardInterrupt:
        print("\ninterrupted: servers stopped", file=sys.stderr)
        return 130
    finally:
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)

    first, last = readings[0], readings[-1]
    lines = ["router worker memory, %d nginx workers, mixed GET/PUT "
             "(wrk -t2 -c64, %d s chunks)" % (args.workers, args.chunk),
             "answers by status: %s" % ", ".join(
                 "%s: %d" % kv for kv in sorted(statuses.items())),
             "after %d requests VmRSS %d KiB, after %d requests VmRSS %d "
             "KiB: %+d KiB" % (first[0], first[1], last[0], last[1],
                               last[1] - first[1])]
    if len(readings) >= 3:
        # A leak climbs steadily; warm-up and the occasional step (a
        # worker's pools growing at a new concurrency peak) do not.  So
        # the slope is taken over the second half of the run.
        mid = next(r for r in readings if r[0] >= last[0] / 2)
        if last[0] > mid[0]:
            lines.append("second half (%d to %d requests): RssAnon %+d KiB "
                         "= %.4f bytes per request"
                         % (mid[0], last[0], last[2] - mid[2],
                            (last[2] - mid[2]) * 1024.0
                            / (last[0] - mid[0])))
    report = "\n".join(lines) + "\n"
    print()
    print(report, end="")
    with open(os.path.join(args.out, "memory-results.txt"), "w") as f:
        f.write(report + "\n".join(r[3] for r in readings) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
