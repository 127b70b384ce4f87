#!/bin/sh
# util/run-cluster.sh - start or stop a local simplekv cluster: three storaged
# nodes (127.0.0.1:7001-7003) and nginx with ngx_simplekv_module
# (127.0.0.1:8080), all under run/ (generated config, logs, pid files,
# data).  Used by `make run` and `make stop`; never touches /etc/nginx.
#
# The nodes accept only requests carrying the token in run/token (32
# random bytes, hex; made on the first start, mode 0600, kept across
# restarts), which nginx sends on every replica request: no other local
# process can write to a node.  Clients of the router (curl, skv) need
# no token.
#
#   util/run-cluster.sh start    start whatever is not running
#   util/run-cluster.sh stop     stop everything that is
#   util/run-cluster.sh status   say what runs
set -eu

TOP=$(cd "$(dirname "$0")/.." && pwd)
RUN=$TOP/run
NGINX=${NGINX:-/usr/sbin/nginx}
STORAGED=$TOP/build/storaged
MODULE=$TOP/build/ngx_http_simplekv_module.so
NODES="a:7001 b:7002 c:7003"
ROUTER_PORT=8080
TOKEN_FILE=$RUN/token

# pid file -> is that process alive and is it what we started?
alive() {
    [ -f "$1" ] || return 1
    pid=$(cat "$1" 2>/dev/null) || return 1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    grep -q "$2" "/proc/$pid/cmdline" 2>/dev/null
}

# the token, made once: 32 bytes from /dev/urandom as 64 hex digits,
# readable by this user only; a new file is linked into place, so two
# starts at once cannot end with two tokens
make_token() {
    [ -s "$TOKEN_FILE" ] && return 0
    tmp=$TOKEN_FILE.new.$$
    (umask 077 && head -c 32 /dev/urandom | od -An -v -tx1 | tr -d ' \n' \
        >"$tmp")
    ln "$tmp" "$TOKEN_FILE" 2>/dev/null || true
    rm -f "$tmp"
    if [ ! -s "$TOKEN_FILE" ]; then
        echo "could not create $TOKEN_FILE" >&2
        exit 1
    fi
}

# curl's options for URL, with the token for storaged when $2 is
# "token" (read by curl from stdin, so it never shows in a process list)
curl_config() {
    printf 'url = "%s"\n' "$1"
    if [ "${2:-}" = token ]; then
        printf 'header = "Authorization: Bearer %s"\n' "$(cat "$TOKEN_FILE")"
    fi
}

# wait until URL answers 200 (bounded: 10 s); $2 as for curl_config
wait_up() {
    i=0
    while [ $i -lt 100 ]; do
        if curl_config "$1" "${2:-}" |
           curl -K - -s -o /dev/null -f --max-time 1; then
            return 0
        fi
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

start() {
    mkdir -p "$RUN/conf" "$RUN/logs" "$RUN/tmp" "$RUN/data"
    make_token

    for node in $NODES; do
        name=${node%%:*}
        port=${node#*:}
        pidf=$RUN/logs/storaged-$name.pid

        if alive "$pidf" storaged; then
            echo "storaged $name already running on 127.0.0.1:$port"
            continue
        fi

        mkdir -p "$RUN/data/$name"
        setsid "$STORAGED" --listen "127.0.0.1:$port" \
            --data "$RUN/data/$name" --token-file "$TOKEN_FILE" \
            >>"$RUN/logs/storaged-$name.log" 2>&1 </dev/null &
        echo $! >"$pidf"

        if ! wait_up "http://127.0.0.1:$port/v1/health" token; then
            echo "storaged $name did not come up on 127.0.0.1:$port;" \
                 "see $RUN/logs/storaged-$name.log" >&2
            exit 1
        fi
        echo "storaged $name started on 127.0.0.1:$port"
    done

    if alive "$RUN/logs/nginx.pid" nginx; then
        echo "nginx already running on 127.0.0.1:$ROUTER_PORT"
        return 0
    fi

    # the example configuration with this checkout's paths
    sed -e "s|@MODULE@|$MODULE|g" -e "s|@PREFIX@|$RUN|g" \
        -e "s|@CONF@|$TOP/conf|g" -e "s|@TOKEN_FILE@|$TOKEN_FILE|g" \
        "$TOP/conf/nginx.conf" >"$RUN/conf/nginx.conf"

    "$NGINX" -p "$RUN" -c "$RUN/conf/nginx.conf" -t -q
    "$NGINX" -p "$RUN" -c "$RUN/conf/nginx.conf"

    if ! wait_up "http://127.0.0.1:$ROUTER_PORT/_simplekv/status"; then
        echo "nginx did not come up; see $RUN/logs/error.log" >&2
        exit 1
    fi
    echo "nginx router started on http://127.0.0.1:$ROUTER_PORT"
}

# SIGTERM/SIGQUIT, then wait (bounded: 15 s) for the process to go
stop_one() {
    pidf=$1 what=$2 sig=$3
    if alive "$pidf" "$what"; then
        pid=$(cat "$pidf")
        kill "-$sig" "$pid"
        i=0
        while kill -0 "$pid" 2>/dev/null && [ $i -lt 150 ]; do
            sleep 0.1
            i=$((i + 1))
        done
        if kill -0 "$pid" 2>/dev/null; then
            echo "$what ($pid) did not stop in 15 s; killing it" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
        echo "stopped $(basename "$pidf" .pid)"
    fi
    rm -f "$pidf"
}

stop() {
    stop_one "$RUN/logs/nginx.pid" nginx QUIT
    for node in $NODES; do
        stop_one "$RUN/logs/storaged-${node%%:*}.pid" storaged TERM
    done
}

status() {
    for node in $NODES; do
        name=${node%%:*}
        if alive "$RUN/logs/storaged-$name.pid" storaged; then
            echo "storaged $name: running (127.0.0.1:${node#*:})"
        else
            echo "storaged $name: stopped"
        fi
    done
    if alive "$RUN/logs/nginx.pid" nginx; then
        echo "nginx: running (127.0.0.1:$ROUTER_PORT)"
    else
        echo "nginx: stopped"
    fi
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
