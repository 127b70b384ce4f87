#!/bin/sh
# Install every Debian 12 package simplekv needs to build, test, run and
# benchmark (libssl-dev: storaged's SHA-256, from libcrypto, and nginx).
# Idempotent and quick when everything is present: apt-get runs
# only when dpkg reports a package missing.
set -eu

PACKAGES="
make gcc pkg-config ca-certificates curl procps psmisc
libc6-dev libxxhash-dev libdb5.3-dev libmicrohttpd-dev libcmocka-dev
libcurl4-openssl-dev libjansson-dev libssl-dev
nginx nginx-dev libpcre2-dev zlib1g-dev
perl libwww-perl libtest-base-perl libtext-diff-perl libipc-run-perl
python3 python3-pytest python3-requests python3-yaml
docker-compose
valgrind wrk libfaketime
etcd-server
clang-14 libclang-rt-14-dev
chromium python3-websocket
iproute2 iptables
debhelper devscripts lintian dpkg-dev fakeroot groff-base
"

missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing="$missing $p"
    fi
done

[ -z "$missing" ] && exit 0

SUDO=""
if [ "$(id -u)" != 0 ]; then
    SUDO="sudo"
fi

echo "install-deps: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends $missing
