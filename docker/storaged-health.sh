#!/bin/sh
# storaged-health.sh [PORT] - the storage container's health check:
# GET /v1/health on 127.0.0.1:PORT (default 7001) with the cluster's token
# (storaged requires it on every request), which curl reads from stdin so
# that it never shows in a process list.  Exit 0 when healthy.
set -eu
printf 'header = "Authorization: Bearer %s"\n' \
    "$(cat "${SKV_TOKEN_FILE:-/var/lib/simplekv-token/token}")" |
    curl -K - -fsS -o /dev/null --max-time 2 \
        "http://127.0.0.1:${1:-7001}/v1/health"
