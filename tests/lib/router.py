"""router - start and stop an nginx router with ngx_simplekv_module from
Python tests.

Writes a private nginx prefix (conf, logs, temp dirs) following the
configuration contract of the module (one upstream with keepalive per
storage node, simplekv_node lines, the shared conf/simplekv_proxy.conf
snippet, location / { simplekv; ... }) and runs Debian's /usr/sbin/nginx
on it in the foreground, so the test owns the master process and nothing
outside the prefix (not /etc/nginx, not /var/lib/nginx) is touched.

    with Router(19080, [("a", 19001), ("b", 19002), ("c", 19003)],
                prefix=tmpdir) as router:
        requests.put(router.url + "/key", data=b"v")

With valgrind=True (or SKV_VALGRIND=1 in the environment) nginx runs
under valgrind's memcheck, one log per process (master and worker);
valgrind_problems() lists errors and definite leaks found in them after
stop().
"""

import glob
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
NGINX = os.environ.get("SKV_NGINX", "/usr/sbin/nginx")
MODULE = os.environ.get("SKV_MODULE",
                        os.path.join(TOP, "build",
                                     "ngx_http_simplekv_module.so"))
PROXY_SNIPPET = os.path.join(TOP, "conf", "simplekv_proxy.conf")
VALGRIND_SUPPRESSIONS = os.path.join(TOP, "tests", "cluster",
                                     "valgrind.supp")



# --- pieces shared with the benchmark's plain nginx (bench/plain_nginx.py):
# a private prefix, nginx in the foreground as our child, a bounded wait
# until it answers, a bounded stop.

_TEMP_KINDS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def make_prefix(prefix, *extra_dirs):
    """Create prefix/conf, logs, tmp (and extra_dirs); return the absolute
    prefix."""
    prefix = os.path.abspath(prefix)
    for d in ("conf", "logs", "tmp") + extra_dirs:
        os.makedirs(os.path.join(prefix, d), exist_ok=True)
    return prefix


def temp_path_directives(prefix):
    """http-level directives keeping nginx's temporary files in
    prefix/tmp, so nothing under /var/lib/nginx is touched."""
    return "".join("    %s_temp_path %s/tmp/%s;\n" % (kind, prefix, kind)
                   for kind in _TEMP_KINDS)


def nginx_args(prefix, conf_path, error_log):
    # -e: the error log nginx opens before it has read the config
    # (Debian's default is /var/log/nginx/error.log).
    return [NGINX, "-p", prefix + "/", "-c", conf_path, "-e", error_log]


def launch(cmd, log_path, extra_env=None):
    """Start cmd (nginx in the foreground) with stdout and stderr appended
    to log_path, and extra_env added to the environment; returns (process,
    open log file to close after it)."""
    out = open(log_path, "ab")
    env = None
    if extra_env:
        env = dict(os.environ)
        env.update(extra_env)
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=out, env=env)
    except BaseException:
        out.close()
        raise
    return proc, out


def wait_ready(proc, ready, timeout):
    """Poll ready() every 50 ms: True once it holds, False if proc exited
    first, None when timeout seconds passed."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            return False
        if ready():
            return True
        if time.monotonic() > deadline:
            return None
        time.sleep(0.05)


def stop_nginx(proc, timeout):
    """Graceful stop of an nginx master (SIGQUIT: finish requests, workers
    exit), then SIGTERM, then SIGKILL, each after a bounded wait.  Shared
    with the benchmark's plain nginx (bench/plain_nginx.py)."""
    for sig, wait in ((signal.SIGQUIT, timeout), (signal.SIGTERM, 10),
                      (signal.SIGKILL, 10)):
        if proc.poll() is not None:
            break
        proc.send_signal(sig)
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            continue


class RouterError(RuntimeError):
    pass


def valgrind_requested():
    return os.environ.get("SKV_VALGRIND", "") not in ("", "0")


