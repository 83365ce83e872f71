#!/usr/bin/env bash
# tests/cli/test_cli.sh JOBQ: the command contract: help, version, usage errors exit 2.
set -u
JOBQ=${1:?usage: test_cli.sh /path/to/jobq}
pass=0 fail=0
check() { # check NAME EXPECTED_RC PATTERN_ON_OUTPUT -- CMD...
    local name=$1 want=$2 pat=$3; shift 4
    local out rc
    out=$("$@" 2>&1); rc=$?
    if [ "$rc" -eq "$want" ] && grep -Eq -- "$pat" <<<"$out"; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1)); echo "FAIL $name: rc=$rc (want $want), output:"; echo "$out" | head -20
    fi
}
check help-lists-commands 0 'Commands:' -- "$JOBQ" --help
check help-lists-version 0 'version +print the jobq version' -- "$JOBQ" --help
check no-args-is-usage 2 'usage: jobq' -- "$JOBQ"
check unknown-command 2 "unknown command 'bogus'" -- "$JOBQ" bogus
check version-flag 0 '^jobq [0-9]+\.[0-9]+\.[0-9]+ \(protocol 1\)' -- "$JOBQ" --version
check help-cmd 0 'usage: jobq version' -- "$JOBQ" help version
check cmd-help-flag 0 'usage: jobq help' -- "$JOBQ" help --help
check help-unknown 2 "unknown command 'nope'" -- "$JOBQ" help nope
check version-extra-arg 2 'takes no arguments' -- "$JOBQ" version extra
# Every command in the table answers --help with its usage and exit 0.
for cmd in $("$JOBQ" --help | awk '/^Commands:/{on=1;next} on && /^  [a-z]/{print $1}'); do
    check "help-$cmd" 0 "usage: jobq $cmd" -- "$JOBQ" "$cmd" --help
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
