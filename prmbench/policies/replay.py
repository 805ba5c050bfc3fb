"""Serve saved full generations: `--policy replay:FILE.jsonl[.gz]`.

The file holds one JSON object per line (gzip or plain, detected by content). Each row names a
problem (`problem_id`, or `task_id` as in HumanEval-style pools) and lists its stored completions
(`completions`, or `samples`), each a string or an object with a `text` string. Pool index k of a
problem is its k-th stored completion: sample i of a request is completion `sample_index + i`, so
a pool strategy with budget N reads completions 0..N-1, in stored order. Other row fields are
ignored.

Replay serves only whole solutions: it cannot continue a prefix or stop at a stop string, so
step-wise strategies need a live backend (hf, vLLM). The request's temperature, top_p, seed and
max_tokens are ignored (the stored samples were drawn with the settings of whoever made the file);
every generation has finish_reason "stop", `seed` = request seed + i, and `seconds` 0.

Token counts: with `tokenizer` (a local tokenizer folder, or a Hub id already in the local
cache) they are exact: the completion's tokens, and the prompt rendered with the tokenizer's chat
template (add_generation_prompt; plain text joined by blank lines when it has none). Without it
they are estimates, ceil(characters / 4) for the completion and ceil(characters / 4) + 4 per
message for the prompt, and config() says `token_counts: "estimate"`.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any, Sequence

from prmbench.errors import ConfigError, DataError, ModelLoadError, did_you_mean
from prmbench.interfaces import Policy
from prmbench.jsonl import read_jsonl_rows
from prmbench.types import GenRequest, Generation, Message

CHARS_PER_TOKEN = 4
TOKENS_PER_MESSAGE = 4


def estimate_tokens(text: str) -> int:
    """The replay estimate of a text's token count: ceil(len(text) / 4)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


