"""Built-in tasks (a default plugin)."""

from prmbench import hookimpl


@hookimpl
def register_tasks(register):  # type: ignore[no-untyped-def]
    """Register the built-in tasks."""
    register("math500", "prmbench.tasks.math500:Math500Task",
             summary="MATH-500 (Lightman et al.): 500 competition math problems, graded with math-verify")
    register("livecodebench", "prmbench.tasks.livecodebench:LiveCodeBenchTask",
             summary="LiveCodeBench code generation (code_generation_lite): contest problems, all tests run in the sandbox")
    register("humaneval_plus", "prmbench.tasks.evalplus_tasks:HumanEvalPlusTask",
             summary="HumanEval+ v0.1.10 (EvalPlus): 164 functions, base + plus inputs judged with evalplus semantics in the sandbox")
    register("humaneval", "prmbench.tasks.evalplus_tasks:HumanEvalTask",
             summary="OpenAI HumanEval: 164 functions, graded by the original check() tests in the sandbox")
    register("mbpp_plus", "prmbench.tasks.evalplus_tasks:MbppPlusTask",
             summary="MBPP+ v0.2.0 (EvalPlus): 378 functions, base + plus inputs judged with evalplus semantics in the sandbox")
    register("lab_math", "prmbench.tasks.lab_math:LabMathTask",
             summary="the lab's math domain: seeded multi-step arithmetic word problems, one result per step, \\boxed{} answer")
    register("lab_code", "prmbench.tasks.lab_code:LabCodeTask",
             summary="the lab's code domain: the same problems as one-statement-per-step Python programs, run in the sandbox")
    for subset, cls in (("gsm8k", "ProcessBenchGSM8K"), ("math", "ProcessBenchMATH"),
                        ("olympiadbench", "ProcessBenchOlympiadBench"), ("omnimath", "ProcessBenchOmniMATH")):
        register(f"processbench_{subset}", f"prmbench.tasks.processbench:{cls}",
                 summary=f"step-level: ProcessBench {subset}, locate the first wrong step (F1 of error/correct acc, AUROC)")
    register("processbench", "prmbench.tasks.processbench:ProcessBenchTask",
             summary="step-level: ProcessBench, all four subsets (Avg. F1; threshold=, calibrate_on=SUBSET)")
    register("prm800k_test", "prmbench.tasks.prm800k_test:PRM800KTestTask",
             summary="step-level: PRM800K phase-2 test steps with human ratings -1/0/+1 (AUROC of rated -1)")
    register("prmbench_prm800k", "prmbench.tasks.prmbench_prm800k:PRMBenchTask",
             summary="step-level: PRMBench (Song et al. 2025), 9 error classes on PRM800K solutions (PRMScore)")
