"""Built-in generation backends (a default plugin)."""

from prmbench import hookimpl


@hookimpl
def register_policies(register):  # type: ignore[no-untyped-def]
    """Register the transformers and replay backends."""
    register("hf", "prmbench.policies.hf:HFPolicy", target="model",
             summary="transformers in-process sampling: hf:HUB_ID or hf:/local/dir")
    register("replay", "prmbench.policies.replay:ReplayPolicy", target="path",
             summary="serves saved full generations from JSONL(.gz): replay:FILE")
