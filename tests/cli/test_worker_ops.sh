#!/usr/bin/env bash
# tests/cli/test_worker_ops.sh JOBQ: worker operations through the CLI
# (docs/WORKERS.md): recycling under `jobq run` with a ledger, a job exceeding
# each --exec rlimit, soft then hard time limits of --exec (a command that
# traps SIGTERM, one that ignores it), --fork-per-job against the default
# child, the GNU parallel job log (format, --resume after a SIGINT half-way,
# --resume-failed), and the shutdown stages of `jobq worker` (warm, cold,
# --shutdown-timeout, quiet).
set -u
JOBQ=${1:?usage: test_worker_ops.sh /path/to/jobq}
T=$(mktemp -d "${TMPDIR:-/tmp}/jobq-test-ops.$$.XXXXXX")
NAME=jobq-test-ops-$$
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    for s in warm cold tmo quiet; do
        "$JOBQ" stop-workers -u "shm://$NAME-$s" --unlink >/dev/null 2>&1
    done
    for u in shm://$NAME-rshm mq://$NAME-rmq; do
        "$JOBQ" stop-workers -u "$u" --unlink >/dev/null 2>&1
    done
    rm -rf "$T"
}
trap cleanup EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL $1"; shift; [ $# -gt 0 ] && printf '%s\n' "$@" | head -20; }
run() { # run NAME -- CMD...: a 60 s bound; sets rc, out, err
    local name=$1; shift 2
    timeout 60 "$@" >"$T/out" 2>"$T/err"; rc=$?
    out=$(cat "$T/out"); err=$(cat "$T/err")
    [ "$rc" -ne 124 ] || bad "$name: timed out"
}
expect() { # expect NAME WANT_RC [PATTERN on stdout+stderr]
    local name=$1 want=$2 pat=${3:-}
    if [ "$rc" -eq "$want" ] && { [ -z "$pat" ] || grep -Eq -- "$pat" <<<"$out$err"; }; then ok
    else bad "$name: rc=$rc (want $want), pattern '$pat'" "stdout: $out" "stderr: $err"; fi
}
# wait_gone PID SECONDS: waits for PID to exit; sets wrc (124 if it did not).
wait_gone() {
    local i
    for ((i = 0; i < $2 * 20; i++)); do
        if ! kill -0 "$1" 2>/dev/null; then wait "$1"; wrc=$?; return; fi
        sleep 0.05
    done
    wrc=124
}

# -- recycling: every input once, children replaced without backoff ----------
run recycle -- bash -c "seq 1 400 | '$JOBQ' run --procs 3 --exec 'cat' --max-jobs-per-child 9"
expect recycle 0 ' 0 deaths, 0 restarts; [0-9]+ recycled'
[ "$(sort -n <<<"$out")" = "$(seq 1 400)" ] && ok || bad "recycle: lost or doubled inputs"
n=$(grep -Eo '[0-9]+ recycled' <<<"$err" | grep -Eo '^[0-9]+')
[ "${n:-0}" -ge 40 ] && ok || bad "recycle: only ${n:-0} children recycled" "$err"

# The same through `jobq worker` on shm:// and mq://, with jobq submit --wait.
for u in shm://$NAME-rshm mq://$NAME-rmq; do
    "$JOBQ" worker -u "$u" --procs 2 --builtin echo --max-jobs-per-child 7 >"$T/rw.out" 2>"$T/rw.err" &
    w=$!; PIDS+=("$w")
    run "recycle-$u" -- bash -c "seq 1 300 | '$JOBQ' submit -u '$u' --lines --wait --timeout 40"
    expect "recycle-$u" 0
    [ "$(sort -n <<<"$out")" = "$(seq 1 300)" ] && ok || bad "recycle-$u: lost or doubled results"
    "$JOBQ" stop-workers -u "$u" -n 2 >/dev/null 2>&1
    wait_gone "$w" 20
    [ "$wrc" -eq 0 ] && grep -Eq '300 jobs: 300 done.* 0 deaths, 0 restarts; [0-9]+ recycled' "$T/rw.out" &&
        ok || bad "recycle-$u: worker report (exit $wrc)" "$(cat "$T/rw.out" "$T/rw.err")"
done

