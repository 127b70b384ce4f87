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
#   util/run-cluster.sh start            start whatever is not running
#   util/run-cluster.sh stop             stop everything that is
#   util/run-cluster.sh status           say what runs
#   util/run-cluster.sh add NAME PORT    add a storage node (below)
#   util/run-cluster.sh remove NAME      remove one, stopping it at the end
#
# The node set lives in run/nodes ("NAME PORT WEIGHT [PREVIOUS_WEIGHT]" a
# line; a, b, c on 7001-7003 until the first change) and the router's
# configuration epoch in run/epoch, so `make run` and `make stop` keep
# them.  nginx's configuration is generated from conf/nginx.conf with that
# node set (its upstream and simplekv_node lines replaced) and
# `simplekv_epoch`.
#
# add and remove follow docs/membership.md: C0 (epoch E-1) -> the
# transition T (epoch E) -> C1 (epoch E+1).  add: start the new storaged,
# let every node accept epoch E (skv epochs --allow), write T, reload,
# skv rebalance (which waits for the barrier), write C1, reload, skv
# cleanup.  remove: the same with the node leaving (weight=0 in T, gone
# from C1; cleanup empties it), then stop it once it holds 0 keys and
# delete its data.  Both exit 0 only when all of that is done.  A change
# that stopped half-way (run/change says where) resumes when the same
# command is run again; another change is refused until it is finished.
set -eu

TOP=$(cd "$(dirname "$0")/.." && pwd)
RUN=$TOP/run
NGINX=${NGINX:-/usr/sbin/nginx}
STORAGED=$TOP/build/storaged
MODULE=$TOP/build/ngx_http_simplekv_module.so
SKV=$TOP/build/skv
NODES_FILE=$RUN/nodes
EPOCH_FILE=$RUN/epoch
CHANGE_FILE=$RUN/change
# conf/nginx.conf's listen port (another copy of the tree may differ)
ROUTER_PORT=${SKV_ROUTER_PORT:-8080}
ROUTER_URL=http://127.0.0.1:$ROUTER_PORT
TOKEN_FILE=$RUN/token
# how long skv waits for the routers' barrier after a reload (seconds)
BARRIER_WAIT=${BARRIER_WAIT:-120}

# the node set: "NAME PORT WEIGHT [PREVIOUS_WEIGHT]" lines
node_lines() {
    if [ -s "$NODES_FILE" ]; then
        cat "$NODES_FILE"
    else
        printf 'a 7001 1\nb 7002 1\nc 7003 1\n'
    fi
}

epoch() {
    if [ -s "$EPOCH_FILE" ]; then cat "$EPOCH_FILE"; else echo 0; fi
}

# replace FILE with stdin, atomically
write_file() {
    cat >"$1.new.$$"
    mv -f "$1.new.$$" "$1"
}

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

start_node() {
    name=$1 port=$2
    pidf=$RUN/logs/storaged-$name.pid

    if alive "$pidf" storaged; then
        echo "storaged $name already running on 127.0.0.1:$port"
        return 0
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
}

# run/conf/nginx.conf: conf/nginx.conf with this checkout's paths, the
# node set of run/nodes (its upstream and simplekv_node lines replace the
# example's, where its first simplekv_node line was) and run/epoch
gen_conf() {
    node_lines >"$RUN/nodes.now"
    sed -e "s|@MODULE@|$MODULE|g" -e "s|@PREFIX@|$RUN|g" \
        -e "s|@CONF@|$TOP/conf|g" -e "s|@TOKEN_FILE@|$TOKEN_FILE|g" \
        "$TOP/conf/nginx.conf" |
    awk -v nodes="$RUN/nodes.now" -v epoch="$(epoch)" '
        /^[ \t]*upstream[ \t]+skv_[^ \t]+[ \t]*\{.*\}[ \t]*$/ { next }
        /^[ \t]*simplekv_epoch[ \t]/ { next }
        /^[ \t]*simplekv_node[ \t]/ {
            if (done++) next
            while ((getline line < nodes) > 0) {
                split(line, f, " ")
                printf "    upstream skv_%s { server 127.0.0.1:%s; " \
                       "keepalive 32; }\n", f[1], f[2]
                n[++count] = line
            }
            for (i = 1; i <= count; i++) {
                split(n[i], f, " ")
                printf "    simplekv_node %s skv_%s weight=%s%s;\n", f[1],
                       f[1], f[3], (f[4] != "" ? " previous_weight=" f[4] : "")
            }
            printf "    simplekv_epoch %s;\n", epoch
            next
        }
        { print }' | write_file "$RUN/conf/nginx.conf"
    rm -f "$RUN/nodes.now"
}

start() {
    mkdir -p "$RUN/conf" "$RUN/logs" "$RUN/tmp" "$RUN/data"
    make_token

    node_lines >"$RUN/nodes.now"
    while read -r name port _; do
        start_node "$name" "$port"
    done <"$RUN/nodes.now"
    rm -f "$RUN/nodes.now"

    if alive "$RUN/logs/nginx.pid" nginx; then
        echo "nginx already running on 127.0.0.1:$ROUTER_PORT"
        return 0
    fi

    gen_conf
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
    # every node we started, in the node set or not (one being removed)
    for pidf in "$RUN"/logs/storaged-*.pid; do
        [ -e "$pidf" ] || continue
        stop_one "$pidf" storaged TERM
    done
}

status() {
    node_lines | while read -r name port weight prev; do
        if alive "$RUN/logs/storaged-$name.pid" storaged; then
            echo "storaged $name: running (127.0.0.1:$port, weight" \
                 "$weight${prev:+, previous weight $prev})"
        else
            echo "storaged $name: stopped"
        fi
    done
    if [ -s "$CHANGE_FILE" ]; then
        echo "unfinished change: $(cat "$CHANGE_FILE")"
    fi
    if alive "$RUN/logs/nginx.pid" nginx; then
        echo "nginx: running (127.0.0.1:$ROUTER_PORT)"
    else
        echo "nginx: stopped"
    fi
}

