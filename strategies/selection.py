"""Selection rules shared by the sampling strategies: argmax by score, and answer clustering."""

from __future__ import annotations

from typing import Sequence

from prmbench.interfaces import PublicTask
from prmbench.types import Candidate, Problem


def finished(candidates: Sequence[Candidate]) -> list[int]:
    """Indices of candidates that ended on their own (not cut by the length limit).

    A truncated text is never treated as a finished solution; when every candidate was
    truncated, all of them are eligible so that a choice can still be made.
    """
    idx = [i for i, c in enumerate(candidates) if c.finish_reason != "length"]
    return idx or list(range(len(candidates)))


def argmax_score(candidates: Sequence[Candidate], eligible: Sequence[int]) -> int | None:
    """The eligible candidate with the highest score; ties go to the lowest index."""
    best: int | None = None
    for i in eligible:
        s = candidates[i].score
        if s is None:
            continue
        if best is None or s > candidates[best].score:  # type: ignore[operator]
            best = i
    return best


def cluster_answers(task: PublicTask, problem: Problem, candidates: Sequence[Candidate],
                    eligible: Sequence[int]) -> list[list[int]]:
    """Group eligible candidates whose final answers the task deems equivalent.

    When the task provides exact `vote_keys` (code: behaviour on public examples), those group
    the candidates. Otherwise candidates are grouped by the cheap `answer_key` and groups are
    merged when their representatives are `same_answer`. Candidates without an answer are left
    out. Clusters are ordered by their first member's index.
    """
    with_answer = [i for i in eligible if candidates[i].answer is not None]
    exact = task.vote_keys(problem, [candidates[i].answer for i in with_answer])  # type: ignore[misc]
    by_key: dict[str, list[int]] = {}
    for n, i in enumerate(with_answer):
        key = exact[n] if exact is not None else task.answer_key(candidates[i].answer)  # type: ignore[arg-type]
        by_key.setdefault(key, []).append(i)
    clusters: list[list[int]] = []
    if exact is not None:
        return sorted(by_key.values(), key=lambda cl: cl[0])
    for members in by_key.values():
        rep = candidates[members[0]].answer
        for cl in clusters:
            if task.same_answer(candidates[cl[0]].answer, rep):  # type: ignore[arg-type]
                cl.extend(members)
                break
        else:
            clusters.append(list(members))
    for cl in clusters:
        cl.sort()
    clusters.sort(key=lambda cl: cl[0])
    return clusters