# -- rlimits of --exec ---------------------------------------------------------
run cpu -- "$JOBQ" run --procs 1 --json --limit-cpu 1 --exec 'while :; do :; done' x
expect cpu 1 '"status":"crashed","exit_code":0,"signal":24'
grep -q 'cpu limit 1 s exceeded' <<<"$out" && ok || bad "cpu: error text" "$out"

big='BEGIN { s = "x"; while (length(s) < 50000000) s = s s; print length(s) }'
run mem-ok -- "$JOBQ" run --procs 1 --exec "awk '$big'" x
expect mem-ok 0 '^67108864'
run mem -- "$JOBQ" run --procs 1 --json --limit-mem 32 --exec "awk '$big'" x
expect mem 1 'memory limit 32 MB \(RLIMIT_AS\) may have been hit'

opens='for fd in 3 4 5 6 7 8 9; do eval "exec $fd</dev/null" || exit 9; done; echo all'
run files-ok -- "$JOBQ" run --procs 1 --exec "$opens" x
expect files-ok 0 '^all'
run files -- "$JOBQ" run --procs 1 --json --limit-files 8 --exec "$opens" x
expect files 1 '"status":"failed".*file limit 8 \(RLIMIT_NOFILE\) may have been hit'
run limits-seen -- "$JOBQ" run --procs 1 --limit-cpu 7 --limit-files 33 --limit-mem 300 \
    --exec 'ulimit -t; ulimit -n; ulimit -v' x
[ "$out" = "$(printf '7\n33\n307200')" ] && ok || bad "limits-seen" "$out"

# -- soft then hard time limits of --exec ---------------------------------------
run soft -- "$JOBQ" run --procs 1 --json --soft-time-limit 0.3 --time-limit 5 \
    --exec 'trap "echo cleaned; exit 3" TERM; sleep 10 & wait' x
expect soft 1 '"status":"timedout","exit_code":3,"signal":15'
grep -q 'soft time limit of 300 ms reached: sent SIGTERM' <<<"$out" && ok || bad "soft: text" "$out"
grep -q '"output":"cleaned' <<<"$out" && ok || bad "soft: the trap's output" "$out"
start=$(date +%s%N)
run hard -- "$JOBQ" run --procs 1 --json --soft-time-limit 0.2 --time-limit 1 \
    --exec 'trap "" TERM; sleep 10; sleep 10' x
took=$((($(date +%s%N) - start) / 1000000))
expect hard 1 '"status":"timedout","exit_code":0,"signal":9'
grep -q 'hard time limit of 1000 ms reached: sent SIGKILL' <<<"$out" && ok || bad "hard: text" "$out"
[ "$took" -lt 8000 ] && ok || bad "hard: took $took ms"
run soft-usage -- "$JOBQ" run --procs 1 --soft-time-limit 2 --time-limit 1 --exec true x
expect soft-usage 2 'must be below'

# -- --fork-per-job against the default child ----------------------------------
run fpj -- "$JOBQ" run --procs 1 --builtin crash --fork-per-job a b c
expect fpj 1 '3 crashed.* 0 deaths, 0 restarts'
grep -q "the job's child was killed by signal 6" <<<"$err" && ok || bad "fpj: text" "$err"
run fpj-sleep -- bash -c "printf '50\n2000\n' | '$JOBQ' run --procs 1 --builtin sleep --fork-per-job --soft-time-limit 0.3 --time-limit 1 --json --keep-order"
expect fpj-sleep 1 'soft time limit of 300 ms'

# -- the job log -------------------------------------------------------------------
LOG=$T/joblog
run joblog -- "$JOBQ" run --procs 2 --joblog "$LOG" \
    --exec 'read x; [ "$x" = b ] && exit 4; [ "$x" = c ] && kill -9 $$; echo "$x"' a b c d
expect joblog 1
head -1 "$LOG" | grep -qxP 'Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand' &&
    ok || bad "joblog: header" "$(cat "$LOG")"
