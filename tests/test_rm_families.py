"""Reward-model families on tiny random checkpoints of their real architectures.

Each family is checked against an independent re-implementation of its checkpoint's published
protocol (model card / inference code) run on the full, unpadded model: the adapter must read
exactly the same positions and produce the same numbers, batched or not, whatever the padding.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

from prmbench.reward_models.hf_rm import FormatError, HFRewardModel
from prmbench.reward_models.orm import OutcomeRM
from prmbench.reward_models.qwen_prm import QWEN_MATH_SYSTEM, QwenPRM
from prmbench.reward_models.rlhflow_prm import RLHFlowPRM
from prmbench.reward_models.shepherd_prm import ShepherdPRM
from prmbench.reward_models.value_head_prm import ValueHeadPRM, save_value_head_checkpoint
from prmbench.testing.tiny_rm import build_tiny_rm

CLASSES = {"qwen_prm": QwenPRM, "shepherd_prm": ShepherdPRM, "value_head_prm": ValueHeadPRM,
           "rlhflow_prm": RLHFlowPRM, "orm": OutcomeRM}

QUESTION = "Natalia sold clips to 48 of her friends in April, and then half as many in May. How many in total?"
STEPS = ["In May she sold 48 / 2 = 24 clips.", "In total she sold 48 + 24 = 72 clips.", "The answer is \\boxed{72}."]
ITEMS = [
    (QUESTION, STEPS),
    ("What is 2 + 3?", ["2 + 3 = 5", "So the answer is \\boxed{5}."]),
    ("Compute 7 * 8.", ["7 * 8 = 56."]),
    ("Solve x^2 = 9 for x > 0.", ["x^2 = 9 gives x = 3 or x = -3.", "Only x = 3 is positive.",
                                   "Check: 3^2 = 9.", "Answer: 3"]),
    ("Long question " + "with many words " * 12 + "?", ["short", "also short", "a much longer step " * 6]),
]


@pytest.fixture(scope="session")
def rms(tiny_rm_dirs) -> dict[str, HFRewardModel]:
    return {f: cls(str(tiny_rm_dirs[f])) for f, cls in CLASSES.items()}


# -- separator / tag positions against the real tokenizers ------------------------------------
def test_qwen_prm_reads_at_extra_0_with_the_card_system_prompt(rms):
    rm = rms["qwen_prm"]
    assert rm.sep_id == 151651 and rm.tokenizer.convert_tokens_to_ids("<extra_0>") == 151651
    enc = rm.encode(None, QUESTION, STEPS)
    assert [enc.ids[p] for p in enc.positions] == [151651] * len(STEPS)
    assert enc.ids.count(151651) == len(STEPS)
    text = rm.tokenizer.decode(list(enc.ids))
    assert f"<|im_start|>system\n{QWEN_MATH_SYSTEM}<|im_end|>" in text
    assert "<|im_start|>assistant\n" + "".join(s + "<extra_0>" for s in STEPS) + "<|im_end|>" in text


def test_qwen_prm_step_text_containing_the_separator_gains_no_score(rms):
    rm = rms["qwen_prm"]
    steps = ["a step that mentions <extra_0> in its text", "next"]
    enc = rm.encode(None, QUESTION, steps)
    assert enc.ids.count(151651) == 3 and len(enc.positions) == 2
    assert len(rm.score_items(None, [(QUESTION, steps)])[0].step_scores) == 2


def test_qwen_prm_refuses_the_stock_tokenizer(tiny_rm_dirs, shared_models_dir, tmp_path):
    """The stock Qwen2.5 tokenizer splits "<extra_0>" into 5 tokens: scoring with it would be wrong."""
    bad = tmp_path / "stock"
    bad.mkdir()
    for f in tiny_rm_dirs["qwen_prm"].iterdir():
        (bad / f.name).write_bytes(f.read_bytes())
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (bad / name).write_bytes((shared_models_dir / "Qwen__Qwen2.5-7B-Instruct" / name).read_bytes())
    with pytest.raises(FormatError, match="5 tokens"):
        QwenPRM(str(bad))


def test_shepherd_prm_tag_and_label_ids_are_the_real_ones(rms):
    rm = rms["shepherd_prm"]
    assert rm.tag_id == 12902 and rm.label_ids == (648, 387)
    steps = ["Janet has 16 eggs ки and eats 3.", "Step 2: she sells 9 eggs."]
    enc = rm.encode(None, QUESTION, steps)
    assert enc.ids[0] == rm.tokenizer.bos_token_id == 1
    assert [enc.ids[p] for p in enc.positions] == [12902, 12902]
    assert enc.ids.count(12902) == 3  # the tag inside the first step's text is not read
    text = rm.tokenizer.decode(list(enc.ids), skip_special_tokens=True)
    assert text == f"{QUESTION} Step 1: {steps[0]} ки\nStep 2: she sells 9 eggs. ки"


def test_rlhflow_prm_reads_before_each_assistant_plus(rms):
    rm = rms["rlhflow_prm"]
    plus = rm.label_ids[0]
    enc = rm.encode(None, QUESTION, STEPS)
    assert [enc.ids[p + 1] for p in enc.positions] == [plus] * len(STEPS)
    eot = rm.tokenizer.convert_tokens_to_ids("<|eot_id|>")
    assert all(enc.ids[p + 2] == eot for p in enc.positions)  # "+" is the whole assistant turn


def test_rlhflow_prm_positions_with_steps_the_template_trims(rms):
    """Llama 3.1 templates trim message contents: an indented code step is not in the rendered text
    verbatim, and its untrimmed form may occur in a later turn. Every label is still read where
    its own turn's "+" is: the last position of that prefix conversation before "+<|eot_id|>"."""
    rm = rms["rlhflow_prm"]
    steps = ["Let x = 1.", "    return x", "def g():\n    return x", "def g():\n    return x", "Done."]
    enc = rm.encode(None, QUESTION, steps)
    tok, conv, want = rm.tokenizer, [], []
    for k, s in enumerate(steps):
        conv += [{"role": "user", "content": QUESTION + " " + s if k == 0 else s}, {"role": "assistant", "content": "+"}]
        want.append(len(tok(tok.apply_chat_template(conv, tokenize=False), add_special_tokens=False)["input_ids"]) - 3)
    assert list(enc.positions) == want


