"""cdp - headless Chromium driven through the DevTools protocol, with
nothing but the Python standard library and Debian's python3-websocket.

    with Browser(port=19609, profile=tmpdir) as b:
        b.navigate("http://127.0.0.1:19600/_simplekv/dashboard")
        b.wait_for("document.body.dataset.polls >= 2", timeout=10)
        b.screenshot("build/page.png")

Chromium runs as our child with a fresh profile and everything that
would reach the network on its own (updates, sync, QUIC, field trials)
switched off; the test owns its process and stops it.
"""

import base64
import json
import os
import shutil
import subprocess
import time
import urllib.request

import websocket

CHROMIUM = os.environ.get("SKV_CHROMIUM") or shutil.which("chromium") \
    or "/usr/bin/chromium"

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions",
         "--metrics-recording-only", "--no-default-browser-check",
         "--disable-features=Translate,OptimizationHints,MediaRouter",
         "--hide-scrollbars", "--mute-audio"]


class CDPError(RuntimeError):
    pass


class Browser:
    def __init__(self, port, profile, width=1400, height=1000, log=None):
        self.port = int(port)
        self.profile = str(profile)
        self.width, self.height = width, height
        self.log_path = log or os.path.join(self.profile + ".log")
        self.proc = None
        self.ws = None
        self._id = 0
        self.events = []

    # --- process ---

    def start(self, timeout=30):
        os.makedirs(self.profile, exist_ok=True)
        self._log = open(self.log_path, "wb")
        cmd = [CHROMIUM] + FLAGS + [
            "--user-data-dir=%s" % self.profile,
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=%d" % self.port,
            "--remote-allow-origins=http://127.0.0.1:%d" % self.port,
            "--window-size=%d,%d" % (self.width, self.height),
            "about:blank"]
        # Chromium's own temporary files (its singleton socket) go beside
        # the profile, not into /tmp
        env = dict(os.environ, TMPDIR=os.path.dirname(
            os.path.abspath(self.profile)))
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=self._log,
                                     env=env)
        deadline = time.time() + timeout
        target = None
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise CDPError("chromium exited (%s); see %s"
                               % (self.proc.returncode, self.log_path))
            try:
                with urllib.request.urlopen(
                        "http://127.0.0.1:%d/json/list" % self.port,
                        timeout=2) as res:
                    pages = [t for t in json.load(res)
                             if t.get("type") == "page"]
                if pages:
                    target = pages[0]
                    break
            except OSError:
                pass
            time.sleep(0.2)
        if target is None:
            raise CDPError("no DevTools page target on port %d in %d s"
                           % (self.port, timeout))
        self.ws = websocket.create_connection(
            target["webSocketDebuggerUrl"], timeout=timeout,
            suppress_origin=True)
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(domain + ".enable")
        self.call("Emulation.setDeviceMetricsOverride", width=self.width,
                  height=self.height, deviceScaleFactor=1, mobile=False)
        return self

    def stop(self):
        if self.ws is not None:
            try:
                self.ws.close()
            except Exception:
                pass
            self.ws = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None
        if getattr(self, "_log", None):
            self._log.close()
            self._log = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # --- protocol ---

    def call(self, method, timeout=30, **params):
        self._id += 1
        mid = self._id
        self.ws.send(json.dumps({"id": mid, "method": method,
                                 "params": params}))
        deadline = time.time() + timeout
        while True:
            left = deadline - time.time()
            if left <= 0:
                raise CDPError("%s: no answer in %d s" % (method, timeout))
            self.ws.settimeout(left)
            msg = json.loads(self.ws.recv())
            if msg.get("id") == mid:
                if "error" in msg:
                    raise CDPError("%s: %s" % (method, msg["error"]))
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def evaluate(self, expression):
        res = self.call("Runtime.evaluate", expression=expression,
                        returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in res:
            raise CDPError("%s: %s" % (expression, res["exceptionDetails"]))
        return res["result"].get("value")

    def navigate(self, url):
        self.call("Page.navigate", url=url)

    def wait_for(self, expression, timeout=10, interval=0.2):
        """Poll a JavaScript expression until it is truthy; returns its
        value, or raises with the last value."""
        deadline = time.time() + timeout
        value = None
        while time.time() < deadline:
            try:
                value = self.evaluate(expression)
            except CDPError as e:
                value = str(e)
            else:
                if value:
                    return value
            time.sleep(interval)
        raise CDPError("not true within %d s: %s (last: %r)"
                       % (timeout, expression, value))

    def screenshot(self, path, full_page=True):
        if full_page:
            metrics = self.call("Page.getLayoutMetrics")
            size = metrics.get("cssContentSize") or metrics["contentSize"]
            self.call("Emulation.setDeviceMetricsOverride", width=self.width,
                      height=max(self.height, int(size["height"])),
                      deviceScaleFactor=1, mobile=False)
            time.sleep(0.3)      # let the page lay out and redraw
        data = self.call("Page.captureScreenshot", format="png")["data"]
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        return path

    # --- what the page did ---

    def requested_urls(self):
        return [e["params"]["request"]["url"] for e in self.events
                if e["method"] == "Network.requestWillBeSent"]

    def problems(self):
        """Console errors, uncaught exceptions and log entries of level
        error (a CSP violation is one of those)."""
        out = []
        for e in self.events:
            m, p = e["method"], e.get("params", {})
            if m == "Runtime.exceptionThrown":
                out.append("exception: %s" % p.get("exceptionDetails"))
            elif m == "Runtime.consoleAPICalled" and p.get("type") in (
                    "error", "assert"):
                out.append("console.%s: %s" % (p["type"], p.get("args")))
            elif m == "Log.entryAdded" and \
                    p.get("entry", {}).get("level") == "error":
                out.append("log: %s" % p["entry"].get("text"))
        return out
