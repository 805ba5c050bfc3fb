#!/usr/bin/env bash
# Re-runs the CI configuration and compares it with the committed baseline (exit 1 on regression).
# To refresh the baseline after an intended change: bash scripts/regression_check.sh --update
set -euo pipefail
cd "$(dirname "$0")/.."
: "${PRMBENCH_DATA_DIR:?set PRMBENCH_DATA_DIR to the shared data folder (math500/, processbench/)}"
mkdir -p runs/ci
python -m prmbench.testing math-pool runs/ci/pool.jsonl --data-dir "$PRMBENCH_DATA_DIR" --problems 30 --samples 8 --seed 0
rm -rf runs/ci/run
prmbench run --config results/ci_config.yaml --output runs/ci/run > runs/ci/run.log
if [ "${1:-}" = "--update" ]; then
  rm -rf results/baselines/ci && mkdir -p results/baselines
  cp -r runs/ci/run results/baselines/ci && rm -f results/baselines/ci/cache.sqlite*
  echo "baseline updated: results/baselines/ci"
  exit 0
fi
prmbench compare results/baselines/ci runs/ci/run --max-drop 0
