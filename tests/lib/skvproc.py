"""skvproc - start and stop real storaged processes from Python tests.

Shared by every Python suite (tests/storaged, tests/cluster, the CLI and
benchmark helpers), so that all of them start storaged the same way, wait
for readiness the same way (GET /v1/health answers 200) and always clean up.

    with Storaged(17001, tmpdir) as s:
        requests.put(s.url + "/v1/kv/a", ...)

The binary is `binary`, else $SKV_STORAGED, else build/storaged at the top
of the work tree.  The daemon's stderr goes to <data_dir>/../storaged-<port>.log
(kept outside the data directory so the database never sees it); read it
with .log_text().
"""

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEFAULT_BINARY = os.path.join(TOP, "build", "storaged")


def default_binary():
    return os.environ.get("SKV_STORAGED") or DEFAULT_BINARY


class StoragedError(RuntimeError):
    pass


class Storaged:
    def __init__(self, port, data_dir, durability="process", extra_args=(),
                 binary=None, host="127.0.0.1", token=None, preexec_fn=None):
        self.port = int(port)
        self.host = host
        self.data_dir = os.path.abspath(str(data_dir))
        self.durability = durability
        self.extra_args = list(extra_args)
        self.binary = binary or default_binary()
        self.token = token
        self.preexec_fn = preexec_fn
        self.proc = None
        self.log_path = os.path.join(os.path.dirname(self.data_dir),
                                     "storaged-%d.log" % self.port)
        self._log = None
        self._started_once = False

    @property
    def url(self):
        host = "[%s]" % self.host if ":" in self.host else self.host
        return "http://%s:%d" % (host, self.port)

    def command(self):
        listen = ("[%s]:%d" if ":" in self.host else "%s:%d") % (self.host,
                                                                 self.port)
        return [self.binary, "--listen", listen, "--data", self.data_dir,
                "--durability", self.durability] + self.extra_args

    def start(self, timeout=10):
        if self.alive():
            raise StoragedError("storaged on port %d already running"
                                % self.port)
        os.makedirs(self.data_dir, exist_ok=True)
        # A fresh log per Storaged object; restarts append to it.
        self._log = open(self.log_path, "ab" if self._started_once else "wb")
        self._started_once = True
        env = dict(os.environ)
        # ASan builds: abort on the first report so a test cannot miss it,
        # and do not fail on leaks of libraries we do not own at exit.
        env.setdefault("ASAN_OPTIONS",
                       "abort_on_error=1:detect_leaks=1:"
                       "allocator_may_return_null=1")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=self._log,
                                     env=env, preexec_fn=self.preexec_fn)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                self._close_log()
                raise StoragedError("storaged exited with %s during start-up:"
                                    "\n%s" % (rc, self.log_text()[-4000:]))
            if self.health() == 200:
                return self
            if time.monotonic() > deadline:
                self.kill9()
                raise StoragedError("storaged on port %d not healthy within "
                                    "%ss:\n%s" % (self.port, timeout,
                                                   self.log_text()[-4000:]))
            time.sleep(0.05)

    def health(self):
        """Status of GET /v1/health, or None when nothing answers."""
        req = urllib.request.Request(self.url + "/v1/health")
        if self.token is not None:
            req.add_header("Authorization", "Bearer " + self.token)
        try:
            with urllib.request.urlopen(req, timeout=1) as resp:
                return resp.status
        except urllib.error.HTTPError as e:
            return e.code
        except (OSError, ValueError):
            return None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=20):
        """SIGTERM and wait; returns the exit status (None if not started)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                self._close_log()
                raise StoragedError("storaged on port %d ignored SIGTERM for "
                                    "%ss" % (self.port, timeout))
        self._close_log()
        return self.proc.returncode

    def kill9(self):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self._close_log()
        return self.proc.returncode

    def restart(self, timeout=10):
        self.stop()
        return self.start(timeout)

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def sanitizer_reports(self):
        """Lines of AddressSanitizer/UBSan/LeakSanitizer reports in the log."""
        marks = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                 "runtime error:", "SUMMARY: UndefinedBehaviorSanitizer",
                 "SUMMARY: AddressSanitizer")
        return [l for l in self.log_text().splitlines()
                if any(m in l for m in marks)]

    def _close_log(self):
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self):
        if not self.alive():
            self.start()
        return self

    def __exit__(self, *exc):
        try:
            self.stop()
        except StoragedError:
            pass
        return False
