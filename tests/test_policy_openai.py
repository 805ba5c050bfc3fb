"""OpenAIPolicy against a real `transformers serve` (started on 127.0.0.1 by the test) serving
the tiny random Qwen2 model: the shared policy conformance suite, exact step-wise continuation
(identical to the in-process hf backend), stop strings, token counts, seeds, concurrency,
a server killed in the middle of a run, unknown models and unreachable servers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from policy_conformance import PolicyConformance, assert_same
from prmbench.errors import ConfigError
from prmbench.policies.hf import HFPolicy
from prmbench.policies.launcher import free_port
from prmbench.policies.openai import OpenAIPolicy, finish_of
from prmbench.policies.openai_client import ServerUnavailable
from prmbench.types import GenRequest, Message
from serving_support import needs_serve, prmbench_cmd, sampling_model_dir, start_transformers_serve

pytestmark = [needs_serve, pytest.mark.slow]

MSGS_A = (Message("user", "What is 12 * 7 - 19? Think step by step."),)
MSGS_B = (Message("system", "You are a careful mathematician who explains every step."),
          Message("user", "Solve x^2 - 5x + 6 = 0 and give the sum of the roots in \\boxed{}."))


@pytest.fixture(scope="module")
def model_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sampling_model_dir(tiny_model_dir, tmp_path_factory.mktemp("served") / "model")


@pytest.fixture(scope="module")
def server(model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    srv = start_transformers_serve(model_dir, tmp_path_factory.mktemp("serve_logs"))
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def policy(server, model_dir: Path) -> OpenAIPolicy:
    pol = OpenAIPolicy(str(model_dir), base_url=server.command.base_url, max_concurrent_requests=1, retries=2)
    yield pol
    pol.close()


@pytest.fixture(scope="module")
def hf(model_dir: Path) -> HFPolicy:
    return HFPolicy(str(model_dir), batch_size=4)


def chat_ids(tok, messages, prefix: str = "") -> list[int]:
    """Prompt ids straight from transformers (independent of the policy's code)."""
    conv = [{"role": m.role, "content": m.content} for m in messages]
    text = tok.apply_chat_template(conv, add_generation_prompt=True, tokenize=False) + prefix
    return tok(text, add_special_tokens=False)["input_ids"]


class TestOpenAIConformance(PolicyConformance):
    """The shared suite, sampling at temperature 1 through `transformers serve`."""

    max_tokens = 16

    @pytest.fixture(scope="class")
    def problems(self):
        return [("a", MSGS_A), ("b", MSGS_B)]

    def expected_prompt_tokens(self, policy, messages, prefix):
        return len(chat_ids(policy.tokenizer, messages, prefix))


# -- exactness against the in-process backend ---------------------------------------------------
def test_greedy_stepwise_continuation_equals_hf(policy, hf):
    """Greedy continuations of a partial solution, with and without stop strings: the server's
    text, token counts and finish reasons equal the hf backend's, sample for sample."""
    reqs = [GenRequest(messages=MSGS_A, prefix="Step 1: 12 * 7 = 84.\n\nStep 2:", n=2, temperature=0.0,
                       max_tokens=20, seed=3),
            GenRequest(messages=MSGS_B, n=1, temperature=0.0, max_tokens=24, seed=9),
            GenRequest(messages=MSGS_A, prefix="Step 1:", n=1, temperature=0.0, max_tokens=24, seed=1,
                       stop=("e", "\n\n"))]
    ours, theirs = policy.generate(reqs), hf.generate(reqs)
    for a, b in zip(ours, theirs):
        assert_same(a, b)
    assert ours[2][0].finish_reason == "stop" and ours[2][0].stop_string in ("e", "\n\n")


def test_token_counts_match_local_tokenizer(policy, model_dir):
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    req = GenRequest(messages=MSGS_B, prefix="Step 1:", n=2, temperature=1.0, max_tokens=8, seed=4)
    for g in policy.generate([req])[0]:
        assert g.prompt_tokens == len(chat_ids(tok, MSGS_B, "Step 1:"))
        assert 1 <= g.completion_tokens <= 8


def test_seeds_do_not_depend_on_n_or_batching(policy):
    pair = [GenRequest(messages=MSGS_A, n=3, temperature=1.0, max_tokens=12, seed=50),
            GenRequest(messages=MSGS_B, n=2, temperature=1.0, max_tokens=12, seed=7)]
    together = policy.generate(pair)
    alone = [policy.generate([replace(pair[0], n=1, seed=50 + i)])[0][0] for i in range(3)]
    assert_same(together[0], alone)
    assert len({g.text for g in together[0]}) > 1


def test_concurrent_requests_equal_sequential(server, model_dir, policy):
    """Four requests in flight at once return what one at a time returns (greedy: `transformers
    serve` seeds a global generator, so only greedy samples are safe to compare under concurrency)."""
    par = OpenAIPolicy(str(model_dir), base_url=server.command.base_url, max_concurrent_requests=4)
    try:
        reqs = [GenRequest(messages=m, prefix=p, n=2, temperature=0.0, max_tokens=10, seed=1)
                for m in (MSGS_A, MSGS_B) for p in ("", "Step 1:")]
        for a, b in zip(par.generate(reqs), policy.generate(reqs)):
            assert_same(a, b)
    finally:
        par.close()


def test_cache_identity_names_model_and_revision(policy, server, model_dir):
    cfg = policy.config()
    assert cfg["model"] == str(model_dir) and cfg["revision"] is None and cfg["tokenizer"]
    other = OpenAIPolicy(str(model_dir), base_url=server.command.base_url, revision="abc123")
    assert other.cache_id() != policy.cache_id()
    assert other.config()["revision"] == "abc123"


# -- errors ---------------------------------------------------------------------------------------
def test_unknown_model_is_a_clear_error(server, model_dir):
    with pytest.raises(ConfigError) as e:
        OpenAIPolicy("Qwen/not-served", base_url=server.command.base_url, tokenizer=str(model_dir))
    msg = str(e.value)
    assert server.command.base_url in msg and "Qwen/not-served" in msg and str(model_dir) in msg


def test_refused_request_is_a_clear_error(server, model_dir):
    """A request the server refuses (here: a model it is not pinned to) is not retried."""
    pol = OpenAIPolicy("someone/else", base_url=server.command.base_url, tokenizer=str(model_dir),
                       check_model=False, retries=3)
    t0 = time.perf_counter()
    with pytest.raises(ConfigError) as e:
        pol.generate([GenRequest(messages=MSGS_A, max_tokens=2)])
    assert "refused the request (HTTP 400" in str(e.value) and server.command.base_url in str(e.value)
    assert time.perf_counter() - t0 < 5  # no backoff rounds


def test_unreachable_server_names_the_url(model_dir):
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(ServerUnavailable) as e:
        OpenAIPolicy(str(model_dir), base_url=url, retries=1)
    assert url in str(e.value) and "base_url" in str(e.value)


def test_cli_exit_2_for_unreachable_server(model_dir, tmp_path):
    url = f"http://127.0.0.1:{free_port()}/v1"
    proc = subprocess.run(prmbench_cmd("run", "--tasks", "math500", "--policy", f"openai:{model_dir}",
                                       "--policy-args", f"base_url={url},retries=0", "--rm", "oracle",
                                       "--strategy", "best_of_n", "--budget", "1", "--limit", "1",
                                       "--output", str(tmp_path / "run")),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert url in proc.stderr and "Traceback" not in proc.stderr


def test_no_local_tokenizer_is_a_clear_error():
    """Without a tokenizer the chat template cannot be rendered: say which argument gives one."""
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(ConfigError, match="tokenizer=HUB_ID_OR_DIR"):
        OpenAIPolicy("someone/not-in-the-cache", base_url=url)
    with pytest.raises(ConfigError, match="PRMBENCH_TEST_NO_SUCH_KEY"):
        OpenAIPolicy("m", base_url=url, api_key_env="PRMBENCH_TEST_NO_SUCH_KEY", chat_template=False)


def test_prompt_travels_as_text_only_when_the_server_can_reproduce_its_ids(model_dir, tmp_path, shared_models_dir):
    """Byte-level BPE (no bos): text. A SentencePiece tokenizer whose template writes a bos: the
    server would tokenize the text after the bos differently, so the exact ids are sent."""
    from prmbench.testing import build_tiny_model

    url = f"http://127.0.0.1:{free_port()}/v1"
    bpe = OpenAIPolicy(str(model_dir), base_url=url, check_model=False)
    text = bpe.render_prompt(MSGS_A, "Step 1:")
    assert bpe.wire_prompt(text, bpe.prompt_ids(text)) == text
    src = shared_models_dir / "mistralai__Mistral-7B-v0.1"
    if not (src / "tokenizer.json").is_file():
        pytest.skip("shared Mistral tokenizer not found")
    mistral = build_tiny_model(tmp_path / "mistral", arch="mistral", tokenizer_dir=src, seed=0, layers=1, hidden=16)
    sp = OpenAIPolicy(str(mistral), base_url=url, check_model=False)
    text = sp.render_prompt(MSGS_A, "Step 1:")
    ids = sp.prompt_ids(text)
    assert text.startswith(sp.tokenizer.bos_token)
    assert sp.wire_prompt(text, ids) == ids == HFPolicy(str(mistral)).prompt_ids(MSGS_A, "Step 1:")
    assert OpenAIPolicy(str(mistral), base_url=url, check_model=False, prompt_format="text").wire_prompt(text, ids) == text


def test_finish_reasons_of_servers_that_cut_stop_strings():
    """vLLM's stop_reason and SGLang's matched_stop name the stop string they cut away."""
    assert finish_of({"finish_reason": "stop", "stop_reason": "\n\n"}, "abc", ("\n\n",)) == ("abc", "stop", "\n\n")
    assert finish_of({"finish_reason": "stop", "matched_stop": "X"}, "abc", ("X",)) == ("abc", "stop", "X")
    assert finish_of({"finish_reason": "stop", "stop_reason": None}, "abc", ("X",)) == ("abc", "eos", None)
    assert finish_of({"finish_reason": "stop", "stop_reason": 151643}, "abc", ("X",)) == ("abc", "eos", None)
    assert finish_of({"finish_reason": "length"}, "abXc", ("X", "b")) == ("a", "stop", "b")
    assert finish_of({"finish_reason": "length"}, "abc", ("X",)) == ("abc", "length", None)


# -- whole runs ----------------------------------------------------------------------------------
def _records(run: Path) -> list[dict]:
    out = []
    for f in sorted(run.glob("cells/*/samples.jsonl")):
        out += [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
    return out


def test_greedy_run_through_the_server_equals_the_hf_run(server, model_dir, tmp_path):
    """`prmbench run` with best-of-N and beam search at temperature 0: every record (chosen text,
    prompt and generated token counts, calls) through the server equals the in-process one."""
    common = ["--tasks", "math500", "--rm", "oracle", "--strategy", "best_of_n,beam_search", "--budget", "2",
              "--limit", "3", "--max-tokens", "16", "--temperature", "0"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for name, policy_args in (("served", ["--policy", f"openai:{model_dir}", "--policy-args",
                                          f"base_url={server.command.base_url},max_concurrent_requests=1"]),
                              ("local", ["--policy", f"hf:{model_dir}"])):
        proc = subprocess.run(prmbench_cmd("run", *common, *policy_args, "--output", str(tmp_path / name)),
                              capture_output=True, text=True, env=env, timeout=600)
        assert proc.returncode == 0, proc.stderr

    def key(r: dict) -> tuple:
        s = r["spend"]
        return (r["strategy"], r["problem_id"], r["chosen_text"], r["n_candidates"], s["prompt_tokens"],
                s["generated_tokens"], s["policy_calls"], s["policy_flops"])

    served, local = _records(tmp_path / "served"), _records(tmp_path / "local")
    assert len(served) == 6 and [key(r) for r in served] == [key(r) for r in local]
    assert all(r["spend"]["generated_tokens"] > 0 and r["spend"]["policy_flops"] > 0 for r in served)


def test_server_killed_mid_run_loses_nothing_finished(model_dir, tmp_path):
    """The server is killed once the first records are on disk: the run retries, then stops with
    a one-line error naming the URL (exit 2); the finished records stay, and --resume on a fresh
    server completes the run with exactly the problems that were missing."""
    port = free_port()
    server = start_transformers_serve(model_dir, tmp_path, port=port)
    url = server.command.base_url
    run = tmp_path / "run"
    args = ["run", "--tasks", "math500", "--policy", f"openai:{model_dir}",
            "--policy-args", f"base_url={url},retries=2,max_concurrent_requests=1", "--rm", "oracle",
            "--strategy", "beam_search", "--budget", "2", "--limit", "12", "--max-tokens", "12",
            "--output", str(run)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(prmbench_cmd(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 400
        while not _records(run) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert proc.poll() is None, proc.communicate()[1]
        os.killpg(server.pgid, signal.SIGKILL)
        _, err = proc.communicate(timeout=300)
    finally:
        server.stop()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 2, err
    assert url in err and "Traceback" not in err
    finished = _records(run)
    assert 1 <= len(finished) < 12
    assert all(isinstance(r["correct"], bool) and r["spend"]["generated_tokens"] > 0 for r in finished)
    assert json.loads((run / "run.json").read_text())["status"].startswith("failed")

    server = start_transformers_serve(model_dir, tmp_path, port=port)
    try:
        proc2 = subprocess.run(prmbench_cmd(*args, "--resume"), capture_output=True, text=True, env=env, timeout=600)
    finally:
        server.stop()
    assert proc2.returncode == 0, proc2.stderr
    after = _records(run)
    assert len(after) == 12 and len({r["problem_id"] for r in after}) == 12
    assert after[: len(finished)] == finished  # nothing finished was redone or changed
