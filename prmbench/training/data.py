"""Training examples for a value-head PRM: labelled solutions -> token ids, step-tag positions, labels.

Solutions come from prmbench's label readers (prmbench.labels.readers: `read_labels("FMT:PATH")`,
FMT one of prm800k, math_shepherd, processbench, prmbench, prmbench_soft). Each is encoded exactly as `value_head_prm` reads it at
inference (reward_models/value_head_prm.encode_value_head: bos + question + "\\n", then every
step's tokens followed by the step token), so training and scoring see the same positions.

- Steps with no label (e.g. ProcessBench steps after the first error) stay in the text but add
  no loss; tokens after the last labelled step tag are dropped (under the causal mask they cannot
  change any scored position), which saves their compute.
- Inputs longer than `max_length` keep their first `max_length` tokens; labelled steps whose tag
  falls beyond are dropped and counted (`steps_cut`).
- Solutions without any labelled step are skipped and counted.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from prmbench.errors import ConfigError, DataError
from prmbench.labels.readers import FORMATS, read_labels
from prmbench.reward_models.value_head_prm import encode_value_head


@dataclass(frozen=True)
class TrainExample:
    """One training row: token ids, the labelled step-tag positions and their labels in [0, 1]."""

    ids: tuple[int, ...]
    positions: tuple[int, ...]
    labels: tuple[float, ...]
    source: str


@dataclass(frozen=True)
class SourceStats:
    """What one `--data FMT:PATH` source contributed (recorded in prmbench_training.json)."""

    spec: str
    format: str
    path: str
    sha256: str | None
    solutions: int
    used: int
    skipped_unlabelled: int
    labelled_steps: int
    positive_share: float | None
    steps_cut: int
    tokens: int

    def to_json(self) -> dict[str, Any]:
        """Plain dict for the training record."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class TrainingData:
    """All examples of a mixture and the per-source statistics."""

    examples: tuple[TrainExample, ...]
    sources: tuple[SourceStats, ...] = field(default_factory=tuple)


def parse_data_specs(text: str) -> list[tuple[str, str]]:
    """`FMT:PATH[,FMT:PATH...]` -> [(fmt, path)]; a ConfigError naming the fix for a bad item."""
    out = []
    for item in (s.strip() for s in str(text).split(",")):
        if not item:
            continue
        fmt, sep, path = item.partition(":")
        if not sep or not path:
            raise ConfigError(f"--data expects FMT:PATH items (FMT one of {', '.join(FORMATS)}), got {item!r}; "
                              f"e.g. --data processbench:gsm8k.json,math_shepherd:shepherd.jsonl")
        if fmt not in FORMATS:
            raise ConfigError(f"--data {item}: unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
        if not Path(path).is_file():
            raise ConfigError(f"--data {item}: {path} does not exist")
        out.append((fmt, path))
    if not out:
        raise ConfigError("--data needs at least one FMT:PATH item, e.g. --data processbench:gsm8k.json")
    return out


def _sha256(path: str) -> str | None:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except OSError:
        return None
    return h.hexdigest()


def encode_solution(tokenizer: Any, step_id: int, question: str, steps: Sequence[str],
                    labels: Sequence[float | None], max_length: int, source: str = "") -> tuple[TrainExample | None, int]:
    """(example or None when nothing labelled fits, number of labelled steps cut by max_length)."""
    if len(labels) != len(steps):
        raise DataError(f"{source}: {len(steps)} steps but {len(labels)} labels")
    enc = encode_value_head(tokenizer, step_id, question, steps)
    pos, lab, cut = [], [], 0
    for p, y in zip(enc.positions, labels):
        if y is None:
            continue
        y = float(y)
        if not 0.0 <= y <= 1.0:
            raise DataError(f"{source}: step label {y} is outside [0, 1]")
        if p >= max_length:
            cut += 1
            continue
        pos.append(p)
        lab.append(y)
    if not pos:
        return None, cut
    return TrainExample(ids=enc.ids[: pos[-1] + 1], positions=tuple(pos), labels=tuple(lab), source=source), cut


def build_training_data(specs: Iterable[tuple[str, str]], tokenizer: Any, step_id: int,
                        max_length: int) -> TrainingData:
    """Read every source and encode it; a mixture with no labelled step at all is a DataError."""
    examples: list[TrainExample] = []
    stats = []
    for fmt, path in specs:
        spec = f"{fmt}:{path}"
        n = used = skipped = steps = cut = tokens = 0
        pos_sum = 0.0
        for sol in read_labels(spec):
            n += 1
            ex, c = encode_solution(tokenizer, step_id, sol.question, sol.steps, sol.labels, max_length,
                                    source=f"{spec} ({sol.problem_id})")
            cut += c
            if ex is None:
                skipped += 1
                continue
            used += 1
            steps += len(ex.labels)
            pos_sum += sum(ex.labels)
            tokens += len(ex.ids)
            examples.append(TrainExample(ex.ids, ex.positions, ex.labels, spec))
        stats.append(SourceStats(spec=spec, format=fmt, path=str(Path(path).resolve()), sha256=_sha256(path),
                                 solutions=n, used=used, skipped_unlabelled=skipped, labelled_steps=steps,
                                 positive_share=pos_sum / steps if steps else None, steps_cut=cut, tokens=tokens))
    if not examples:
        raise DataError(f"--data {','.join(s.spec for s in stats)}: no solution has a labelled step within "
                        f"--max-length; check the files and their formats")
    return TrainingData(tuple(examples), tuple(stats))


class ExampleDataset:
    """A torch-style map dataset over TrainExamples (items are plain dicts for the collator)."""

    def __init__(self, examples: Sequence[TrainExample]):
        self.examples = list(examples)

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> dict[str, Any]:
        ex = self.examples[i]
        return {"ids": ex.ids, "positions": ex.positions, "labels": ex.labels}


class Collator:
    """Right-pads a list of dataset items into input_ids, attention_mask and labels (IGNORE off the step tags)."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, items: Sequence[dict[str, Any]]) -> dict[str, Any]:
        import torch

        from prmbench.training.model import IGNORE

        width = max(len(it["ids"]) for it in items)
        ids = torch.full((len(items), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(items), width), dtype=torch.long)
        labels = torch.full((len(items), width), IGNORE, dtype=torch.float32)
        for j, it in enumerate(items):
            n = len(it["ids"])
            ids[j, :n] = torch.tensor(it["ids"], dtype=torch.long)
            mask[j, :n] = 1
            labels[j, list(it["positions"])] = torch.tensor(it["labels"], dtype=torch.float32)
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}
