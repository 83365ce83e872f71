#!/usr/bin/env bash
# scripts/demo.sh: jobq's main job on a fresh machine. Installs what is
# missing, builds, then:
#   1-2. `jobq run`: batches of jobs through a pool of forked workers, no broker
#   3. a named shm:// queue served by a separate `jobq worker` pool, fed by
#      `jobq submit --wait`, stopped with sentinels (`jobq stop-workers`)
#   4. the broker: `jobq broker` on an ipc:// socket, two worker pools (one
#      running a built-in, one a shell command per job), a batch submitted with
#      --wait, stats, the sentinel to every worker, their reports, broker stop
#   5. the journal: jobs accepted by a broker with --journal survive a SIGKILL
#      of the broker and run after its restart
# Each step prints its results and the pool's final report.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-deps.sh >/dev/null
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target jobq >/dev/null
JOBQ=$PWD/build/jobq

echo "== 1. jobq run: md5 of 8 words through 2 forked workers, results in input order"
printf '%s\n' alpha beta gamma delta epsilon zeta eta theta |
    "$JOBQ" run --procs 2 --builtin md5 --keep-order 2>&1

echo
echo "== 2. jobq run --exec: a shell command per job; one job fails on purpose (exit 1)"
set +e
printf '%s\n' 3 1 4 1 5 9 2 6 | "$JOBQ" run --procs 2 --keep-order \
    --exec 'read n; [ "$n" != 9 ] || { echo "nine is not welcome" >&2; exit 1; }; echo "$n squared is $((n*n))"' 2>&1
echo "(jobq run exited $? : 1 because one job failed)"
set -e

echo
echo "== 3. a named queue: a worker pool in the background, jobs submitted from another process"
URL="shm://jobq-demo-$$"
"$JOBQ" worker -u "$URL" --procs 2 --builtin upper >"${TMPDIR:-/tmp}/jobq-demo-$$.report" &
WPID=$!
"$JOBQ" submit -u "$URL" --wait "hello from jobq" "jobs go in" "results come back"
"$JOBQ" stop-workers -u "$URL" -n 2
wait "$WPID"
cat "${TMPDIR:-/tmp}/jobq-demo-$$.report"
rm -f "${TMPDIR:-/tmp}/jobq-demo-$$.report"
"$JOBQ" stop-workers -u "$URL" -n 0 --unlink >/dev/null 2>&1 || true

echo
echo "== 4. the broker: two worker pools on two queues, a batch from a producer, results routed back"
D=$(mktemp -d "${TMPDIR:-/tmp}/jobq-demo.XXXXXX")
B="ipc://$D/broker.sock"
"$JOBQ" broker --listen "$B" --ready-file "$D/ready" 2>"$D/broker.log" &
BPID=$!
for _ in $(seq 100); do [ -s "$D/ready" ] && break; sleep 0.05; done
"$JOBQ" worker -u "$B" -q words --procs 2 --builtin upper >"$D/pool1" 2>&1 &
P1=$!
"$JOBQ" worker -u "$B" -q sums --procs 2 --exec 'read a b; echo "$a + $b = $((a+b))"' >"$D/pool2" 2>&1 &
P2=$!
"$JOBQ" submit -u "$B" -q words --wait "the broker" "routes each result" "back to its producer"
"$JOBQ" submit -u "$B" -q sums --wait "1 2" "20 22" "300 400"
"$JOBQ" stats -u "$B" | sed -n '/^QUEUE/,/^$/p'
"$JOBQ" stop-workers -u "$B"
wait "$P1" "$P2"
echo "-- pool reports:"
cat "$D/pool1" "$D/pool2"
kill -TERM "$BPID"
wait "$BPID"
rm -rf "$D"

echo
echo "== 5. the journal: a broker killed with SIGKILL loses no accepted job"
D=$(mktemp -d "${TMPDIR:-/tmp}/jobq-demo.XXXXXX")
B="ipc://$D/broker.sock"
start_broker() {
    rm -f "$D/ready"
    "$JOBQ" broker --listen "$B" --journal "$D/journal" --fsync always --ready-file "$D/ready" \
        2>>"$D/broker.log" &
    BPID=$!
    for _ in $(seq 100); do [ -s "$D/ready" ] && break; sleep 0.05; done
}
start_broker
IDS=$("$JOBQ" submit -u "$B" -q later "kept on disk" "through a crash" "and run after it")
echo "accepted (no worker yet): $(echo $IDS | wc -w) jobs; now kill -9 the broker"
kill -KILL "$BPID"
wait "$BPID" 2>/dev/null || true
start_broker
"$JOBQ" stats -u "$B" | sed -n '/^QUEUE/,/^$/p'
"$JOBQ" worker -u "$B" -q later --procs 1 --builtin upper >"$D/pool" 2>&1 &
P1=$!
# shellcheck disable=SC2086
"$JOBQ" wait -u "$B" --timeout 30 $IDS
"$JOBQ" stop-workers -u "$B"
wait "$P1"
echo "-- pool report:"
cat "$D/pool"
kill -TERM "$BPID"
wait "$BPID"
rm -rf "$D"
