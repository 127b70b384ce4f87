#!/bin/sh
# resolve-watch.sh TEMPLATE CONF COMMAND [ARG...] - run nginx (COMMAND, in
# the foreground, reading CONF) with the storage nodes' current addresses.
#
# nginx resolves the host names of its upstream{} servers only when it
# reads its configuration, and fails to read it at all when one name does
# not resolve.  On a compose network a stopped container's name does not
# resolve, and a container that starts again may come back at another
# address (podman gives it a new one).  With the names in nginx.conf, the
# router would keep sending a restarted node's requests to its old address
# (timeouts, 504), and could not reload while another node is down.
#
# So CONF is TEMPLATE with each "upstream X { server NAME:PORT; ..." line's
# NAME replaced by NAME's last known address.  Every SKV_RESOLVE_INTERVAL
# seconds (default 2) the names are looked up again; a name that does not
# resolve keeps its last address (its node is down: requests to it fail
# as they would anyway).  When CONF changes, nginx's master gets SIGHUP (a
# graceful reload).  At start it waits up to SKV_RESOLVE_WAIT seconds
# (default 60) for every name to resolve once.
#
# SIGQUIT, SIGTERM, SIGINT and SIGHUP are passed on to nginx; the script
# exits with nginx's status once nginx has exited.
set -u

if [ $# -lt 3 ]; then
    echo "usage: $0 TEMPLATE CONF COMMAND [ARG...]" >&2
    exit 2
fi
template=$1 conf=$2
shift 2
interval=${SKV_RESOLVE_INTERVAL:-2}
names=$(sed -n 's/^[^#]*upstream [^{]*{ *server \([A-Za-z][A-Za-z0-9_.-]*\):[0-9]*;.*/\1/p' \
        "$template" | sort -u)
known=""   # "name=address" words

address_of() {   # the last known address of $1
    for pair in $known; do
        [ "${pair%%=*}" = "$1" ] && { echo "${pair#*=}"; return; }
    done
}

# Look every name up; keep the last address of those that do not resolve.
# Prints the names still without an address.
refresh() {
    next="" missing=""
    for n in $names; do
        a=$(getent hosts "$n" | awk '{ print $1; exit }')
        [ -n "$a" ] || a=$(address_of "$n")
        if [ -n "$a" ]; then next="$next $n=$a"; else missing="$missing $n"; fi
    done
    known=$next
    echo $missing
}

render() {   # TEMPLATE with the addresses, to $1
    script=""
    for pair in $known; do
        script="$script s/^\([^#]*upstream [^{]*{ *server \)${pair%%=*}:/\1${pair#*=}:/;"
    done
    sed -e "$script" "$template" > "$1"
}

i=0
while missing=$(refresh) && [ -n "$missing" ]; do
    if [ "$i" -ge "$((${SKV_RESOLVE_WAIT:-60} * 10))" ]; then
        echo "resolve-watch: no address for:$missing" >&2
        exit 1
    fi
    sleep 0.1
    i=$((i + 1))
done
render "$conf"

"$@" &
pid=$!
for sig in QUIT TERM INT HUP; do
    trap "kill -$sig $pid 2>/dev/null" $sig
done

while kill -0 "$pid" 2>/dev/null; do
    sleep "$interval" &
    wait $! 2>/dev/null
    kill -0 "$pid" 2>/dev/null || break
    refresh > /dev/null
    render "$conf.new"
    if cmp -s "$conf.new" "$conf"; then
        rm -f "$conf.new"
    else
        mv "$conf.new" "$conf"
        echo "resolve-watch: reloading nginx with node addresses:$known" >&2
        kill -HUP "$pid" 2>/dev/null
    fi
done
# nginx is gone (or going): its exit status is ours
wait "$pid"
