"""vLLM's Qwen2-MoE with the gate of the study's literal conversion: a linear router *with a bias*
(ridge intercept + load-balancing offsets), scored in fp32 as the study's own model scores it (the
experts' scores sit close together: bf16 logits would flip many top-1 choices). Everything else, the
fused MoE kernels included, is vLLM's own; the bias is loaded from ``mlp.gate.bias`` by the model's
own weight loader."""
import torch
from vllm.model_executor.layers.linear import ReplicatedLinear
from vllm.model_executor.models.qwen2_moe import Qwen2MoeForCausalLM


class FP32BiasedGate(ReplicatedLinear):
    """Its input cast to its own fp32 parameters, through the layer's own kernel (on the CPU vLLM
    repacks a linear's weight after loading, so ``F.linear(x, self.weight)`` would not do)."""

    def forward(self, x):
        return self.quant_method.apply(self, x.to(self.params_dtype), self.bias), None


class StudyMoeForCausalLM(Qwen2MoeForCausalLM):
    def __init__(self, *, vllm_config, prefix: str = ""):
        super().__init__(vllm_config=vllm_config, prefix=prefix)
        cfg = vllm_config.model_config.hf_config
        for i, layer in enumerate(self.model.layers):
            mlp = getattr(layer, "mlp", None)
            if mlp is None or not hasattr(mlp, "gate"):      # a layer of another pipeline stage
                continue
            mlp.gate = FP32BiasedGate(cfg.hidden_size, cfg.num_experts, bias=True, quant_config=None,
                                      params_dtype=torch.float32,
                                      prefix=f"{prefix + '.' if prefix else ''}model.layers.{i}.mlp.gate")
