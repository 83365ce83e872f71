#!/usr/bin/env bash
# tests/cli/test_broker_cli.sh JOBQ: the producer and worker commands over a
# real broker, end to end: `jobq broker` on an ipc:// path in a temp dir,
# `jobq worker` pools, `jobq submit` (ids; --wait with results, exit 1 on a
# failed job; --json; --lines), `jobq wait`, `jobq join`, `jobq stats --json`,
# `jobq stop-workers` (each worker reports, the pool exits 0 with its report),
# `jobq submit --at` (Unix and ISO-8601 times; not handed out before), $JOBQ_URL,
# and usage errors (exit 2).
set -u
JOBQ=${1:?usage: test_broker_cli.sh /path/to/jobq}
T=$(mktemp -d "${TMPDIR:-/tmp}/jobq-test-broker-cli.$$.XXXXXX")
URL="ipc://$T/b.sock"
BROKER_PID= WORKER_PID= IDLE_PID= AT_PID=
cleanup() {
    for p in $WORKER_PID $IDLE_PID $AT_PID $BROKER_PID; do
        kill -KILL "$p" 2>/dev/null && wait "$p" 2>/dev/null
    done
    rm -rf "$T"
}
trap cleanup EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL $1"; shift; [ $# -gt 0 ] && printf '%s\n' "$@" | head -20; }
run() { # run NAME -- CMD...: a 30 s bound; sets rc, out, err
    local name=$1; shift 2
    timeout 30 "$@" >"$T/out" 2>"$T/err"; rc=$?
    out=$(cat "$T/out"); err=$(cat "$T/err")
    [ "$rc" -ne 124 ] || bad "$name: timed out"
}
expect() { # expect NAME WANT_RC [PATTERN on stdout+stderr]
    local name=$1 want=$2 pat=${3:-}
    if [ "$rc" -eq "$want" ] && { [ -z "$pat" ] || grep -Eq -- "$pat" <<<"$out$err"; }; then ok
    else bad "$name: rc=$rc (want $want), pattern '$pat'" "stdout: $out" "stderr: $err"; fi
}
wait_gone() { # wait_gone PID SECONDS: 0 once PID has exited (then reaped by wait)
    local i=0
    while kill -0 "$1" 2>/dev/null && [ $i -lt $(($2 * 20)) ]; do sleep 0.05; i=$((i + 1)); done
    ! kill -0 "$1" 2>/dev/null
}

