#!/usr/bin/env bash
# util/containers-setup.sh (from the machine's /work/shared/tools, kept in
# the project so that CI on a fresh Debian 12 machine has it; run as root:
# make test-containers and make test-deb call it first)
# containers-setup.sh — make `podman build` and `podman-compose up` work on this
# kind of machine (Debian 12 VM, root, no Docker engine, no container registry
# reachable, cgroup v1/v2 hybrid). Idempotent; takes about 1-2 minutes the
# first time. Afterwards:
#   podman build -f docker/Dockerfile.storaged -t simplekv/storaged:0.1.0 .
#   (cd docker && podman-compose -f docker-compose.yml up -d)   # then curl :8080
#   (cd docker && podman-compose -f docker-compose.yml down -v)
# What it does, and why:
# * installs podman, podman-compose, runc and debootstrap from Debian;
# * runc + cgroupfs instead of crun + systemd: crun refuses hybrid cgroups
#   here and there is no systemd;
# * default ulimits no higher than the machine's hard limits (the defaults
#   ask for more, which the kernel refuses);
# * no registry is reachable, so the base images debian:12 and debian:12-slim
#   are made locally with debootstrap (minbase) and `podman import`, with
#   the registry image's apt sources (updates, security) and policy-rc.d;
# * builds need `--network host` only if the bridge network cannot reach
#   Debian's mirror; podman-compose's default network works for running.
set -euo pipefail
if [[ $(id -u) != 0 ]]; then
  # podman runs rootful here (the tests call it through sudo too)
  exec sudo "$0" "$@"
fi
need=()
for p in podman podman-compose runc debootstrap; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if ((${#need[@]})); then
  # wait for another apt-get (a neighbour's install) rather than fail
  apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 \
    install -y -q "${need[@]}" >/dev/null
fi
nofile=$(ulimit -Hn)
[[ $nofile == unlimited ]] && nofile=1048576
nproc=8192   # the kernel refused the machine's own hard limit here; 8192 is accepted
mkdir -p /etc/containers
cat >/etc/containers/containers.conf <<CONF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
CONF
if ! podman image exists docker.io/library/debian:12; then
  root=$(mktemp -d)
  debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >/dev/null
  # As the registry's debian:12 has them: updates and security sources
  # (debootstrap writes only bookworm main), and a policy-rc.d that keeps
  # packages from starting services inside a build or a container.
  rm -f "$root/etc/apt/sources.list"
  cat >"$root/etc/apt/sources.list.d/debian.sources" <<'SOURCES'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
  chmod 755 "$root/usr/sbin/policy-rc.d"
  tar -C "$root" -c . | podman import - docker.io/library/debian:12 >/dev/null
  rm -rf "$root"
fi
podman image exists docker.io/library/debian:12-slim ||
  podman tag docker.io/library/debian:12 docker.io/library/debian:12-slim
podman run --rm docker.io/library/debian:12 true
echo "containers ready: $(podman --version), base images debian:12 and debian:12-slim"
