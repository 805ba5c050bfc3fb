"""A reusable conformance suite for Policy backends (prmbench.interfaces.Policy).

Use it from a test module:

    from policy_conformance import PolicyConformance

    class TestMyPolicy(PolicyConformance):
        @pytest.fixture(scope="class")
        def policy(self):
            return MyPolicy(...)

        @pytest.fixture(scope="class")
        def problems(self):
            return [("p1", (Message("user", "2+2?"),)), ("p2", (Message("user", "3*3?"),))]

and set the class attributes that describe the backend:

- `live`: the backend samples (honours max_tokens and seeds, counts an eos token as generated).
  False for backends that serve stored generations (replay), which skip those checks.
- `stepwise`: prefixes and stop strings work. When False, the suite checks that both raise
  ConfigError instead.
- `max_tokens`, `temperature`, `top_p`: the sampling settings the checks use.

Override `expected_prompt_tokens` / `expected_completion_tokens` to return exact counts computed
independently (e.g. with the transformers tokenizer); returning None skips that comparison.

What every backend must do (the Policy contract in prmbench.types / prmbench.interfaces):
sample i of an n-sample request equals the single-sample request with seed + i and
sample_index + i; the same request gives the same output; `seed` of a generation is its own seed;
finish reasons are "stop" / "eos" / "length" with `stop_string` set exactly for stop strings;
text is cut before the stop string; completion_tokens <= max_tokens.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Sequence

import pytest

from prmbench.errors import ConfigError
from prmbench.interfaces import Policy
from prmbench.types import GenRequest, Generation, Message

Problems = Sequence[tuple[str, tuple[Message, ...]]]

FINISH_REASONS = {"stop", "eos", "length"}


def same(a: Generation, b: Generation) -> bool:
    """Whether two generations are equal apart from the measured wall time."""
    return replace(a, seconds=0.0) == replace(b, seconds=0.0)


def assert_same(a: Sequence[Generation], b: Sequence[Generation]) -> None:
    """Assert two lists of generations are equal apart from wall time, with a readable diff."""
    assert [replace(g, seconds=0.0) for g in a] == [replace(g, seconds=0.0) for g in b]


class PolicyConformance:
    """Checks any Policy backend must pass; subclass as Test* and provide `policy` and `problems`."""

    live: bool = True
    stepwise: bool = True
    max_tokens: int = 24
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int = 1234

    # -- hooks ----------------------------------------------------------------------------------
    def expected_prompt_tokens(self, policy: Policy, messages: tuple[Message, ...], prefix: str) -> int | None:
        """The exact prompt token count, computed independently of the backend (None: skip)."""
        return None

    def expected_completion_tokens(self, policy: Policy, problem_id: str, request: GenRequest, i: int,
                                   gen: Generation) -> int | None:
        """The exact completion token count of sample i (None: skip)."""
        return None

    # -- helpers --------------------------------------------------------------------------------
    def request(self, messages: tuple[Message, ...], **kw: Any) -> GenRequest:
        """A request with the suite's sampling settings; keyword arguments override them."""
        args: dict[str, Any] = dict(messages=messages, n=1, temperature=self.temperature, top_p=self.top_p,
                                    max_tokens=self.max_tokens, seed=self.seed)
        args.update(kw)
        return GenRequest(**args)

    @staticmethod
    def gen(policy: Policy, reqs: Sequence[GenRequest], pids: Sequence[str]) -> list[list[Generation]]:
        """Call the backend and check the shape of its answer."""
        out = policy.generate(list(reqs), list(pids))
        assert len(out) == len(reqs)
        for r, gens in zip(reqs, out):
            assert len(gens) == r.n
            assert all(isinstance(g, Generation) for g in gens)
        return out

    # -- contract checks ------------------------------------------------------------------------
    def test_n_samples_equal_single_requests(self, policy: Policy, problems: Problems) -> None:
        pid, msgs = problems[0]
        many = self.gen(policy, [self.request(msgs, n=4, sample_index=2)], [pid])[0]
        singles = self.gen(policy, [self.request(msgs, seed=self.seed + i, sample_index=2 + i) for i in range(4)],
                           [pid] * 4)
        assert_same(many, [s[0] for s in singles])

    def test_requests_in_one_call_equal_separate_calls(self, policy: Policy, problems: Problems) -> None:
        reqs = [self.request(problems[0][1], n=2, seed=7), self.request(problems[1][1], n=3, seed=99),
                self.request(problems[0][1], n=0, seed=5)]
        pids = [problems[0][0], problems[1][0], problems[0][0]]
        together = self.gen(policy, reqs, pids)
        for r, pid, gens in zip(reqs, pids, together):
            assert_same(gens, self.gen(policy, [r], [pid])[0])

    def test_same_seed_same_output(self, policy: Policy, problems: Problems) -> None:
        pid, msgs = problems[1]
        a = self.gen(policy, [self.request(msgs, n=3, seed=42)], [pid])[0]
        b = self.gen(policy, [self.request(msgs, n=3, seed=42)], [pid])[0]
        assert_same(a, b)

    def test_generation_records_its_seed(self, policy: Policy, problems: Problems) -> None:
        pid, msgs = problems[0]
        gens = self.gen(policy, [self.request(msgs, n=3, seed=11)], [pid])[0]
        assert [g.seed for g in gens] == [11, 12, 13]

    def test_different_seeds_differ(self, policy: Policy, problems: Problems) -> None:
        if not self.live or self.temperature <= 0:
            pytest.skip("backend does not sample")
        pid, msgs = problems[0]
        gens = self.gen(policy, [self.request(msgs, n=4, seed=3)], [pid])[0]
        assert len({g.text for g in gens}) > 1

    def test_finish_reasons(self, policy: Policy, problems: Problems) -> None:
        pid, msgs = problems[0]
        req = self.request(msgs, n=6, seed=21)
        for g in self.gen(policy, [req], [pid])[0]:
            assert g.finish_reason in FINISH_REASONS
            assert (g.stop_string is not None) == (g.finish_reason == "stop" and bool(req.stop))
            assert isinstance(g.text, str)
            assert g.prompt_tokens > 0 and g.completion_tokens >= 0 and g.seconds >= 0
            if self.live and g.finish_reason == "length":
                assert g.completion_tokens == req.max_tokens
            if self.live and g.finish_reason == "eos":
                assert 1 <= g.completion_tokens <= req.max_tokens  # the eos token is counted

    def test_max_tokens_respected(self, policy: Policy, problems: Problems) -> None:
        if not self.live:
            pytest.skip("stored generations ignore max_tokens")
        pid, msgs = problems[1]
        for m in (1, 3):
            for g in self.gen(policy, [self.request(msgs, n=3, max_tokens=m)], [pid])[0]:
                assert g.completion_tokens <= m
                assert g.finish_reason in ("length", "eos", "stop")

    def test_token_counts(self, policy: Policy, problems: Problems) -> None:
        pid, msgs = problems[0]
        req = self.request(msgs, n=3, seed=5)
        gens = self.gen(policy, [req], [pid])[0]
        assert len({g.prompt_tokens for g in gens}) == 1
        expected = self.expected_prompt_tokens(policy, msgs, "")
        if expected is not None:
            assert gens[0].prompt_tokens == expected
        for i, g in enumerate(gens):
            exp = self.expected_completion_tokens(policy, pid, req, i, g)
            if exp is not None:
                assert g.completion_tokens == exp

    # -- step-wise generation -------------------------------------------------------------------
    def _text_for_stop_probe(self, policy: Policy, pid: str, msgs: tuple[Message, ...]) -> tuple[GenRequest, Generation]:
        """A request whose unstopped text is long enough to pick a stop string from."""
        for seed in range(100, 120):
            req = self.request(msgs, seed=seed, max_tokens=max(self.max_tokens, 16))
            g = self.gen(policy, [req], [pid])[0][0]
            if len(g.text) >= 8:
                return req, g
        pytest.fail("the backend never produced 8 characters of text to probe stop strings with")

    def test_stop_string_cuts_text(self, policy: Policy, problems: Problems) -> None:
        pid, msgs = problems[0]
        if not self.stepwise:
            with pytest.raises(ConfigError):
                policy.generate([self.request(msgs, stop=("\n\n",))], [pid])
            return
        req, base = self._text_for_stop_probe(policy, pid, msgs)
        text = base.text
        mid = len(text) // 2
        starts = [p for p in range(mid, len(text) - 1)] + [p for p in range(0, mid)]
        pos = next((p for p in starts if "\ufffd" not in text[p:p + 2] and len(text[p:p + 2]) == 2), None)
        assert pos is not None, f"no usable stop string in {text!r}"
        stop = text[pos:pos + 2]
        g = self.gen(policy, [replace(req, stop=("\u2603never\u2603", stop))], [pid])[0][0]
        assert g.finish_reason == "stop"
        assert g.stop_string == stop
        assert g.text == text[:text.find(stop)]
        assert stop not in g.text
        assert 1 <= g.completion_tokens <= base.completion_tokens
        assert g.prompt_tokens == base.prompt_tokens

    def test_prefix_continuation(self, policy: Policy, problems: Problems) -> None:
        pid, msgs = problems[0]
        prefix = "Step 1: Let x = 3.\n\nStep 2:"
        if not self.stepwise:
            with pytest.raises(ConfigError):
                policy.generate([self.request(msgs, prefix=prefix)], [pid])
            return
        plain = self.gen(policy, [self.request(msgs, n=2)], [pid])[0]
        cont = self.gen(policy, [self.request(msgs, n=2, prefix=prefix)], [pid])[0]
        again = self.gen(policy, [self.request(msgs, n=2, prefix=prefix)], [pid])[0]
        assert_same(cont, again)
        assert cont[0].prompt_tokens > plain[0].prompt_tokens
        expected = self.expected_prompt_tokens(policy, msgs, prefix)
        if expected is not None:
            assert cont[0].prompt_tokens == expected
        # the prefix is part of the prompt: the returned text is only the continuation
        assert not any(g.text.startswith(prefix) for g in cont)
        assert all(g.completion_tokens <= self.max_tokens for g in cont)
