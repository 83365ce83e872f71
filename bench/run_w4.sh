#!/usr/bin/env bash
# bench/run_w4.sh: W4 of PERFORMANCE.md: W1 against a journaled broker
# (bench_broker -j POLICY) with fsync always and batch:50, 1 and 4 producers,
# against no journal, interleaved in one run (ROUNDS rounds, each setup once
# per round), then the median per setup and the ratios PERFORMANCE.md sets
# targets for (always with 4 producers >= 100 k jobs/s; batch:50 >= 0.8x no
# journal). The journal goes to a fresh dir under /tmp.
#
#   bench/run_w4.sh [BUILD_DIR]      (default: build)
#   env: N (jobs, default 200000), ROUNDS (default 3), T (ipc or tcp, default ipc)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
bench=$build/bench/bench_broker
N=${N:-200000}
ROUNDS=${ROUNDS:-3}
T=${T:-ipc}

if [ ! -x "$bench" ]; then
  echo "run_w4.sh: $bench not found; build with: cmake --build $build --target bench_broker" >&2
  exit 2
fi

out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(nproc) CPUs, /tmp on $(df -T /tmp | awk 'NR==2 {print $2}')"
echo "# N=$N ROUNDS=$ROUNDS T=$T load: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$ROUNDS"); do
  for setup in "none 1" "none 4" "always 1" "always 4" "batch:50 1" "batch:50 4" "never 1"; do
    set -- $setup
    j=()
    [ "$1" != none ] && j=(-j "$1")
    "$bench" -n "$N" -w W1 -t "$T" -P "$2" "${j[@]}" 2>&1 | tee -a "$out" | grep -v '^{' || true
  done
done

python3 - "$out" <<'PY'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    if not line.startswith("{"):
        continue
    r = json.loads(line)
    if r.get("workload") == "W1":
        rows.setdefault((r["journal"], r["producers"]), []).append(r["rate"])
print()
print(f"{'journal':<10} {'producers':>9} {'median jobs/s':>14}  runs")
med = {}
for k, rates in sorted(rows.items()):
    med[k] = statistics.median(rates)
    print(f"{k[0]:<10} {k[1]:>9} {med[k]:>14.0f}  {len(rates)}")
    print(json.dumps({"workload": "W4", "journal": k[0], "producers": k[1],
                      "median_rate": round(med[k]), "runs": len(rates)}))
print()
for p in (1, 4):
    if ("always", p) in med:
        ok = "meets" if p != 4 or med[("always", p)] >= 100000 else "misses"
        print(f"always, {p} producer(s): {med[('always', p)]:.0f} jobs/s"
              + (f" (target >= 100000: {ok})" if p == 4 else ""))
    if ("batch:50", p) in med and ("none", p) in med:
        x = med[("batch:50", p)] / med[("none", p)]
        print(f"batch:50 / no journal, {p} producer(s): {x:.2f}x (target >= 0.8x: "
              f"{'meets' if x >= 0.8 else 'misses'})")
PY
