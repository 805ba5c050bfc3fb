"""`prmbench train-prm` on a tiny random Qwen2 backbone and a slice of ProcessBench GSM8K.

The checks recompute what training claims from independent pieces: the initial model's loss
from a fresh head with the same seed, the FLOPs from the parameter count and the tokens the data
holds, the saved checkpoint's scores from the Trainer's own checkpoint weights.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoConfig, AutoModel, AutoTokenizer

from prmbench.cli import main
from prmbench.errors import ConfigError, DataError
from prmbench.labels.readers import read_labels
from prmbench.reward_models.value_head_prm import ValueHeadPRM, encode_value_head
from prmbench.training.data import Collator, ExampleDataset, build_training_data, encode_solution
from prmbench.training.flops import lookup_pretrain_tokens, pretrain_info, training_flops
from prmbench.training.model import IGNORE, ValueHeadModel, load_training_backbone
from prmbench.training.train_prm import TrainConfig, train_prm

N_ROWS = 24
MAX_LENGTH = 320


@pytest.fixture(scope="module")
def backbone(tmp_path_factory) -> Path:
    from prmbench.testing import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("bb") / "tiny", seed=0, hidden=32, layers=1)


@pytest.fixture(scope="module")
def gsm8k_slice(shared_data_dir, tmp_path_factory) -> Path:
    rows = json.loads((shared_data_dir / "processbench" / "gsm8k.json").read_text())[:N_ROWS]
    path = tmp_path_factory.mktemp("data") / "gsm8k_slice.json"
    path.write_text(json.dumps(rows))
    return path


def _config(backbone: Path, data: Path, out: Path, **kw) -> TrainConfig:
    base = dict(backbone=str(backbone), data=f"processbench:{data}", output=str(out), max_steps=12, batch_size=8,
                max_length=MAX_LENGTH, save_every=6, log_every=3, head_learning_rate=3e-3, learning_rate=1e-3,
                pretrain_tokens=0, device="cpu")
    base.update(kw)
    return TrainConfig(**base)


def _examples(backbone: Path, data: Path, max_length: int = MAX_LENGTH):
    tok = AutoTokenizer.from_pretrained(str(backbone))
    return build_training_data([("processbench", str(data))], tok, tok("\n", add_special_tokens=False)["input_ids"][-1],
                               max_length)


@pytest.fixture(scope="module")
def trained(backbone, gsm8k_slice, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "prm"
    train_prm(_config(backbone, gsm8k_slice, out))
    return out


def _log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "training_log.jsonl").read_text().splitlines()]


def _full_loss(model: torch.nn.Module, examples) -> float:
    batch = Collator(0)([ExampleDataset(examples)[i] for i in range(len(examples))])
    with torch.no_grad():
        return float(model(**batch)["loss"])


# -- training ----------------------------------------------------------------------------------
def test_training_lowers_the_loss_on_the_training_data(trained, backbone, gsm8k_slice):
    data = _examples(backbone, gsm8k_slice)
    torch.manual_seed(0)  # the run's seed: the same fresh head
    initial = ValueHeadModel(*load_training_backbone(backbone)).eval()
    before = _full_loss(initial, data.examples)
    # the trained weights, as the final checkpoint holds them
    rm = ValueHeadPRM(str(trained), device="cpu")
    rm._ensure_loaded()
    head = torch.nn.Sequential(torch.nn.Linear(32, 32), torch.nn.ReLU(), torch.nn.Linear(32, 1))
    head.load_state_dict(load_file(str(trained / "value_head.safetensors")))
    after = _full_loss(ValueHeadModel(rm._backbone, head).eval(), data.examples)
    assert after < 0.8 * before, (before, after)
    log = _log(trained)
    assert [r["step"] for r in log] == [1, 3, 6, 9, 12]
    assert log[-1]["loss"] < log[0]["loss"]


def test_flops_and_tokens_are_recorded_as_6_n_d(trained, backbone, gsm8k_slice):
    record = json.loads((trained / "prmbench_training.json").read_text())
    data = _examples(backbone, gsm8k_slice)
    n_backbone = sum(p.numel() for p in AutoModel.from_pretrained(str(backbone)).parameters())
    assert record["backbone_parameters"] == n_backbone
    assert record["num_parameters"] == n_backbone + 32 * 32 + 32 + 32 + 1
    # whole epochs (solutions whose first step tag lies beyond MAX_LENGTH are skipped): 12 steps of 8
    # solutions pass over every token of the data 12 / steps-per-epoch times
    per_epoch = math.ceil(len(data.examples) / 8)
    assert 12 % per_epoch == 0
    tokens = sum(len(e.ids) for e in data.examples)
    assert record["train_tokens"] == 12 // per_epoch * tokens == 12 // per_epoch * record["data"][0]["tokens"]
    assert record["train_flops"] == 6 * record["num_parameters"] * record["train_tokens"]
    assert record["status"] == "complete" and record["steps"] == 12
    assert record["pretrain_tokens"] == 0 and record["pretrain_flops"] == 0
    assert record["data"][0]["solutions"] == N_ROWS and record["data"][0]["sha256"]
    for row in _log(trained):
        assert row["train_flops"] == 6 * record["num_parameters"] * row["train_tokens"]
    assert _log(trained)[-1]["train_tokens"] == record["train_tokens"]


def test_checkpoint_round_trip_scores_every_step_in_prmbench_score(trained, gsm8k_slice, tmp_path, capsys):
    out = tmp_path / "scores.jsonl"
    assert main(["score", "--rm", f"value_head_prm:{trained}", "--samples", str(gsm8k_slice), "--output", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == N_ROWS and all(len(r["step_scores"]) == len(r["steps"]) for r in rows)
    # the same numbers from the Trainer's own final checkpoint (its state dict: backbone.* + head.*)
    state = load_file(str(trained / "checkpoint-12" / "model.safetensors"))
    body = AutoModel.from_config(AutoConfig.from_pretrained(str(trained)))
    body.load_state_dict({k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")})
    head = torch.nn.Sequential(torch.nn.Linear(32, 32), torch.nn.ReLU(), torch.nn.Linear(32, 1))
    head.load_state_dict({k[len("head."):]: v for k, v in state.items() if k.startswith("head.")})
    body.eval()
    tok = AutoTokenizer.from_pretrained(str(trained))
    for r in rows[:6]:
        enc = encode_value_head(tok, tok("\n", add_special_tokens=False)["input_ids"][-1], r["problem"], r["steps"])
        with torch.no_grad():
            h = body(torch.tensor([enc.ids])).last_hidden_state[0, list(enc.positions)]
            want = torch.sigmoid(head(h))[:, 0].tolist()
        assert r["step_scores"] == pytest.approx(want, abs=1e-5)


def test_resume_from_a_checkpoint_reaches_the_uninterrupted_result(trained, backbone, gsm8k_slice, tmp_path):
    out = tmp_path / "prm"
    shutil.copytree(trained, out)
    # as if the run had been killed after its step-6 checkpoint: later files are gone
    shutil.rmtree(out / "checkpoint-12")
    for f in ("model.safetensors", "value_head.safetensors", "prmbench_value_head.json"):
        (out / f).unlink()
    with pytest.raises(ConfigError, match="already holds a training run"):
        train_prm(_config(backbone, gsm8k_slice, out))
    with pytest.raises(ConfigError, match="different settings.*learning_rate"):
        train_prm(_config(backbone, gsm8k_slice, out, resume=True, learning_rate=5e-4))
    train_prm(_config(backbone, gsm8k_slice, out, resume=True))
    a = load_file(str(trained / "value_head.safetensors"))
    b = load_file(str(out / "value_head.safetensors"))
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-6), k
    old, new = _log(trained), _log(out)
    assert [r["step"] for r in new] == [r["step"] for r in old]
    assert [r["train_tokens"] for r in new] == [r["train_tokens"] for r in old]
    assert [r["loss"] for r in new] == pytest.approx([r["loss"] for r in old], abs=1e-5)
    assert json.loads((out / "prmbench_training.json").read_text())["train_tokens"] == \
        json.loads((trained / "prmbench_training.json").read_text())["train_tokens"]


def test_lora_with_gradient_checkpointing_trains_adapters_and_saves_a_merged_backbone(backbone, gsm8k_slice, tmp_path):
    pytest.importorskip("peft")
    out = tmp_path / "lora"
    train_prm(_config(backbone, gsm8k_slice, out, max_steps=2, lora=True, lora_r=4, gradient_checkpointing=True))
    record = json.loads((out / "prmbench_training.json").read_text())
    assert record["trainable_parameters"] < record["num_parameters"]
    rm = ValueHeadPRM(str(out), device="cpu")  # a plain backbone: the adapters were merged
    rows = json.loads(gsm8k_slice.read_text())[:2]
    outs = rm.score_items(None, [(r["problem"], r["steps"]) for r in rows])
    assert [len(o.step_scores) for o in outs] == [len(r["steps"]) for r in rows]


def test_lora_without_peft_names_the_extra(backbone, gsm8k_slice, tmp_path, monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "peft", None)
    code = main(["train-prm", "--backbone", str(backbone), "--data", f"processbench:{gsm8k_slice}",
                 "--output", str(tmp_path / "x"), "--lora", "--max-steps", "1", "--device", "cpu"])
    assert code == 2 and "pip install 'prmbench[lora]'" in capsys.readouterr().err


@pytest.mark.parametrize("data,msg", [("gsm8k.json", "FMT:PATH"), ("nope:x.json", "unknown format"),
                                      ("processbench:/no/such.json", "does not exist")])
def test_bad_data_specs_are_one_line_errors(backbone, tmp_path, capsys, data, msg):
    code = main(["train-prm", "--backbone", str(backbone), "--data", data, "--output", str(tmp_path / "x")])
    assert code == 2 and msg in capsys.readouterr().err


# -- pieces ------------------------------------------------------------------------------------
def test_the_loss_is_bce_at_the_labelled_step_tags_with_soft_labels(backbone):
    torch.manual_seed(3)
    model = ValueHeadModel(*load_training_backbone(backbone)).eval()
    tok = AutoTokenizer.from_pretrained(str(backbone))
    step_id = tok("\n", add_special_tokens=False)["input_ids"][-1]
    a, _ = encode_solution(tok, step_id, "What is 2+3?", ["2+3=5", "so 5"], [0.75, None], 512)
    b, _ = encode_solution(tok, step_id, "Compute 7*8.", ["7*8=54", "no", "54"], [1.0, 0.25, 0.0], 512)
    assert a.labels == (0.75,) and a.ids[a.positions[0]] == step_id and len(a.ids) == a.positions[-1] + 1
    batch = Collator(0)([ExampleDataset([a, b])[i] for i in range(2)])
    assert int((batch["labels"] != IGNORE).sum()) == 4
    with torch.no_grad():
        got = float(model(**batch)["loss"])
    want = []
    with torch.no_grad():
        for ex in (a, b):
            h = model.backbone(torch.tensor([ex.ids])).last_hidden_state[0, list(ex.positions)]
            p = torch.sigmoid(model.head(h))[:, 0]
            want += [-(y * math.log(q) + (1 - y) * math.log(1 - q)) for y, q in zip(ex.labels, p.tolist())]
    assert got == pytest.approx(sum(want) / len(want), rel=1e-5)


def test_encoding_drops_unlabelled_tails_cut_steps_and_bad_labels(backbone):
    tok = AutoTokenizer.from_pretrained(str(backbone))
    step_id = tok("\n", add_special_tokens=False)["input_ids"][-1]
    ex, cut = encode_solution(tok, step_id, "Q", ["a step", "another step"], [None, None], 512)
    assert ex is None and cut == 0
    ex, cut = encode_solution(tok, step_id, "Q", ["a step"] * 40, [1.0] * 40, 30)
    assert cut > 0 and all(p < 30 for p in ex.positions) and len(ex.labels) == 40 - cut
    with pytest.raises(DataError, match="outside"):
        encode_solution(tok, step_id, "Q", ["a"], [1.5], 512)


def test_training_data_matches_the_reader(backbone, gsm8k_slice):
    data = _examples(backbone, gsm8k_slice, max_length=100_000)
    assert data.sources[0].steps_cut == 0 and data.sources[0].used == N_ROWS
    sols = list(read_labels(f"processbench:{gsm8k_slice}"))
    labelled = sum(sum(v is not None for v in s.labels) for s in sols)
    assert sum(len(e.labels) for e in data.examples) == labelled == data.sources[0].labelled_steps
    positive = sum(sum(v for v in s.labels if v is not None) for s in sols)
    assert data.sources[0].positive_share == pytest.approx(positive / labelled)


def test_pretraining_table_and_override():
    assert lookup_pretrain_tokens(["Qwen/Qwen2.5-0.5B"])[0] == 18e12
    assert lookup_pretrain_tokens(["/models/Qwen__Qwen2.5-Math-7B"])[0] == 19e12
    assert lookup_pretrain_tokens(["meta-llama/Llama-2-7b-hf"])[0] == 2e12
    assert lookup_pretrain_tokens(["Qwen/Qwen2-7B"])[0] == 7e12
    assert lookup_pretrain_tokens(["my-own-model"]) is None
    info = pretrain_info(1000, ["Qwen/Qwen2.5-0.5B"], None)
    assert info.flops == 6 * 1000 * 18e12 and info.source.startswith("table:")
    assert pretrain_info(1000, ["Qwen/Qwen2.5-0.5B"], 5.0).flops == training_flops(1000, 5.0) == 30000.0
    unknown = pretrain_info(1000, ["x"], None)
    assert unknown.flops is None and "--pretrain-tokens" in unknown.source


def test_eval_task_metrics_in_the_log_match_the_saved_checkpoint(backbone, gsm8k_slice, tmp_path):
    from prmbench.step_eval import evaluate_step_task

    out = tmp_path / "ev"
    train_prm(_config(backbone, gsm8k_slice, out, max_steps=2, eval_task="processbench_gsm8k", eval_every=2,
                      eval_limit=4))
    evals = [r for r in _log(out) if "eval" in r]
    assert [r["step"] for r in evals] == [0, 2]
    again = evaluate_step_task("processbench_gsm8k", ValueHeadPRM(str(out), device="cpu"), limit=4)
    assert evals[-1]["eval"]["auroc"] == pytest.approx(again["auroc"], abs=1e-9)
    assert evals[-1]["eval"]["f1"] == again["f1"] and evals[0]["eval"]["n"] == again["n"]


def test_plot_training_draws_steps_and_flops_from_the_logs(backbone, gsm8k_slice, tmp_path, capsys):
    from prmbench.training.plot_training import points

    runs = []
    for name, pretrain in (("small", 0), ("big", 1e6)):
        out = tmp_path / name
        train_prm(_config(backbone, gsm8k_slice, out, max_steps=2, eval_task="processbench_gsm8k", eval_every=1,
                          eval_limit=2, pretrain_tokens=pretrain))
        runs.append(out)
    metric, pts = points(runs)
    assert metric == "f1" and [p.step for p in pts] == [0, 1, 2, 0, 1, 2]
    record = json.loads((runs[1] / "prmbench_training.json").read_text())
    log = [r for r in _log(runs[1]) if "eval" in r]
    assert [p.total_flops for p in pts[3:]] == [record["pretrain_flops"] + r["train_flops"] for r in log]
    assert record["pretrain_flops"] == 6 * record["backbone_parameters"] * 1e6
    code = main(["plot-training", *map(str, runs), "--output", str(tmp_path / "plots" / "p"), "--metric", "auroc"])
    assert code == 0
    assert (tmp_path / "plots" / "p_steps.png").stat().st_size > 1000
    assert (tmp_path / "plots" / "p_flops.png").stat().st_size > 1000
    assert "auroc" in capsys.readouterr().out
    assert main(["plot-training", str(backbone)]) == 2


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_sums_tokens_over_ranks(backbone, gsm8k_slice, tmp_path):
    import os
    import subprocess
    import sys

    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "prmbench", "train-prm",
           "--backbone", str(backbone), "--data", f"processbench:{gsm8k_slice}", "--output", str(out),
           "--max-steps", "4", "--batch-size", "4", "--max-length", str(MAX_LENGTH), "--device", "cpu",
           "--log-every", "1", "--pretrain-tokens", "0"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((out / "prmbench_training.json").read_text())
    data = _examples(backbone, gsm8k_slice)
    lengths = [len(e.ids) for e in data.examples]
    # 2 ranks x 4 solutions x 4 steps = 32 slots; the distributed sampler pads each epoch to a
    # multiple of 8 by repeating solutions, so every solution is seen at least 32 // n times
    n = len(lengths)
    epochs, extra = divmod(32, n + (-n % 8))
    assert extra == 0
    least = epochs * sum(lengths)
    assert least <= record["train_tokens"] <= least + epochs * (-n % 8) * max(lengths)
    assert record["train_tokens"] == _log(out)[-1]["train_tokens"]
    assert proc.stderr.count("solutions, ") == 1  # one rank reports
    assert len(ValueHeadPRM(str(out), device="cpu").score_items(None, [("Q", ["a", "b"])])[0].step_scores) == 2


def test_resume_before_the_first_checkpoint_starts_over_without_duplicate_rows(backbone, gsm8k_slice, tmp_path):
    out = tmp_path / "early"
    cfg = _config(backbone, gsm8k_slice, out, max_steps=2, log_every=1, eval_task="processbench_gsm8k",
                  eval_every=2, eval_limit=2)
    train_prm(cfg)
    first = _log(out)
    shutil.rmtree(out / "checkpoint-2")  # killed before its first save
    train_prm(dataclasses.replace(cfg, resume=True))
    again = _log(out)
    assert [(r["step"], "eval" in r) for r in again] == [(r["step"], "eval" in r) for r in first]
    assert [(0, True), (1, False)] == [(r["step"], "eval" in r) for r in again][:2]


def test_a_mixture_records_every_source(backbone, gsm8k_slice, shared_data_dir):
    from prmbench.training.data import parse_data_specs

    shepherd = shared_data_dir / "math_shepherd" / "samples_math_shepherd.jsonl"
    prm800k = shared_data_dir / "prm800k" / "samples_prm800k.jsonl"
    specs = parse_data_specs(f"processbench:{gsm8k_slice},math_shepherd:{shepherd},prm800k:{prm800k}")
    tok = AutoTokenizer.from_pretrained(str(backbone))
    data = build_training_data(specs, tok, tok("\n", add_special_tokens=False)["input_ids"][-1], 100_000)
    assert [s.format for s in data.sources] == ["processbench", "math_shepherd", "prm800k"]
    for src in data.sources:
        sols = list(read_labels(src.spec))
        mine = [e for e in data.examples if e.source == src.spec]
        assert src.solutions == len(sols) and src.used == len(mine) == sum(
            any(v is not None for v in s.labels) for s in sols)
        assert src.labelled_steps == sum(len(e.labels) for e in mine) > 0
