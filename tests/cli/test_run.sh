#!/usr/bin/env bash
# tests/cli/test_run.sh JOBQ: `jobq run`, a batch through a local pool with no
# broker: results and their order, exit codes (0 all done, 1 a failure or a
# crash, 2 bad usage), --json lines, stdin lines, time limits, the report.
set -u
JOBQ=${1:?usage: test_run.sh /path/to/jobq}
T=$(mktemp -d "${TMPDIR:-/tmp}/jobq-test-run.$$.XXXXXX")
trap 'rm -rf "$T"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL $1"; shift; [ $# -gt 0 ] && printf '%s\n' "$@" | head -20; }

# run NAME -- CMD...: runs CMD with a 60 s bound; sets rc, out (stdout), err (stderr).
run() {
    local name=$1; shift 2
    timeout 60 "$@" >"$T/out" 2>"$T/err"; rc=$?
    out=$(cat "$T/out"); err=$(cat "$T/err")
    [ "$rc" -ne 124 ] || bad "$name: timed out"
}
expect() { # expect NAME WANT_RC [GREP_PATTERN_ON_STDOUT+STDERR]
    local name=$1 want=$2 pat=${3:-}
    if [ "$rc" -eq "$want" ] && { [ -z "$pat" ] || grep -Eq -- "$pat" <<<"$out$err"; }; then ok
    else bad "$name: rc=$rc (want $want), pattern '$pat'" "stdout: $out" "stderr: $err"; fi
}

# -- results, one line per job -------------------------------------------------
run args -- "$JOBQ" run --procs 2 --builtin upper alpha beta gamma
expect args 0
[ "$(sort <<<"$out")" = "$(printf 'ALPHA\nBETA\nGAMMA')" ] && ok || bad "args: output" "$out"
grep -Eq '^pool: 2 procs, 3 jobs: 3 done, 0 failed, 0 crashed' <<<"$err" && ok ||
    bad "args: report on stderr" "$err"

# Later lines finish first (they sleep less): --keep-order restores input order.
slow_first='n=$(cat); sleep 0.$(( 9 - n % 10 )); echo "$n"'
run keep-order -- bash -c "seq 1 12 | '$JOBQ' run --procs 4 --exec '$slow_first' --keep-order"
expect keep-order 0
[ "$out" = "$(seq 1 12)" ] && ok || bad "keep-order: not in input order" "$out"
run no-keep-order -- bash -c "seq 1 12 | '$JOBQ' run --procs 4 --exec '$slow_first'"
[ "$(sort -n <<<"$out")" = "$(seq 1 12)" ] && ok || bad "no-keep-order: lost or extra lines" "$out"

# stdin: one job per line without its newline; empty lines are jobs; the last
# line may lack its newline.
run stdin -- bash -c "printf 'a b\n\nc' | '$JOBQ' run --threads 2 --builtin upper --keep-order"
expect stdin 0
[ "$out" = "$(printf 'A B\n\nC')" ] && ok || bad "stdin lines" "$out"

# Outputs get a newline only when they lack one.
run newline -- "$JOBQ" run --procs 1 --exec 'cat; echo' x
[ "$out" = "x" ] && ok || bad "newline added twice" "$out"

# A dash-led job after --.
run dashes -- "$JOBQ" run --procs 1 --builtin echo -- -x --y
[ "$out" = "$(printf -- '-x\n--y')" ] && ok || bad "-- ends options" "$out"

# More jobs than the queue holds (1024 items): no deadlock, every result once.
run many -- bash -c "seq 1 3000 | '$JOBQ' run --procs 2 --builtin echo"
expect many 0
[ "$(sort -n <<<"$out" | uniq | wc -l)" -eq 3000 ] && [ "$(wc -l <<<"$out")" -eq 3000 ] && ok ||
    bad "many: $(wc -l <<<"$out") lines"

# -- failures and crashes: exit 1 ------------------------------------------------
run failure -- "$JOBQ" run --procs 2 --exec 'n=$(cat); [ "$n" != 3 ]' 1 2 3 4
expect failure 1 'job 2 \(line 3\) failed: exit 1'
grep -Eq '3 done, 1 failed' <<<"$err" && ok || bad "failure: report" "$err"

run crash -- "$JOBQ" run --procs 2 --builtin crash x
expect crash 1 'crashed'
grep -Eq '1 crashed' <<<"$err" && ok || bad "crash: report" "$err"

run timeout -- "$JOBQ" run --procs 1 --timeout 0.3 --builtin sleep --json 5000
expect timeout 1 '"status":"timedout"'

# -- --json: one object per result, every line parses ------------------------------
check_json='
import json, sys
want = int(sys.argv[1])
lines = sys.stdin.read().splitlines()
assert len(lines) == want, "%d lines" % len(lines)
seqs = set()
for line in lines:
    o = json.loads(line)
    for k in ("seq", "id", "status", "exit_code", "signal", "duration_us", "output"):
        assert k in o, "missing %s in %s" % (k, line)
    assert len(o["id"]) == 32
    seqs.add(o["seq"])
assert seqs == set(range(want)), "seq numbers"
'
printf 'plain\nq"uote\nback\\slash\ttab\n\xff\xfe bytes\n' >"$T/in"
run json -- bash -c "'$JOBQ' run --procs 2 --builtin echo --json <'$T/in'"
expect json 0
python3 -c "$check_json" 4 <<<"$out" && ok || bad "json: lines do not parse" "$out"
python3 -c 'import json,sys; o=json.loads(sys.stdin.read().splitlines()[-1]); assert o["done"]==4' \
    <<<"$err" && ok || bad "json: report on stderr is not JSON" "$err"
run json-order -- bash -c "seq 0 9 | '$JOBQ' run --procs 3 --builtin echo --json --keep-order"
python3 -c '
import json, sys
objs = [json.loads(l) for l in sys.stdin.read().splitlines()]
assert [o["seq"] for o in objs] == list(range(10))
assert [o["output"] for o in objs] == [str(i) for i in range(10)]
assert all(o["status"] == "done" for o in objs)' <<<"$out" && ok || bad "json-order" "$out"

# -- bad usage: exit 2 ---------------------------------------------------------------
run no-handler -- "$JOBQ" run a
expect no-handler 2 'exactly one of --exec CMD or --builtin NAME'
run two-handlers -- "$JOBQ" run --exec cat --builtin echo a
expect two-handlers 2 'exactly one'
run procs-and-threads -- "$JOBQ" run --procs 2 --threads 2 --builtin echo a
expect procs-and-threads 2 'not both'
run zero-procs -- "$JOBQ" run --procs 0 --builtin echo a
expect zero-procs 2 'from 1 to 4096'
run bad-builtin -- "$JOBQ" run --builtin nope a
expect bad-builtin 2 "unknown built-in 'nope'"
run bad-option -- "$JOBQ" run --bogus --builtin echo a
expect bad-option 2 'usage: jobq run'
run bad-timeout -- "$JOBQ" run --timeout -1 --builtin echo a
expect bad-timeout 2 'seconds > 0'
run url-not-here -- "$JOBQ" run -u shm://x --builtin echo a
expect url-not-here 2 'does not apply'
run help -- "$JOBQ" run --help
expect help 0 'usage: jobq run'
run help-cmd -- "$JOBQ" help run
expect help-cmd 0 'keep-order'

# No input at all: nothing to do, a report, exit 0.
run empty -- bash -c "'$JOBQ' run --procs 2 --builtin echo </dev/null"
expect empty 0 'pool: 2 procs, 0 jobs'

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
