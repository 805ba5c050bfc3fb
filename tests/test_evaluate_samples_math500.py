"""`prmbench evaluate-samples` on MATH-500 against hand-checked equivalence cases.

Each completion below was judged by hand against the real gold answer of that MATH-500 problem;
the expected verdict is the mathematically right one.
"""

from __future__ import annotations

import json

import pytest

from prmbench.cli import main

# (problem id, gold answer for the reader, completion, expected verdict)
CASES = [
    ("test/algebra/1265.json", r"\frac{3}{2}", r"Thus the answer is $\boxed{1.5}$.", True),            # fraction vs decimal
    ("test/algebra/1265.json", r"\frac{3}{2}", r"So $\boxed{\dfrac{3}{2}}$.", True),                     # \dfrac
    ("test/algebra/1265.json", r"\frac{3}{2}", r"So $\boxed{\frac{2}{3}}$.", False),                     # inverted fraction
    ("test/algebra/1265.json", r"\frac{3}{2}", r"So $\boxed{1.49}$.", False),                            # near decimal
    ("test/prealgebra/1655.json", r"\dfrac{17}{50}", r"Hence $\boxed{0.34}$.", True),                    # decimal vs \dfrac gold
    ("test/prealgebra/1558.json", "1.25", r"We get $\boxed{\frac{5}{4}}$.", True),                       # fraction vs decimal gold
    ("test/intermediate_algebra/956.json", "(6,31,-1)", r"$\boxed{(6, 31, -1)}$", True),                 # tuple, spacing
    ("test/intermediate_algebra/956.json", "(6,31,-1)", r"$\boxed{(31, 6, -1)}$", False),                # tuple order matters
    ("test/intermediate_algebra/47.json", "(-2,1)", r"$\boxed{\left(-2, 1\right)}$", True),              # \left( \right)
    ("test/intermediate_algebra/558.json", "(3,4]", r"$\boxed{(3,4]}$", True),                           # half-open interval
    ("test/intermediate_algebra/558.json", "(3,4]", r"$\boxed{[3,4]}$", False),                          # closed is different
    ("test/intermediate_algebra/183.json", r"(2,\infty)", r"$\boxed{(2, \infty)}$", True),               # unbounded interval
    ("test/precalculus/695.json", r"(-\infty, 0]", r"$\boxed{(-\infty,0)}$", False),                     # open vs closed end
    ("test/algebra/1349.json", r"\text{Evelyn}", r"The fastest is $\boxed{\text{Evelyn}}$.", True),       # text answer
    ("test/algebra/1349.json", r"\text{Evelyn}", r"$\boxed{\text{Briana}}$", False),                     # other text
    ("test/prealgebra/105.json", r"\text{east}", r"$\boxed{\text{east}}$", True),
    ("test/algebra/2036.json", r"3\sqrt{13}", r"$\boxed{\sqrt{117}}$", True),                            # same value, other form
    ("test/precalculus/1056.json", r"288 \pi", r"$\boxed{288\pi}$", True),
    ("test/precalculus/1056.json", r"288 \pi", r"$\boxed{904.78}$", False),                              # numeric approximation
    # several boxed answers: the last one counts
    ("test/algebra/1265.json", r"\frac{3}{2}", r"First guess $\boxed{2}$, corrected: $\boxed{\frac32}$.", True),
    ("test/algebra/1265.json", r"\frac{3}{2}", r"First $\boxed{\frac32}$, but then $\boxed{2}$.", False),
    ("test/algebra/1265.json", r"\frac{3}{2}", r"The answer is 3/2.", False),                            # no box at all
]


@pytest.mark.parametrize("use_task_id", [False, True])
def test_evaluate_samples_hand_checked(tmp_path, capsys, use_task_id):
    samples = tmp_path / "samples.jsonl"
    key = "task_id" if use_task_id else "problem_id"
    samples.write_text("".join(json.dumps({key: pid, "completion": text, "case": i}) + "\n"
                               for i, (pid, _, text, _) in enumerate(CASES)))
    out = tmp_path / "graded.jsonl"
    assert main(["evaluate-samples", "--task", "math500", "--samples", str(samples), "--output", str(out)]) == 0
    graded = [json.loads(l) for l in out.read_text().splitlines()]
    assert [g["case"] for g in graded] == list(range(len(CASES)))  # one line per row, same order
    wrong = [(c[0], c[2], g["details"]) for c, g in zip(CASES, graded) if g["correct"] != c[3]]
    assert not wrong
    assert all(g[key] == c[0] for c, g in zip(CASES, graded))
    expected_right = sum(c[3] for c in CASES)
    assert f"{expected_right} correct" in capsys.readouterr().err
