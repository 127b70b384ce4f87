#!/usr/bin/env bash
# util/test-lanes.sh - runs test suites (make targets) in parallel lanes:
# `make test` calls it with every suite in TEST_TARGETS.
#
#   util/test-lanes.sh test-unit test-storaged ...
#
# The suites are split into TEST_LANES lanes (default 3) by their measured
# times in tests/lanes.conf (longest first, each to the lane with the least
# work so far; suites of one group stay in one lane).  Each lane runs its
# suites one after another, the lanes at once.  Every lane gets port ranges
# and temporary directories of its own (below), so suites in different
# lanes never meet.  Each suite's output goes to TEST_LOG_DIR/<suite>.log
# (default build/test-logs); a line "== <suite>: N s" is printed as each one
# ends.  A failing suite does not stop the others: at the end the tail of
# each failing suite's log is printed and the exit status is 1.
#
#   TEST_LANES=1     one lane: the suites one after another
#   TEST_SKIP="test-partitions test-deb"   leave suites out
#   TEST_PORT_BASE   first port of lane 1 (default 10000); lane k takes the
#                    2500 ports from TEST_PORT_BASE + 2500 (k - 1)
#   TEST_TMP         lanes' temporary directories (default build/test-tmp)
#
# A lane's ports, as offsets from its first port (every suite's variable
# is documented with the suite):
#   +0     SKV_CLUSTER_PORT_BASE    (500)  test-cluster, -valgrind
#   +500   SKV_STORAGED_PORT_BASE   (500)  test-storaged
#   +1000  SKV_CLI_PORT_BASE        (500)  test-cli
#   +1500  SKV_PARTITION_PORT_BASE  (501)  test-partitions
#   +2010  SKV_HOSTILE_PORT_BASE    (200)  test-hostile
#   +2210  SKV_DASHBOARD_PORT_BASE   (10)  test-dashboard
#   +2220  TEST_NGINX_PORT            (3)  test-nginx, -valgrind
#   +2230  SIMPLEKV_T_NODE_PORT       (3)  test-nginx, -valgrind
#   +2240  SKV_DOCKER_PORT_BASE       (4)  test-docker
#   +2250  SKV_DEPLOY_PORT_BASE     (100)  test-deploy
#   +2350  SKV_CONTAINERS_PORT        (1)  test-containers
#   +2400  SKV_LARGE_PORT_BASE      (100)  test-large
# With the default base, three lanes use 10000-17499, below the kernel's
# ephemeral ports (32768 and up); the third lane's block ends in
# test-storaged's default range, so do not run that suite alone meanwhile.
# Three lanes on 2 cores: most suites wait more than they compute (their
# CPU time is about half their wall time), so a third lane fills waits.
set -u
cd "$(dirname "$0")/.."

