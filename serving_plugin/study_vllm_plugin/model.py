"""vLLM's Qwen2-MoE with the gate of the study's literal conversion: a linear router *with a bias*
(ridge intercept + load-balancing offsets). Everything else, the fused CPU/GPU MoE kernels included,
is vLLM's own; the bias is loaded from ``mlp.gate.bias`` by the model's own weight loader."""
from vllm.model_executor.layers.linear import ReplicatedLinear
from vllm.model_executor.models.qwen2_moe import Qwen2MoeForCausalLM


class StudyMoeForCausalLM(Qwen2MoeForCausalLM):
    def __init__(self, *, vllm_config, prefix: str = ""):
        super().__init__(vllm_config=vllm_config, prefix=prefix)
        cfg = vllm_config.model_config.hf_config
        for i, layer in enumerate(self.model.layers):
            mlp = getattr(layer, "mlp", None)
            if mlp is None or not hasattr(mlp, "gate"):      # a layer of another pipeline stage
                continue
            mlp.gate = ReplicatedLinear(cfg.hidden_size, cfg.num_experts, bias=True, quant_config=None,
                                        prefix=f"{prefix + '.' if prefix else ''}model.layers.{i}.mlp.gate")
