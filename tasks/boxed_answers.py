"""Answers in ``\\boxed{}``: extraction, vote keys and equivalence shared by MATH-style tasks
(math500, lab_math). A task using it sets `grading_timeout` (seconds per math-verify check)."""

from __future__ import annotations

from prmbench.math_grading import answer_key as _answer_key
from prmbench.math_grading import check_equiv, last_boxed


class BoxedAnswers:
    """Task methods for answers given as the last ``\\boxed{}`` of a solution."""

    grading_timeout: float

    def extract_answer(self, text: str) -> str | None:
        """The content of the last ``\\boxed{}`` of `text` (None when absent or malformed)."""
        return last_boxed(text)

    def answer_key(self, answer: str) -> str:
        """Formatting-free form of an answer (see `prmbench.math_grading.answer_key`)."""
        return _answer_key(answer)

    def same_answer(self, a: str, b: str) -> bool:
        """Whether two extracted answers are equivalent; symmetric (math-verify in both directions)."""
        if _answer_key(a) == _answer_key(b):
            return True
        return (check_equiv(a, b, self.grading_timeout).equal
                or check_equiv(b, a, self.grading_timeout).equal)
