"""etcd - a 3-member etcd cluster on loopback for the benchmark's etcd
rows, next to simplekv in the same run.

Debian's etcd-server (/usr/bin/etcd, 3.4 in Debian 12), three members in
fresh data directories under the run's temporary directory, default
durability (the WAL is fsynced before a write is acknowledged: no
--unsafe-no-fsync).  Clients talk to it through its v3 JSON gateway
(grpc-gateway, served on the client port): POST /v3/kv/put and
POST /v3/kv/range with base64 keys and values; a range is linearizable
by default (a ReadIndex round to the leader), like a simplekv quorum read.

Ports (in the bench range, loopback only):

  20101-20103   client URLs of members e1, e2, e3 (and the JSON gateway)
  20111-20113   peer URLs

    cluster = EtcdCluster(workdir)
    stack.callback(cluster.stop)
    cluster.start()
    cluster.preload(keys, value)
    url = cluster.leader_url()
"""

import base64
import http.client
import json
import os
import random
import shutil
import subprocess
import threading
import time

ETCD = "/usr/bin/etcd"
CLIENT_PORTS = (20101, 20102, 20103)
PEER_PORTS = (20111, 20112, 20113)
NAMES = ("e1", "e2", "e3")


class EtcdError(RuntimeError):
    pass


def available():
    """None if etcd can run here, else why not (the bench then skips the
    etcd rows and says so)."""
    if not os.access(ETCD, os.X_OK):
        return "%s not found (Debian package etcd-server; make deps)" % ETCD
    return None


def b64(data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    return base64.b64encode(data).decode("ascii")


def _post(port, path, body, timeout=10):
    """POST a JSON body to the gateway of the member on port: (status,
    decoded JSON or None)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", path, body=json.dumps(body),
                     headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        raw = resp.read()
    finally:
        conn.close()
    try:
        return resp.status, json.loads(raw.decode("utf-8")) if raw else {}
    except ValueError:
        return resp.status, None


class EtcdCluster:
    def __init__(self, workdir):
        self.dir = os.path.join(workdir, "etcd")
        # a token of its own per run, so that members of another cluster
        # (a left-over run) could never join this one
        self.token = "skv-bench-%016x" % random.getrandbits(64)
        self.procs = []
        self._logs = []

    @property
    def pids(self):
        return [p.pid for p in self.procs]

    def url(self, i):
        return "http://127.0.0.1:%d" % CLIENT_PORTS[i]

    def command(self, i):
        peers = ",".join("%s=http://127.0.0.1:%d" % (n, p)
                         for n, p in zip(NAMES, PEER_PORTS))
        client = self.url(i)
        peer = "http://127.0.0.1:%d" % PEER_PORTS[i]
        return [ETCD, "--name", NAMES[i],
                "--data-dir", os.path.join(self.dir, NAMES[i], "data"),
                "--listen-client-urls", client,
                "--advertise-client-urls", client,
                "--listen-peer-urls", peer,
                "--initial-advertise-peer-urls", peer,
                "--initial-cluster", peers,
                "--initial-cluster-state", "new",
                "--initial-cluster-token", self.token,
                "--logger", "zap", "--log-level", "warn"]

    def start(self, timeout=30):
        shutil.rmtree(self.dir, ignore_errors=True)
        for i, name in enumerate(NAMES):
            os.makedirs(os.path.join(self.dir, name), exist_ok=True)
            log = open(os.path.join(self.dir, name, "etcd.log"), "wb")
            self._logs.append(log)
            self.procs.append(subprocess.Popen(
                self.command(i), stdin=subprocess.DEVNULL, stdout=log,
                stderr=log))
        deadline = time.monotonic() + timeout
        while True:
            for p in self.procs:
                if p.poll() is not None:
                    raise EtcdError("etcd exited with %s during start-up:\n%s"
                                    % (p.returncode, self.logs_tail()))
            if self.leader_index() is not None and all(
                    self._healthy(i) for i in range(len(NAMES))):
                return self
            if time.monotonic() > deadline:
                raise EtcdError("etcd cluster not ready within %ds:\n%s"
                                % (timeout, self.logs_tail()))
            time.sleep(0.1)

    def _healthy(self, i):
        conn = http.client.HTTPConnection("127.0.0.1", CLIENT_PORTS[i],
                                          timeout=2)
        try:
            conn.request("GET", "/health")
            resp = conn.getresponse()
            body = resp.read()
        except OSError:
            return False
        finally:
            conn.close()
        try:
            return resp.status == 200 and \
                json.loads(body.decode("utf-8")).get("health") == "true"
        except ValueError:
            return False

    def leader_index(self):
        """Index of the member that is leader now (all members must agree),
        or None."""
        leaders = set()
        ids = {}
        for i, port in enumerate(CLIENT_PORTS):
            try:
                status, st = _post(port, "/v3/maintenance/status", {},
                                   timeout=2)
            except OSError:
                return None
            if status != 200 or not st or not st.get("leader"):
                return None
            leaders.add(st["leader"])
            ids[st["header"]["member_id"]] = i
        if len(leaders) != 1:
            return None
        return ids.get(leaders.pop())

    def leader_url(self):
        i = self.leader_index()
        if i is None:
            raise EtcdError("no etcd leader")
        return self.url(i)

    def preload(self, keys, value, threads=8):
        """PUT every key once through the gateway (member e1: followers
        forward to the leader), a few keep-alive connections in parallel;
        every answer must be 200."""
        failures = []
        body_value = b64(value)

        def worker(start):
            conn = http.client.HTTPConnection("127.0.0.1", CLIENT_PORTS[0],
                                              timeout=30)
            try:
                for k in keys[start::threads]:
                    conn.request("POST", "/v3/kv/put",
                                 body=json.dumps({"key": b64(k),
                                                  "value": body_value}),
                                 headers={"Content-Type":
                                          "application/json"})
                    resp = conn.getresponse()
                    raw = resp.read()
                    if resp.status != 200:
                        failures.append("PUT %s: %d %r" % (k, resp.status,
                                                           raw[:200]))
                        return
            except OSError as e:
                failures.append("PUT to etcd: %s" % e)
            finally:
                conn.close()

        pool = [threading.Thread(target=worker, args=(t,))
                for t in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        if failures:
            raise EtcdError("preloading etcd failed: %s" % failures[0])

    def check_get(self, url, key, expect):
        """One range request through url's gateway must find key with the
        value expect."""
        port = int(url.rsplit(":", 1)[1])
        status, body = _post(port, "/v3/kv/range", {"key": b64(key)})
        kvs = (body or {}).get("kvs") or []
        got = base64.b64decode(kvs[0].get("value", "")) if kvs else None
        if status != 200 or got != expect:
            raise EtcdError("etcd range %s at %s: %d, %r (expected %d bytes)"
                            % (key, url, status, body, len(expect)))

    def check_put(self, url, key, value):
        port = int(url.rsplit(":", 1)[1])
        status, body = _post(port, "/v3/kv/put",
                             {"key": b64(key), "value": b64(value)})
        if status != 200 or body is None or "header" not in body:
            raise EtcdError("etcd put %s at %s: %d, %r"
                            % (key, url, status, body))

    def logs_tail(self, n=2000):
        out = []
        for name in NAMES:
            path = os.path.join(self.dir, name, "etcd.log")
            try:
                with open(path, "rb") as f:
                    text = f.read().decode("utf-8", "replace")
            except OSError:
                continue
            out.append("--- %s ---\n%s" % (name, text[-n:]))
        return "\n".join(out)

    def stop(self, timeout=10):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)
        for log in self._logs:
            log.close()
        self._logs = []
        self.procs = []
