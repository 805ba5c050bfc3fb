"""Built-in tasks (a default plugin)."""

from prmbench import hookimpl


@hookimpl
def register_tasks(register):  # type: ignore[no-untyped-def]
    """Register the built-in tasks."""
    register("math500", "prmbench.tasks.math500:Math500Task",
             summary="MATH-500 (Lightman et al.): 500 competition math problems, graded with math-verify")
    register("livecodebench", "prmbench.tasks.livecodebench:LiveCodeBenchTask",
             summary="LiveCodeBench code generation (code_generation_lite): contest problems, all tests run in the sandbox")
