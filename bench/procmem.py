"""procmem - memory of nginx worker processes, from /proc.

The router's memory is measured per worker: VmRSS (all resident pages)
and RssAnon (private heap and stack, where a per-request leak would
show; VmRSS also counts shared-memory pages such as the module's stats
zone, touched once).
"""

import os


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
