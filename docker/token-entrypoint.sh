#!/bin/sh
# token-entrypoint.sh create|wait FILE COMMAND [ARG...]
#
# The entrypoint of both images: makes sure the cluster's shared token
# exists in FILE, then runs COMMAND.  The compose file mounts one volume
# (token) at FILE's directory in the router and in every storaged, so all
# of them read the same token: storaged requires it (--token-file), the
# router sends it (simplekv_token_file).  Nothing outside the compose
# network needs it; clients of the router need no token.
#
#   create   (storaged) if FILE is missing or empty, write 32 random bytes
#            from /dev/urandom as 64 hex digits, readable by this user
#            only.  The new file is linked into place, which fails if
#            another node got there first, so the nodes starting at once
#            end up with one token.
#   wait     (router) wait up to SKV_TOKEN_WAIT seconds (default 60) for
#            FILE: the router starts after the nodes are healthy, so it is
#            normally there already.
#
# To replace the token: docker compose down, docker volume rm
# simplekv_token, docker compose up.
set -eu

if [ $# -lt 3 ]; then
    echo "usage: $0 create|wait FILE COMMAND [ARG...]" >&2
    exit 2
fi
mode=$1 file=$2
shift 2

case "$mode" in
create)
    if [ ! -s "$file" ]; then
        tmp=$file.new.$$
        (umask 077 && head -c 32 /dev/urandom | od -An -v -tx1 |
            tr -d ' \n' >"$tmp")
        ln "$tmp" "$file" 2>/dev/null || true
        rm -f "$tmp"
    fi
    ;;
wait)
    i=0
    limit=$((${SKV_TOKEN_WAIT:-60} * 10))
    while [ ! -s "$file" ] && [ $i -lt $limit ]; do
        sleep 0.1
        i=$((i + 1))
    done
    ;;
*)
    echo "$0: unknown mode '$mode' (create or wait)" >&2
    exit 2
    ;;
esac

if [ ! -s "$file" ]; then
    echo "$0: no token in $file" >&2
    exit 1
fi
exec "$@"
