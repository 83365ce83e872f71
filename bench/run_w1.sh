#!/usr/bin/env bash
# bench/run_w1.sh: W1 (and W1b) for shm://, mq://, raw POSIX mq and Python's
# multiprocessing.JoinableQueue, interleaved in one run (ROUNDS rounds, each
# system once per round), then the median per system and the ratios that
# PERFORMANCE.md sets targets for.
#
#   bench/run_w1.sh [BUILD_DIR]      (default: build)
#   env: N (jobs, default 1000000), PY_N (jobs for Python, default N),
#        ROUNDS (default 3), SYSTEMS (bench_queue systems, default "shm mq rawmq")
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
bench=$build/bench/bench_queue
N=${N:-1000000}
PY_N=${PY_N:-$N}
ROUNDS=${ROUNDS:-3}
SYSTEMS=${SYSTEMS:-shm mq rawmq}

if [ ! -x "$bench" ]; then
  echo "run_w1.sh: $bench not found; build with: cmake --build $build --target bench_queue" >&2
  exit 2
fi

out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "# N=$N PY_N=$PY_N ROUNDS=$ROUNDS load: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$ROUNDS"); do
  for sys in $SYSTEMS; do
    "$bench" -n "$N" -w all "$sys" | tee -a "$out" | grep -v '^{' | grep -v '^workload' || true
  done
  python3 "$here/w1_python.py" "$PY_N" | tee -a "$out" | grep -v '^{' || true
done

python3 - "$out" <<'PY'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    if not line.startswith("{"):
        continue
    r = json.loads(line)
    if "rate" in r:
        rows.setdefault((r["workload"], r["system"]), []).append(r["rate"])
print()
print(f"{'workload':<12} {'system':<14} {'median jobs/s':>14}  runs")
med = {}
for (w, s), rates in sorted(rows.items()):
    med[(w, s)] = statistics.median(rates)
    print(f"{w:<12} {s:<14} {med[(w, s)]:>14.0f}  {len(rates)}")
    print(json.dumps({"workload": w, "system": s, "median_rate": round(med[(w, s)]),
                      "runs": len(rates)}))
def ratio(a, b, target):
    if a in med and b in med and med[b] > 0:
        x = med[a] / med[b]
        ok = "meets" if x >= target else "misses"
        print(f"{a[1]} / {b[1]} ({a[0]}): {x:.1f}x  (target >= {target}x: {ok})")
print()
ratio(("W1", "shm"), ("W1", "python_mp"), 50)
ratio(("W1", "shm"), ("W1", "posix_mq_raw"), 10)
ratio(("W1", "mq"), ("W1", "posix_mq_raw"), 0.8)
PY
