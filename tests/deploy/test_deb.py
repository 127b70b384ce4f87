"""make test-deb: the three packages of `make deb` installed in a clean
debian:12 container (podman; util/containers-setup.sh makes the image),
checked there by deb-in-container.sh: the nginx ABI dependency, the
module enabled through /etc/nginx/modules-enabled, the system user, data
directory and token, `systemd-analyze verify` of the unit, storaged (as
the unit starts it) and nginx (with the packaged example configuration)
from their installed paths, the seed's curl examples and skv.

Then simplekv-storaged in a container booted with systemd
(deb-systemd-checks.sh): the package starts the unit, and the sandbox is
in force on the running process."""

import glob
import os
import shutil

import pytest

from conftest import TOP, sh

NAME = "skvtest-deb"
DEBS = os.path.join(TOP, "build", "deb")

pytestmark = pytest.mark.skipif(shutil.which("podman") is None,
                                reason="run util/containers-setup.sh")


def test_packages_install_and_serve():
    debs = sorted(os.path.basename(p) for p in
                  glob.glob(os.path.join(DEBS, "*.deb")))
    for pkg in ("libnginx-mod-http-simplekv", "simplekv-storaged",
                "simplekv-client"):
        assert any(d.startswith(pkg + "_") for d in debs), (pkg, debs)
    sh(["podman", "rm", "-f", NAME], check=False)
    try:
        r = sh(["podman", "run", "--name", NAME,
                "-v", "%s:/debs:ro" % DEBS,
                "-v", "%s:/t:ro" % os.path.join(TOP, "tests", "deploy"),
                "docker.io/library/debian:12",
                "bash", "/t/deb-in-container.sh"], timeout=900, check=False)
    finally:
        sh(["podman", "rm", "-f", NAME], check=False)
    out = r.stdout + r.stderr
    print(out)
    assert r.returncode == 0, out[-6000:]
    checks = [l for l in r.stdout.splitlines() if l.startswith("CHECK ")]
    assert len(checks) == 11, checks
    assert r.stdout.rstrip().endswith("ALL CHECKS PASSED")


SYSTEMD_IMAGE = "localhost/skvtest/deb-systemd:latest"
SYSTEMD_CONTAINERFILE = """\
FROM docker.io/library/debian:12
COPY simplekv-storaged_*.deb /tmp/
RUN apt-get update -q \\
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \\
        --no-install-recommends systemd systemd-sysv curl \\
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \\
        --no-install-recommends /tmp/simplekv-storaged_*.deb
"""


def test_unit_under_systemd():
    name = NAME + "-systemd"
    sh(["podman", "rm", "-f", name], check=False)
    try:
        sh(["podman", "build", "--no-cache", "-t", SYSTEMD_IMAGE, "-f", "-",
            DEBS], input=SYSTEMD_CONTAINERFILE, timeout=900)
        sh(["podman", "run", "-d", "--name", name, "--systemd=always",
            "-v", "%s:/t:ro" % os.path.join(TOP, "tests", "deploy"),
            SYSTEMD_IMAGE, "/lib/systemd/systemd"])
        r = sh(["podman", "exec", name, "bash", "/t/deb-systemd-checks.sh"],
               timeout=300, check=False)
        if r.returncode != 0:
            r.stderr += sh(["podman", "logs", name], check=False).stdout
    finally:
        sh(["podman", "rm", "-f", "-t", "5", name], check=False)
        sh(["podman", "rmi", "-f", SYSTEMD_IMAGE], check=False)
    print(r.stdout)
    assert r.returncode == 0, (r.stdout + r.stderr)[-6000:]
    checks = [l for l in r.stdout.splitlines() if l.startswith("CHECK ")]
    assert len(checks) == 4, checks
    assert r.stdout.rstrip().endswith("ALL CHECKS PASSED")
