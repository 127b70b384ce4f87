#!/bin/sh
# tests/fuzz/run.sh SECONDS JOBS OUTDIR FUZZER...
#
# Runs each libFuzzer binary for SECONDS, JOBS of them at once, from its
# seed corpus tests/fuzz/corpus/<target>/ (read only) and a scratch corpus
# OUTDIR/scratch/<target>/ (new inputs go there).  Leak detection is on;
# a crash, leak, timeout, sanitizer report or failed invariant exits 77
# and leaves the input in OUTDIR/crashes/<target>/.  Prints one line per
# target (executions, executions per second, corpus growth) and, for a
# failure, the end of its log (OUTDIR/logs/<target>.log).  Exit status 1
# if any target failed.
#
# Internal: run.sh --one SECONDS OUTDIR FUZZER runs one target.
set -u

if [ "${1:-}" = --one ]; then
    seconds=$2 out=$3 bin=$4
    name=$(basename "$bin")
    name=${name#fuzz_}
    seeds=tests/fuzz/corpus/$name
    mkdir -p "$out/scratch/$name" "$out/crashes/$name" "$out/logs"
    [ -d "$seeds" ] || seeds=
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$bin" -max_total_time="$seconds" -error_exitcode=77 -detect_leaks=1 \
        -timeout=20 -rss_limit_mb=2048 -max_len=8192 -print_final_stats=1 \
        -artifact_prefix="$out/crashes/$name/" \
        "$out/scratch/$name" ${seeds:+"$seeds"} >"$out/logs/$name.log" 2>&1
    rc=$?
    echo "$rc" >"$out/logs/$name.rc"
    exit 0
fi

if [ $# -lt 4 ]; then
    echo "usage: $0 SECONDS JOBS OUTDIR FUZZER..." >&2
    exit 2
fi
seconds=$1 jobs=$2 out=$3
shift 3

echo "fuzz: $# targets, ${seconds}s each, $jobs at a time"
for bin in "$@"; do
    name=$(basename "$bin")
    rm -f "$out/logs/${name#fuzz_}.rc"
done
printf '%s\n' "$@" | xargs -P "$jobs" -I{} "$0" --one "$seconds" "$out" {}

stat() {
    sed -n "s/^stat::$1: *//p" "$2" | tail -n 1
}

failed=0
for bin in "$@"; do
    name=$(basename "$bin")
    name=${name#fuzz_}
    log=$out/logs/$name.log
    rc=$(cat "$out/logs/$name.rc" 2>/dev/null || echo missing)
    seeds=$(find "tests/fuzz/corpus/$name" -type f 2>/dev/null | wc -l)
    found=$(find "$out/scratch/$name" -type f | wc -l)
    printf '%-8s %12s execs %8s/s  seeds %3d  corpus %5d  cov %s  %s\n' \
        "$name" "$(stat number_of_executed_units "$log")" \
        "$(stat average_exec_per_sec "$log")" "$seeds" "$found" \
        "$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)" \
        "$([ "$rc" = 0 ] && echo ok || echo "FAILED (exit $rc)")"
    if [ "$rc" != 0 ]; then
        failed=1
        echo "---- $log (end, without progress lines)"
        grep -v -E '^#[0-9]+[[:space:]]' "$log" | tail -n 50
        for crash in "$out/crashes/$name"/*; do
            [ -f "$crash" ] || continue
            echo "---- reproduce: $bin $crash"
        done
    fi
done
exit $failed
