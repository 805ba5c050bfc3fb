#!/usr/bin/env bash
# The main job: MATH-500 with every search strategy (best-of-N, majority vote, weighted majority,
# beam search, MCTS, DVTS) under a math PRM and the oracle at compute-matched budgets 2 and 4,
# then the leaderboard and the accuracy-vs-spend plot.
#  - Offline (PRMBENCH_DATA_DIR set or ../shared/data present): local MATH-500, a tiny random
#    Qwen2-architecture policy and a tiny random Qwen2.5-Math-PRM-architecture reward model built
#    on the spot (plumbing check; accuracy ~0).
#  - Elsewhere: the Hugging Face hub defaults (HuggingFaceH4/MATH-500, Qwen/Qwen2.5-Math-1.5B-Instruct,
#    the math_prm preset: Qwen/Qwen2.5-Math-PRM-7B).
# Override with PRMBENCH_POLICY=hf:ID_OR_DIR, PRMBENCH_RM=SPEC, PRMBENCH_LIMIT=K, PRMBENCH_MAX_TOKENS=T,
# PRMBENCH_OUTPUT=DIR; each is independent of the others (set any subset).
# PRMBENCH_MAIN=lab runs the lab instead (`prmbench lab --output ${PRMBENCH_OUTPUT:-runs/lab}`: models
# trained from scratch on the built-in lab domains, offline; see the README's lab section). It is
# not the offline default yet: the full lab's PRMs do not yet beat random selection (issue 13).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

main="${PRMBENCH_MAIN:-matrix}"
case "$main" in
  lab)
    export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
    out="${PRMBENCH_OUTPUT:-runs/lab}"
    prmbench lab --output "$out"
    echo "lab: $out/tables.md  leaderboard: $out/leaderboard.md  figures: $out/figures/  summary: $out/lab_summary.json"
    exit 0 ;;
  matrix) ;;
  *) echo "main.sh: PRMBENCH_MAIN must be lab or matrix (got '$main')" >&2; exit 2 ;;
esac

# Each override is independent: the policy and the reward model are chosen separately, and a
# component not overridden keeps its default for the data source in use.
offline=0
if [ -n "${PRMBENCH_DATA_DIR:-}" ]; then
  offline=1
  export HF_DATASETS_OFFLINE=1
  # the built-in tiny models need no hub; an overridden model may be a hub id
  [ -z "${PRMBENCH_POLICY:-}${PRMBENCH_RM:-}" ] && export HF_HUB_OFFLINE=1
fi
if [ -n "${PRMBENCH_POLICY:-}" ]; then
  policy="$PRMBENCH_POLICY"
elif [ "$offline" = 1 ]; then
  tok=()
  [ -n "${PRMBENCH_MODELS_DIR:-}" ] && [ -d "$PRMBENCH_MODELS_DIR/Qwen__Qwen2.5-7B-Instruct" ] && tok=(--tokenizer "$PRMBENCH_MODELS_DIR/Qwen__Qwen2.5-7B-Instruct")
  [ -f runs/tiny-model/config.json ] || python -m prmbench.testing tiny-model runs/tiny-model "${tok[@]}"
  policy="hf:runs/tiny-model"
else
  policy="hf:Qwen/Qwen2.5-Math-1.5B-Instruct"
fi
if [ -n "${PRMBENCH_RM:-}" ]; then
  rm_spec="$PRMBENCH_RM"
elif [ "$offline" = 1 ]; then
  [ -f runs/tiny-prm/config.json ] || python -m prmbench.testing tiny-rm --family qwen_prm runs/tiny-prm
  rm_spec="qwen_prm:runs/tiny-prm"
else
  rm_spec="math_prm"
fi
out="${PRMBENCH_OUTPUT:-runs/main-$(date +%Y%m%d-%H%M%S)}"
prmbench run --tasks math500 --policy "$policy" --rm "$rm_spec",oracle \
  --strategy best_of_n,majority_vote,weighted_majority,beam_search,mcts,dvts \
  --budget 2,4 --limit "${PRMBENCH_LIMIT:-5}" --max-tokens "${PRMBENCH_MAX_TOKENS:-48}" --output "$out"
prmbench leaderboard "$out" --format csv --output "$out/leaderboard.csv" --plot "$out/accuracy_vs_compute.png"
echo "leaderboard: $out/leaderboard.csv  plot: $out/accuracy_vs_compute.png"
