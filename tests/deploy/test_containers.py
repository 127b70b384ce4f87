"""make test-containers: docker/ as it ships, run with podman and
podman-compose (util/containers-setup.sh installs them and makes the
debian:12 base images):

 1. both images built from docker/Dockerfile.storaged and .router;
 2. the compose cluster (docker/docker-compose.yml) up, the router
    published on 127.0.0.1:26880 (SKV_CONTAINERS_PORT moves it; compose
    reads SKV_HTTP_ADDR, SKV_HTTP_PORT);
 3. the seed's curl examples (PUT, GET, DELETE of exampleKey);
 4. skv put/get/ls from the host;
 5. storaged-a stopped: reads and writes still succeed;
 6. storaged-a started again, then storaged-b stopped: the cluster still
    answers, so a is serving again;
 7. `down` and `up`: every key still reads, and a's own volume holds what
    was written before it stopped;
 8. `down -v`: containers, network and volumes gone.

Secure defaults, on the same running cluster: one random token shared by
the router and every node, only the router's port published, a node
refuses a request without the token, storaged refuses a non-loopback
address without a token.

Everything is removed at the end, pass or fail (project name skvtest)."""

import os
import re
import shutil
import time
import urllib.error
import urllib.request

import pytest

from conftest import TOP, sh

PROJECT = "skvtest"
ADDR = "127.0.0.1"
PORT = int(os.environ.get("SKV_CONTAINERS_PORT", "26880"))
URL = "http://%s:%d" % (ADDR, PORT)
COMPOSE_FILE = os.path.join(TOP, "docker", "docker-compose.yml")
ENV = {"SKV_HTTP_ADDR": ADDR, "SKV_HTTP_PORT": str(PORT)}
SKV = os.path.join(TOP, "build", "skv")
IMAGES = {"storaged": "simplekv/storaged:0.1.0",
          "router": "simplekv/router:0.1.0"}
NODES = ("storaged-a", "storaged-b", "storaged-c")

pytestmark = pytest.mark.skipif(shutil.which("podman-compose") is None,
                                reason="run util/containers-setup.sh")


def compose(*args, timeout=300, check=True):
    return sh(["podman-compose", "-p", PROJECT, "-f", COMPOSE_FILE]
              + list(args), env=ENV, timeout=timeout, check=check)


def container(service):
    return "%s_%s_1" % (PROJECT, service)


def podman(*args, timeout=120, check=True):
    return sh(["podman"] + list(args), timeout=timeout, check=check)


def remove_everything():
    """down -v, and whatever a half-done run could have left."""
    compose("down", "-v", "-t", "30", timeout=300, check=False)
    ids = podman("ps", "-aq", "--filter",
                 "label=io.podman.compose.project=" + PROJECT,
                 check=False).stdout.split()
    if ids:
        podman("rm", "-f", *ids, check=False)
    for v in podman("volume", "ls", "-q", check=False).stdout.split():
        if v.startswith(PROJECT + "_"):
            podman("volume", "rm", "-f", v, check=False)
    for n in podman("network", "ls", "--format", "{{.Name}}",
                    check=False).stdout.split():
        if n.startswith(PROJECT + "_"):
            podman("network", "rm", "-f", n, check=False)


def leftovers():
    return (podman("ps", "-aq", "--filter",
                   "label=io.podman.compose.project=" + PROJECT).stdout.split()
            + [v for v in podman("volume", "ls", "-q").stdout.split()
               if v.startswith(PROJECT + "_")])