def _node_entries(nodes):
    """Normalise nodes to (name, port, weight) triples.

    A node is a (name, address) or (name, address, weight) tuple, or an
    object with a .port (a tests/lib/skvproc.Storaged; its .host too, if
    it has one), then named a, b, c, ... in list order.  An address is a
    port on 127.0.0.1 or a "host:port" string (e.g. a node in a network
    namespace, tests/lib/netns.py).
    """
    out = []
    for i, node in enumerate(nodes):
        if hasattr(node, "port"):
            host = getattr(node, "host", "127.0.0.1")
            out.append((chr(ord("a") + i), _address(host, node.port), None))
        elif len(node) == 2:
            out.append((str(node[0]), _address(None, node[1]), None))
        else:
            out.append((str(node[0]), _address(None, node[1]), node[2]))
    return out


def _address(host, port):
    """'host:port' for an upstream's server line."""
    if isinstance(port, str) and ":" in port:
        return port
    return "%s:%d" % (host or "127.0.0.1", int(port))


# Run as root, nginx's workers would become "nobody", who cannot enter a
# prefix under pytest's private (0700) temporary tree to buffer large
# request bodies there: keep them as root in tests.
_WORKER_USER = "user root;\n" if os.geteuid() == 0 else ""


class Router:
    def __init__(self, port, nodes, replicas=3, w=2, r=2, extra_location="",
                 extra_http="", extra_server="", valgrind=None, prefix=None,
                 workers=1, replica_timeout="1s", token_file=None,
                 keepalive=32, error_log_level="info", extra_main="",
                 extra_env=None, namespaces=(), host="127.0.0.1", netns=None,
                 worker_connections=1024):
        self.port = int(port)
        # the address nginx listens on, and a network namespace to run it
        # in (`ip netns exec NETNS nginx ...`; tests/lib/netns.py)
        self.host = host
        self.netns = netns
        self.worker_connections = worker_connections
        self.nodes = _node_entries(nodes)
        self.replicas, self.w, self.r = replicas, w, r
        self.extra_location = extra_location
        self.extra_http = extra_http
        self.extra_server = extra_server
        self.valgrind = valgrind_requested() if valgrind is None \
            else valgrind
        self.prefix = os.path.abspath(prefix or tempfile.mkdtemp(
            prefix="skv-router-%d-" % self.port))
        self.workers = workers
        self.replica_timeout = replica_timeout
        self.token_file = token_file
        self.keepalive = keepalive
        self.error_log_level = error_log_level
        # main-context directives, e.g. "worker_rlimit_core 1g;
        # working_directory /tmp/x/;" to get worker core dumps
        self.extra_main = extra_main
        # environment for nginx, e.g. libfaketime's LD_PRELOAD and FAKETIME
        # to run this router's clock behind the others
        self.extra_env = dict(extra_env or {})
        # more simplekv locations, each in a namespace of its own
        # (simplekv_namespace): (location, name, N, W, R); location / stays
        # in "default" with replicas, w, r
        self.namespaces = list(namespaces)
        # a membership transition (docs/membership.md): node name ->
        # previous_weight, and the configuration's simplekv_epoch
        self.previous_weights = {}
        self.epoch = None
        self.proc = None
        self._out = None
        make_prefix(self.prefix)
        self.conf_path = os.path.join(self.prefix, "conf", "nginx.conf")
        self.error_log = os.path.join(self.prefix, "logs", "error.log")
        self.stdout_log = os.path.join(self.prefix, "logs", "stdout.log")

    @property
    def url(self):
        return "http://%s:%d" % (self.host, self.port)

    # Valgrind slows nginx down by an order of magnitude or more: tests
    # scale their client timeouts by this.
    @property
    def slowdown(self):
        return 20 if self.valgrind else 1

    def config_text(self):
        p = self.prefix
        upstreams = []
        node_lines = []
        for name, address, weight in self.nodes:
            upstreams.append("    upstream skv_%s {\n"
                             "        server %s;\n"
                             "        keepalive %d;\n"
                             "    }\n" % (name, _address(None, address),
                                      self.keepalive))
            node_lines.append("    simplekv_node %s skv_%s%s%s;\n" % (
                name, name, "" if weight is None else " weight=%s" % weight,
                "" if name not in self.previous_weights
                else " previous_weight=%s" % self.previous_weights[name]))
        if self.epoch is not None:
            node_lines.append("    simplekv_epoch %d;\n" % self.epoch)
        token = ("    simplekv_token_file %s;\n" % self.token_file
                 if self.token_file else "")
        ns_locations = "".join(
            "        location %s {\n"
            "            simplekv;\n"
            "            simplekv_namespace %s;\n"
            "            simplekv_replicas %d;\n"
            "            simplekv_write_quorum %d;\n"
            "            simplekv_read_quorum %d;\n"
            "            simplekv_replica_timeout %s;\n"
            "        }\n" % (loc, name, n, w, r, self.replica_timeout)
            for loc, name, n, w, r in self.namespaces)
        temp = temp_path_directives(p)
        return (
            "# Generated by tests/lib/router.py for a test run.\n"
            "daemon off;\n"
            "master_process on;\n"
            "%s"
            "worker_processes %d;\n"
            "error_log %s %s;\n"
            "pid %s/logs/nginx.pid;\n"
            "load_module %s;\n"
            "%s"
            "events {\n    worker_connections %d;\n}\n"
            "http {\n"
            "    access_log %s/logs/access.log;\n"
            "%s"
            "%s%s%s"
            "%s"
            "    server {\n"
            "        listen %s:%d;\n"
            "        include %s;\n"
            "        location / {\n"
            "            simplekv;\n"
            "            simplekv_replicas %d;\n"
            "            simplekv_write_quorum %d;\n"
            "            simplekv_read_quorum %d;\n"
            "            simplekv_replica_timeout %s;\n"
            "%s"
            "        }\n"
            "%s"
            "        location = /_simplekv/status { simplekv_status; }\n"
            "        location = /_simplekv/metrics { simplekv_metrics; }\n"
            "%s"
            "    }\n"
            "}\n" % (
                _WORKER_USER, self.workers, self.error_log,
                self.error_log_level, p,
                MODULE, _indent(self.extra_main, 0),
                self.worker_connections, p, temp, "".join(upstreams), "".join(node_lines),
                token, self.extra_http, self.host, self.port, PROXY_SNIPPET,
                self.replicas, self.w, self.r, self.replica_timeout,
                _indent(self.extra_location, 12), ns_locations,
                _indent(self.extra_server, 8)))

    def write_config(self):
        with open(self.conf_path, "w") as f:
            f.write(self.config_text())

    def _nginx_args(self):
        args = nginx_args(self.prefix, self.conf_path, self.error_log)
        if self.netns:
            # ip netns exec execs nginx: the child is nginx itself, so
            # signals and the exit status are nginx's
            args = ["ip", "netns", "exec", self.netns] + args
        return args

    def test_config(self):
        """Run nginx -t on the configuration: (exit status, output)."""
        self.write_config()
        res = subprocess.run(self._nginx_args() + ["-t"],
                             stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             timeout=30)
        return res.returncode, res.stdout.decode("utf-8", "replace")

    def start(self, timeout=None):
        if self.alive():
            raise RouterError("router on port %d already running" % self.port)
        if not os.path.exists(MODULE):
            raise RouterError("module not built: %s (run make)" % MODULE)
        rc, out = self.test_config()
        if rc != 0:
            raise RouterError("nginx -t refused the configuration:\n%s\n%s"
                              % (out, self.config_text()))
        cmd = self._nginx_args()
        if self.valgrind:
            for old in glob.glob(os.path.join(self.prefix, "logs",
                                              "valgrind.*.log")):
                os.unlink(old)
            vg = ["valgrind", "--tool=memcheck", "--leak-check=full",
                  "--show-leak-kinds=definite",
                  "--errors-for-leak-kinds=definite",
                  "--error-exitcode=99", "--child-silent-after-fork=no",
                  "--log-file=%s/logs/valgrind.%%p.log" % self.prefix]
            if os.path.exists(VALGRIND_SUPPRESSIONS):
                vg.append("--suppressions=%s" % VALGRIND_SUPPRESSIONS)
            cmd = vg + cmd
        if timeout is None:
            timeout = 60 if self.valgrind else 10
        self.proc, self._out = launch(cmd, self.stdout_log, self.extra_env)
        up = wait_ready(self.proc, self._answers, timeout)
        if up is False:
            rc = self.proc.returncode
            self._close_out()
            raise RouterError("nginx exited with %s during start-up:\n%s"
                              % (rc, self.logs_tail()))
        if up is None:
            self.kill()
            raise RouterError("nginx on port %d not answering within %ss:"
                              "\n%s" % (self.port, timeout,
                                        self.logs_tail()))
        return self

    def _answers(self):
        # The status location answers without touching a storage node, so
        # it shows that a worker is up and the module loaded.
        try:
            with urllib.request.urlopen(self.url + "/_simplekv/status",
                                        timeout=2):
                return True
        except urllib.error.HTTPError:
            return True
        except (OSError, ValueError):
            return False

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=None):
        """Graceful stop (SIGQUIT: finish requests, workers exit), then
        SIGTERM, then SIGKILL, each after a bounded wait.  Returns the exit
        status (valgrind's --error-exitcode shows through)."""
        if self.proc is None:
            return None
        if timeout is None:
            timeout = 120 if self.valgrind else 15
        stop_nginx(self.proc, timeout)
        self._close_out()
        return self.proc.returncode

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._close_out()

    def reload(self):
        self.write_config()
        self.proc.send_signal(signal.SIGHUP)

    def error_log_text(self):
        try:
            with open(self.error_log, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def logs_tail(self, n=4000):
        out = ""
        try:
            with open(self.stdout_log, "rb") as f:
                out = f.read().decode("utf-8", "replace")
        except OSError:
            pass
        return ("--- error.log ---\n%s\n--- stdout/stderr ---\n%s"
                % (self.error_log_text()[-n:], out[-n:]))

    def crashes(self):
        """error.log lines showing a worker that died abnormally."""
        return [l for l in self.error_log_text().splitlines()
                if re.search(r"exited on signal|worker process \d+ exited "
                             r"with (fatal|code [1-9])|"
                             r"http request count is zero", l)]

    def valgrind_logs(self):
        return sorted(glob.glob(os.path.join(self.prefix, "logs",
                                             "valgrind.*.log")))

    def valgrind_problems(self):
        """Errors and definite leaks reported by valgrind, one string per
        process log that has any (empty when clean).  Call after stop():
        valgrind writes its summary when the process exits."""
        problems = []
        logs = self.valgrind_logs()
        # one log for the master and one per worker: a missing worker log
        # would mean the requests ran unchecked
        if self.valgrind and len(logs) < 1 + self.workers:
            return ["expected valgrind logs for the master and %d workers "
                    "in %s/logs, found %d" % (self.workers, self.prefix,
                                              len(logs))]
        for path in logs:
            with open(path, "rb") as f:
                text = f.read().decode("utf-8", "replace")
            summary = re.search(r"ERROR SUMMARY: (\d+) errors", text)
            leaked = re.search(r"definitely lost: ([\d,]+) bytes", text)
            bad = summary is None or int(summary.group(1)) != 0 or (
                leaked is not None and leaked.group(1) != "0")
            if bad:
                problems.append("%s:\n%s" % (path, text[-6000:]))
        return problems

    def _close_out(self):
        if self._out is not None:
            self._out.close()
            self._out = None

    def __enter__(self):
        if not self.alive():
            self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


def _indent(text, n):
    if not text:
        return ""
    pad = " " * n
    return "".join(pad + line.strip() + "\n"
                   for line in text.strip().splitlines())


def wait_port_free(port, timeout=10):
    """Wait until nothing listens on 127.0.0.1:port (after a stop)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) != 0:
                return True
        time.sleep(0.05)
    return False
