"""Checks of docker/ that need no Docker engine (none runs on the build
machine): the compose file's structure and its agreement with the router
configuration generated from conf/nginx.conf, the Dockerfiles' inputs, and
a live run of the very configuration and storaged arguments the containers
use (with the shared token, as the entrypoint passes it), on loopback ports
21030-21033 (SKV_DOCKER_PORT_BASE moves them) instead of the compose
network, and the token entrypoint itself.  `docker-compose config` runs
too when that client is installed."""

import os
import re
import shutil
import subprocess
import sys
import tempfile

import pytest
import requests
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.abspath(os.path.join(HERE, os.pardir, os.pardir))
DOCKER = os.path.join(TOP, "docker")
sys.path.insert(0, os.path.join(TOP, "tests", "lib"))

from skvproc import Storaged  # noqa: E402

SKV = os.environ.get("SKV_CLI") or os.path.join(TOP, "build", "skv")
MODULE = os.path.join(TOP, "build", "ngx_http_simplekv_module.so")
NGINX = "/usr/sbin/nginx"
ROUTER_PORT = int(os.environ.get("SKV_DOCKER_PORT_BASE", "21030"))
NODE_PORTS = {"a": ROUTER_PORT + 1, "b": ROUTER_PORT + 2, "c": ROUTER_PORT + 3}
TOKEN_DIR = "/var/lib/simplekv-token"
TOKEN_FILE = TOKEN_DIR + "/token"
ENTRYPOINT = os.path.join(DOCKER, "token-entrypoint.sh")


@pytest.fixture(scope="module")
def compose():
    with open(os.path.join(DOCKER, "docker-compose.yml")) as f:
        return yaml.safe_load(f)


def generate_conf(node_port=None, prefix="/var/lib/simplekv-router",
                  confdir="/etc/nginx/simplekv", module="/m.so",
                  token_file=None):
    args = [os.path.join(DOCKER, "router-conf.sh"),
            os.path.join(TOP, "conf", "nginx.conf"), module, prefix,
            confdir]
    if node_port is not None:
        args.append(str(node_port))
    env = dict(os.environ)
    env.pop("TOKEN_FILE", None)
    if token_file is not None:
        env["TOKEN_FILE"] = token_file
    return subprocess.run(args, check=True, stdout=subprocess.PIPE,
                          env=env, timeout=10).stdout.decode()


def dockerfile_instruction(name, instruction):
    """The JSON-array argument of an instruction (CMD, ENTRYPOINT) in
    docker/<name>, as a list."""
    text = open(os.path.join(DOCKER, name)).read().replace("\\\n", " ")
    found = re.search(r"^%s (\[.*?\])" % instruction, text, re.M | re.S)
    assert found, (name, instruction)
    return yaml.safe_load(found.group(1))


def storaged_services(compose):
    return {name: svc for name, svc in compose["services"].items()
            if name.startswith("storaged-")}


def option(args, flag):
    return args[args.index(flag) + 1]


def test_compose_has_one_router_and_three_storaged(compose):
    assert set(compose["services"]) == {"router", "storaged-a", "storaged-b",
                                        "storaged-c"}
    assert set(compose["volumes"]) == {"data-a", "data-b", "data-c",
                                       "token"}


def test_storaged_services(compose):
    for name, svc in storaged_services(compose).items():
        letter = name[-1]
        assert svc["build"]["dockerfile"] == "docker/Dockerfile.storaged"
        assert svc["volumes"] == ["data-%s:/var/lib/simplekv" % letter,
                                  "token:" + TOKEN_DIR]
        cmd = svc["command"]
        assert option(cmd, "--data") == "/var/lib/simplekv"
        host, port = option(cmd, "--listen").rsplit(":", 1)
        assert host == "0.0.0.0"
        # a non-loopback node runs with a token, never --insecure
        assert "--insecure" not in cmd
        test = svc["healthcheck"]["test"]
        assert test == ["CMD", "/usr/local/lib/simplekv/storaged-health.sh",
                        port]
        assert "ports" not in svc  # reachable on the compose network only


def test_router_service(compose):
    router = compose["services"]["router"]
    assert router["build"]["dockerfile"] == "docker/Dockerfile.router"
    # SKV_HTTP_ADDR and SKV_HTTP_PORT choose where it is published
    # (make test-containers: 127.0.0.1:26880); 8080 on all addresses by
    # default
    assert router["ports"] == [
        "${SKV_HTTP_ADDR:-0.0.0.0}:${SKV_HTTP_PORT:-8080}:8080"]
    assert router["volumes"] == ["token:" + TOKEN_DIR]
    assert router["depends_on"] == {
        name: {"condition": "service_healthy"}
        for name in storaged_services(compose)}
    assert "http://127.0.0.1:8080/_simplekv/status" in \
        router["healthcheck"]["test"]


