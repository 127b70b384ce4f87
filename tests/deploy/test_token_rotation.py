"""The token rotation of docs/deploying.md on a live cluster: three
storaged and a router on loopback ports 26100-26199 (SKV_DEPLOY_PORT_BASE
moves them), a client writing
and reading through the router the whole time.

 1. nodes on the old token, the router sending it;
 2. each node restarted in turn with --token-file OLD --token-file NEW;
 3. the router's simplekv_token_file pointed at NEW, nginx reloaded;
 4. each node restarted in turn with NEW only.

No client request may fail, every write must read back, and at the end
the old token opens nothing."""

import http.client
import itertools
import os
import threading
import time

from router import Router
from skvproc import Storaged

PORTS = itertools.count(int(os.environ.get("SKV_DEPLOY_PORT_BASE",
                                          "26100")))


class Load(threading.Thread):
    """PUT then GET of fresh keys through the router until stopped;
    counts the requests and keeps the failures."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.stop_flag = threading.Event()
        self.done = 0
        self.failures = []
        self.written = {}

    def request(self, conn, method, path, body=None):
        conn.request(method, path, body=body)
        r = conn.getresponse()
        return r.status, r.read()

    def run(self):
        conn = None
        for i in itertools.count():
            if self.stop_flag.is_set():
                break
            key, value = "/rot-%d" % i, ("v%d" % i).encode()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                                      timeout=10)
                put = self.request(conn, "PUT", key, value)
                get = self.request(conn, "GET", key)
                if put[0] != 201 or get != (200, value):
                    self.failures.append((key, put, get))
                else:
                    self.written[key] = value
            except (OSError, http.client.HTTPException) as e:
                # a connection the router closed between requests (a
                # reload retires its workers) is retried, not a failure
                if conn is not None:
                    conn.close()
                conn = None
                if not isinstance(e, (http.client.RemoteDisconnected,
                                      ConnectionResetError,
                                      BrokenPipeError)):
                    self.failures.append((key, repr(e)))
            self.done += 1
        if conn is not None:
            conn.close()


def write_token(path, text):
    with open(path, "w") as f:
        f.write(text + "\n")
    return path


def status_with(node, token):
    conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=10)
    try:
        conn.request("GET", "/v1/health",
                     headers={"Authorization": "Bearer " + token})
        return conn.getresponse().status
    finally:
        conn.close()


def restart(node, token_files, health_token):
    node.stop()
    node.extra_args = [x for f in token_files for x in ("--token-file", f)]
    node.token = health_token
    node.start()


def test_rotation_without_downtime(tmp_path):
    old = write_token(str(tmp_path / "token"), "old-0123456789abcdef")
    new = write_token(str(tmp_path / "token.next"), "new-fedcba9876543210")
    nodes = {name: Storaged(next(PORTS), str(tmp_path / name / "data"),
                            extra_args=["--token-file", old],
                            token="old-0123456789abcdef")
             for name in "abc"}
    router = Router(next(PORTS), [(n, s.port) for n, s in nodes.items()],
                    prefix=str(tmp_path / "router"), token_file=old,
                    workers=2,
                    # what is tested is authorization, not latency: a
                    # loaded machine must not turn a slow answer into a
                    # failed request
                    replica_timeout="5s")
    load = None
    try:
        for s in nodes.values():
            s.start()
        router.start()
        load = Load(router.port)
        load.start()
        time.sleep(1)

        # 2. every node accepts both tokens
        for s in nodes.values():
            restart(s, [old, new], "new-fedcba9876543210")
            time.sleep(0.5)
            assert status_with(s, "old-0123456789abcdef") == 200
        # 3. the routers send the new one
        router.token_file = new
        router.reload()
        time.sleep(2)
        # 4. the nodes accept the new one only
        for s in nodes.values():
            restart(s, [new], "new-fedcba9876543210")
            time.sleep(0.5)
        time.sleep(1)
        load.stop_flag.set()
        load.join(30)
        assert not load.is_alive()
        assert load.failures == [], load.failures[:10]
        assert load.done > 100, load.done
        # the old token opens nothing now; the new one does
        for s in nodes.values():
            assert status_with(s, "old-0123456789abcdef") == 401
            assert status_with(s, "new-fedcba9876543210") == 200
        # every acknowledged write reads back
        conn = http.client.HTTPConnection("127.0.0.1", router.port,
                                          timeout=10)
        for key, value in list(load.written.items())[::10]:
            conn.request("GET", key)
            r = conn.getresponse()
            assert (r.status, r.read()) == (200, value), key
        conn.close()
        assert router.crashes() == []
    finally:
        if load is not None:
            load.stop_flag.set()
            load.join(30)
        router.stop()
        for s in nodes.values():
            s.stop()
