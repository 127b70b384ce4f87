#!/bin/bash
# deb-in-container.sh - run by test_deb.py inside a clean debian:12
# container, with build/deb mounted at /debs: installs the three packages
# (and their dependencies from Debian), checks what they installed, checks
# the systemd unit, starts three storaged and nginx from their installed
# paths as the unit and the packaged example would, and runs the seed's
# curl examples and skv against them.  Ports 26701-26703 and 26780, inside
# the container's own network namespace.  Every check prints a "CHECK"
# line; the last line is "ALL CHECKS PASSED".
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

check() { echo "CHECK $*"; }
fail() { echo "FAILED: $*" >&2; exit 1; }

apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends \
    /debs/libnginx-mod-http-simplekv_*_*.deb \
    /debs/simplekv-storaged_*_*.deb /debs/simplekv-client_*_*.deb \
    curl systemd man-db >/tmp/apt.log 2>&1 || { tail -30 /tmp/apt.log; exit 1; }

# --- what the packages installed ----------------------------------------
abi=$(dpkg-query -W -f='${Provides}' nginx | tr ',' '\n' | tr -d ' ' \
      | grep '^nginx-abi-')
deps=$(dpkg-query -W -f='${Depends}' libnginx-mod-http-simplekv)
case ", $deps," in *", $abi,"*) ;; *) fail "module depends on '$deps', nginx provides $abi";; esac
check "module depends on $abi, the ABI the installed nginx provides"

link=/etc/nginx/modules-enabled/50-mod-http-simplekv.conf
[ "$(readlink "$link")" = /usr/share/nginx/modules-available/mod-http-simplekv.conf ] \
    || fail "$link"
grep -qx 'load_module modules/ngx_http_simplekv_module.so;' "$link" || fail "load line"
[ -f /usr/lib/nginx/modules/ngx_http_simplekv_module.so ] || fail "module .so"
check "module enabled: $link -> $(readlink "$link")"

IFS=: read -r _ _ uid _ _ home shell < <(getent passwd simplekv)
[ "$uid" -lt 1000 ] && [ "$shell" = /usr/sbin/nologin ] || fail "user simplekv: $uid $shell"
[ "$(stat -c '%U %G %a' /var/lib/simplekv)" = "simplekv simplekv 750" ] || fail "/var/lib/simplekv"
[ "$(stat -c '%U %G %a' /etc/simplekv/token)" = "root simplekv 640" ] || fail "token mode"
grep -Eqx '[0-9a-f]{64}' /etc/simplekv/token || fail "token content"
check "system user simplekv (uid $uid), /var/lib/simplekv 0750, token 0640 root:simplekv"

for f in /usr/sbin/storaged /usr/bin/skv /usr/share/man/man8/storaged.8.gz \
         /usr/share/man/man1/skv.1.gz /etc/default/simplekv-storaged \
         /lib/systemd/system/simplekv-storaged.service \
         /etc/nginx/snippets/simplekv_proxy.conf; do
    [ -e "$f" ] || fail "missing $f"
done
check "binaries, man pages, defaults, unit and nginx snippet installed"

# --- the unit -----------------------------------------------------------
unit=/lib/systemd/system/simplekv-storaged.service
out=$(systemd-analyze verify "$unit" 2>&1) || fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify said: $out"
check "systemd-analyze verify $unit: no complaint (its Documentation= man page included)"
for opt in NoNewPrivileges=yes ProtectSystem=strict User=simplekv \
           StateDirectory=simplekv EnvironmentFile=/etc/default/simplekv-storaged; do
    grep -qx "$opt" "$unit" || fail "unit lacks $opt"
done
exposure=$(systemd-analyze security --offline=true "$unit" 2>/dev/null | tail -1)
level=$(echo "$exposure" | grep -o '[0-9]*\.[0-9]' | head -1)
# 0 (fully locked down) .. 10; storaged's unit measured 1.4 ("OK")
awk -v l="$level" 'BEGIN { exit !(l != "" && l <= 2.0) }' \
    || fail "exposure level '$exposure' above 2.0"
check "systemd-analyze security: $exposure"