def test_rlhflow_prm_refuses_a_template_that_moves_the_label(rms):
    rm = rms["rlhflow_prm"]
    real = rm.tokenizer.chat_template
    rm.tokenizer.chat_template = real.replace("{{ message['content'] | trim }}",
                                              "{% if message['role'] == 'assistant' %}[{% endif %}"
                                              "{{ message['content'] | trim }}")
    try:
        with pytest.raises(FormatError, match="step 1's label '\\+'"):
            rm.encode(None, QUESTION, STEPS)
    finally:
        rm.tokenizer.chat_template = real


def test_value_head_prm_appends_the_step_token_id(rms):
    rm = rms["value_head_prm"]
    nl = rm.tokenizer("\n", add_special_tokens=False)["input_ids"]
    assert nl == [rm.step_id] == [198]
    enc = rm.encode(None, QUESTION, STEPS)
    assert [enc.ids[p] for p in enc.positions] == [198] * len(STEPS)
    assert enc.positions[-1] == len(enc.ids) - 1


# -- scores equal an independent re-implementation of each published protocol ----------------
def _qwen_reference(d: Path, question: str, steps: list[str]) -> list[float]:
    """Qwen2.5-Math-PRM model card: template, encode, softmax of the 2-class head, class 1 at <extra_0>."""
    tok = AutoTokenizer.from_pretrained(str(d))
    msgs = [{"role": "system", "content": QWEN_MATH_SYSTEM}, {"role": "user", "content": question},
            {"role": "assistant", "content": "<extra_0>".join(steps) + "<extra_0>"}]
    ids = tok.encode(tok.apply_chat_template(msgs, tokenize=False), return_tensors="pt")
    hidden = AutoModel.from_pretrained(str(d)).eval()(ids).last_hidden_state[0]
    w = load_file(str(d / "model.safetensors"))
    h = torch.relu(hidden @ w["score.0.weight"].T + w["score.0.bias"]) @ w["score.2.weight"].T + w["score.2.bias"]
    probs = torch.softmax(h, dim=-1)
    return probs[ids[0] == tok.encode("<extra_0>")[0]][:, 1].tolist()


