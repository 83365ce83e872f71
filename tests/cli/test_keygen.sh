#!/usr/bin/env bash
# tests/cli/test_keygen.sh JOBQ: `jobq keygen` and file modes under umask 000:
# NAME.key 0600 and NAME.pub 0644 with a public key that matches, no
# overwrite (also not through a symlink), usage errors, the broker's default
# ipc:// directory 0700, and a CURVE broker + worker + submit end to end
# through the command-line options and the JOBQ_CURVE_* environment.
set -u
JOBQ=$(readlink -f "${1:?usage: test_keygen.sh /path/to/jobq}")
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
dir=$(mktemp -d "/tmp/jobq-keygen-$$-XXXXXX")
bpid= wpid=
cleanup() {
    [ -n "$wpid" ] && kill "$wpid" 2>/dev/null && wait "$wpid" 2>/dev/null
    [ -n "$bpid" ] && kill "$bpid" 2>/dev/null && wait "$bpid" 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT
cd "$dir" || exit 1
umask 000

"$JOBQ" keygen alice >/dev/null && ok || bad "keygen alice"
[ "$(stat -c %a alice.key)" = 600 ] && ok || bad "alice.key mode $(stat -c %a alice.key)"
[ "$(stat -c %a alice.pub)" = 644 ] && ok || bad "alice.pub mode $(stat -c %a alice.pub)"
pub=$(cat alice.pub)
[ ${#pub} -eq 40 ] && ok || bad "alice.pub is not one 40-character line: '$pub'"
grep -qxF "public $pub" alice.key && ok || bad "alice.key's public line differs from alice.pub"
grep -Eq '^secret .{40}$' alice.key && ok || bad "alice.key has no secret line"
before=$(md5sum alice.key)
"$JOBQ" keygen alice 2>err.txt; rc=$?
[ $rc -eq 1 ] && grep -q "refusing to overwrite" err.txt && ok || bad "overwrite: rc=$rc $(cat err.txt)"
[ "$(md5sum alice.key)" = "$before" ] && ok || bad "alice.key changed"
ln -s /tmp/jobq-keygen-target-$$ evil.key
"$JOBQ" keygen evil 2>/dev/null; rc=$?
[ $rc -eq 1 ] && [ ! -e /tmp/jobq-keygen-target-$$ ] && ok || bad "symlink followed (rc=$rc)"
"$JOBQ" keygen 2>/dev/null; [ $? -eq 2 ] && ok || bad "keygen without NAME is not usage"
"$JOBQ" keygen a b 2>/dev/null; [ $? -eq 2 ] && ok || bad "keygen with two names is not usage"

# A named shm:// queue under umask 000: its object is 0600.
"$JOBQ" submit -u "shm://jqperm$$" x >/dev/null 2>&1
shm="/dev/shm/jobq-$(id -u)-jqperm$$"
[ "$(stat -c %a "$shm" 2>/dev/null)" = 600 ] && ok || bad "shm object mode $(stat -c %a "$shm" 2>&1)"
"$JOBQ" stop-workers -u "shm://jqperm$$" --unlink >/dev/null 2>&1

# The broker's default ipc:// directory under umask 000.
mkdir -m 700 run
XDG_RUNTIME_DIR=$dir/run "$JOBQ" broker >bout.txt 2>berr.txt &
bpid=$!
for _ in $(seq 200); do grep -q "listening on" bout.txt && break; sleep 0.05; done
[ "$(stat -c %a run/jobq 2>/dev/null)" = 700 ] && ok || bad "ipc dir mode $(stat -c %a run/jobq 2>&1)"
kill "$bpid"; wait "$bpid"; bpid=

# CURVE end to end with the CLI: the broker admits alice only.
"$JOBQ" keygen broker >/dev/null && "$JOBQ" keygen mallory >/dev/null
mkdir -m 700 clients && cp alice.pub clients/
"$JOBQ" broker -l tcp://127.0.0.1:0 --curve-key broker.key --curve-clients clients >bout.txt 2>berr.txt &
bpid=$!
for _ in $(seq 200); do grep -q "listening on" bout.txt && break; sleep 0.05; done
url=$(sed -n 's/^listening on //p' bout.txt)
JOBQ_CURVE_KEY=alice.key JOBQ_CURVE_SERVER=broker.pub "$JOBQ" worker -u "$url" --threads 1 --builtin upper >/dev/null 2>&1 &
wpid=$!
out=$(timeout 30 "$JOBQ" submit -u "$url" --curve-key alice.key --curve-server broker.pub --wait -T 20 hi 2>&1)
[ "$out" = HI ] && ok || bad "submit with CURVE: '$out'"
out=$(JOBQ_CURVE_KEY=alice.key JOBQ_CURVE_SERVER=broker.pub "$JOBQ" stats -u "$url" --json 2>&1)
grep -q '"principal":"alice"' <<<"$out" && ok || bad "stats: no principal alice: $out"
timeout 30 "$JOBQ" submit -u "$url" --curve-key mallory.key --curve-server broker.pub -T 2 hi >/dev/null 2>&1
[ $? -ne 0 ] && ok || bad "mallory's submit succeeded"
grep -q "zap: denied" berr.txt && ok || bad "no denial in the broker's log"
"$JOBQ" stats -u "$url" --curve-key mallory.key --curve-server broker.pub -T 5 >/dev/null 2>err.txt; rc=$?
[ $rc -eq 1 ] && grep -q "refused our CURVE key" err.txt && ok || bad "stats with mallory's key: rc=$rc $(cat err.txt)"
out=$(timeout 30 "$JOBQ" submit -u "$url" --curve-key mallory.key --curve-server broker.pub hi 2>&1)
grep -q "authentication failed" <<<"$out" && ok || bad "submit with mallory's key: $out"
"$JOBQ" stats -u "$url" --curve-key alice.key -T 1 >/dev/null 2>err.txt; rc=$?
[ $rc -ne 0 ] && grep -q "curve-server" err.txt && ok || bad "--curve-key without --curve-server: rc=$rc"
"$JOBQ" broker -l tcp://127.0.0.1:0 --curve-key broker.key 2>err.txt; rc=$?
[ $rc -eq 2 ] && ok || bad "--curve-key without --curve-clients: rc=$rc"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
