"""SmoothQuant (Xiao et al., ICML 2023): move the activations' outlier channels into the weights before
W8A8, so that per-token int8 activations lose less.

For a linear ``y = x W^T`` whose input comes from a per-channel scale it can absorb (an RMSNorm's weight,
or the output rows of ``up_proj`` for ``down_proj``, since ``act(gate) * up`` is linear in ``up``), each
input channel j is divided by ``s_j`` upstream and its weight column multiplied by ``s_j``:

    s_j = max|X_j|^alpha / max|W_:,j|^(1 - alpha)

The function is unchanged in exact arithmetic (a test checks the smoothed model equals the original);
what changes is how the int8 grid falls on activations and weights. ``alpha = 0.5`` is the paper's
default; it is fixed in the variant's declaration, not searched on evaluation data.

The mappings are llm-compressor's for Llama-family decoders (``input_layernorm -> q, k, v``;
``post_attention_layernorm -> gate, up``) plus ``up -> down``, where the decoder's largest activation
outliers enter a linear. ``v -> o`` is left out: with grouped-query attention one v channel feeds
several heads' o columns, so a per-channel scale of o's input is not free.

Written here, not taken from llm-compressor (the maintained implementation vLLM's docs point to),
because llm-compressor 0.14 pins transformers <= 5.17 and compressed-tensors 0.19, which neither the
study's environment (transformers 5.25) nor vLLM's (< 5.20, compressed-tensors of its own) can hold;
the rescaling itself is a few lines, and the checkpoint it leaves is the model's own architecture.
"""
from __future__ import annotations

import torch

from studylib.quality.transforms.prune import sequential_layers
from studylib.quality.transforms.registry import register

#: (where the scale is absorbed, the linears whose input it scales), as paths inside a decoder layer
MAPPINGS = (
    ("input_layernorm", ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj")),
    ("post_attention_layernorm", ("mlp.gate_proj", "mlp.up_proj")),
    ("mlp.up_proj", ("mlp.down_proj",)),
)


def smoothing_scales(act_max: torch.Tensor, weights: list[torch.Tensor], alpha: float) -> torch.Tensor:
    """Per input channel ``s_j = max|X_j|^alpha / max|W_:,j|^(1-alpha)`` over every weight fed by the
    channel; channels never active (or all-zero columns) keep ``s = 1``."""
    w_max = torch.stack([w.abs().amax(0).float() for w in weights]).amax(0)
    s = act_max.float().pow(alpha) / w_max.pow(1 - alpha)
    dead = (act_max <= 0) | (w_max <= 0) | ~torch.isfinite(s)
    return torch.where(dead, torch.ones_like(s), s).clamp(min=1e-5)


@torch.no_grad()
def absorb(source: torch.nn.Module, targets: list[torch.nn.Linear], s: torch.Tensor) -> None:
    """Divide ``source``'s output channels by ``s`` (a norm's weight, or a linear's rows and bias) and
    multiply the targets' input columns by ``s``: the composition is unchanged."""
    if isinstance(source, torch.nn.Linear):
        source.weight.div_(s.to(source.weight.dtype)[:, None])
        if source.bias is not None:
            source.bias.div_(s.to(source.bias.dtype))
    else:
        source.weight.div_(s.to(source.weight.dtype))
    for t in targets:
        t.weight.mul_(s.to(t.weight.dtype)[None, :])


@torch.no_grad()
def smooth_model(model, calib_ids: torch.Tensor, alpha: float = 0.5, progress: bool = True) -> dict:
    """Smooth every decoder layer in place, layer by layer on the calibration batch (each layer's
    activations measured after the layers before it were smoothed)."""
    if not 0 <= alpha <= 1:
        raise ValueError(f"SmoothQuant alpha must be in [0, 1], got {alpha!r}")
    n = 0
    for _, layer, run in sequential_layers(model, calib_ids, f"smoothquant a={alpha}", progress):
        amax: dict[str, torch.Tensor] = {}

        def track(src: str, x: torch.Tensor) -> None:
            x = x.reshape(-1, x.shape[-1]).abs().amax(0).float()
            amax[src] = torch.maximum(amax[src], x) if src in amax else x

        hooks = [layer.get_submodule(tgts[0]).register_forward_hook(lambda mod, inp, out, src=src: track(src, inp[0]))
                 for src, tgts in MAPPINGS]
        run()
        for h in hooks:
            h.remove()
        for src, tgts in MAPPINGS:
            targets = [layer.get_submodule(t) for t in tgts]
            absorb(layer.get_submodule(src), targets, smoothing_scales(amax[src], [t.weight for t in targets], alpha))
            n += len(targets)
    return {"smoothquant_alpha": alpha, "smoothed_linears": n}


@register("smoothquant", weights_only=True)
def smoothquant(model, calib, alpha: float = 0.5):
    """Per-channel smoothing before the cast (a variant's ``{smoothquant: {alpha: 0.5}}``), for a W8A8 step
    after it."""
    return smooth_model(model, calib, alpha)