def _shepherd_reference(d: Path, question: str, steps: list[str]) -> list[float]:
    """Math-Shepherd model card: logits[:, :, [+, -]].softmax(-1)[..., 0] at the tag positions."""
    tok = AutoTokenizer.from_pretrained(str(d))
    text = question + " " + "\n".join(f"Step {k}: {s} ки" for k, s in enumerate(steps, start=1))
    ids = torch.tensor([tok.encode(text)])
    logits = AutoModelForCausalLM.from_pretrained(str(d)).eval()(ids).logits[:, :, [648, 387]]
    return logits.softmax(dim=-1)[:, :, 0][ids == 12902].tolist()


def _rlhflow_reference(d: Path, question: str, steps: list[str]) -> list[float]:
    """RLHFlow's "simple version": one conversation per prefix, logits[:, -3, [+, -]]."""
    tok = AutoTokenizer.from_pretrained(str(d))
    model = AutoModelForCausalLM.from_pretrained(str(d)).eval()
    cand = [tok.encode("+", add_special_tokens=False)[-1], tok.encode("-", add_special_tokens=False)[-1]]
    conv, out = [], []
    for k, s in enumerate(steps):
        conv += [{"role": "user", "content": question + " " + s if k == 0 else s}, {"role": "assistant", "content": "+"}]
        ids = tok(tok.apply_chat_template(conv, tokenize=False), add_special_tokens=False, return_tensors="pt")["input_ids"]
        out.append(model(ids).logits[0, -3, cand].softmax(-1)[0].item())
    return out


def _value_head_reference(d: Path, question: str, steps: list[str]) -> list[float]:
    """Skywork's prepare_input + value head: sigmoid(v_head(h)) at the appended step tokens."""
    tok = AutoTokenizer.from_pretrained(str(d))
    step_id = tok.encode("\n")[-1]
    ids = tok.encode((tok.bos_token or "") + question + "\n")
    flags = [0] * len(ids)
    for s in steps:
        ids += tok.encode(s) + [step_id]
        flags += [0] * len(tok.encode(s)) + [1]
    model = AutoModelForCausalLM.from_pretrained(str(d)).eval()
    hidden = model(torch.tensor([ids]), output_hidden_states=True).hidden_states[-1][0]
    w = load_file(str(d / "model.safetensors"))
    value = torch.sigmoid(hidden @ w["v_head.summary.weight"].T + w["v_head.summary.bias"])[:, 0]
    return value[torch.tensor(flags) == 1].tolist()


def _orm_reference(d: Path, question: str, steps: list[str]) -> list[float]:
    """Qwen2.5-Math-RM card: chat template, the head's scalar at the last token (sigmoid by prmbench)."""
    tok = AutoTokenizer.from_pretrained(str(d))
    msgs = [{"role": "user", "content": question}, {"role": "assistant", "content": "\n\n".join(steps)}]
    ids = tok.encode(tok.apply_chat_template(msgs, tokenize=False), return_tensors="pt")
    hidden = AutoModel.from_pretrained(str(d)).eval()(ids).last_hidden_state[0, -1]
    w = load_file(str(d / "model.safetensors"))
    h = torch.relu(hidden @ w["score.0.weight"].T + w["score.0.bias"]) @ w["score.2.weight"].T + w["score.2.bias"]
    return [torch.sigmoid(h)[0].item()]


REFERENCES = {"qwen_prm": _qwen_reference, "shepherd_prm": _shepherd_reference, "rlhflow_prm": _rlhflow_reference,
              "value_head_prm": _value_head_reference, "orm": _orm_reference}


@pytest.mark.parametrize("family", list(CLASSES))
def test_scores_equal_the_published_protocol(family, rms, tiny_rm_dirs):
    with torch.inference_mode():
        for q, steps in ITEMS[:2]:
            want = REFERENCES[family](tiny_rm_dirs[family], q, steps)
            got = rms[family].score_items(None, [(q, steps)])[0]
            assert len(got.step_scores) == len(want) == (1 if family == "orm" else len(steps))
            assert got.step_scores == pytest.approx(want, abs=1e-5)
            assert all(0.0 <= s <= 1.0 for s in got.step_scores)
            assert not got.truncated


