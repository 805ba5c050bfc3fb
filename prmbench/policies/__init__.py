"""Built-in generation backends (a default plugin)."""

from prmbench import hookimpl


@hookimpl
def register_policies(register):  # type: ignore[no-untyped-def]
    """Register the transformers, replay, OpenAI-compatible and managed-server backends."""
    register("hf", "prmbench.policies.hf:HFPolicy", target="model",
             summary="transformers in-process sampling: hf:HUB_ID or hf:/local/dir")
    register("replay", "prmbench.policies.replay:ReplayPolicy", target="path",
             summary="serves saved full generations from JSONL(.gz): replay:FILE")
    register("openai", "prmbench.policies.openai:OpenAIPolicy", target="model",
             summary="any OpenAI-compatible server (/v1/completions): openai:MODEL, --policy-args base_url=URL")
    register("vllm", "prmbench.policies.managed:VLLMPolicy", target="model",
             summary="starts `vllm serve MODEL` and samples from it (extra: prmbench[vllm])")
    register("sglang", "prmbench.policies.managed:SGLangPolicy", target="model",
             summary="starts SGLang's server for MODEL and samples from it (extra: prmbench[sglang])")
    register("transformers-serve", "prmbench.policies.managed:TransformersServePolicy", target="model",
             summary="starts `transformers serve MODEL` and samples from it (CPU or GPU)")
