#!/usr/bin/python3
"""large.py - `make bench-large` (and the last part of `make bench`): MB/s
of large values, PUT and GET, through the router (N=3 W=2 R=2 over three
storaged) next to plain nginx proxy_pass of the same value to one
storaged, in the same run (issue 9: PUT >= 0.4x, GET >= 0.6x).

    /usr/bin/python3 bench/large.py [--sizes 1m,64m,512m] [--repeat 3]

For each size: a file of that size (deterministic bytes) is uploaded with
`curl -T` (Content-Length) and downloaded with `curl -o /dev/null`, one
transfer at a time on a keep-alive connection; a measurement is a batch
of transfers (enough to move at least 64 MiB, at most 32, each to its own
key) timed by curl's time_total; a row is the median of --repeat
measurements.  Every answer must be 201 (PUT) or 200 with the whole
size (GET), else the row says why it failed and the run goes on.  Both
sides run with their default buffering: nginx writes a large request
body (and the proxy a large response) to a temporary file.

Ports SKV_BENCH_LARGE_PORT_BASE (default 20200) + 1 (storaged alone),
+11..13 (nodes), +80 (plain nginx), +81 (router).  The table goes to
stdout and build/bench/large-results.txt (JSON: large-results.json).
Method and figures: docs/benchmarks.md, "Large values".
"""

import argparse
import contextlib
import datetime
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import urllib.request

import fixtures as fx
from plain_nginx import PlainNginx
from router import Router
from skvproc import Storaged
from bigvalue import Gen

MIB = 1 << 20
PORT_BASE = int(os.environ.get("SKV_BENCH_LARGE_PORT_BASE", "20200"))
# (op, minimum router/proxy ratio)
TARGETS = {"PUT": 0.4, "GET": 0.6}
BATCH_BYTES = 64 * MIB
BATCH_MAX = 32


def parse_size(text):
    m = re.fullmatch(r"(\d+)([kmg]?)", text.strip().lower())
    if not m:
        raise argparse.ArgumentTypeError("a size like 1m or 512m: %r" % text)
    return int(m.group(1)) << {"": 0, "k": 10, "m": 20, "g": 30}[m.group(2)]


def size_text(n):
    return "%d MiB" % (n >> 20) if n >= MIB and n % MIB == 0 else "%d B" % n


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="1m,64m,512m",
                   help="value sizes, comma-separated (default 1m,64m,512m;"
                        " at most 1g)")
    p.add_argument("--repeat", type=int, default=3,
                   help="measurements per row; the row is their median")
    p.add_argument("--workers", type=int, default=os.cpu_count(),
                   help="nginx worker_processes of both nginx (default: "
                        "one per CPU)")
    p.add_argument("--limit", default="1g",
                   help="simplekv_max_value_size, storaged's "
                        "--max-value-size and the plain nginx's "
                        "client_max_body_size (default 1g; a router "
                        "build that cannot take 1g needs less)")
    p.add_argument("--out", default=os.path.join(fx.TOP, "build", "bench"))
    p.add_argument("--keep", action="store_true",
                   help="keep the temporary directory")
    args = p.parse_args()
    args.sizes = [parse_size(s) for s in args.sizes.split(",") if s]
    limit = parse_size(args.limit)
    if any(s > limit for s in args.sizes) or args.repeat < 1:
        p.error("sizes are at most --limit (%s), --repeat at least 1"
                % args.limit)
    return args


def make_file(path, size, seed):
    with open(path, "wb") as f:
        for block in Gen(seed, size).blocks():
            f.write(block)


class Failed(Exception):
    pass


def curl_batch(method, base_url, keys, src=None, headers=()):
    """One curl process, one transfer per key on one keep-alive
    connection: (seconds, bytes) summed over the transfers.  Raises
    Failed on any unexpected answer."""
    cmd = ["curl", "-s", "--noproxy", "*", "-w",
           "%{http_code} %{time_total} %{size_download} %{size_upload}\\n"]
    for h in headers:
        cmd += ["-H", h]
    for i, k in enumerate(keys):
        if i:
            cmd.append("--next")
            for h in headers:
                cmd += ["-H", h]
            cmd += ["-w", "%{http_code} %{time_total} %{size_download} "
                    "%{size_upload}\\n"]
        if method == "PUT":
            cmd += ["-T", src, "-o", "/dev/null"]
        else:
            cmd += ["-o", "/dev/null"]
        cmd.append("-s")
        cmd.append("%s/%s" % (base_url, k))
    res = subprocess.run(cmd, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         timeout=3600)
    lines = res.stdout.decode().split()
    if res.returncode != 0 or len(lines) != 4 * len(keys):
        raise Failed("curl exit %d: %s %s" % (
            res.returncode, res.stderr.decode()[-200:], lines[:8]))
    total_s, total_b = 0.0, 0
    for i in range(len(keys)):
        code, secs, down, up = lines[4 * i:4 * i + 4]
        moved = int(float(up if method == "PUT" else down))
        want = 201 if method == "PUT" else 200
        if int(code) != want:
            raise Failed("%s answered %s" % (method, code))
        total_s += float(secs)
        total_b += moved
    return total_s, total_b