# The broker; --ready-file appears once it accepts connections.
"$JOBQ" broker --listen "$URL" --ready-file "$T/ready" >"$T/broker.out" 2>"$T/broker.err" &
BROKER_PID=$!
i=0
while [ ! -s "$T/ready" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
[ -s "$T/ready" ] && ok || { bad "broker: not ready in 10 s" "$(cat "$T/broker.err")"; exit 1; }

# A handler that upper-cases its payload and fails (exit 3) on "bad".
HANDLER='n=$(cat); [ "$n" = bad ] && exit 3; printf %s "$n" | tr a-z A-Z'
"$JOBQ" worker -u "$URL" -q emails --procs 2 --prefetch 4 --exec "$HANDLER" \
    >"$T/worker.out" 2>"$T/worker.err" &
WORKER_PID=$!

run wait-results -- "$JOBQ" submit -u "$URL" -q emails --wait --timeout 20 hello world
expect wait-results 0
[ "$(sort <<<"$out")" = "$(printf 'HELLO\nWORLD')" ] && ok || bad "wait-results: output" "$out"

run lines -- bash -c "printf 'x\ny\nz\n' | JOBQ_URL='$URL' '$JOBQ' submit -q emails --lines --wait --timeout 20"
expect lines 0
[ "$(sort <<<"$out")" = "$(printf 'X\nY\nZ')" ] && ok || bad "lines: results (JOBQ_URL)" "$out"

run json -- "$JOBQ" submit -u "$URL" -q emails --wait --json --timeout 20 one
expect json 0
python3 -c 'import json,sys; o=json.loads(sys.stdin.read()); assert o["output"]=="ONE" and o["status"]=="done" and o["attempt"]==1, o' \
    <<<"$out" && ok || bad "json" "$out"

run failed -- "$JOBQ" submit -u "$URL" -q emails --wait --timeout 20 fine bad
expect failed 1 'dead: exit 3' # its last attempt failed: the broker reports it dead
grep -qx FINE <<<"$out" && ok || bad "failed: the good job's result" "$out"

# Without --wait: ids once accepted; jobq wait prints their results later.
run ids -- "$JOBQ" submit -u "$URL" -q emails p q
expect ids 0
ids=$out
[ "$(grep -Ec '^[0-9a-f]{32}$' <<<"$ids")" -eq 2 ] && ok || bad "ids: ids" "$ids"
run wait-ids -- "$JOBQ" wait -u "$URL" --timeout 20 $ids
expect wait-ids 0
[ "$out" = "$(printf 'P\nQ')" ] && ok || bad "wait-ids: results in id order" "$out"
run wait-json -- "$JOBQ" wait -u "$URL" --json --timeout 5 $(head -1 <<<"$ids")
python3 -c 'import json,sys; o=json.loads(sys.stdin.read()); assert o["output"]=="P", o' \
    <<<"$out" && ok || bad "wait-json" "$out"
run wait-unknown -- "$JOBQ" wait -u "$URL" --timeout 1 0123456789abcdef0123456789abcdef
expect wait-unknown 1 'no such job'

run join -- "$JOBQ" join -u "$URL" -q emails --timeout 10
expect join 0

# A queue nobody serves: join times out (exit 1), wait too, and stats shows it.
run idle-submit -- "$JOBQ" submit -u "$URL" -q nobody --ttr 5 --priority 7 idle
expect idle-submit 0
idle_id=$out
run join-timeout -- "$JOBQ" join -u "$URL" -q nobody --timeout 0.3
expect join-timeout 1 'timed out'
run wait-timeout -- "$JOBQ" wait -u "$URL" --timeout 0.3 "$idle_id"
expect wait-timeout 1 'timed out'
run stats -- "$JOBQ" stats -u "$URL" --json
expect stats 0
python3 -c '
import json, sys
d = json.loads(sys.stdin.read())
q = {x["name"]: x for x in d["queues"]}
assert q["nobody"]["ready"] == 1, q
assert q["emails"]["done"] == 9 and q["emails"]["dead"] == 1, q["emails"]
assert q["emails"]["unfinished"] == 0, q["emails"]
assert d["broker"]["connections"]["worker"] == 2, d["broker"]["connections"]
assert all(w["queues"] == ["emails"] and w["credit"] == 4 for w in d["workers"]), d["workers"]
' <<<"$out" && ok || bad "stats: queues and workers" "$out"

# A second pool serves "nobody": the waiting job gets done.
"$JOBQ" worker -u "$URL" -q nobody --threads 1 --builtin upper --json \
    >"$T/idle.out" 2>"$T/idle.err" &
IDLE_PID=$!
run wait-idle -- "$JOBQ" wait -u "$URL" --timeout 20 "$idle_id"
expect wait-idle 0 '^IDLE$'

# stop-workers -q emails stops only the first pool: each of its workers
# reports, and the pool prints its report and exits 0.
run stop -- "$JOBQ" stop-workers -u "$URL" -q emails
expect stop 0
if wait_gone "$WORKER_PID" 10; then wait "$WORKER_PID"; wrc=$?; else wrc=timeout; fi
WORKER_PID=
[ "$wrc" = 0 ] && ok || bad "stop: worker exit $wrc" "$(cat "$T/worker.err")"
# hello world + x y z + one + fine bad + p q = 10 jobs, 1 failed.
grep -Eq '^pool: 2 procs, 10 jobs: 9 done, 1 failed, 0 crashed' "$T/worker.out" && ok ||
    bad "stop: report" "$(cat "$T/worker.out" "$T/worker.err")"
kill -0 "$IDLE_PID" 2>/dev/null && ok || bad "stop -q emails stopped the other pool too"
run stats-reports -- "$JOBQ" stats -u "$URL" --json
python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); b=d["broker"]; assert b["reports"]==2 and b["sentinels"]==2 and b["connections"]["worker"]==1, b' \
    <<<"$out" && ok || bad "stats: the reports reached the broker" "$out"

kill -TERM "$IDLE_PID"
if wait_gone "$IDLE_PID" 10; then wait "$IDLE_PID"; wrc=$?; else wrc=timeout; fi
IDLE_PID=
[ "$wrc" = 0 ] && ok || bad "sigterm: idle pool exit $wrc" "$(cat "$T/idle.err")"
python3 -c 'import json,sys; o=json.loads(open(sys.argv[1]).read()); assert o["done"]==1 and o["reports"]==1, o' \
    "$T/idle.out" && ok || bad "sigterm: report" "$(cat "$T/idle.out")"

