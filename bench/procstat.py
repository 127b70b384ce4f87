"""procstat - CPU time and memory of the benchmark's server processes,
from /proc.

CPU: user + system time of a process and all its threads.  Summed over
the servers of a row and divided by the requests wrk counted, it gives
the server CPU cost per request: on a shared, noisy machine that figure
moves much less than requests/s, and on 2 cores it is what limits
throughput.

Memory: the router's is measured per worker: VmRSS (all resident pages)
and RssAnon (private heap and stack, where a per-request leak would
show; VmRSS also counts shared-memory pages such as the module's stats
zone, touched once).
"""

import os

CLK_TCK = os.sysconf("SC_CLK_TCK")


def children(pid):
    """Pids whose parent is pid (nginx workers of a master)."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                stat = f.read()
        except OSError:
            continue
        # the command name (field 2) is in parentheses and may hold spaces
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid:
            out.append(int(name))
    return sorted(out)


def status_kib(pid):
    """{"VmRSS": kib, "RssAnon": kib, ...} from /proc/<pid>/status."""
    values = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key, _, rest = line.partition(":")
            parts = rest.split()
            if len(parts) == 2 and parts[1] == "kB":
                values[key] = int(parts[0])
    return values


def workers_kib(master_pid):
    """Per worker (pid, VmRSS KiB, RssAnon KiB), in pid order."""
    out = []
    for pid in children(master_pid):
        try:
            st = status_kib(pid)
        except OSError:
            continue   # a worker that just exited
        out.append((pid, st.get("VmRSS", 0), st.get("RssAnon", 0)))
    return out


def cpu_seconds(pid):
    """User + system CPU seconds of pid (all threads), 0.0 if it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2:].split()
    # fields[11], fields[12]: utime, stime (man 5 proc, fields 14 and 15)
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def tree_cpu_seconds(pids):
    """CPU seconds of the given processes and their children (an nginx
    master's workers)."""
    total = 0.0
    for pid in pids:
        total += cpu_seconds(pid)
        for child in children(pid):
            total += cpu_seconds(child)
    return total
