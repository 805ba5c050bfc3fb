"""`prmbench similarity` against a direct, slow computation of the definition.

The reference below does what the definition says with nothing shared with prmbench's code: one
text at a time through the model's ordinary forward (full logits, no padding), `F.backward()`,
the parameters' own `.grad`, explicit per-pair cosines summed over layers, then the mean.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from prmbench.cli import main
from prmbench.errors import ConfigError
from prmbench.similarity import activation_similarity, load_reference_model, load_texts, parse_layers

A = ["Step 1: 3x + 2 = 11, so x = 3. The answer is \\boxed{3}.", "We compute 12 * 7 = 84.",
     "The area is 16\\pi, since r = 4 and the area of a circle is \\pi r^2. So \\boxed{16\\pi}."]
B = ["def add(a, b):\n    return a + b", "def is_prime(n):\n    if n < 2:\n        return False\n    return True"]


@pytest.fixture(scope="module")
def ref_model(tmp_path_factory) -> Path:
    from prmbench.testing import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("sim") / "m", seed=2, hidden=32, layers=4)


def _reference(path: Path, a: list[str], b: list[str], layers: list[int]) -> dict[int, float]:
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(str(path))

    def vectors(text: str) -> dict[int, torch.Tensor]:
        model.zero_grad()
        logits = model(torch.tensor([tok(text)["input_ids"]])).logits
        logits[0, -1].max().backward()
        out = {}
        for li in layers:
            layer = model.model.layers[li]
            out[li] = torch.cat([(p * p.grad).abs().flatten() for p in layer.parameters() if p.ndim == 2]).detach()
        return out

    va, vb = [vectors(t) for t in a], [vectors(t) for t in b]
    return {li: sum(float(torch.nn.functional.cosine_similarity(x[li], y[li], dim=0)) for x in va for y in vb)
            / (len(a) * len(b)) for li in layers}


def test_similarity_equals_the_definition(ref_model):
    want = _reference(ref_model, A, B, [2, 3])
    model, tok = load_reference_model(str(ref_model), device="cpu")
    got = activation_similarity(model, tok, A, B, batch_size=3)
    assert got.layers == (2, 3) and got.meta["batched"]
    assert got.per_layer == pytest.approx(want, abs=1e-5)
    assert got.S == pytest.approx(sum(want.values()), abs=1e-5)
    # one text per backward pass through the parameters' gradients: the same numbers
    slow = activation_similarity(model, tok, A, B, per_text=True)
    assert slow.per_layer == pytest.approx(want, abs=1e-5)
    # a memory budget below one layer's captures: one forward + backward pass per layer, same numbers
    split = activation_similarity(model, tok, A, B, batch_size=2, memory_mb=1e-3)
    assert split.per_layer == pytest.approx(want, abs=1e-5)
    # S is symmetric, and each text matches itself perfectly in every layer
    assert activation_similarity(model, tok, B, A).S == pytest.approx(got.S, abs=1e-5)
    assert activation_similarity(model, tok, A[:1], A[:1]).S == pytest.approx(2.0, abs=1e-5)


def test_layers_override_and_bad_ranges(ref_model):
    want = _reference(ref_model, A[:2], B[:1], [0, 1, 3])
    model, tok = load_reference_model(str(ref_model), device="cpu")
    got = activation_similarity(model, tok, A[:2], B[:1], layers="0,1,-1")
    assert got.layers == (0, 1, 3) and got.per_layer == pytest.approx(want, abs=1e-5)
    assert parse_layers(None, 5) == (2, 3, 4) and parse_layers("1:3", 5) == (1, 2)
    with pytest.raises(ConfigError, match="layers 0..3"):
        parse_layers("7", 4)


def test_cli_writes_the_result_and_reads_run_cells(ref_model, tmp_path, capsys):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text("".join(json.dumps({"text": t}) + "\n" for t in A))
    b.write_text("".join(json.dumps({"text": t}) + "\n" for t in B))
    out = tmp_path / "s.json"
    assert main(["similarity", "--model", str(ref_model), "--a", str(a), "--b", str(b), "--output", str(out),
                 "--device", "cpu", "--batch-size", "2"]) == 0
    data = json.loads(out.read_text())
    want = _reference(ref_model, A, B, [2, 3])
    assert data["S"] == pytest.approx(sum(want.values()), abs=1e-5)
    assert data["per_layer"] == pytest.approx({str(k): v for k, v in want.items()}, abs=1e-5)
    assert data["n_a"] == 3 and data["pairs"] == 6
    # a run's cell: the solutions it chose
    run = tmp_path / "run"
    assert main(["run", "--tasks", "synthetic", "--policy", "synthetic", "--rm", "random", "--strategy", "best_of_n",
                 "--budget", "2", "--limit", "3", "--output", str(run)]) == 0
    cell = json.loads((run / "run.json").read_text())["cells"][0]["id"]
    texts = load_texts(f"{run}:{cell}")
    chosen = [json.loads(line)["chosen_text"] for line in (run / "cells" / cell / "samples.jsonl").read_text().splitlines()]
    assert texts == chosen and len(texts) == 3
    with pytest.raises(ConfigError, match="no cell"):
        load_texts(f"{run}:nope")
    capsys.readouterr()
    assert main(["similarity", "--model", str(ref_model), "--a", "missing.jsonl", "--b", str(b)]) == 2
    assert "neither a JSONL file" in capsys.readouterr().err
