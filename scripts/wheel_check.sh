#!/usr/bin/env bash
# Packaging check: a wheel built from the repo installs into a clean virtual environment and runs
# (plugins found, presets shipped, a replay run graded, a HumanEval+ sample graded in the bwrap
# sandbox from the venv under /tmp) from outside the source tree.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python -m build --wheel --no-isolation --outdir "$work/dist" . > "$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q "torch==2.13.0"
"$work/venv/bin/python" -m pip install -q "$work"/dist/prmbench-*.whl
cd "$work"
export PRMBENCH_STRICT_PLUGINS=1  # a built-in plugin that fails to load from the wheel is a packaging bug
"$work/venv/bin/prmbench" ls strategies | grep -q best_of_n_min
"$work/venv/bin/python" -m prmbench.testing math-pool pool.jsonl --data-dir "$PRMBENCH_DATA_DIR" --problems 5 --samples 4
"$work/venv/bin/prmbench" run --tasks math500 --policy replay:pool.jsonl --rm oracle --strategy best_of_n \
  --budget 4 --output run > run.log
"$work/venv/bin/prmbench" leaderboard run --format csv | head -3
# the synthetic environment registers through the entry point: step-level search from the wheel
"$work/venv/bin/prmbench" run --tasks synthetic --policy synthetic --rm synthetic_prm --strategy mcts,beam_search \
  --budget 4 --limit 3 --output syn > syn.log
# the report page (its CSS/JS ship as package data) and the paper protocol (a shipped config)
"$work/venv/bin/prmbench" report syn --output syn.html 2> report.log
grep -q "prmbenchReport" syn.html && grep -q "trees" syn.html
"$work/venv/bin/prmbench" run --config paper_protocol --tasks synthetic --policy synthetic --rm synthetic_prm,oracle \
  --limit 3 --output paper > paper.log
"$work/venv/bin/prmbench" leaderboard paper --format paper | grep -q "pass@8 (oracle)"
# Monte Carlo step labels from the wheel (prmbench.labels), read back by the label readers
"$work/venv/bin/prmbench" label --task synthetic --policy synthetic --rollouts 2 --limit 3 --output lab/l.jsonl 2> lab.log
"$work/venv/bin/python" -c "from prmbench.labels.readers import read_labels; assert len(list(read_labels('prmbench:lab/l.jsonl'))) == 3"
# the executors ship (prmbench.executors); without the ray extra, --executor ray names it (exit 2)
"$work/venv/bin/python" -c "import prmbench.executors.ray_executor"
set +e
"$work/venv/bin/prmbench" run --tasks synthetic --policy synthetic --rm random --strategy best_of_n --budget 2 \
  --limit 2 --output rayless --executor ray 2> ray.log
code=$?
set -e
[ "$code" = 2 ] && grep -q "prmbench\[ray\]" ray.log || { cat ray.log; exit 1; }
# the training stage ships too (prmbench.training, prmbench.similarity)
"$work/venv/bin/python" -c "import prmbench.training.train_prm, prmbench.training.plot_training, prmbench.similarity"
"$work/venv/bin/prmbench" train-prm --help | grep -q -- --backbone
# step-level tasks (no policy, no strategy) from the wheel, on the shared ProcessBench data
"$work/venv/bin/prmbench" run --tasks processbench_gsm8k,prm800k_test --rm random --limit 10 --output step > step.log
grep -q "processbench_gsm8k" step.log
# a sandboxed HumanEval+ grade from this venv under /tmp: the canonical solution passes and a wrong
# one fails, both under bwrap (whose private /tmp must not hide the interpreter)
"$work/venv/bin/python" - "$PRMBENCH_DATA_DIR/humaneval_plus/HumanEvalPlus-v0.1.10.jsonl.gz" > he.jsonl <<'EOF'
import gzip, json, sys
row = json.loads(gzip.open(sys.argv[1], "rt").readline())
for body in (row["canonical_solution"], "    return False\n"):
    print(json.dumps({"task_id": row["task_id"], "completion": row["prompt"] + body}))
EOF
PRMBENCH_CACHE_DIR="$work/cache" "$work/venv/bin/prmbench" evaluate-samples --task humaneval_plus --samples he.jsonl \
  --output he_graded.jsonl 2> he.log || { cat he.log; exit 1; }
"$work/venv/bin/python" - <<'EOF'
import json
got = [(r["correct"], r["details"]["isolation"]) for r in map(json.loads, open("he_graded.jsonl"))]
assert got == [(True, "bwrap"), (False, "bwrap")], f"sandboxed HumanEval+ grade from a venv under /tmp: {got}"
print("sandboxed HumanEval+ grade from the venv under /tmp: canonical passes, wrong fails (bwrap)")
EOF
echo "wheel check: ok ($(ls "$work"/dist))"