# --- storaged, three nodes, started the way the unit starts one -----------
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
for n in 1 2 3; do
    install -d -o simplekv -g simplekv -m 0750 /var/lib/simplekv/node$n
    (
        set -a
        . /etc/default/simplekv-storaged
        STORAGED_LISTEN=127.0.0.1:2670$n
        STORAGED_DATA=/var/lib/simplekv/node$n
        set +a
        eval "exec setpriv --reuid=simplekv --regid=simplekv --init-groups $exec_start"
    ) >/tmp/storaged$n.log 2>&1 &
    echo $! > /tmp/storaged$n.pid
done
token=$(cat /etc/simplekv/token)
for n in 1 2 3; do
    for _ in $(seq 100); do
        curl -fs -o /dev/null -H "Authorization: Bearer $token" \
            http://127.0.0.1:2670$n/v1/health && break
        sleep 0.1
    done
    code=$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:2670$n/v1/health)
    [ "$code" = 401 ] || fail "node $n without the token: $code"
    [ "$(stat -c %U /proc/"$(cat /tmp/storaged$n.pid)")" = simplekv ] || fail "node $n user"
done
cmdline=$(tr '\0' ' ' < /proc/"$(cat /tmp/storaged1.pid)"/cmdline)
case "$cmdline" in *"--token-file /etc/simplekv/token --durability fsync"*) ;; *) fail "node 1 runs: $cmdline";; esac
check "three storaged as user simplekv, the unit's ExecStart with /etc/default ($cmdline), token required"

# --- nginx with the packaged example configuration ----------------------
sed -e 's/127\.0\.0\.1:700\([0-9]\)/127.0.0.1:2670\1/' \
    -e 's/listen 127\.0\.0\.1:8080;/listen 127.0.0.1:26780;/' \
    /usr/share/doc/libnginx-mod-http-simplekv/examples/simplekv.conf \
    > /etc/nginx/conf.d/simplekv.conf
/usr/sbin/nginx -t 2>&1 || fail "nginx -t"
if [ -s /run/nginx.pid ] && kill -0 "$(cat /run/nginx.pid)" 2>/dev/null; then
    /usr/sbin/nginx -s stop
    sleep 1
fi
/usr/sbin/nginx
for _ in $(seq 100); do
    curl -fs -o /dev/null http://127.0.0.1:26780/_simplekv/status && break
    sleep 0.1
done
# (into a file first: grep -q stopping early would make nginx -T die of
# SIGPIPE, and pipefail would count that as a failure)
/usr/sbin/nginx -T > /tmp/nginx-T.txt 2>/dev/null || fail "nginx -T"
grep -q '^load_module modules/ngx_http_simplekv_module.so;' /tmp/nginx-T.txt \
    || fail "nginx -T does not load the module"
check "nginx from /usr/sbin/nginx with the module from modules-enabled"

# --- the seed's examples ----------------------------------------------
base=http://127.0.0.1:26780
r=$(curl -si -X PUT -H 'Content-type: text/plain' --data-binary 'hello world' \
    $base/exampleKey)
case "$r" in "HTTP/1.1 201"*) ;; *) fail "PUT: $r";; esac
[ "$(curl -s $base/exampleKey)" = "hello world" ] || fail "GET"
[ "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE $base/exampleKey)" = 204 ] || fail "DELETE"
[ "$(curl -s -o /dev/null -w '%{http_code}' $base/exampleKey)" = 404 ] || fail "GET after DELETE"
check "seed examples: PUT 201, GET 'hello world', DELETE 204, GET 404"

echo -n 'from skv' | skv -u $base put pkg/one
[ "$(skv -u $base get pkg/one)" = "from skv" ] || fail "skv get"
[ "$(skv -u $base ls pkg/)" = "pkg/one" ] || fail "skv ls"
check "skv put/get/ls through the router"

# --- a clean stop -------------------------------------------------------
/usr/sbin/nginx -s quit
for n in 1 2 3; do
    pid=$(cat /tmp/storaged$n.pid)
    kill -TERM "$pid"
    wait "$pid" || fail "storaged $n exited $?: $(cat /tmp/storaged$n.log)"
done
check "storaged stopped cleanly on SIGTERM"
echo "ALL CHECKS PASSED"
