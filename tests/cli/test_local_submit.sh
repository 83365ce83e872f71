#!/usr/bin/env bash
# tests/cli/test_local_submit.sh JOBQ: separate processes on one machine over a
# named local queue, for shm:// and mq://: `jobq worker` in the background,
# `jobq submit` (ids; --wait with results; exit 1 on a failed job), `jobq
# stop-workers` (sentinels), and the worker's report; plus usage errors.
set -u
JOBQ=${1:?usage: test_local_submit.sh /path/to/jobq}
T=$(mktemp -d "${TMPDIR:-/tmp}/jobq-test-submit.$$.XXXXXX")
WORKER_PID=
NAME=jobq-test-submit-$$
cleanup() {
    [ -n "$WORKER_PID" ] && kill -KILL "$WORKER_PID" 2>/dev/null && wait "$WORKER_PID" 2>/dev/null
    # Remove every queue this test may have created (POSIX mqs count against a
    # per-user memory limit, and /dev/mqueue is not always mounted to clean up).
    for u in shm://$NAME-shm mq://$NAME-mq shm://$NAME-term shm://$NAME-x; do
        "$JOBQ" stop-workers -u "$u" --unlink >/dev/null 2>&1
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

# A handler that upper-cases its payload and fails (exit 3) on "bad".
HANDLER='n=$(cat); [ "$n" = bad ] && exit 3; printf %s "$n" | tr a-z A-Z'

scenario() { # scenario SCHEME
    local s=$1 url=$1://$NAME-$1
    "$JOBQ" worker -u "$url" --procs 2 --exec "$HANDLER" >"$T/worker.out" 2>"$T/worker.err" &
    WORKER_PID=$!

    run "$s-wait" -- "$JOBQ" submit -u "$url" --wait --timeout 20 hello world
    expect "$s-wait" 0
    [ "$(sort <<<"$out")" = "$(printf 'HELLO\nWORLD')" ] && ok || bad "$s-wait: results" "$out"

    run "$s-lines" -- bash -c "printf 'x\ny\nz\n' | JOBQ_URL='$url' '$JOBQ' submit --lines --wait --timeout 20"
    expect "$s-lines" 0
    [ "$(sort <<<"$out")" = "$(printf 'X\nY\nZ')" ] && ok || bad "$s-lines: results (JOBQ_URL)" "$out"

    run "$s-json" -- "$JOBQ" submit -u "$url" --wait --json --timeout 20 one
    expect "$s-json" 0
    python3 -c 'import json,sys; o=json.loads(sys.stdin.read()); assert o["output"]=="ONE" and o["status"]=="done"' \
        <<<"$out" && ok || bad "$s-json" "$out"

    printf 'from a file' >"$T/payload"
    run "$s-file" -- "$JOBQ" submit -u "$url" --wait --timeout 20 --file "$T/payload"
    [ "$out" = "FROM A FILE" ] && ok || bad "$s-file" "$out"

    run "$s-failed" -- "$JOBQ" submit -u "$url" --wait --timeout 20 fine bad
    expect "$s-failed" 1 'failed: exit 3'
    grep -qx FINE <<<"$out" && ok || bad "$s-failed: the good job's result" "$out"

    # Without --wait: one id per job. Their results stay in the channel; a
    # later --wait puts them back and still gets its own.
    run "$s-ids" -- "$JOBQ" submit -u "$url" p q
    expect "$s-ids" 0
    [ "$(grep -Ec '^[0-9a-f]{32}$' <<<"$out")" -eq 2 ] && ok || bad "$s-ids: ids" "$out"
    run "$s-wait-after" -- "$JOBQ" submit -u "$url" --wait --timeout 20 mine
    [ "$out" = "MINE" ] && ok || bad "$s-wait-after: foreign results not skipped" "$out"

    run "$s-stop" -- "$JOBQ" stop-workers -u "$url" -n 2 --unlink
    expect "$s-stop" 0
    local i=0
    while kill -0 "$WORKER_PID" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    if kill -0 "$WORKER_PID" 2>/dev/null; then
        bad "$s-worker: still running 10 s after stop-workers"
        kill -KILL "$WORKER_PID"
    fi
    wait "$WORKER_PID"; local wrc=$?
    WORKER_PID=
    [ "$wrc" -eq 0 ] && ok || bad "$s-worker: exit $wrc" "$(cat "$T/worker.err")"
    # hello world + x y z + one + file + fine bad + p q + mine = 12 jobs, 1 failed.
    grep -Eq '^pool: 2 procs, 12 jobs: 11 done, 1 failed, 0 crashed' "$T/worker.out" && ok ||
        bad "$s-worker: report" "$(cat "$T/worker.out" "$T/worker.err")"
}
scenario shm
scenario mq

# The worker's JSON report, and SIGTERM: current jobs finish, then exit 0.
url=shm://$NAME-term
"$JOBQ" worker -u "$url" --threads 2 --builtin sleep --json >"$T/worker.out" 2>"$T/worker.err" &
WORKER_PID=$!
run sleeper -- "$JOBQ" submit -u "$url" 700
sleep 0.3
kill -TERM "$WORKER_PID"
i=0
while kill -0 "$WORKER_PID" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
wait "$WORKER_PID"; wrc=$?
WORKER_PID=
[ "$wrc" -eq 0 ] && ok || bad "sigterm: worker exit $wrc"
python3 -c 'import json,sys; o=json.loads(open(sys.argv[1]).read()); assert o["done"]==1 and o["workers"]==2, o' \
    "$T/worker.out" && ok || bad "sigterm: the running job did not finish" "$(cat "$T/worker.out")"

# -- usage -------------------------------------------------------------------------
run broker-url -- "$JOBQ" submit -u tcp://127.0.0.1:7 --timeout 1 x
expect broker-url 1 'no broker answered'
run broker-opt-worker -- "$JOBQ" worker -u shm://$NAME-x -q q --builtin echo
expect broker-opt-worker 2 'apply to a broker URL'
run no-url -- env -u JOBQ_URL XDG_RUNTIME_DIR=$T "$JOBQ" submit --timeout 1 x
expect no-url 1 "ipc://$T/jobq/broker.sock"
run bad-url -- "$JOBQ" submit -u shm://bad/name x
expect bad-url 2 "bad URL"
run two-sources -- "$JOBQ" submit -u shm://$NAME-x --lines x
expect two-sources 2 'not several'
run stop-needs-n -- "$JOBQ" stop-workers -u shm://$NAME-x
expect stop-needs-n 2 '-n N is required'
run stop-no-queue -- "$JOBQ" stop-workers -u shm://$NAME-none -n 1
expect stop-no-queue 1 'cannot open'
# --unlink removed the scenario's queues: stop-workers cannot open them any more.
for s in shm mq; do
    run "unlinked-$s" -- "$JOBQ" stop-workers -u "$s://$NAME-$s" -n 1
    expect "unlinked-$s" 1 'cannot open'
done
run bad-retries -- "$JOBQ" submit -u shm://$NAME-x --retries many x
expect bad-retries 2 'retries'
run worker-extra -- "$JOBQ" worker -u shm://$NAME-x --builtin echo extra
expect worker-extra 2 "unexpected argument"
for cmd in submit worker stop-workers; do
    run "help-$cmd" -- "$JOBQ" "$cmd" --help
    expect "help-$cmd" 0 "usage: jobq $cmd"
done

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
