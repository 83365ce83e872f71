#!/usr/bin/env bash
# scripts/test.sh: the whole test suite, from a fresh machine.
#   1. installs missing Debian packages (scripts/setup-deps.sh)
#   2. configures and builds with -Werror, runs every CTest (unit, integration,
#      fault, CLI, fuzz-corpus replay)
#   3. installs into a scratch prefix and builds examples/ from it with
#      find_package(jobq) and with pkg-config (the install must be usable)
#   4. rebuilds with ASan+UBSan and runs the suite again
#   5. builds the libFuzzer targets with clang and fuzzes each for
#      JOBQ_FUZZ_SECONDS (default 60); any finding fails the run
# Ends with one line "N passed, N failed" over all the steps' tests.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
JOBS=${JOBQ_JOBS:-2}
FUZZ_SECONDS=${JOBQ_FUZZ_SECONDS:-60}
passed=0 failed=0
step_ok() { passed=$((passed + $1)); }
step_fail() { failed=$((failed + $1)); echo "test.sh: FAILED: $2" >&2; }

bash scripts/setup-deps.sh || { echo "test.sh: dependency set-up failed" >&2; exit 1; }

# run_ctest DIR LABEL: runs the suite in DIR and adds its counts to the totals.
run_ctest() {
    local dir=$1 label=$2 log
    log=$(mktemp)
    ctest --test-dir "$dir" -j"$JOBS" --output-on-failure --timeout 300 --repeat until-pass:2 2>&1 | tee "$log"
    local total fails
    total=$(sed -n 's/.*tests failed out of \([0-9]*\).*/\1/p' "$log" | tail -1)
    fails=$(sed -n 's/.* \([0-9]*\) tests failed out of.*/\1/p' "$log" | tail -1)
    rm -f "$log"
    if [ -z "$total" ]; then step_fail 1 "$label: ctest ran no test"; return; fi
    step_ok $((total - fails))
    [ "$fails" -eq 0 ] || step_fail "$fails" "$label: $fails tests"
}

build() { # build DIR CMAKE_ARGS...
    local dir=$1; shift
    cmake -S "$ROOT" -B "$dir" -DJOBQ_WERROR=ON "$@" >"$dir.configure.log" 2>&1 ||
        { cat "$dir.configure.log"; return 1; }
    local rc
    cmake --build "$dir" -j"$JOBS" ${BUILD_TARGETS:+--target $BUILD_TARGETS} >"$dir.build.log" 2>&1
    rc=$?
    grep -Ev '^\[ *[0-9]+%\] (Building|Linking|Built)|^(gmake|make)\[' "$dir.build.log" | tail -60
    return $rc
}

echo "== build (gcc, -Werror) and test"
if build "$ROOT/build-ci"; then run_ctest "$ROOT/build-ci" "default build"
else step_fail 1 "default build does not compile"; fi

echo "== install, then build examples from the installed tree"
PREFIX=$ROOT/build-ci/_install
pcdir() { dirname "$(find "$PREFIX" -name jobq.pc | head -1)"; }
rm -rf "$PREFIX" "$ROOT/build-ci/_examples"
if cmake --install "$ROOT/build-ci" --prefix "$PREFIX" >/dev/null &&
   cmake -S "$ROOT/examples/standalone" -B "$ROOT/build-ci/_examples" \
         -DCMAKE_PREFIX_PATH="$PREFIX" >/dev/null &&
   cmake --build "$ROOT/build-ci/_examples" -j"$JOBS" >/dev/null &&
   printf '#include <jobq/jobq.h>\n#include <stdio.h>\nint main(void){puts(jobq_strerror(JOBQ_ETIMEDOUT));return 0;}\n' \
        >"$ROOT/build-ci/_pc.c" &&
   cc -o "$ROOT/build-ci/_pc" "$ROOT/build-ci/_pc.c" \
        $(PKG_CONFIG_PATH="$(pcdir)" pkg-config --cflags --libs jobq) &&
   [ "$(LD_LIBRARY_PATH="$(dirname "$(pcdir)")" "$ROOT/build-ci/_pc")" = "timed out" ] &&
   [ -x "$PREFIX/bin/jobq" ]; then
    step_ok 1; echo "install: ok (find_package and pkg-config consumers built and ran)"
else
    step_fail 1 "install / find_package / pkg-config"
fi

echo "== ASan+UBSan build and test"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
if build "$ROOT/build-asan" -DJOBQ_SANITIZER=address -DJOBQ_BUILD_BENCH=OFF; then
    run_ctest "$ROOT/build-asan" "ASan+UBSan build"
else step_fail 1 "sanitizer build does not compile"; fi

echo "== fuzzing (${FUZZ_SECONDS}s per target)"
if command -v clang-14 >/dev/null && [ "$FUZZ_SECONDS" -gt 0 ]; then
    fuzzers=$(cd "$ROOT/tests/fuzz" && ls fuzz_*.c | sed 's/\.c$//' | tr '\n' ' ')
    if CC=clang-14 BUILD_TARGETS="$fuzzers" build "$ROOT/build-fuzz" -DJOBQ_FUZZ=ON -DJOBQ_BUILD_BENCH=OFF \
            -DJOBQ_BUILD_EXAMPLES=OFF -DJOBQ_SANITIZER=address; then
        for f in "$ROOT"/build-fuzz/tests/fuzz_*; do
            [ -x "$f" ] || continue
            name=$(basename "$f"); corpus=$ROOT/tests/fuzz/corpus/${name#fuzz_}
            work=$(mktemp -d)
            if "$f" -max_total_time="$FUZZ_SECONDS" -malloc_limit_mb=256 -rss_limit_mb=2048 \
                    -timeout=1 -print_final_stats=1 -artifact_prefix="$work/" \
                    "$work" "$corpus" >"$work.log" 2>&1; then
                step_ok 1; echo "$name: $(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work.log")"
            else
                step_fail 1 "$name found a problem"; tail -40 "$work.log"
                ls "$work"/crash-* "$work"/oom-* "$work"/timeout-* "$work"/leak-* 2>/dev/null
            fi
            rm -rf "$work" "$work.log"
        done
    else step_fail 1 "fuzz build does not compile"; fi
else
    echo "fuzzing skipped (no clang-14 or JOBQ_FUZZ_SECONDS=0)"
fi

echo "test.sh: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
