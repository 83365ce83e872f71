#!/usr/bin/env bash
# scripts/demo.sh: jobq's main job on a fresh machine: install what is missing,
# build, then run a batch of jobs through a pool of workers and show the
# results and the pool's report.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target jobq >/dev/null
JOBQ=$PWD/build/jobq
echo "== jobq --help"
"$JOBQ" --help