class ReplayPolicy(Policy):
    """Serves the stored completions of a JSONL(.gz) file by problem id and pool index.

    `path` is the file, `tokenizer` an optional tokenizer for exact token counts (see module
    docstring), `num_parameters` the parameter count of the model that produced the file (for
    FLOPs estimates; 0 = unknown).
    """

    supports_stepwise = False
    default_concurrency = 16  # stored samples cost nothing; concurrency batches the reward model
    version = "1"

    def __init__(self, path: str, tokenizer: str | None = None, num_parameters: int = 0):
        self.path = Path(str(path)).expanduser()
        if not self.path.is_file():
            raise DataError(
                f"replay file {str(path)!r} does not exist; pass a JSONL(.gz) file of stored generations: "
                f"--policy replay:path/to/pool.jsonl.gz"
            )
        self.sha256 = hashlib.sha256(self.path.read_bytes()).hexdigest()
        self._pool = self._parse()
        self.tokenizer_name = tokenizer
        self._tokenizer = self._load_tokenizer(tokenizer) if tokenizer else None
        self._params = int(num_parameters)
        self._prompt_counts: dict[tuple[Message, ...], int] = {}
        self._completion_counts: dict[tuple[str, int], int] = {}

    # -- loading --------------------------------------------------------------------------------
    def _parse(self) -> dict[str, list[str]]:
        pool: dict[str, list[str]] = {}
        lines: dict[str, int] = {}
        for no, row in read_jsonl_rows(self.path, what="replay file"):
            where = f"{self.path}:{no}"
            pid = row.get("problem_id", row.get("task_id"))
            if isinstance(pid, bool) or not isinstance(pid, (str, int)):
                raise DataError(f"{where}: needs a string `problem_id` (or `task_id`), got {pid!r}")
            pid = str(pid)
            items = row.get("completions", row.get("samples"))
            if not isinstance(items, list):
                raise DataError(f"{where}: needs a list `completions` (or `samples`) for problem {pid!r}")
            texts: list[str] = []
            for k, item in enumerate(items):
                if isinstance(item, dict):
                    item = item.get("text")
                if not isinstance(item, str):
                    raise DataError(f"{where}: completion {k} of problem {pid!r} is not a string "
                                    f"(or an object with a `text` string)")
                texts.append(item)
            if pid in pool:
                raise DataError(f"{where}: problem {pid!r} appears twice (first on line {lines[pid]}); "
                                f"keep one row per problem")
            pool[pid] = texts
            lines[pid] = no
        if not pool:
            raise DataError(f"replay file {self.path} holds no rows")
        return pool

    @staticmethod
    def _load_tokenizer(name: str) -> Any:
        from transformers import AutoTokenizer

        try:
            return AutoTokenizer.from_pretrained(name, local_files_only=True)
        except Exception as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise ModelLoadError(
                f"replay policy: cannot load tokenizer {name!r} offline ({first}). Pass a local folder with "
                f"tokenizer.json (--policy-args tokenizer=/path/to/model) or leave it out for estimated counts."
            ) from None

    # -- identity -------------------------------------------------------------------------------
    @property
    def num_parameters(self) -> int:
        """Parameter count of the model that produced the file, when given (else 0)."""
        return self._params

    @property
    def problem_ids(self) -> list[str]:
        """The problem ids of the file, in stored order."""
        return list(self._pool)

    def available_problem_ids(self) -> set[str] | None:
        """Only the problems stored in the file can be served."""
        return set(self._pool)

    @property
    def measures_seconds(self) -> bool:
        """Stored generations take no time to serve: a seconds cap would never be reached."""
        return False

    def num_completions(self, problem_id: str) -> int:
        """How many completions the file stores for `problem_id` (0 when absent)."""
        return len(self._pool.get(problem_id, ()))

    def config(self) -> dict[str, Any]:
        """File name and sha256 (the identity follows the data) and how tokens are counted."""
        return {
            "file": self.path.name,
            "sha256": self.sha256,
            "token_counts": "exact" if self._tokenizer is not None else "estimate",
            "tokenizer": self.tokenizer_name,
            "num_parameters": self._params,
        }

    # -- serving --------------------------------------------------------------------------------
    def generate(self, requests: Sequence[GenRequest], problem_ids: Sequence[str] | None = None) -> list[list[Generation]]:
        """The stored completions `sample_index + i` of each request's problem."""
        if problem_ids is None or len(problem_ids) != len(requests):
            raise ConfigError("replay policy needs one problem id per request to find stored generations")
        out: list[list[Generation]] = []
        for req, pid in zip(requests, problem_ids):
            if req.prefix or req.stop:
                raise ConfigError(
                    "replay serves only full stored solutions: it cannot continue a prefix or stop at step "
                    "boundaries, which step-wise strategies (beam search, step-level search) need. Use a live "
                    "backend such as --policy hf:MODEL (or a vLLM policy) for them."
                )
            pid = str(pid)
            stored = self._pool.get(pid)
            if stored is None:
                raise DataError(
                    f"problem {pid!r} is not in replay file {self.path} (it stores {len(self._pool)} problems)."
                    f"{did_you_mean(pid, self._pool)} Is the file for this task?"
                )
            last = req.sample_index + req.n - 1
            if req.n > 0 and (req.sample_index < 0 or last >= len(stored)):
                raise DataError(
                    f"replay file {self.path} stores {len(stored)} completions for problem {pid!r} but sample "
                    f"{last} was asked for; use a budget of at most {len(stored)} (--budget) or a bigger pool"
                )
            prompt_tokens = self._count_prompt(req.messages)
            gens = []
            for i in range(req.n):
                k = req.sample_index + i
                gens.append(Generation(
                    text=stored[k], finish_reason="stop", prompt_tokens=prompt_tokens,
                    completion_tokens=self._count_completion(pid, k), seed=req.seed + i,
                ))
            out.append(gens)
        return out

    def _count_prompt(self, messages: tuple[Message, ...]) -> int:
        n = self._prompt_counts.get(messages)
        if n is None:
            tok = self._tokenizer
            if tok is None:
                n = sum(estimate_tokens(m.content) + TOKENS_PER_MESSAGE for m in messages)
            elif getattr(tok, "chat_template", None):
                text = tok.apply_chat_template([{"role": m.role, "content": m.content} for m in messages],
                                               add_generation_prompt=True, tokenize=False)
                n = len(tok(str(text), add_special_tokens=False)["input_ids"])
            else:
                n = len(tok("\n\n".join(m.content for m in messages))["input_ids"])
            self._prompt_counts[messages] = n
        return n

    def _count_completion(self, pid: str, k: int) -> int:
        n = self._completion_counts.get((pid, k))
        if n is None:
            text = self._pool[pid][k]
            if self._tokenizer is None:
                n = estimate_tokens(text)
            else:
                n = len(self._tokenizer(text, add_special_tokens=False)["input_ids"])
            self._completion_counts[(pid, k)] = n
        return n