# -- batching, padding and batch composition --------------------------------------------------
@pytest.mark.parametrize("family", list(CLASSES))
def test_batched_equals_one_at_a_time_whatever_padding_and_batches(family, tiny_rm_dirs, rms):
    base = rms[family]
    single = [base.score_items(None, [item])[0] for item in ITEMS]
    batched = base.score_items(None, ITEMS)
    left = CLASSES[family](str(tiny_rm_dirs[family]), padding_side="left", batch_size=3)
    left_out = left.score_items(None, ITEMS)
    order = list(range(len(ITEMS)))
    random.Random(0).shuffle(order)
    small = CLASSES[family](str(tiny_rm_dirs[family]), max_batch_tokens=150)
    shuffled = small.score_items(None, [ITEMS[i] for i in order])
    for k, one in enumerate(single):
        for other in (batched[k], left_out[k], shuffled[order.index(k)]):
            assert other.step_scores == pytest.approx(one.step_scores, abs=1e-4)
            assert other.tokens == one.tokens
    assert [len(o.step_scores) for o in single] == [1 if family == "orm" else len(s) for _, s in ITEMS]


def test_batches_respect_the_row_token_and_padding_budgets(tiny_rm_dirs):
    rows = [(i, tuple(range(n)), (), False) for i, n in enumerate([70, 60, 60, 50, 10, 10, 10])]
    loose = QwenPRM(str(tiny_rm_dirs["qwen_prm"]), batch_size=2, max_batch_tokens=130, max_padding=0.9)
    batches = [[len(r[1]) for r in b] for b in loose._batches(rows)]
    assert batches == [[70], [60, 60], [50, 10], [10, 10]]
    assert all(len(b) <= 2 and max(b) * len(b) <= 130 for b in batches)
    tight = QwenPRM(str(tiny_rm_dirs["qwen_prm"]), batch_size=4, max_batch_tokens=1000)  # max_padding 0.05
    batches = [[len(r[1]) for r in b] for b in tight._batches(rows)]
    assert batches == [[70], [60, 60], [50], [10, 10, 10]]


# -- long inputs ----------------------------------------------------------------------------
@pytest.mark.parametrize("family", ["qwen_prm", "shepherd_prm", "value_head_prm", "rlhflow_prm"])
def test_long_inputs_keep_the_leading_steps_and_say_truncated(family, tiny_rm_dirs, rms):
    full = rms[family].score_items(None, [ITEMS[3]])[0]
    enc = rms[family].encode(None, *ITEMS[3])
    cut_at = (enc.positions[1] + enc.positions[2]) // 2 + 1  # room for steps 1-2 only
    short = CLASSES[family](str(tiny_rm_dirs[family]), max_length=cut_at).score_items(None, [ITEMS[3]])[0]
    assert short.truncated and not full.truncated
    assert short.tokens == cut_at
    assert short.step_scores == pytest.approx(full.step_scores[:2], abs=1e-5)  # causal: same numbers


def test_a_truncated_solution_gets_no_outcome_score(tiny_rm_dirs):
    rm = OutcomeRM(str(tiny_rm_dirs["orm"]), max_length=20)
    out = rm.score_items(None, [ITEMS[0]])[0]
    assert out.truncated and out.step_scores == () and out.tokens == 20


def test_max_length_beyond_the_context_is_refused(tiny_rm_dirs):
    from prmbench.errors import ConfigError

    with pytest.raises(ConfigError, match="exceeds the model's context of 4096"):
        QwenPRM(str(tiny_rm_dirs["qwen_prm"]), max_length=5000)


# -- metering and identity -----------------------------------------------------------------
def test_tokens_and_parameters_are_real(rms, tiny_rm_dirs):
    rm = rms["qwen_prm"]
    out = rm.score_items(None, [ITEMS[0]])[0]
    assert out.tokens == len(rm.encode(None, *ITEMS[0]).ids)
    weights = load_file(str(tiny_rm_dirs["qwen_prm"] / "model.safetensors"))
    assert rm.num_parameters == sum(t.numel() for t in weights.values())


