#!/usr/bin/env bash
# The main job: MATH-500, best-of-N and majority vote under the oracle and random reward models at
# budgets 1 and 4, then the leaderboard and the accuracy-vs-compute plot.
#  - Offline (PRMBENCH_DATA_DIR set or ../shared/data present): local MATH-500 and a tiny random
#    Qwen2-architecture model built on the spot (plumbing check; its accuracy is ~0).
#  - Elsewhere: the Hugging Face hub defaults (HuggingFaceH4/MATH-500, Qwen/Qwen2.5-Math-1.5B-Instruct).
# Override with PRMBENCH_POLICY=hf:ID_OR_DIR, PRMBENCH_LIMIT=K, PRMBENCH_OUTPUT=DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

if [ -n "${PRMBENCH_POLICY:-}" ]; then
  policy="$PRMBENCH_POLICY"
elif [ -n "${PRMBENCH_DATA_DIR:-}" ]; then
  tok=()
  [ -n "${PRMBENCH_MODELS_DIR:-}" ] && [ -d "$PRMBENCH_MODELS_DIR/Qwen__Qwen2.5-7B-Instruct" ] && tok=(--tokenizer "$PRMBENCH_MODELS_DIR/Qwen__Qwen2.5-7B-Instruct")
  [ -f runs/tiny-model/config.json ] || python -m prmbench.testing tiny-model runs/tiny-model "${tok[@]}"
  policy="hf:runs/tiny-model"
  export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
else
  policy="hf:Qwen/Qwen2.5-Math-1.5B-Instruct"
fi
out="${PRMBENCH_OUTPUT:-runs/main-$(date +%Y%m%d-%H%M%S)}"
prmbench run --tasks math500 --policy "$policy" --rm oracle,random --strategy best_of_n,majority_vote \
  --budget 1,4 --limit "${PRMBENCH_LIMIT:-10}" --max-tokens "${PRMBENCH_MAX_TOKENS:-64}" --output "$out"
prmbench leaderboard "$out" --format csv --output "$out/leaderboard.csv" --plot "$out/accuracy_vs_compute.png"
echo "leaderboard: $out/leaderboard.csv  plot: $out/accuracy_vs_compute.png"