[ "$(wc -l <"$LOG")" -eq 5 ] && ok || bad "joblog: 4 lines + header" "$(cat "$LOG")"
line='^[0-9]+\t:\t[0-9]{10}\.[0-9]{3}\t[0-9]+\.[0-9]{3}\t[0-9]+\t[0-9]+\t-?[0-9]+\t[0-9]+\t'
[ "$(tail -n +2 "$LOG" | grep -cP "$line")" -eq 4 ] && ok || bad "joblog: fields" "$(cat "$LOG")"
grep -qP '^1\t.*\t1\t2\t0\t0\ta$' "$LOG" && ok || bad "joblog: a's line" "$(cat "$LOG")"
grep -qP '^2\t.*\t1\t0\t4\t0\tb$' "$LOG" && ok || bad "joblog: b's exit 4" "$(cat "$LOG")"
grep -qP '^3\t.*\t-1\t9\tc$' "$LOG" && ok || bad "joblog: c's signal 9" "$(cat "$LOG")"

# --resume-failed runs b and c again (now they pass), skips a and d, runs e.
run resume-failed -- "$JOBQ" run --procs 2 --joblog "$LOG" --resume-failed \
    --exec 'read x; echo "again $x"' a b c d e
expect resume-failed 0
[ "$(sort <<<"$out")" = "$(printf 'again b\nagain c\nagain e')" ] && ok || bad "resume-failed: ran" "$out"
[ "$(wc -l <"$LOG")" -eq 8 ] && ok || bad "resume-failed: appended 3 lines" "$(cat "$LOG")"
# --resume now has every input: nothing runs.
run resume-all -- "$JOBQ" run --procs 2 --joblog "$LOG" --resume --exec 'echo ran' a b c d e
expect resume-all 0
[ -z "$out" ] && ok || bad "resume-all: ran something" "$out"
# The same sequence number with another input is not skipped.
run resume-other -- "$JOBQ" run --procs 1 --joblog "$LOG" --resume --exec 'cat' a X
[ "$out" = X ] && ok || bad "resume-other: input 2 changed, must run" "$out"
run resume-usage -- "$JOBQ" run --procs 1 --resume --exec true a
expect resume-usage 2 'need --joblog'

# --resume after a SIGINT half-way: every input ends up in the log exactly once.
LOG2=$T/joblog2
seq 1 60 >"$T/in60"
"$JOBQ" run --procs 2 --joblog "$LOG2" --exec 'read x; sleep 0.1; echo "$x"' \
    <"$T/in60" >"$T/first.out" 2>"$T/first.err" &
p=$!; PIDS+=("$p")
for ((i = 0; i < 200 && $(grep -c . "$LOG2" 2>/dev/null || echo 0) < 12; i++)); do sleep 0.05; done
kill -INT "$p"
wait_gone "$p" 30
[ "$wrc" -eq 1 ] && ok || bad "sigint: exit $wrc" "$(cat "$T/first.err")"
first=$(($(wc -l <"$LOG2") - 1))
[ "$first" -ge 10 ] && [ "$first" -lt 60 ] && ok || bad "sigint: $first of 60 logged"
[ "$(wc -l <"$T/first.out")" -eq "$first" ] && ok || bad "sigint: printed vs logged"
run resume -- bash -c "'$JOBQ' run --procs 2 --joblog '$LOG2' --resume --exec 'read x; echo \"\$x\"' <'$T/in60'"
expect resume 0
[ "$(cat "$T/first.out" - <<<"$out" | sort -n)" = "$(seq 1 60)" ] && ok ||
    bad "resume: outputs of the two runs are not 1..60 once each" "$out"
[ "$(tail -n +2 "$LOG2" | cut -f1 | sort -n)" = "$(seq 1 60)" ] && ok ||
    bad "resume: log Seqs are not 1..60 once each" "$(cat "$LOG2")"

# -- jobq submit --wait --joblog -------------------------------------------------
url=shm://$NAME-warm
"$JOBQ" worker -u "$url" --procs 1 --exec 'read x; echo "$x"' >"$T/w.out" 2>"$T/w.err" &
w=$!; PIDS+=("$w")
run submit-log -- "$JOBQ" submit -u "$url" --wait --timeout 20 --joblog "$T/sublog" p q
expect submit-log 0
[ "$(tail -n +2 "$T/sublog" | cut -f1,7,9 | sort)" = "$(printf '1\t0\tp\n2\t0\tq')" ] && ok ||
    bad "submit-log" "$(cat "$T/sublog")"
kill -TERM "$w"; wait_gone "$w" 20