def test_cache_id_changes_with_checkpoint_content_and_format(tiny_rm_dirs, tmp_path):
    a = QwenPRM(str(tiny_rm_dirs["qwen_prm"]))
    assert a.cache_id() == QwenPRM(str(tiny_rm_dirs["qwen_prm"])).cache_id()
    assert a.cache_id() != QwenPRM(str(tiny_rm_dirs["qwen_prm"]), system_prompt=None).cache_id()
    assert a.cache_id() != QwenPRM(str(tiny_rm_dirs["qwen_prm"]), max_length=512).cache_id()
    other = build_tiny_rm(tmp_path / "other", "qwen_prm", hidden=32, layers=1, seed=2)
    assert a.cache_id() != QwenPRM(str(other)).cache_id()


# -- value-head checkpoints: save / load round trip -----------------------------------------
def test_prmbench_value_head_checkpoint_round_trips(tiny_rm_dirs, tmp_path):
    src = tiny_rm_dirs["value_head_prm"]
    backbone = AutoModel.from_pretrained(str(src)).eval()
    tok = AutoTokenizer.from_pretrained(str(src))
    torch.manual_seed(0)
    head = torch.nn.Sequential(torch.nn.Linear(32, 32), torch.nn.ReLU(), torch.nn.Linear(32, 1))
    out = save_value_head_checkpoint(tmp_path / "vh", backbone, tok, head, step_token="\n\n")
    meta = json.loads((out / "prmbench_value_head.json").read_text())
    assert meta == {"format": "prmbench-value-head", "format_version": 1, "head": "mlp2", "step_token": "\n\n"}
    rm = ValueHeadPRM(str(out))
    assert rm.step_token == "\n\n" and rm.format_config()["layout"] == "prmbench"
    enc = rm.encode(None, QUESTION, STEPS)
    got = rm.score_items(None, [(QUESTION, STEPS)])[0].step_scores
    with torch.inference_mode():
        hidden = backbone(torch.tensor([enc.ids])).last_hidden_state[0, list(enc.positions)]
        want = torch.sigmoid(head(hidden))[:, 0].tolist()
    assert got == pytest.approx(want, abs=1e-5)
    # saving what was loaded gives the same checkpoint again
    rm._ensure_loaded()
    again = ValueHeadPRM(str(save_value_head_checkpoint(tmp_path / "vh2", rm._backbone, rm.tokenizer, head, "\n\n")))
    assert again.score_items(None, [(QUESTION, STEPS)])[0].step_scores == pytest.approx(got, abs=1e-6)


def test_a_causal_lm_without_value_head_is_refused(tiny_model_dir):
    from prmbench.errors import ModelLoadError

    with pytest.raises(ModelLoadError, match="neither prmbench_value_head.json nor the Skywork value head"):
        ValueHeadPRM(str(tiny_model_dir)).score_items(None, [(QUESTION, STEPS)])


def test_orm_loads_a_standard_sequence_classifier(tiny_model_dir, tmp_path):
    """Skywork-Reward style: *ForSequenceClassification with one label; equals transformers' own pooled logit."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    config = AutoConfig.from_pretrained(str(tiny_model_dir), num_labels=1)
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(config).eval()
    tok = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    model.save_pretrained(str(tmp_path / "rm"))
    tok.save_pretrained(str(tmp_path / "rm"))
    rm = OutcomeRM(str(tmp_path / "rm"), logit_scale=2.0, logit_bias=-0.5)
    msgs = [{"role": "user", "content": QUESTION}, {"role": "assistant", "content": "\n\n".join(STEPS)}]
    ids = tok(tok.apply_chat_template(msgs, tokenize=False), add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        logit = model(ids).logits[0, 0].item()
    got = rm.score_items(None, [(QUESTION, STEPS)])[0]
    assert got.step_scores == pytest.approx([torch.sigmoid(torch.tensor(2.0 * logit - 0.5)).item()], abs=1e-5)
    assert rm.num_parameters == sum(p.numel() for p in model.parameters())
    raw = OutcomeRM(str(tmp_path / "rm"), normalize="none").score_items(None, [(QUESTION, STEPS)])[0]
    assert raw.step_scores == pytest.approx([logit], abs=1e-5)