# --at TIME: not handed out before TIME (Unix seconds or ISO-8601); a past
# TIME runs at once. A pool of its own serves queue "at".
"$JOBQ" worker -u "$URL" -q at --threads 1 --builtin upper >"$T/at.out" 2>"$T/at.err" &
AT_PID=$!
now() { date +%s.%N; }
took() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }
# Future times are 4 s ahead and past ones must come back within 3 s: a loaded
# machine (ASan, two cores shared) can take over a second for a submit + run.
t0=$(now) # before the time is computed: the wait is then at least 4 s after t0
at_ahead=$(python3 -c 'import time; print("%.3f" % (time.time() + 4))')
run at-unix -- "$JOBQ" submit -u "$URL" -q at --at "$at_ahead" --wait --timeout 20 later
secs=$(took "$t0")
expect at-unix 0 '^LATER$'
awk -v s="$secs" 'BEGIN { exit !(s >= 3.9) }' && ok || bad "at-unix: result after $secs s (want >= 3.9)"
t0=$(now)
at_iso=$(python3 -c 'import datetime as d; z = d.timezone(d.timedelta(hours=2)); print((d.datetime.now(z) + d.timedelta(seconds=4)).isoformat(timespec="milliseconds"))')
run at-iso -- "$JOBQ" submit -u "$URL" -q at --at "$at_iso" --wait --timeout 20 iso
secs=$(took "$t0")
expect at-iso 0 '^ISO$'
awk -v s="$secs" 'BEGIN { exit !(s >= 3.9) }' && ok || bad "at-iso: $at_iso: result after $secs s (want >= 3.9)"
for past in 1000000000 1000000000.25 '2001-09-09T01:46:40Z' '2001-09-09 01:46:40' '2001-09-09T03:46:40+02:00'; do
    t0=$(now)
    run "at-past $past" -- "$JOBQ" submit -u "$URL" -q at --at "$past" --wait --timeout 20 past
    secs=$(took "$t0")
    expect "at-past $past" 0 '^PAST$'
    awk -v s="$secs" 'BEGIN { exit !(s < 3) }' && ok || bad "at-past $past: result after $secs s (want at once)"
done
run at-ids -- "$JOBQ" submit -u "$URL" -q at --at "$(($(date +%s) - 5))" x y
expect at-ids 0
[ "$(grep -Ec '^[0-9a-f]{32}$' <<<"$out")" -eq 2 ] && ok || bad "at-ids: ids" "$out"
run at-join -- "$JOBQ" join -u "$URL" -q at --timeout 10
expect at-join 0
for v in tomorrow '' 12abc 2026-13-01T00:00:00Z 2026-02-30T00:00:00Z '2026-12-01T10:00:00+25:00' \
    2026-12-01 -5; do
    run "at-bad '$v'" -- "$JOBQ" submit -u "$URL" -q at --at "$v" x
    expect "at-bad '$v'" 2 "bad --at time '${v%%+*}" # (the value, up to a + that -E would read)
done
run at-and-delay -- "$JOBQ" submit -u "$URL" -q at --at 1000000000 --delay 1 x
expect at-and-delay 2 'not both'
run at-local -- "$JOBQ" submit -u shm://jobq-test-bc-$$ --at 1000000000 x
expect at-local 2 'need a broker URL'
kill -TERM "$AT_PID"
if wait_gone "$AT_PID" 10; then wait "$AT_PID"; wrc=$?; else wrc=timeout; fi
AT_PID=
[ "$wrc" = 0 ] && ok || bad "at: pool exit $wrc" "$(cat "$T/at.err")"

# -- usage -------------------------------------------------------------------------
run bad-id -- "$JOBQ" wait -u "$URL" not-an-id
expect bad-id 2 'not a job id'
run no-ids -- "$JOBQ" wait -u "$URL"
expect no-ids 2 'at least one job ID'
run bad-join-timeout -- "$JOBQ" join -u "$URL" --timeout soon
expect bad-join-timeout 2 'timeout'
run bad-priority -- "$JOBQ" submit -u "$URL" --priority high x
expect bad-priority 2 'priority'
run bad-queue -- "$JOBQ" submit -u "$URL" -q 'no spaces' x
expect bad-queue 2 'not a valid queue name'
run local-priority -- "$JOBQ" submit -u shm://jobq-test-bc-$$ --priority 1 x
expect local-priority 2 'need a broker URL'
run bad-prefetch -- "$JOBQ" worker -u "$URL" --prefetch 0 --builtin echo
expect bad-prefetch 2 'prefetch'
run bad-heartbeat -- "$JOBQ" worker -u "$URL" --heartbeat 1 --builtin echo
expect bad-heartbeat 2 'heartbeat'
run local-queue-opt -- "$JOBQ" worker -u shm://jobq-test-bc-$$ -q x --builtin echo
expect local-queue-opt 2 'apply to a broker URL'
run unlink-broker -- "$JOBQ" stop-workers -u "$URL" --unlink
expect unlink-broker 2 'local queue'
run extra-join -- "$JOBQ" join -u "$URL" extra
expect extra-join 2 'unexpected argument'
for cmd in wait join; do
    run "help-$cmd" -- "$JOBQ" "$cmd" --help
    expect "help-$cmd" 0 "usage: jobq $cmd"
done

# The broker stops cleanly on SIGTERM.
kill -TERM "$BROKER_PID"
if wait_gone "$BROKER_PID" 10; then wait "$BROKER_PID"; brc=$?; else brc=timeout; fi
BROKER_PID=
[ "$brc" = 0 ] && ok || bad "broker exit $brc" "$(cat "$T/broker.err")"
# With no broker, submit gives up: exit 1, not a hang.
run no-broker -- "$JOBQ" submit -u "$URL" --timeout 1 x
expect no-broker 1 'no broker answered'

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