# -- shutdown stages of jobq worker ------------------------------------------------
# warm: SIGTERM lets the running job finish and report, then exit 0.
"$JOBQ" worker -u "$url" --procs 1 --builtin sleep >"$T/w.out" 2>"$T/w.err" &
w=$!; PIDS+=("$w")
"$JOBQ" submit -u "$url" --wait --json --timeout 30 1500 >"$T/s.out" 2>&1 &
s=$!; PIDS+=("$s")
sleep 0.6
kill -TERM "$w"
wait_gone "$w" 20
[ "$wrc" -eq 0 ] && ok || bad "warm: worker exit $wrc" "$(cat "$T/w.err")"
grep -q '1 done' "$T/w.out" && ok || bad "warm: report" "$(cat "$T/w.out")"
wait_gone "$s" 20
grep -q '"status":"done"' "$T/s.out" && ok || bad "warm: the job's result" "$(cat "$T/s.out")"

# cold: a second SIGTERM kills the child; the job goes back to the queue
# (attempt 2) and the next worker runs it.
url=shm://$NAME-cold
"$JOBQ" worker -u "$url" --procs 1 --builtin sleep >"$T/w.out" 2>"$T/w.err" &
w=$!; PIDS+=("$w")
"$JOBQ" submit -u "$url" --wait --json --timeout 40 --retries 2 3000 >"$T/s.out" 2>&1 &
s=$!; PIDS+=("$s")
sleep 0.6
kill -TERM "$w"; sleep 0.2; kill -TERM "$w"
start=$(date +%s%N)
wait_gone "$w" 20
took=$((($(date +%s%N) - start) / 1000000))
[ "$wrc" -eq 0 ] && [ "$took" -lt 5000 ] && ok || bad "cold: exit $wrc after $took ms"
"$JOBQ" worker -u "$url" --procs 1 --builtin sleep >"$T/w2.out" 2>"$T/w2.err" &
w=$!; PIDS+=("$w")
wait_gone "$s" 30
grep -q '"attempt":2,"status":"done"' "$T/s.out" && ok || bad "cold: handed back" "$(cat "$T/s.out")"
kill -TERM "$w"; wait_gone "$w" 20

# --shutdown-timeout: one SIGTERM, a job longer than the timeout: cold after it.
url=shm://$NAME-tmo
"$JOBQ" worker -u "$url" --procs 1 --builtin sleep --shutdown-timeout 0.5 >"$T/w.out" 2>"$T/w.err" &
w=$!; PIDS+=("$w")
"$JOBQ" submit -u "$url" --timeout 10 20000 >/dev/null 2>&1
sleep 0.6
start=$(date +%s%N)
kill -TERM "$w"
wait_gone "$w" 20
took=$((($(date +%s%N) - start) / 1000000))
[ "$wrc" -eq 0 ] && [ "$took" -lt 5000 ] && ok || bad "shutdown-timeout: exit $wrc after $took ms" "$(cat "$T/w.err")"
grep -q 'shutdown timeout' "$T/w.err" && ok || bad "shutdown-timeout: message" "$(cat "$T/w.err")"

# quiet: SIGUSR1 ends the workers after their job but the process stays up;
# a job submitted then waits; SIGTERM ends the process (exit 0).
url=shm://$NAME-quiet
"$JOBQ" worker -u "$url" --procs 1 --builtin echo >"$T/w.out" 2>"$T/w.err" &
w=$!; PIDS+=("$w")
run quiet-before -- "$JOBQ" submit -u "$url" --wait --timeout 20 before
[ "$out" = before ] && ok || bad "quiet: served before" "$out"
kill -USR1 "$w"
# The workers end (the process has no children left) but the process stays.
for ((i = 0; i < 200; i++)); do
    [ -z "$(cat /proc/"$w"/task/*/children 2>/dev/null | tr -d ' ')" ] && break
    sleep 0.05
done
[ "$i" -lt 200 ] && ok || bad "quiet: the workers did not end"
sleep 0.3
kill -0 "$w" 2>/dev/null && ok || bad "quiet: the process ended"
run quiet-after -- "$JOBQ" submit -u "$url" --wait --timeout 1 after
expect quiet-after 1 'timed out'
kill -TERM "$w"
wait_gone "$w" 20
[ "$wrc" -eq 0 ] && ok || bad "quiet: exit $wrc"
grep -q '1 done' "$T/w.out" && ok || bad "quiet: report" "$(cat "$T/w.out")"

echo "test_worker_ops: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