def measure(method, base_url, size, src, prefix, repeat, versioned):
    """Median MB/s of repeat batches; the keys of batch r are prefix-r-i
    (a GET reads what the PUT row wrote)."""
    n = max(1, min(BATCH_MAX, BATCH_BYTES // size))
    rates = []
    for r in range(repeat):
        keys = ["%s-%d-%d" % (prefix, r, i) for i in range(n)]
        headers = ()
        if versioned and method == "PUT":
            headers = ("X-Simplekv-Version: %s" % fx.VersionClock().next(),)
        secs, moved = curl_batch(method, base_url, keys, src, headers)
        if moved != n * size:
            raise Failed("%s moved %d bytes, not %d" % (method, moved,
                                                        n * size))
        rates.append(moved / secs / 1e6)
    return statistics.median(rates), rates, n


def delete_keys(base_url, prefix, repeat, n, versioned):
    for r in range(repeat):
        for i in range(n):
            req = urllib.request.Request("%s/%s-%d-%d" % (base_url, prefix,
                                                          r, i),
                                         method="DELETE")
            if versioned:
                req.add_header("X-Simplekv-Version", fx.VersionClock().next())
            try:
                urllib.request.urlopen(req, timeout=120).read()
            except OSError:
                pass


def main():
    args = parse_args()
    fx.interrupt_on_signals()
    if shutil.which("curl") is None:
        sys.exit("bench/large.py needs curl")
    os.makedirs(args.out, exist_ok=True)
    workdir = tempfile.mkdtemp(prefix="skv-bench-large-")
    os.chmod(workdir, 0o755)
    started = datetime.datetime.now(datetime.timezone.utc)
    rows = []
    try:
        with contextlib.ExitStack() as stack:
            storaged_args = ["--max-value-size", args.limit]
            alone = Storaged(PORT_BASE + 1, os.path.join(workdir, "alone",
                                                         "data"),
                             extra_args=storaged_args)
            stack.callback(alone.stop)
            alone.start()
            nodes = []
            for i, name in enumerate("abc"):
                node = Storaged(PORT_BASE + 11 + i,
                                os.path.join(workdir, name, "data"),
                                extra_args=storaged_args)
                stack.callback(node.stop)
                node.start()
                nodes.append((name, node.port))
            plain = PlainNginx(PORT_BASE + 80, alone.port,
                               os.path.join(workdir, "plain-nginx"),
                               workers=args.workers, keepalive=fx.KEEPALIVE,
                               max_body=args.limit)
            stack.callback(plain.stop)
            plain.start()
            router = Router(PORT_BASE + 81, nodes, replicas=3, w=2, r=2,
                            workers=args.workers, keepalive=fx.KEEPALIVE,
                            error_log_level="warn",
                            extra_server="access_log off;",
                            # a round carries up to 1 GiB per replica
                            replica_timeout="120s",
                            extra_location="simplekv_max_value_size %s;"
                                           % args.limit,
                            prefix=os.path.join(workdir, "router"))
            stack.callback(router.stop)
            router.start()
            print("large values: router N3W2R2 %s vs plain nginx "
                  "proxy_pass %s, %d nginx workers each, median of %d"
                  % (router.url, plain.url, args.workers, args.repeat),
                  flush=True)
            for size in args.sizes:
                src = os.path.join(workdir, "value-%d" % size)
                make_file(src, size, size)
                for op in ("PUT", "GET"):
                    row = {"size": size, "op": op}
                    for side, url, versioned in (
                            ("proxy", plain.url, True),
                            ("router", router.url, False)):
                        try:
                            med, rates, n = measure(
                                op, url, size, src, "large-%d" % size,
                                args.repeat, versioned)
                            row[side] = round(med, 1)
                            row[side + "_runs"] = [round(x, 1)
                                                   for x in rates]
                            row["batch"] = n
                        except Failed as e:
                            row[side] = None
                            row[side + "_error"] = str(e)
                    if row.get("proxy") and row.get("router"):
                        row["ratio"] = round(row["router"] / row["proxy"], 2)
                        row["target"] = TARGETS[op]
                        row["meets"] = row["ratio"] >= TARGETS[op]
                    rows.append(row)
                    print("  " + row_text(row), flush=True)
                n = max(1, min(BATCH_MAX, BATCH_BYTES // size))
                delete_keys(plain.url, "large-%d" % size, args.repeat, n,
                            True)
                delete_keys(router.url, "large-%d" % size, args.repeat, n,
                            False)
                os.unlink(src)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    text = table(rows, started, args)
    print(text)
    with open(os.path.join(args.out, "large-results.txt"), "w") as f:
        f.write(text)
    with open(os.path.join(args.out, "large-results.json"), "w") as f:
        json.dump({"started": started.isoformat(), "rows": rows,
                   "machine": fx.machine_description(),
                   "workers": args.workers, "repeat": args.repeat}, f,
                  indent=2)


def row_text(row):
    def side(name):
        if row.get(name) is None:
            return "%-10s failed: %s" % (name, row.get(name + "_error"))
        return "%-6s %7.1f MB/s" % (name, row[name])
    out = "%-8s %-3s  %s  %s" % (size_text(row["size"]), row["op"],
                                 side("proxy"), side("router"))
    if "ratio" in row:
        out += "  ratio %.2f (target %.1f: %s)" % (
            row["ratio"], row["target"], "ok" if row["meets"] else "BELOW")
    return out


def table(rows, started, args):
    lines = ["large values, %s, %s" % (
                 started.strftime("%Y-%m-%d %H:%M UTC"),
                 fx.machine_description()),
             "router N3W2R2 vs plain nginx proxy_pass to one storaged; "
             "curl, one transfer at a time, median of %d" % args.repeat]
    lines += [row_text(r) for r in rows]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
