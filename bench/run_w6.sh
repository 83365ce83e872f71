#!/usr/bin/env bash
# bench/run_w6.sh [JOBQ] [N] [ROUNDS]: workload W6 of PERFORMANCE.md, a command per job.
#
#   jobq run --procs 2 --exec true      over N input lines (default 10,000)
#   xargs -P 2 -n 1 true                over the same lines
#   parallel -j 2 true                  (GNU parallel, when installed)
#
# One interleaved run: ROUNDS rounds (default 5), each running every system on
# N/ROUNDS lines, so that load from elsewhere on a shared machine hits all of
# them alike; only ratios taken inside one run mean something. Per system it
# sums the wall time and the CPU time (user + sys of the whole process tree,
# which the machine's load distorts far less than wall time). Prints a table,
# then one JSON object per system (workload, system, n, seconds, rate,
# per_job_ms, cpu_ms_per_job) and one per ratio jobq / xargs (target <= 1.2).
#
# W6_OPS=1 adds the isolation modes of docs/WORKERS.md on the same lines:
# --fork-per-job --exec true (the same path: a command is a fresh process
# already), and the built-in echo in the long-lived child and with
# --fork-per-job (a fresh child per call).
set -euo pipefail
JOBQ=${1:-build/jobq}
N=${2:-10000}
ROUNDS=${3:-5}
[ -x "$JOBQ" ] || { echo "run_w6.sh: no jobq binary at $JOBQ (give its path)" >&2; exit 2; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/jobq-w6.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
seq 1 $((N / ROUNDS)) >"$TMP/lines"

systems=("xargs -P 2 -n 1 true" "jobq run --procs 2 --exec true")
command -v parallel >/dev/null 2>&1 && systems+=("parallel -j 2 true")
if [ "${W6_OPS:-0}" = 1 ]; then
    systems+=("jobq run --procs 2 --fork-per-job --exec true"
        "jobq run --procs 2 --builtin echo" "jobq run --procs 2 --fork-per-job --builtin echo")
fi

# one SYSTEM: runs it over the round's lines; prints "wall user sys" seconds.
one() {
    local TIMEFORMAT='%R %U %S' t
    case $1 in
        xargs*) t=$({ time xargs -P 2 -n 1 true <"$TMP/lines" >/dev/null 2>"$TMP/err"; } 2>&1) ;;
        jobq*) t=$({ time "$JOBQ" ${1#jobq } <"$TMP/lines" >/dev/null 2>"$TMP/err"; } 2>&1) ;;
        parallel*) t=$({ time parallel -j 2 true <"$TMP/lines" >/dev/null 2>"$TMP/err"; } 2>&1) ;;
    esac || { echo "run_w6.sh: $1 failed:" >&2; tail -5 "$TMP/err" >&2; exit 1; }
    [[ $1 == "jobq run --procs 2 --exec true" ]] && tail -1 "$TMP/err" >"$TMP/report"
    echo "$t"
}

declare -A wall cpu
for s in "${systems[@]}"; do wall[$s]=0; cpu[$s]=0; done
for ((r = 1; r <= ROUNDS; r++)); do
    for s in "${systems[@]}"; do
        read -r w u y <<<"$(one "$s")"
        wall[$s]=$(awk -v a="${wall[$s]}" -v b="$w" 'BEGIN { print a + b }')
        cpu[$s]=$(awk -v a="${cpu[$s]}" -v b="$u" -v c="$y" 'BEGIN { print a + b + c }')
    done
done

n=$(((N / ROUNDS) * ROUNDS))
printf '\nW6, a command per job: %d lines in %d interleaved rounds, 2 at a time (%s, load %s)\n' \
    "$n" "$ROUNDS" "$(date -u +%Y-%m-%dT%H:%MZ)" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-34s %10s %10s %12s %14s\n' system seconds 'jobs/s' 'ms/job' 'CPU ms/job'
for s in "${systems[@]}"; do
    awk -v n="$n" -v w="${wall[$s]}" -v c="${cpu[$s]}" -v name="$s" \
        'BEGIN { printf "%-34s %10.2f %10.0f %12.3f %14.3f\n", name, w, n / w, 1000 * w / n, 1000 * c / n }'
done
j="jobq run --procs 2 --exec true" x="xargs -P 2 -n 1 true"
awk -v a="${wall[$j]}" -v b="${wall[$x]}" -v c="${cpu[$j]}" -v d="${cpu[$x]}" \
    'BEGIN { printf "per-job overhead, jobq / xargs: %.2fx wall, %.2fx CPU (target <= 1.2x)\n", a / b, c / d }'
echo "jobq's pool report (last round): $(cat "$TMP/report")"
for s in "${systems[@]}"; do
    awk -v n="$n" -v w="${wall[$s]}" -v c="${cpu[$s]}" -v name="$s" 'BEGIN {
        printf "{\"workload\":\"W6\",\"system\":\"%s\",\"n\":%d,\"seconds\":%.3f,\"rate\":%.1f,", name, n, w, n / w
        printf "\"per_job_ms\":%.4f,\"cpu_ms_per_job\":%.4f}\n", 1000 * w / n, 1000 * c / n }'
done
awk -v a="${wall[$j]}" -v b="${wall[$x]}" -v c="${cpu[$j]}" -v d="${cpu[$x]}" -v n="$n" 'BEGIN {
    printf "{\"workload\":\"W6\",\"system\":\"ratio jobq/xargs\",\"n\":%d,\"ratio\":%.3f,\"cpu_ratio\":%.3f}\n", n, a / b, c / d }'
