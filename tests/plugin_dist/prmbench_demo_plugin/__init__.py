"""A minimal third-party prmbench plugin: an arithmetic task and a 'last sample' strategy."""

from pathlib import Path

from prmbench import hookimpl
from prmbench.interfaces import Strategy, Task
from prmbench.types import Grade, Message, Problem, SearchResult


class AddTask(Task):
    """Sums of two small integers; the answer is the last integer in the text."""

    domain = "math"
    version = "1"

    def __init__(self, count: int = 6):
        self.count = count

    def config(self):
        return {"count": self.count}

    def load(self):
        return [Problem(id=f"add/{i}", task="demo_add", question=f"What is {i} + {2 * i}?", reference=str(3 * i))
                for i in range(self.count)]

    def prompt(self, problem):
        return (Message("user", problem.question),)

    def extract_answer(self, text):
        nums = [w.strip(".") for w in text.split() if w.strip(".").lstrip("-").isdigit()]
        return nums[-1] if nums else None

    def same_answer(self, a, b):
        return a == b

    def grade(self, problem, completion):
        ans = self.extract_answer(completion)
        return Grade(ans == problem.reference, {"extracted": ans})


class LastSample(Strategy):
    """Samples N solutions and returns the last one (a deliberately naive strategy)."""

    uses_pool = True
    uses_rm = False

    def search(self, problem, ctx):
        cands = ctx.sample_full(ctx.budget.n)
        return SearchResult(candidates=tuple(cands), chosen=len(cands) - 1)


@hookimpl
def register_tasks(register):
    register("demo_add", AddTask, summary="toy addition task from a third-party plugin")


@hookimpl
def register_strategies(register):
    register("last_sample", LastSample, summary="returns the last of N samples")


@hookimpl
def register_preset_dirs(register):
    register(Path(__file__).parent / "presets")
