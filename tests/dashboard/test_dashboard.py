"""The router's dashboard (simplekv_dashboard) in headless Chromium,
against a live cluster: three storaged, one router, light steady traffic.

The page must load with no console error, no exception and no CSP
violation, fetch nothing but its own router, show every node up, then,
once a node is killed (SIGKILL: its connections are refused, which the
router reports as down), show that node down and the others up, and
show it up again after it is restarted; a frozen node (SIGSTOP: its
requests time out) shows suspect, and up once thawed.  A screenshot of the page with
the node down is saved as build/dashboard-test.png.

Ports: SKV_DASHBOARD_PORT_BASE (default 19600) to base+9: the router on
base, storaged on base+1..3, Chromium's DevTools on base+9.
"""

import json
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(TOP, "tests", "lib"))
sys.path.insert(0, HERE)

from cdp import CHROMIUM, Browser     # noqa: E402
from router import Router             # noqa: E402
from skvproc import Storaged          # noqa: E402

PORT_BASE = int(os.environ.get("SKV_DASHBOARD_PORT_BASE", "19600"))
SCREENSHOT = os.environ.get("SKV_DASHBOARD_SCREENSHOT",
                            os.path.join(TOP, "build", "dashboard-test.png"))

DASHBOARD = "location = /_simplekv/dashboard { simplekv_dashboard; }"

# the nodes' states as the page shows them: {"a": "up", ...}
NODE_STATES = """JSON.stringify(Object.fromEntries(
    Array.from(document.querySelectorAll('#nodes tbody tr[data-node]'))
         .map(function (r) { return [r.dataset.node, r.dataset.state]; })))"""


def _request(method, url, body=None):
    req = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as res:
            res.read()
            return res.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


class Traffic(threading.Thread):
    """A few dozen requests a second (PUT, GET, DELETE over 50 keys),
    so that the charts have something to draw and every node is asked."""

    def __init__(self, url):
        super().__init__(daemon=True)
        self.url = url
        self.done = threading.Event()
        self.statuses = {}

    def run(self):
        i = 0
        while not self.done.is_set():
            key = "%s/dash-%d" % (self.url, i % 50)
            method = ("PUT", "GET", "GET", "DELETE")[i % 4]
            st = _request(method, key, b"v%d" % i if method == "PUT" else None)
            self.statuses[st] = self.statuses.get(st, 0) + 1
            i += 1
            self.done.wait(0.02)

    def stop(self):
        self.done.set()
        self.join(10)


def states(browser):
    return json.loads(browser.evaluate(NODE_STATES))


def wait_states(browser, want, timeout):
    deadline = time.time() + timeout
    got = None
    while time.time() < deadline:
        got = states(browser)
        if got == want:
            return got
        time.sleep(0.2)
    raise AssertionError("nodes on the page: %r, expected %r" % (got, want))


def polls(browser):
    return int(browser.evaluate("document.body.dataset.polls || 0"))


@pytest.mark.skipif(not os.path.exists(CHROMIUM),
                    reason="chromium not installed (util/install-deps.sh)")