def http(method, path, body=None, headers=None, timeout=10):
    req = urllib.request.Request(URL + path, data=body, method=method,
                                 headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def wait_serving(deadline=120):
    """Until a write and a read through the router succeed."""
    end = time.time() + deadline
    last = None
    while time.time() < end:
        try:
            last = http("PUT", "/_probe", b"p")
            if last[0] == 201 and http("GET", "/_probe") == (200, b"p"):
                return
        except OSError as e:
            last = e
        time.sleep(1)
    raise AssertionError("the router does not serve within %ds: %r\n%s"
                         % (deadline, last, logs()))


def logs():
    out = []
    for s in NODES + ("router",):
        r = podman("logs", "--tail", "15", container(s), check=False)
        out.append("--- %s\n%s%s" % (s, r.stdout, r.stderr))
    return "\n".join(out)


def curl(*args):
    return sh(["curl", "-sS", "--max-time", "10"] + list(args), timeout=30)


def skv(*args, input=None):
    return sh([SKV, "-u", URL] + list(args), timeout=30, input=input)


def node_get(service, key):
    """GET /v1/kv/<key> on one node, from inside its container, with the
    token: what that node's own volume holds."""
    r = podman("exec", container(service), "sh", "-c",
               'printf \'header = "Authorization: Bearer %s"\\n\' '
               '"$(cat /var/lib/simplekv-token/token)" | '
               'curl -K - -s -o /dev/null -w "%{http_code}" '
               'http://127.0.0.1:7001/v1/kv/' + key)
    return r.stdout.strip()


@pytest.fixture(scope="module")
def cluster():
    remove_everything()
    try:
        for kind, tag in IMAGES.items():
            # docker format keeps HEALTHCHECK (OCI images drop it)
            sh(["podman", "build", "--format", "docker", "-f",
                "docker/Dockerfile.%s" % kind, "-t", tag, "."], timeout=1800)
        compose("up", "-d", "--no-build")
        wait_serving()
        yield
    finally:
        remove_everything()
    assert leftovers() == [], "containers or volumes left behind"


def test_secure_defaults(cluster):
    # one token, 64 random hex digits, the same in the router and every node
    tokens = {s: podman("exec", container(s), "cat",
                        "/var/lib/simplekv-token/token").stdout
              for s in NODES + ("router",)}
    assert len(set(tokens.values())) == 1, tokens
    token = tokens["router"]
    assert re.fullmatch(r"[0-9a-f]{64}", token), token
    mode = podman("exec", container("storaged-a"), "stat", "-c", "%a %U",
                  "/var/lib/simplekv-token/token").stdout.split()
    assert mode == ["600", "skv"]
    # the router sends it: simplekv_token_file names that file
    conf = podman("exec", container("router"), "cat",
                  "/etc/nginx/simplekv/nginx.conf").stdout
    assert "simplekv_token_file /var/lib/simplekv-token/token;" in conf
    # only the router publishes a port, on the address asked for
    for s in NODES:
        assert podman("port", container(s)).stdout.strip() == "", s
    assert podman("port", container("router")).stdout.split() == [
        "8080/tcp", "->", "%s:%d" % (ADDR, PORT)]
    # a node refuses requests without the token, even from the network
    for s in NODES:
        code = podman("exec", container("router"), "curl", "-s", "-o",
                      "/dev/null", "-w", "%{http_code}",
                      "http://%s:7001/v1/health" % s).stdout
        assert code == "401", (s, code)
    # storaged refuses a non-loopback address without a token
    r = podman("run", "--rm", "--entrypoint", "/usr/local/bin/storaged",
               IMAGES["storaged"], "--listen", "0.0.0.0:7001", "--data",
               "/tmp/d", check=False)
    assert r.returncode == 2 and "refusing to listen" in r.stderr, r


def test_compose_cluster_life(cluster):
    try:
        cluster_life()
    except AssertionError as e:
        raise AssertionError("%s\n%s" % (e, logs())) from e


def cluster_life():
    # 3. the seed's examples, unchanged but for the port
    r = curl("-i", "-X", "PUT", "-H", "Content-type: text/plain",
             "--data-binary", "hello world", URL + "/exampleKey")
    assert r.stdout.startswith("HTTP/1.1 201"), r.stdout
    assert curl(URL + "/exampleKey").stdout == "hello world"
    assert curl("-o", "/dev/null", "-w", "%{http_code}", "-X", "DELETE",
                URL + "/exampleKey").stdout == "204"
    assert curl("-o", "/dev/null", "-w", "%{http_code}",
                URL + "/exampleKey").stdout == "404"
    r = curl("-i", "-X", "PUT", "-H", "Content-type: text/plain",
             "--data-binary", "hello world", URL + "/exampleKey")
    assert r.stdout.startswith("HTTP/1.1 201"), r.stdout

    # 4. skv from the host
    skv("put", "host/one", input="one")
    skv("-t", "application/json", "put", "host/two", input='{"n": 2}')
    assert skv("get", "host/one").stdout == "one"
    assert skv("ls", "host/").stdout.split() == ["host/one", "host/two"]
    written = {"exampleKey": "hello world", "host/one": "one",
               "host/two": '{"n": 2}'}
    before_stop = set(written)

    # 5. one node stopped: reads and writes go on
    compose("stop", "-t", "30", "storaged-a")
    assert podman("inspect", "-f", "{{.State.Running}}",
                  container("storaged-a")).stdout.strip() == "false"
    for i in range(20):
        key, value = "while-a-down/%d" % i, "v%d" % i
        assert http("PUT", "/" + key, value.encode())[0] == 201, key
        written[key] = value
    for key, value in written.items():
        assert http("GET", "/" + key) == (200, value.encode()), key
    assert skv("ls", "while-a-down/").stdout.count("\n") == 20

    # 6. started again; with b stopped instead, a and c answer every key
    compose("start", "storaged-a")
    wait_serving()
    compose("stop", "-t", "30", "storaged-b")
    deadline = time.time() + 60
    while http("GET", "/exampleKey")[0] != 200 and time.time() < deadline:
        time.sleep(1)  # a may still be starting
    for key, value in written.items():
        assert http("GET", "/" + key) == (200, value.encode()), key
    assert http("PUT", "/while-b-down", b"b")[0] == 201
    written["while-b-down"] = "b"
    compose("start", "storaged-b")
    wait_serving()

    # 7. down (volumes stay), up: every key reads, and a's own volume
    # holds what was written before it stopped
    compose("down", "-t", "30")
    assert podman("ps", "-aq", "--filter",
                  "label=io.podman.compose.project=" + PROJECT).stdout == ""
    volumes = podman("volume", "ls", "-q").stdout.split()
    for v in ("data-a", "data-b", "data-c", "token"):
        assert "%s_%s" % (PROJECT, v) in volumes
    compose("up", "-d", "--no-build")
    wait_serving()
    for key, value in written.items():
        assert http("GET", "/" + key) == (200, value.encode()), key
    for key in before_stop:
        assert node_get("storaged-a", key.replace("/", "%2F")) == "200", key

    # 8. down -v: nothing left
    compose("down", "-v", "-t", "30")
    assert leftovers() == []
