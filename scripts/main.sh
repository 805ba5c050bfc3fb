#!/usr/bin/env bash
# The main job.
#  - Offline (PRMBENCH_DATA_DIR set or ../shared/data present) with no model override: the lab
#    (`prmbench lab`, about 20 minutes on 2 free CPU cores): small Qwen2-architecture policies and
#    PRMs trained from scratch on the built-in lab_math and lab_code domains, Monte Carlo labels,
#    every search strategy x {math PRM, code PRM, random, oracle} at budgets 1..16, Table 1,
#    Table 2, figures and the leaderboard in $PRMBENCH_OUTPUT (default runs/lab; rerunning it
#    reuses everything already trained or run).
#  - Otherwise the run matrix: MATH-500 with every search strategy (best-of-N, majority vote,
#    weighted majority, beam search, MCTS, DVTS) under a math PRM and the oracle at compute-matched
#    budgets 2 and 4, then the leaderboard and the accuracy-vs-spend plot. With hub access: the
#    Hugging Face defaults (HuggingFaceH4/MATH-500, Qwen/Qwen2.5-Math-1.5B-Instruct, the math_prm
#    preset: Qwen/Qwen2.5-Math-PRM-7B); offline: local MATH-500 and tiny random models built on the
#    spot (a plumbing check; accuracy ~0).
# Overrides of the run matrix: PRMBENCH_POLICY=hf:ID_OR_DIR, PRMBENCH_RM=SPEC, PRMBENCH_LIMIT=K,
# PRMBENCH_MAX_TOKENS=T; each is independent of the others (set any subset), and setting any of
# them asks for the run matrix (offline too). PRMBENCH_MAIN=lab|matrix picks the job explicitly;
# PRMBENCH_OUTPUT=DIR is the output folder of either.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

main="${PRMBENCH_MAIN:-}"
if [ -z "$main" ]; then
  if [ -n "${PRMBENCH_DATA_DIR:-}" ] && [ -z "${PRMBENCH_POLICY:-}${PRMBENCH_RM:-}${PRMBENCH_LIMIT:-}${PRMBENCH_MAX_TOKENS:-}" ]; then
    main=lab
  else
    main=matrix
  fi
fi
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
