"""The paper's literal conversion written as an MoE checkpoint: Qwen2-MoE's layout with a gate
that has a bias.

Why a model class of our own: the literal router scores ``x·W + b`` (a ridge regression with an
intercept, plus its load-balancing offsets), and no MoE architecture in transformers or vLLM with
SwiGLU experts and softmax top-k has a gate bias; dropping it would route differently from the model
the study measured. Everything else is Qwen2-MoE's: fused experts (``gate_up_proj`` [E, 2I, D],
``down_proj`` [E, D, I]), softmax top-k renormalised (``norm_topk_prob``: a top-1 expert's output is
weighed 1, as our conversion sums its routed experts), and a shared expert of width 0 (none). A Llama
base (SmolLM2) maps too: its attention has no q/k/v bias, written as zeros.

vLLM loads it through the plugin in serving_plugin/ (``make setup-vllm`` installs it into the
engine's venv): vLLM's own Qwen2-MoE with that gate swapped for one with a bias.

Only top-1 maps exactly: with top-k > 1 Qwen2-MoE weighs the experts by their renormalised
probabilities, ours sums them unweighted. A capacity factor (dropped tokens) has no checkpoint form.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from transformers import Qwen2MoeConfig
from transformers.models.qwen2_moe import modeling_qwen2_moe as qm

ARCHITECTURE = "StudyMoeForCausalLM"


class BiasedTopKRouter(qm.Qwen2MoeTopKRouter):
    """Qwen2-MoE's router with a bias on its logits (selection and weights both see it)."""

    def __init__(self, config):
        super().__init__(config)
        self.bias = nn.Parameter(torch.zeros(self.num_experts))

    def forward(self, hidden_states):
        # scored in fp32, as our conversion scores its router: its experts' scores sit close together
        # (each predicts a share of the token's activation mass), so bf16 logits flip many choices
        hidden_states = hidden_states.reshape(-1, self.hidden_dim)
        router_logits = F.linear(hidden_states.float(), self.weight.float(), self.bias.float())
        probs = torch.softmax(router_logits, dtype=torch.float, dim=-1)
        top_value, top_index = torch.topk(probs, self.top_k, dim=-1)
        if self.norm_topk_prob:
            top_value /= top_value.sum(dim=-1, keepdim=True)
        return router_logits, top_value.to(hidden_states.dtype), top_index


class StudyMoeForCausalLM(qm.Qwen2MoeForCausalLM):
    """Load with ``StudyMoeForCausalLM.from_pretrained`` (the config is a plain ``qwen2_moe`` one, so an
    engine parses it; its ``architectures`` names this class, which vLLM finds through the plugin).
    Its router scores in fp32, as our conversion does."""

    def __init__(self, config):
        super().__init__(config)
        for layer in self.model.layers:
            layer.mlp.gate = BiasedTopKRouter(config)




def _config(base, experts: int, top_k: int, width: int) -> Qwen2MoeConfig:
    b = base.config
    return Qwen2MoeConfig(   # Qwen2-MoE's checkpoint layout: one tensor per expert, as vLLM's loader reads
        vocab_size=b.vocab_size, hidden_size=b.hidden_size, intermediate_size=b.intermediate_size,
        num_hidden_layers=b.num_hidden_layers, num_attention_heads=b.num_attention_heads,
        num_key_value_heads=b.num_key_value_heads, hidden_act=b.hidden_act,
        max_position_embeddings=b.max_position_embeddings, rms_norm_eps=b.rms_norm_eps,
        tie_word_embeddings=b.tie_word_embeddings, rope_parameters=getattr(b, "rope_parameters", None),
        num_experts=experts, num_experts_per_tok=top_k, moe_intermediate_size=width, norm_topk_prob=True,
        shared_expert_intermediate_size=0, decoder_sparse_step=1, mlp_only_layers=[],
        use_sliding_window=False, bos_token_id=b.bos_token_id, eos_token_id=b.eos_token_id,
        architectures=[ARCHITECTURE])


