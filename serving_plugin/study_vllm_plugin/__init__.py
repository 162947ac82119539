"""vLLM plugin of sparse-routing-study: the architecture ``StudyMoeForCausalLM`` that
``studylib.serving.moe_checkpoint`` writes (Qwen2-MoE with a gate that has a bias). Installed into
the engine's own venv by ``make setup-vllm``; it imports only vLLM (the study's package is not there)."""

ARCHITECTURE = "StudyMoeForCausalLM"


def register() -> None:
    from vllm import ModelRegistry

    if ARCHITECTURE not in ModelRegistry.get_supported_archs():
        ModelRegistry.register_model(ARCHITECTURE, "study_vllm_plugin.model:StudyMoeForCausalLM")
