"""ReplayPolicy: the conformance subset on the real HumanEval CodeGen-16B pool, plus file handling."""

from __future__ import annotations

import gzip
import hashlib
import json
import math
from pathlib import Path

import pytest

from policy_conformance import PolicyConformance
from prmbench.errors import ConfigError, DataError, ModelLoadError
from prmbench.policies.replay import ReplayPolicy
from prmbench.types import GenRequest, Message

POOL = "pools/humaneval_codegen16b_codet_verdicts.jsonl.gz"
MSGS = (Message("system", "Complete the Python function."), Message("user", "def add(a, b):\n"))


@pytest.fixture(scope="module")
def pool_path(shared_data_dir: Path) -> Path:
    path = shared_data_dir / POOL
    if not path.is_file():
        pytest.skip(f"shared pool {path} not found")
    return path


@pytest.fixture(scope="module")
def pool_rows(pool_path: Path) -> dict[str, list[str]]:
    """The pool read directly with gzip + json (independent of ReplayPolicy)."""
    with gzip.open(pool_path, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    return {r["task_id"]: r["completions"] for r in rows}


class TestReplayConformance(PolicyConformance):
    """The suite's checks that apply to stored generations (estimated token counts)."""

    live = False
    stepwise = False

    @pytest.fixture(scope="class")
    def policy(self, shared_data_dir: Path) -> ReplayPolicy:
        path = shared_data_dir / POOL
        if not path.is_file():
            pytest.skip(f"shared pool {path} not found")
        return ReplayPolicy(str(path))

    @pytest.fixture(scope="class")
    def problems(self):
        return [("HumanEval/0", MSGS), ("HumanEval/1", MSGS)]

    def expected_prompt_tokens(self, policy, messages, prefix):
        return sum(math.ceil(len(m.content) / 4) + 4 for m in messages)

    def expected_completion_tokens(self, policy, problem_id, request, i, gen):
        return math.ceil(len(gen.text) / 4)


class TestReplayConformanceExactCounts(TestReplayConformance):
    """The same with a real tokenizer: counts equal the transformers tokenizer's."""

    @pytest.fixture(scope="class")
    def qwen_dir(self, shared_models_dir: Path) -> Path:
        d = shared_models_dir / "Qwen__Qwen2.5-7B-Instruct"
        if not (d / "tokenizer.json").is_file():
            pytest.skip("shared Qwen2.5 tokenizer not found")
        return d

    @pytest.fixture(scope="class")
    def policy(self, shared_data_dir: Path, qwen_dir: Path) -> ReplayPolicy:
        path = shared_data_dir / POOL
        if not path.is_file():
            pytest.skip(f"shared pool {path} not found")
        return ReplayPolicy(str(path), tokenizer=str(qwen_dir))

    @pytest.fixture(scope="class", autouse=True)
    def _tok(self, qwen_dir: Path, request: pytest.FixtureRequest) -> None:
        from transformers import AutoTokenizer

        request.cls.tok = AutoTokenizer.from_pretrained(str(qwen_dir))

    def expected_prompt_tokens(self, policy, messages, prefix):
        conv = [{"role": m.role, "content": m.content} for m in messages]
        return len(self.tok.apply_chat_template(conv, add_generation_prompt=True, tokenize=True,
                                                return_dict=True)["input_ids"])

    def expected_completion_tokens(self, policy, problem_id, request, i, gen):
        return len(self.tok(gen.text, add_special_tokens=False)["input_ids"])

    def test_config_says_exact(self, policy):
        assert policy.config()["token_counts"] == "exact"


# -- real contents ----------------------------------------------------------------------------
def test_serves_stored_completions_in_order(pool_path, pool_rows):
    pol = ReplayPolicy(str(pool_path))
    assert len(pol.problem_ids) == 164 and pol.problem_ids[:3] == ["HumanEval/0", "HumanEval/1", "HumanEval/2"]
    assert all(pol.num_completions(p) == 100 for p in pol.problem_ids)
    reqs = [GenRequest(messages=MSGS, n=100), GenRequest(messages=MSGS, n=5, sample_index=37, seed=9),
            GenRequest(messages=MSGS, n=1, sample_index=99)]
    out = pol.generate(reqs, ["HumanEval/0", "HumanEval/163", "HumanEval/57"])
    assert [g.text for g in out[0]] == pool_rows["HumanEval/0"]
    assert [g.text for g in out[1]] == pool_rows["HumanEval/163"][37:42]
    assert [g.seed for g in out[1]] == [9, 10, 11, 12, 13]
    assert out[2][0].text == pool_rows["HumanEval/57"][99]
    assert out[0][0].text.startswith("    for i in range(len(numbers)):")
    assert {g.finish_reason for gens in out for g in gens} == {"stop"}
    assert all(g.stop_string is None and g.seconds == 0.0 for gens in out for g in gens)


def test_config_follows_the_file(pool_path, tmp_path):
    pol = ReplayPolicy(str(pool_path))
    cfg = pol.config()
    assert cfg["sha256"] == hashlib.sha256(pool_path.read_bytes()).hexdigest()
    assert cfg["sha256"] == "88f8476cd39d753c264771c99996eb64c40d3e122f23ebf967f5ca3207bf8eea"  # pools/README.md
    assert cfg["token_counts"] == "estimate" and cfg["file"] == pool_path.name
    small = tmp_path / "pool.jsonl"
    small.write_text(json.dumps({"problem_id": "p", "completions": ["a"]}) + "\n")
    before = ReplayPolicy(str(small))
    small.write_text(json.dumps({"problem_id": "p", "completions": ["b"]}) + "\n")
    after = ReplayPolicy(str(small))
    before.name = after.name = "replay:pool.jsonl"
    assert before.cache_id() != after.cache_id()


def test_supports_no_stepwise():
    assert ReplayPolicy.supports_stepwise is False


# -- errors -----------------------------------------------------------------------------------
def test_index_beyond_stored_count(pool_path):
    pol = ReplayPolicy(str(pool_path))
    with pytest.raises(DataError) as e:
        pol.generate([GenRequest(messages=MSGS, n=8, sample_index=96)], ["HumanEval/3"])
    msg = str(e.value)
    assert pool_path.name in msg and "'HumanEval/3'" in msg and "100" in msg and "--budget" in msg


def test_unknown_problem(pool_path):
    pol = ReplayPolicy(str(pool_path))
    with pytest.raises(DataError) as e:
        pol.generate([GenRequest(messages=MSGS)], ["HumanEval/164"])
    msg = str(e.value)
    assert pool_path.name in msg and "'HumanEval/164'" in msg and "164 problems" in msg


@pytest.mark.parametrize("kw", [{"prefix": "    x = 1\n"}, {"stop": ("\n\n",)}])
def test_stepwise_requests_are_refused(pool_path, kw):
    with pytest.raises(ConfigError, match="full stored solutions.*hf:"):
        ReplayPolicy(str(pool_path)).generate([GenRequest(messages=MSGS, **kw)], ["HumanEval/0"])


def test_needs_problem_ids(pool_path):
    with pytest.raises(ConfigError, match="problem id"):
        ReplayPolicy(str(pool_path)).generate([GenRequest(messages=MSGS)])


def _write(path: Path, lines: list[str], gz: bool = False) -> Path:
    data = ("\n".join(lines) + "\n").encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def test_plain_jsonl_with_alternative_keys(tmp_path):
    path = _write(tmp_path / "pool.jsonl", [
        json.dumps({"problem_id": "a", "samples": ["x", {"text": "y"}]}), "",
        json.dumps({"task_id": 7, "completions": ["z"]}),
    ])
    pol = ReplayPolicy(str(path))
    out = pol.generate([GenRequest(messages=MSGS, n=2), GenRequest(messages=MSGS)], ["a", "7"])
    assert [g.text for g in out[0]] == ["x", "y"] and out[1][0].text == "z"


def test_gzip_detected_by_content(tmp_path):
    path = _write(tmp_path / "pool.data", [json.dumps({"problem_id": "a", "completions": ["q"]})], gz=True)
    assert ReplayPolicy(str(path)).generate([GenRequest(messages=MSGS)], ["a"])[0][0].text == "q"


@pytest.mark.parametrize("line,match", [
    ("{not json", ":2: not valid JSON"),
    ("[1, 2]", ":2: expected a JSON object"),
    (json.dumps({"completions": ["x"]}), ":2: needs a string `problem_id`"),
    (json.dumps({"problem_id": "b", "completions": "x"}), ":2: needs a list `completions`"),
    (json.dumps({"problem_id": "b", "completions": ["x", 3]}), ":2: completion 1 of problem 'b'"),
    (json.dumps({"problem_id": "a", "completions": ["x"]}), ":2: problem 'a' appears twice"),
])
def test_bad_rows(tmp_path, line, match):
    path = _write(tmp_path / "bad.jsonl", [json.dumps({"problem_id": "a", "completions": ["ok"]}), line])
    with pytest.raises(DataError, match=match) as e:
        ReplayPolicy(str(path))
    assert "bad.jsonl" in str(e.value)


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(DataError, match="replay:"):
        ReplayPolicy(str(tmp_path / "none.jsonl"))
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(DataError, match="no rows"):
        ReplayPolicy(str(tmp_path / "empty.jsonl"))
    (tmp_path / "broken.gz").write_bytes(b"\x1f\x8b\x08garbage")
    with pytest.raises(DataError, match="gzip"):
        ReplayPolicy(str(tmp_path / "broken.gz"))


def test_unloadable_tokenizer(tmp_path):
    path = _write(tmp_path / "pool.jsonl", [json.dumps({"problem_id": "a", "completions": ["q"]})])
    with pytest.raises(ModelLoadError, match="tokenizer"):
        ReplayPolicy(str(path), tokenizer=str(tmp_path / "no_tokenizer_here"))


def test_registry_builds_replay(pool_path):
    from prmbench.plugins import build_registry

    pol = build_registry().build("policy", f"replay:{pool_path}")
    assert isinstance(pol, ReplayPolicy) and pol.name == f"replay:{pool_path}"