def test_generated_router_conf_matches_compose(compose):
    conf = generate_conf(node_port=7001)
    upstreams = dict(re.findall(
        r"upstream (skv_[a-z]+) \{ server ([^;]+);", conf))
    nodes = dict(re.findall(r"simplekv_node ([a-z]+) (skv_[a-z]+)", conf))
    services = storaged_services(compose)
    assert len(nodes) == len(services) == 3
    for name, upstream in nodes.items():
        host, port = upstreams[upstream].split(":")
        assert host in services, (host, services)
        listen = option(services[host]["command"], "--listen")
        assert listen.endswith(":" + port)
    assert re.search(r"^\s*listen 8080;", conf, re.M)
    # the router sends the token the nodes' entrypoint passes them
    assert re.search(r"^\s*simplekv_token_file %s;" % re.escape(TOKEN_FILE),
                     conf, re.M)
    assert "127.0.0.1" not in conf.split("http {", 1)[1].split(
        "location", 1)[0]
    assert not re.search(r"@[A-Z_]+@", conf)  # no placeholder left


def test_router_conf_generator_refuses_an_unexpected_template(tmp_path):
    bad = tmp_path / "nginx.conf"
    bad.write_text("http { server { listen 80; } }\n")
    res = subprocess.run([os.path.join(DOCKER, "router-conf.sh"), str(bad),
                          "/m.so", "/p", "/c", "7001"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         timeout=10)
    assert res.returncode != 0
    assert b"upstream skv_X" in res.stderr


def dockerfile_copies(path):
    """Source paths of COPY instructions that read the build context."""
    text = open(path).read().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        words = line.split()
        if words[:1] == ["COPY"] and not any(w.startswith("--from")
                                             for w in words):
            out.extend(w for w in words[1:-1])
    return out


@pytest.mark.parametrize("name", ["Dockerfile.router",
                                  "Dockerfile.storaged"])
def test_dockerfile_inputs_exist(name):
    for src in dockerfile_copies(os.path.join(DOCKER, name)):
        if src != ".":
            assert os.path.exists(os.path.join(TOP, src)), src
    assert os.path.exists(os.path.join(DOCKER, name + ".dockerignore"))


def test_storaged_image_cmd_matches_compose(compose):
    args = dockerfile_instruction("Dockerfile.storaged", "CMD")
    for svc in storaged_services(compose).values():
        assert option(svc["command"], "--listen") == option(args, "--listen")
        assert option(svc["command"], "--data") == option(args, "--data")


def test_images_share_the_token_file():
    """storaged's entrypoint makes the token and passes it to storaged; the
    router's waits for the same file, which its nginx.conf names."""
    entry = dockerfile_instruction("Dockerfile.storaged", "ENTRYPOINT")
    assert entry[:3] == ["/usr/local/lib/simplekv/token-entrypoint.sh",
                         "create", TOKEN_FILE]
    assert option(entry, "--token-file") == TOKEN_FILE
    entry = dockerfile_instruction("Dockerfile.router", "ENTRYPOINT")
    assert entry == ["/usr/local/lib/simplekv/token-entrypoint.sh", "wait",
                     TOKEN_FILE]
    assert "simplekv_token_file %s;" % TOKEN_FILE in generate_conf(7001)


def run_entrypoint(*args, env=None, timeout=10):
    return subprocess.run([ENTRYPOINT] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, env=env, timeout=timeout)


def test_token_entrypoint_creates_the_token_once(tmp_path):
    token = tmp_path / "token"
    res = run_entrypoint("create", str(token), "cat", str(token))
    assert res.returncode == 0, res.stderr
    first = token.read_text()
    assert re.fullmatch(r"[0-9a-f]{64}", first), first
    assert res.stdout.decode() == first         # then runs the command
    assert token.stat().st_mode & 0o777 == 0o600
    assert run_entrypoint("create", str(token), "true").returncode == 0
    assert token.read_text() == first           # kept across restarts
    assert os.listdir(tmp_path) == ["token"]    # no temporary left


def test_token_entrypoint_nodes_starting_at_once_share_one_token(tmp_path):
    token = tmp_path / "token"
    procs = [subprocess.Popen([ENTRYPOINT, "create", str(token), "cat",
                               str(token)], stdout=subprocess.PIPE)
             for _ in range(8)]
    seen = {p.communicate(timeout=10)[0] for p in procs}
    assert all(p.returncode == 0 for p in procs)
    assert seen == {token.read_bytes()}


def test_token_entrypoint_waits_for_the_token(tmp_path):
    token = tmp_path / "token"
    env = dict(os.environ, SKV_TOKEN_WAIT="1")
    res = run_entrypoint("wait", str(token), "echo", "started", env=env)
    assert res.returncode == 1 and res.stdout == b""
    assert b"no token" in res.stderr
    waiter = subprocess.Popen([ENTRYPOINT, "wait", str(token), "echo",
                               "started"], stdout=subprocess.PIPE,
                              env=dict(os.environ, SKV_TOKEN_WAIT="20"))
    assert run_entrypoint("create", str(token), "true").returncode == 0
    assert waiter.communicate(timeout=20)[0] == b"started\n"
    assert waiter.returncode == 0


def test_runtime_packages_of_the_real_binaries():
    binaries = [os.path.join(TOP, "build", "storaged"), MODULE, SKV]
    for b in binaries:
        if not os.path.exists(b):
            pytest.skip("%s not built" % b)
    res = subprocess.run([os.path.join(DOCKER, "runtime-packages.sh"),
                          binaries[0]], stdout=subprocess.PIPE, check=True,
                         timeout=30)
    pkgs = res.stdout.decode().split()
    for p in ("libc6", "libdb5.3", "libmicrohttpd12"):
        assert p in pkgs, pkgs
    assert not [p for p in pkgs if p.endswith("-dev")], pkgs
    res = subprocess.run([os.path.join(DOCKER, "runtime-packages.sh"),
                          MODULE, SKV], stdout=subprocess.PIPE, check=True,
                         timeout=30)
    pkgs = res.stdout.decode().split()
    for p in ("libxxhash0", "libcurl4", "libjansson4"):
        assert p in pkgs, pkgs


def build_stage(dockerfile):
    text = open(os.path.join(DOCKER, dockerfile)).read()
    return text.split("\nFROM ", 2)[1]


def shared_build_stage(dockerfile):
    text = open(os.path.join(DOCKER, dockerfile)).read()
    start = text.index("FROM ${DEBIAN_IMAGE} AS build")
    return text[start:text.index("# end of the shared build stage", start)]


def test_images_share_one_build_stage():
    """The build stages are the same text, so a layer cache builds the
    project once for both images (make test-containers relies on it for
    its time)."""
    stage = shared_build_stage("Dockerfile.storaged")
    assert stage == shared_build_stage("Dockerfile.router")
    assert "make -j" in stage and "build/storaged build/skv" in stage


def dev_package_of(lib):
    """The Debian package providing the linker input for -l<lib>."""
    for d in ("/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu",
              "/usr/lib", "/lib"):
        for suffix in (".so", ".a"):
            path = os.path.join(d, "lib%s%s" % (lib, suffix))
            if os.path.exists(path):
                res = subprocess.run(["dpkg-query", "-S", path],
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, timeout=30)
                if res.returncode == 0:
                    return res.stdout.decode().split(":")[0]
    return None


@pytest.mark.parametrize("dockerfile,target", [
    ("Dockerfile.storaged", "build/storaged"),
    ("Dockerfile.router", "build/skv"),
])
def test_build_stage_installs_every_library_the_link_uses(dockerfile,
                                                          target):
    # What the Makefile would link, without building anything.
    res = subprocess.run(["make", "-n", "-B", target], cwd=TOP,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         timeout=60)
    assert res.returncode == 0
    libs = set(re.findall(r"\s-l([A-Za-z0-9_.+-]+)", res.stdout.decode()))
    assert libs, res.stdout
    stage = build_stage(dockerfile)
    for lib in sorted(libs - {"pthread", "dl", "rt"}):
        pkg = dev_package_of(lib)
        assert pkg is not None, "no package provides -l%s here" % lib
        assert re.search(r"\b%s\b" % re.escape(pkg), stage), (
            "%s links -l%s (Debian %s), which the build stage of %s does "
            "not install" % (target, lib, pkg, dockerfile))


def test_docker_compose_config_validates():
    client = shutil.which("docker-compose")
    if client is None:
        pytest.skip("docker-compose (Debian package) not installed")
    res = subprocess.run([client, "config", "-q"], cwd=DOCKER,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         timeout=60)
    assert res.returncode == 0, res.stderr.decode()


def test_container_configuration_serves_requests(compose, tmp_path):
    """The router configuration of the image and the storaged arguments of
    the compose file, run for real with loopback addresses."""
    for b in (MODULE, os.path.join(TOP, "build", "storaged"), SKV):
        if not os.path.exists(b):
            pytest.skip("%s not built" % b)

    # nginx workers run unprivileged: the prefix must be traversable.
    prefix = tempfile.mkdtemp(prefix="skv-docker-check-")
    os.chmod(prefix, 0o755)
    for d in ("logs", "tmp"):
        os.makedirs(os.path.join(prefix, d))
    # the token as the storaged entrypoint makes it
    token_file = str(tmp_path / "token")
    assert run_entrypoint("create", token_file, "true").returncode == 0
    token = open(token_file).read()
    conf = generate_conf(node_port=None, prefix=prefix,
                         confdir=os.path.join(TOP, "conf"), module=MODULE,
                         token_file=token_file)
    # The one address change a container does not need on loopback.
    conf = conf.replace("listen 8080;", "listen 127.0.0.1:%d;" % ROUTER_PORT)
    for letter, port in NODE_PORTS.items():
        conf, n = re.subn(r"(upstream skv_%s \{ server )127\.0\.0\.1:\d+;"
                          % letter, r"\g<1>127.0.0.1:%d;" % port, conf)
        assert n == 1
    conf_path = os.path.join(prefix, "nginx.conf")
    with open(conf_path, "w") as f:
        f.write(conf)

    nodes, nginx = [], None
    try:
        for name, svc in sorted(storaged_services(compose).items()):
            # what the entrypoint runs: storaged --token-file F COMMAND
            args = ["--token-file", token_file] + list(svc["command"])
            args[args.index("--listen") + 1] = "127.0.0.1:%d" % \
                NODE_PORTS[name[-1]]
            data = tmp_path / name / "data"
            args[args.index("--data") + 1] = str(data)
            s = Storaged(NODE_PORTS[name[-1]], data, token=token)
            s.command = lambda a=args, s=s: [s.binary] + a
            s.start()
            nodes.append(s)

        # the nodes' health check passes with the token; without it a
        # node refuses a write
        port = str(NODE_PORTS["a"])
        health = subprocess.run(
            [os.path.join(DOCKER, "storaged-health.sh"), port],
            env=dict(os.environ, SKV_TOKEN_FILE=token_file), timeout=10)
        assert health.returncode == 0
        r = requests.put(nodes[0].url + "/v1/kv/x", data=b"v", timeout=5,
                         headers={"X-Simplekv-Version": "0" * 31 + "1"})
        assert r.status_code == 401, r.status_code

        base = [NGINX, "-e", "stderr", "-p", prefix + "/", "-c", conf_path]
        res = subprocess.run(base + ["-t"], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, timeout=30)
        assert res.returncode == 0, res.stdout.decode()
        nginx = subprocess.Popen(base + ["-g", "daemon off;"],
                                 stdin=subprocess.DEVNULL)
        url = "http://127.0.0.1:%d" % ROUTER_PORT
        for _ in range(200):
            try:
                requests.get(url + "/_simplekv/status", timeout=1)
                break
            except requests.ConnectionError:
                assert nginx.poll() is None, "nginx exited"
                subprocess.run(["sleep", "0.05"])

        env = {k: v for k, v in os.environ.items()
               if "proxy" not in k.lower()}
        run = lambda *a, **kw: subprocess.run(  # noqa: E731
            [SKV, "--url", url] + list(a), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=env, timeout=30, **kw)
        r = run("put", "exampleKey", input=b"hello world")
        assert r.returncode == 0, r.stderr
        r = run("get", "exampleKey")
        assert r.returncode == 0 and r.stdout == b"hello world", r.stderr
        r = run("status")
        assert r.returncode == 0, r.stderr
        rows = [l.split() for l in r.stdout.decode().splitlines()
                if re.match(r"[abc] ", l)]
        assert len(rows) == 3 and all("up" in row for row in rows), r.stdout
    finally:
        if nginx is not None:
            nginx.terminate()
            try:
                nginx.wait(15)
            except subprocess.TimeoutExpired:
                nginx.kill()
                nginx.wait(5)
        for s in nodes:
            s.stop()
        shutil.rmtree(prefix, ignore_errors=True)
