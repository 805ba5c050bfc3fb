#!/usr/bin/env bash
# The CI regression check: re-run every deterministic CI fixture and require each record's verdict
# and chosen answer to equal the committed baseline's (`prmbench compare --exact`).
#
#   bash scripts/regression_check.sh            # check; exit 1 naming every changed record
#                                               # (cell, problem, old -> new), 2 when a fixture's
#                                               # configuration or components differ from its baseline
#   bash scripts/regression_check.sh --update   # regenerate every baseline after an intended change
#                                               # (prints what changed against the old one first)
#
# Fixtures: one run configuration each in results/ci/*.yaml, baseline in results/baselines/ci/NAME/:
#   math_pool    MATH-500 replay pool x oracle/random x best-of-N (last, min) / majority vote
#   step_search  synthetic step-wise policy x tiny qwen_prm checkpoint / perfect PRM x beam search / MCTS
#   code_pool    HumanEval+ over the real CodeGen-16B pool (sandboxed) x oracle / exec_public x best-of-N / majority
# Inputs (pools, the tiny checkpoint) are rebuilt deterministically in runs/ci/inputs first.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=check
case "${1:-}" in
  "") ;;
  --update) mode=update ;;
  *) echo "usage: bash scripts/regression_check.sh [--update]" >&2; exit 2 ;;
esac
: "${PRMBENCH_DATA_DIR:?set PRMBENCH_DATA_DIR to the shared data folder (math500/, processbench/, pools/): source scripts/setup.sh}"

python -m prmbench.testing ci-inputs runs/ci/inputs --data-dir "$PRMBENCH_DATA_DIR"
status=0
for config in results/ci/*.yaml; do
  name=$(basename "$config" .yaml)
  run=runs/ci/$name baseline=results/baselines/ci/$name
  rm -rf "$run"
  start=$SECONDS
  if ! prmbench run --config "$config" --output "$run" > "runs/ci/$name.log" 2>&1; then
    echo "$name: the fixture run failed; see runs/ci/$name.log" >&2
    tail -n 5 "runs/ci/$name.log" >&2
    exit 2
  fi
  echo "== $name ($((SECONDS - start))s)"
  if [ "$mode" = update ]; then
    if [ -d "$baseline" ]; then
      prmbench compare --exact "$baseline" "$run" || true  # the changes this update makes, for the commit message
    fi
    rm -rf "$baseline" && mkdir -p "$(dirname "$baseline")"
    cp -r "$run" "$baseline" && rm -f "$baseline"/cache.sqlite*
    echo "baseline updated: $baseline"
  else
    rc=0
    prmbench compare --exact "$baseline" "$run" || rc=$?
    [ "$rc" -gt "$status" ] && status=$rc
  fi
done
if [ "$mode" = update ]; then
  for baseline in results/baselines/ci/*/; do  # baselines of fixtures that no longer exist
    name=$(basename "$baseline")
    [ -f "results/ci/$name.yaml" ] || { rm -rf "$baseline"; echo "baseline removed: $baseline"; }
  done
  echo "commit results/baselines/ci with the change that moved the records"
fi
if [ "$mode" = check ]; then
  case $status in
    0) echo "regression check passed: every fixture record matches its baseline" ;;
    1) echo "REGRESSION: records differ from the baseline (listed above). If the change is intended," \
            "regenerate the baselines: bash scripts/regression_check.sh --update" >&2 ;;
    *) echo "regression check refused: a fixture's configuration differs from its baseline (see above);" \
            "if intended, regenerate: bash scripts/regression_check.sh --update" >&2 ;;
  esac
fi
exit $status