def literal_state(model) -> tuple[Qwen2MoeConfig, dict]:
    """(config, state dict) of ``model`` (a base converted by ``moe_literal``) in this layout."""
    from studylib.quality.transforms.ffn import MaskedFFN

    sd = {k: v for k, v in model.state_dict().items() if ".mlp." not in k}
    layers = model.model.layers
    mods = [layer.mlp for layer in layers]
    if not all(isinstance(m, MaskedFFN) and m.selector.kind == "linear" for m in mods):
        raise ValueError("every FFN must be a literal conversion (MaskedFFN with a linear router)")
    sel = mods[0].selector
    if sel.top_k != 1 or any(m.capacity_factor is not None for m in mods):
        raise ValueError("only top-1 without a capacity factor maps exactly (see the module docstring)")
    K = sel.K
    width = int((sel.assign == 0).sum())
    cfg = _config(model, K, 1, width)
    for i, (layer, m) in enumerate(zip(layers, mods)):
        p, s = f"model.layers.{i}.", m.selector
        idx = [torch.nonzero(s.assign == e).flatten() for e in range(K)]
        if any(len(j) != width for j in idx) or bool((s.assign < 0).any()):
            raise ValueError(f"layer {i}: experts of unequal width or shared neurons: not the literal conversion")
        g, u, d = m.mlp.gate_proj.weight, m.mlp.up_proj.weight, m.mlp.down_proj.weight
        sd[p + "mlp.experts.gate_up_proj"] = torch.stack([torch.cat([g[j], u[j]]) for j in idx])
        sd[p + "mlp.experts.down_proj"] = torch.stack([d[:, j] for j in idx])
        sd[p + "mlp.gate.weight"] = s.router[:-1].T.float().contiguous()          # fp32, as our scores are
        sd[p + "mlp.gate.bias"] = s.router[-1].float() + s.bias.float()
        D = cfg.hidden_size
        sd[p + "mlp.shared_expert.gate_proj.weight"] = g.new_zeros(0, D)
        sd[p + "mlp.shared_expert.up_proj.weight"] = g.new_zeros(0, D)
        sd[p + "mlp.shared_expert.down_proj.weight"] = g.new_zeros(D, 0)
        sd[p + "mlp.shared_expert_gate.weight"] = g.new_zeros(1, D)
        attn = layer.self_attn
        for proj in ("q_proj", "k_proj", "v_proj"):   # Qwen2's attention has these biases; Llama's are zero
            lin = getattr(attn, proj)
            sd.setdefault(p + f"self_attn.{proj}.bias", lin.bias if lin.bias is not None
                          else lin.weight.new_zeros(lin.weight.shape[0]))
    return cfg, sd


def _drop_tensors(where: Path, part: str) -> None:
    """Remove the tensors whose name contains ``part`` from a saved checkpoint (every shard, and its index)."""
    import json

    from safetensors.torch import load_file, save_file

    for f in Path(where).glob("*.safetensors"):
        t = load_file(f)
        keep = {k: v for k, v in t.items() if part not in k}
        if len(keep) < len(t):
            save_file(keep, f, metadata={"format": "pt"})
    index = Path(where) / "model.safetensors.index.json"
    if index.exists():
        j = json.loads(index.read_text())
        j["weight_map"] = {k: v for k, v in j["weight_map"].items() if part not in k}
        index.write_text(json.dumps(j, indent=2))


def write_literal(model, tok, where: Path) -> dict:
    """Write ``model`` (literal top-1 conversion) as a ``StudyMoeForCausalLM`` checkpoint."""
    cfg, sd = literal_state(model)
    moe = StudyMoeForCausalLM(cfg).to(next(model.parameters()).dtype)
    for layer in moe.model.layers:
        layer.mlp.gate.float()
    missing, unexpected = moe.load_state_dict(sd, strict=False)
    missing = [k for k in missing if not (cfg.tie_word_embeddings and k == "lm_head.weight")]
    if missing or unexpected:
        raise ValueError(f"checkpoint layout mismatch: missing {missing[:5]}, unexpected {unexpected[:5]}")
    if cfg.tie_word_embeddings:
        moe.tie_weights()
    moe.save_pretrained(where)
    _drop_tensors(where, ".mlp.shared_expert.")   # width 0: vLLM builds no shared expert to load them into
    tok.save_pretrained(where)
    return {"architecture": ARCHITECTURE, "experts": cfg.num_experts, "top_k": 1,
            "expert_width": cfg.moe_intermediate_size}
