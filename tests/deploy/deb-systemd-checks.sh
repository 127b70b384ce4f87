#!/bin/bash
# deb-systemd-checks.sh - run by test_deb.py with podman exec in a debian:12
# container booted with systemd (podman --systemd=always), simplekv-storaged
# installed: the unit as systemd really runs it.  Every check prints a
# "CHECK" line; the last line is "ALL CHECKS PASSED".
set -euo pipefail
check() { echo "CHECK $*"; }
fail() { echo "FAILED: $*" >&2; systemctl status simplekv-storaged --no-pager >&2 || true; exit 1; }
unit=simplekv-storaged

# the package enabled it (at image build time, where no systemd runs), so
# systemd started it at boot
for _ in $(seq 100); do
    [ "$(systemctl is-active $unit)" = active ] && break
    sleep 0.1
done
[ "$(systemctl is-enabled $unit)" = enabled ] || fail "not enabled"
[ "$(systemctl is-active $unit)" = active ] || fail "not active"
check "enabled by the package, started at boot"

# /etc/default/simplekv-storaged is what the unit runs: another port
sed -i 's/^STORAGED_LISTEN=.*/STORAGED_LISTEN=127.0.0.1:26701/' \
    /etc/default/simplekv-storaged
systemctl restart $unit

token=$(cat /etc/simplekv/token)
health() {
    curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" \
        http://127.0.0.1:26701/v1/health || true
}
for _ in $(seq 100); do [ "$(health)" = 200 ] && break; sleep 0.1; done
[ "$(health)" = 200 ] || fail "health with the token: $(health)"
code=$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:26701/v1/health)
[ "$code" = 401 ] || fail "health without the token: $code"
check "serves the STORAGED_LISTEN of /etc/default (127.0.0.1:26701), token required"

# the sandbox, as the kernel sees the process
pid=$(systemctl show -p MainPID --value $unit)
[ "$(stat -c %U /proc/$pid)" = simplekv ] || fail "user"
grep -q '^NoNewPrivs:[[:space:]]*1$' /proc/$pid/status || fail "NoNewPrivs"
grep -q '^CapEff:[[:space:]]*0*$' /proc/$pid/status || fail "capabilities"
grep -q '^Seccomp:[[:space:]]*2$' /proc/$pid/status || fail "no system call filter"
root_opts=$(awk '$5 == "/" { print $6 }' /proc/$pid/mountinfo | tail -1)
data_opts=$(awk '$5 == "/var/lib/simplekv" { print $6 }' /proc/$pid/mountinfo | tail -1)
case "$root_opts" in ro,*|ro) ;; *) fail "/ is '$root_opts' for storaged";; esac
case "$data_opts" in rw,*|rw) ;; *) fail "/var/lib/simplekv is '$data_opts'";; esac
check "runs as simplekv, NoNewPrivs, no capabilities, seccomp filter, / read-only, /var/lib/simplekv writable"

# a write, a restart, the value still there; a clean stop
version=$(printf '%012x%04x%016x' $(( $(date +%s%3N) - 1577836800000 )) 1 165)
code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT --data-binary 'kept' \
    -H "Authorization: Bearer $token" -H "X-Simplekv-Version: $version" \
    http://127.0.0.1:26701/v1/kv/exampleKey)
[ "$code" = 201 ] || fail "PUT: $code"
systemctl restart $unit
for _ in $(seq 100); do [ "$(health)" = 200 ] && break; sleep 0.1; done
value=$(curl -s -H "Authorization: Bearer $token" http://127.0.0.1:26701/v1/kv/exampleKey)
[ "$value" = kept ] || fail "after a restart: '$value'"
systemctl stop $unit
[ "$(systemctl show -p Result --value $unit)" = success ] || fail "stop result"
[ "$(systemctl show -p ExecMainStatus --value $unit)" = 0 ] || fail "exit status"
check "a write survives systemctl restart; systemctl stop exits 0"
echo "ALL CHECKS PASSED"