# --- membership changes (docs/membership.md, docs/cli.md)

die() {
    echo "run-cluster: $*" >&2
    exit 1
}

reload() {
    gen_conf
    "$NGINX" -p "$RUN" -c "$RUN/conf/nginx.conf" -t -q ||
        die "nginx -t refused the new configuration ($RUN/conf/nginx.conf)"
    "$NGINX" -p "$RUN" -c "$RUN/conf/nginx.conf" -s reload
    echo "nginx reloaded: epoch $(epoch)"
}

# the node set with NAME's line replaced by $2 (deleted when empty)
set_node() {
    node_lines | awk -v name="$1" -v line="$2" '
        $1 == name { if (line != "") print line; found = 1; next }
        { print }
        END { if (!found && line != "") print line }' |
        write_file "$NODES_FILE"
}

node_field() {
    node_lines | awk -v name="$1" -v f="$2" '$1 == name { print $f }'
}

skv_maint() {
    "$SKV" "$@" --router "$ROUTER_URL" --token-file "$TOKEN_FILE"
}

# the three steps of a change: $1 add|remove, $2 name, $3 port
change_transition() {
    e=$(($(epoch) + 1))
    # every node (the joining one included) accepts epoch E before any
    # router loads T; the rebalance then fences everything else out
    extra=
    [ "$1" = add ] && extra="--extra-node $2=127.0.0.1:$3"
    # shellcheck disable=SC2086
    skv_maint epochs --allow "$e" $extra >/dev/null ||
        die "could not open epoch $e on the nodes"
    if [ "$1" = add ]; then
        set_node "$2" "$2 $3 1 0"
    else
        set_node "$2" "$2 $3 0 $(node_field "$2" 3)"
    fi
    echo "$e" | write_file "$EPOCH_FILE"
    echo "$1 $2 $3 transition" | write_file "$CHANGE_FILE"
    reload
}

change_rebalance() {
    skv_maint rebalance --wait "$BARRIER_WAIT" \
        --checkpoint "$RUN/rebalance.checkpoint" ||
        die "skv rebalance did not finish; run '$0 $1 $2${3:+ $3}' again"
    if [ "$1" = add ]; then
        set_node "$2" "$2 $3 1"
    else
        set_node "$2" ""
    fi
    echo "$(($(epoch) + 1))" | write_file "$EPOCH_FILE"
    echo "$1 $2 $3 final" | write_file "$CHANGE_FILE"
    rm -f "$RUN/rebalance.checkpoint"
    reload
}

change_cleanup() {
    extra=
    [ "$1" = remove ] && extra="--extra-node $2=127.0.0.1:$3"
    # shellcheck disable=SC2086
    skv_maint cleanup --wait "$BARRIER_WAIT" $extra \
        --checkpoint "$RUN/cleanup.checkpoint" ||
        die "skv cleanup did not finish; run '$0 $1 $2${3:+ $3}' again"
    rm -f "$RUN/cleanup.checkpoint"
    if [ "$1" = remove ]; then
        # cleanup exits 0 only once the node holds 0 keys
        stop_one "$RUN/logs/storaged-$2.pid" storaged TERM
        rm -rf "${RUN:?}/data/$2"
    fi
    rm -f "$CHANGE_FILE"
    echo "$1 $2: done"
}

# run (or resume) a change
change() {
    alive "$RUN/logs/nginx.pid" nginx ||
        die "the cluster is not running (make run)"
    [ -x "$SKV" ] || die "$SKV is not built (make build/skv)"
    if [ -s "$CHANGE_FILE" ]; then
        read -r op name port phase <"$CHANGE_FILE"
        if [ "$op" != "$1" ] || [ "$name" != "$2" ]; then
            die "an unfinished '$op $name' comes first ($0 $op $name)"
        fi
    else
        op=$1 name=$2 port=$3 phase=start
    fi
    if [ "$phase" = start ]; then
        change_transition "$op" "$name" "$port"
        phase=transition
    fi
    if [ "$phase" = transition ]; then
        change_rebalance "$op" "$name" "$port"
    fi
    change_cleanup "$op" "$name" "$port"
}

add() {
    name=$1 port=$2
    case $name in *[!a-zA-Z0-9_-]* | "") die "bad node name '$name'" ;; esac
    case $port in *[!0-9]* | "") die "bad port '$port'" ;; esac
    if [ ! -s "$CHANGE_FILE" ]; then
        [ -z "$(node_field "$name" 1)" ] ||
            die "node $name is in the cluster already"
        node_lines | awk -v p="$port" '$2 == p { exit 1 }' ||
            die "port $port is taken by another node"
        node_lines | write_file "$NODES_FILE"
        make_token
        start_node "$name" "$port"
    fi
    change add "$name" "$port"
}

remove() {
    name=$1
    port=$(node_field "$name" 2)
    if [ ! -s "$CHANGE_FILE" ]; then
        [ -n "$port" ] || die "node $name is not in the cluster"
        node_lines | write_file "$NODES_FILE"
    else
        read -r _ _ port _ <"$CHANGE_FILE"
    fi
    change remove "$name" "$port"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    add) [ $# -eq 3 ] || { echo "usage: $0 add NAME PORT" >&2; exit 2; }
         add "$2" "$3" ;;
    remove) [ $# -eq 2 ] || { echo "usage: $0 remove NAME" >&2; exit 2; }
            remove "$2" ;;
    *) echo "usage: $0 start|stop|status|add NAME PORT|remove NAME" >&2
       exit 2 ;;
esac