def test_dashboard_shows_a_killed_node_down_and_a_frozen_one_suspect(
        tmp_path):
    nodes = [Storaged(PORT_BASE + 1 + i, tmp_path / name / "data")
             for i, name in enumerate("abc")]
    router = Router(PORT_BASE, [(n, s.port) for n, s in zip("abc", nodes)],
                    prefix=str(tmp_path / "router"), extra_server=DASHBOARD)
    browser = Browser(PORT_BASE + 9, tmp_path / "chromium-profile")
    traffic = Traffic(router.url)
    page = router.url + "/_simplekv/dashboard"
    frozen = False
    try:
        for n in nodes:
            n.start()
        router.start()
        traffic.start()
        browser.start()
        browser.navigate(page)

        # loaded, polling, every node up, charts drawn from a few samples
        browser.wait_for("document.body.dataset.polls >= 3", timeout=15)
        assert wait_states(browser, {"a": "up", "b": "up", "c": "up"}, 5)
        assert browser.evaluate(
            "document.getElementById('conn').dataset.state") == "ok"
        assert browser.evaluate(
            "document.getElementById('card-nodes').textContent") == "3 / 3"
        assert browser.evaluate(
            "document.getElementById('transition-state').dataset.state") \
            == "stable"
        # the namespace the traffic goes to, with its quorums and a rate
        row = json.loads(browser.evaluate(
            "JSON.stringify(Array.from(document.querySelectorAll("
            "'#namespaces tr[data-namespace=\"default\"] td'))"
            ".map(function (c) { return c.textContent; }))"))
        assert row[:4] == ["default", "3", "2", "2"], row
        assert float(row[4]) > 0, row

        # node b killed: refused connections, the router marks it down
        nodes[1].kill9()
        before = polls(browser)
        assert wait_states(browser, {"a": "up", "b": "down", "c": "up"}, 10)
        browser.wait_for("document.body.dataset.polls >= %d" % (before + 3),
                         timeout=10)
        assert browser.evaluate(
            "document.getElementById('card-nodes').textContent") == "2 / 3"
        assert float(browser.evaluate(
            "document.getElementById('card-rate').textContent")) > 0
        browser.screenshot(SCREENSHOT)

        # back: the next request that reaches it marks it up again
        nodes[1].start()
        assert wait_states(browser, {"a": "up", "b": "up", "c": "up"}, 10)

        # node c frozen (SIGSTOP): its requests time out (1 s), the
        # breaker holds it suspect; thawed, it answers and is up again
        os.kill(nodes[2].proc.pid, signal.SIGSTOP)
        frozen = True
        assert wait_states(browser, {"a": "up", "b": "up", "c": "suspect"},
                           10)
        os.kill(nodes[2].proc.pid, signal.SIGCONT)
        frozen = False
        assert wait_states(browser, {"a": "up", "b": "up", "c": "up"}, 10)

        # what the page fetched: its own router only
        urls = browser.requested_urls()
        assert urls, "no request seen"
        foreign = [u for u in urls
                   if not u.startswith(router.url + "/")]
        assert not foreign, foreign
        assert any(u.endswith("/_simplekv/dashboard?js") for u in urls)
        assert any(u.endswith("/_simplekv/status") for u in urls)
        assert browser.problems() == []
        # quorum (2 of 3) held while b was down: no 5xx for the clients
        assert not [s for s in traffic.statuses if s is None or s >= 500], \
            traffic.statuses
    finally:
        if frozen:
            os.kill(nodes[2].proc.pid, signal.SIGCONT)
        traffic.stop()
        browser.stop()
        router.stop()
        for n in nodes:
            n.stop()


@pytest.mark.skipif(not os.path.exists(CHROMIUM),
                    reason="chromium not installed (util/install-deps.sh)")
def test_dashboard_shows_a_transition(tmp_path):
    """A router on a transition configuration (d joining, c reweighted,
    epoch 7): the page names the transition, the joining node and the
    weights, and the barrier as reached (this router's only worker is on
    epoch 7).  No storaged needed: the page shows the router's view."""
    ports = {n: PORT_BASE + 1 + i for i, n in enumerate("abcd")}
    router = Router(PORT_BASE, [("a", ports["a"]), ("b", ports["b"]),
                                ("c", ports["c"], 2), ("d", ports["d"])],
                    prefix=str(tmp_path / "router"), extra_server=DASHBOARD)
    router.previous_weights = {"c": 1, "d": 0}
    router.epoch = 7
    browser = Browser(PORT_BASE + 9, tmp_path / "chromium-profile")
    try:
        router.start()
        browser.start()
        browser.navigate(router.url + "/_simplekv/dashboard")
        browser.wait_for("document.body.dataset.polls >= 2", timeout=15)
        get = "document.getElementById('%s').%s"
        assert browser.evaluate(get % ("transition-state",
                                       "dataset.state")) == "transition"
        assert browser.evaluate(get % ("transition-state", "textContent")) \
            == "transition to epoch 7"
        text = browser.evaluate(get % ("transition-text", "textContent"))
        assert "joining: d" in text and "reweighted: c 1\u21922" in text
        assert "barrier reached" in browser.evaluate(
            get % ("barrier-text", "textContent"))
        steps = json.loads(browser.evaluate(
            "JSON.stringify(Array.from(document.querySelectorAll("
            "'#steps li')).map(function (l) { return l.dataset.state "
            "|| ''; }))"))
        assert steps == ["done", "done", "now", "", ""]
        assert browser.evaluate(
            "document.querySelector('#nodes tr[data-node=\"d\"]')"
            ".cells[2].textContent") == "0 \u2192 1"
        browser.screenshot(os.path.join(os.path.dirname(SCREENSHOT),
                                        "dashboard-transition.png"))
        assert browser.problems() == []
        # the page asked the key-value API for nothing (no favicon.ico)
        assert browser.evaluate(
            "document.getElementById('requests').tBodies[0].rows[0]"
            ".cells[1].textContent") == "0"
    finally:
        browser.stop()
        router.stop()
