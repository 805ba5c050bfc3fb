"""The strategy-facing surface: the SearchContext Protocol and the public task view (no grading)."""

from __future__ import annotations

import inspect

import pytest

from prmbench import interfaces
from prmbench.budgets import make_budget
from prmbench.cache import Cache
from prmbench.context import GenParams, MeteredSearchContext, ModelCalls, TaskView
from prmbench.interfaces import PublicTask, SearchContext, Strategy
from prmbench.plugins import build_registry
from prmbench.runner import RunSpec, Runner
from prmbench.testing.synthetic import SyntheticPolicy, SyntheticPRM, SyntheticTask
from prmbench.types import SearchResult


def make_ctx(task=None) -> MeteredSearchContext:
    task = task or SyntheticTask(n_problems=2)
    calls = ModelCalls(task, SyntheticPolicy(), Cache(None), GenParams(max_tokens=32), 0)
    return MeteredSearchContext(calls, SyntheticPRM(), task.load()[0], make_budget("nominal", 4, None))


def public(obj) -> set[str]:
    return {n for n in dir(obj) if not n.startswith("_")}


def test_the_public_surface_is_exactly_the_protocol():
    ctx = make_ctx()
    protocol = {n for n in vars(SearchContext) if not n.startswith("_")}
    assert public(ctx) == protocol
    assert public(ctx.task) == {n for n in vars(PublicTask) if not n.startswith("_")} | {"name", "domain",
                                                                                        "step_delimiter"}
    assert "grade" not in public(ctx.task) and "grade_many" not in public(ctx.task) and "load" not in public(ctx.task)


def test_task_view_delegates_and_hides_references():
    task = SyntheticTask(n_problems=2)
    view = TaskView(task)
    text = "Step 1: a\n\nStep 2: b"
    assert view.split_steps(text) == task.split_steps(text) and view.join_steps(["a", "b"]) == task.join_steps(["a", "b"])
    assert (view.name, view.domain, view.step_delimiter) == (task.name, task.domain, task.step_delimiter)
    with pytest.raises(AttributeError):
        view.grade  # noqa: B018
    with pytest.raises(AttributeError):
        view.extra = 1  # slots: nothing can be attached either


class GradingStrategy(Strategy):
    """A strategy that tries to grade its candidates through the context."""

    name = "cheat"

    def search(self, problem, ctx) -> SearchResult:
        ctx.task.grade(problem, "anything")
        return SearchResult(candidates=(), chosen=None)


def test_a_strategy_cannot_grade_through_ctx(tmp_path):
    from prmbench.registry import Entry

    reg = build_registry(strict=True)
    reg.add(Entry(kind="strategy", name="cheat", origin="test", factory=GradingStrategy, target=None))
    spec = RunSpec(tasks=("synthetic",), rms=("synthetic_prm",), strategies=("cheat",), budgets=(2,),
                   policy="synthetic", limit=2, budget_unit="nominal")
    with pytest.raises(AttributeError, match="grade"):
        Runner(spec, reg, tmp_path / "run", log=lambda m: None).run()


def test_aggregation_is_fixed_by_the_strategy_not_edited_in_place(tmp_path):
    from prmbench.strategies.best_of_n import BestOfN

    ctx = make_ctx()
    with pytest.raises(AttributeError):
        ctx.aggregation = "min"  # read-only
    assert BestOfN(aggregation="min").aggregation == "min" and Strategy.uses_rm is True
    reg = build_registry(strict=True)
    spec = RunSpec(tasks=("synthetic",), rms=("synthetic_prm",), strategies=("best_of_n",), budgets=(2,),
                   policy="synthetic", limit=2, strategy_args={"aggregation": "min"})
    from prmbench.results import load_run

    out = Runner(spec, reg, tmp_path / "run", log=lambda m: None).run()
    assert {r["info"]["aggregation"] for c in load_run(out).cells for r in c.records} == {"min"}


def test_interfaces_does_not_import_context():
    src = inspect.getsource(interfaces)
    assert "from prmbench.context" not in src and "import prmbench.context" not in src