LANES=${TEST_LANES:-3}
SKIP=" ${TEST_SKIP:-} "
LOGS=${TEST_LOG_DIR:-build/test-logs}
TMP=${TEST_TMP:-build/test-tmp}
case $TMP in /*) ;; *) TMP=$PWD/$TMP;; esac
PORT_BASE=${TEST_PORT_BASE:-10000}
LANE_PORTS=2500
CONF=tests/lanes.conf
MAKE=${MAKE:-make}

case $LANES in ''|*[!0-9]*|0) echo "TEST_LANES: a number >= 1" >&2; exit 2;; esac
if [ $((PORT_BASE + LANES * LANE_PORTS)) -gt 32768 ]; then
    echo "TEST_PORT_BASE + $LANE_PORTS x TEST_LANES must stay below 32768" \
         "(the ephemeral ports)" >&2
    exit 2
fi

# The lanes share the cores: a suite that runs jobs side by side (the
# fuzzers, 30 s each however many run at once) gets its lane's share.
cores=$(nproc)
export FUZZ_JOBS=${FUZZ_JOBS:-$(( cores > LANES ? cores / LANES : 1 ))}

suites=()
for s in "$@"; do
    case $SKIP in
        *" $s "*) echo "== $s: skipped (TEST_SKIP)";;
        *) suites+=("$s");;
    esac
done
[ ${#suites[@]} -gt 0 ] || { echo "test-lanes: no suite to run" >&2; exit 2; }

# "lane suite" for each suite, lanes in the suites' given order
plan=$(printf '%s\n' "${suites[@]}" |
       awk -v lanes="$LANES" -v conf="$CONF" '
    BEGIN {
        while ((getline line < conf) > 0) {
            if (line ~ /^[ \t]*(#|$)/) continue
            split(line, f)
            secs[f[1]] = f[2]; group[f[1]] = f[3]
        }
    }
    {
        order[NR] = $1
        unit = (group[$1] != "") ? "group " group[$1] : $1
        if (!(unit in work)) units[++nunits] = unit
        work[unit] += ($1 in secs) ? secs[$1] : 60
        unit_of[$1] = unit
    }
    END {
        # longest unit first, to the least loaded lane
        for (i = 1; i <= nunits; i++)
            for (j = i + 1; j <= nunits; j++)
                if (work[units[j]] > work[units[i]]) {
                    t = units[i]; units[i] = units[j]; units[j] = t
                }
        for (i = 1; i <= nunits; i++) {
            best = 1
            for (k = 2; k <= lanes; k++) if (load[k] < load[best]) best = k
            load[best] += work[units[i]]; lane_of[units[i]] = best
        }
        for (i = 1; i <= NR; i++) print lane_of[unit_of[order[i]]], order[i]
    }')

mkdir -p "$LOGS"
rm -f "$LOGS"/*.log "$LOGS"/*.result "$LOGS"/*.cpu

# run_lane K SUITE...: the suites one after another, with lane K's ports
run_lane() {
    local k=$1 b=$((PORT_BASE + ($1 - 1) * LANE_PORTS)) s start rc secs cpu
    local TIMEFORMAT='%U %S'
    shift
    # interrupted: no next suite once the running one has stopped
    trap 'exit 130' INT
    export SKV_CLUSTER_PORT_BASE=$b
    export SKV_STORAGED_PORT_BASE=$((b + 500))
    export SKV_CLI_PORT_BASE=$((b + 1000))
    export SKV_PARTITION_PORT_BASE=$((b + 1500))
    export SKV_HOSTILE_PORT_BASE=$((b + 2010))
    export SKV_DASHBOARD_PORT_BASE=$((b + 2210))
    export TEST_NGINX_PORT=$((b + 2220))
    export SIMPLEKV_T_NODE_PORT=$((b + 2230))
    export SKV_DOCKER_PORT_BASE=$((b + 2240))
    export SKV_DEPLOY_PORT_BASE=$((b + 2250))
    export SKV_CONTAINERS_PORT=$((b + 2350))
    export SKV_LARGE_PORT_BASE=$((b + 2400))
    export TEST_NGINX_SERVROOT=$TMP/lane$k/servroot
    export SIMPLEKV_T_DATA_ROOT=$TMP/lane$k/servroot-storaged
    rm -rf "$TMP/lane$k"
    mkdir -p "$TMP/lane$k"
    for s in "$@"; do
        start=$(date +%s)
        # the CPU time of the suite's processes, as far as they are waited
        # for (not the containers podman runs): user and system seconds
        { time $MAKE --no-print-directory "$s" >"$LOGS/$s.log" 2>&1 \
              </dev/null; } 2>"$LOGS/$s.cpu"
        rc=$?
        secs=$(( $(date +%s) - start ))
        cpu=$(awk '{ printf "%d", $1 + $2 }' "$LOGS/$s.cpu")
        echo "$s $k $secs $rc $cpu" >"$LOGS/$s.result"
        if [ $rc = 0 ]; then
            printf '== %s: %d s  (lane %d, cpu %s s, load %s)\n' "$s" \
                "$secs" "$k" "$cpu" "$(cut -d' ' -f1 /proc/loadavg)"
        else
            printf '== %s: FAILED after %d s  (lane %d; %s)\n' "$s" "$secs" \
                "$k" "$LOGS/$s.log"
        fi
    done
}

t0=$(date +%s)
pids=()
set -m    # each lane in a process group of its own, so that it can be stopped
for k in $(seq 1 "$LANES"); do
    lane_suites=$(echo "$plan" | awk -v k="$k" '$1 == k { print $2 }')
    [ -n "$lane_suites" ] || continue
    echo "== lane $k:" $lane_suites
    # shellcheck disable=SC2086
    run_lane "$k" $lane_suites &
    pids+=($!)
done
set +m
# pytest tears its servers down on SIGINT, not on SIGTERM
trap 'for p in "${pids[@]}"; do kill -INT -- -"$p" 2>/dev/null; done' INT TERM
for p in "${pids[@]}"; do
    while kill -0 "$p" 2>/dev/null; do wait "$p"; done
done
trap - INT TERM

failed=()
missing=()
declare -A lane_secs=() lane_cpu=()
for s in "${suites[@]}"; do
    if [ ! -f "$LOGS/$s.result" ]; then missing+=("$s"); continue; fi
    read -r _ k secs rc cpu <"$LOGS/$s.result"
    lane_secs[$k]=$(( ${lane_secs[$k]:-0} + secs ))
    lane_cpu[$k]=$(( ${lane_cpu[$k]:-0} + cpu ))
    [ "$rc" = 0 ] || failed+=("$s")
done
for k in $(printf '%s\n' "${!lane_secs[@]}" | sort -n); do
    echo "== lane $k: ${lane_secs[$k]} s (cpu ${lane_cpu[$k]} s)"
done
echo "== total: $(( $(date +%s) - t0 )) s with $LANES lanes (logs in $LOGS/)"

for s in "${failed[@]}"; do
    echo
    echo "==== $s failed; the end of $LOGS/$s.log:"
    tail -n 40 "$LOGS/$s.log"
done
if [ ${#failed[@]} -gt 0 ] || [ ${#missing[@]} -gt 0 ]; then
    [ ${#missing[@]} -eq 0 ] || echo "== not run (interrupted): ${missing[*]}"
    [ ${#failed[@]} -eq 0 ] || echo "== FAILED: ${failed[*]}"
    exit 1
fi
echo "== all suites passed"
