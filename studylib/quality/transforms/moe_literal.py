"""The paper's literal conversion (§4.1): K equal experts, top-k routing, no shared expert —
repaired (issue 12). Neurons are grouped by balanced k-means on their calibration activation
patterns (MoEfication); the router is a ridge regression from the FFN input to each expert's
*share* of the token's activation mass (shares, not raw masses: raw ‖h_e‖₁ grows with the
token's norm, and the old router sent up to 96% of tokens to one expert), fitted layer by layer
on the inputs of the already-converted model.

Also the two bounds on the same partition: ``moe_oracle`` routes each token to the expert with
the largest true mass (no router on this partition can keep more), ``moe_constant`` sends every
token to the one expert with the largest mean mass (the floor).
"""
from __future__ import annotations

import torch

from studylib.quality.transforms.ffn import (
    ExpertSelector,
    MaskedFFN,
    convert_sequentially,
    expert_mass,
    fit_router,
    split_neurons,
)
from studylib.quality.transforms.registry import register


def _convert(model, calib, experts, top_k, kind, ridge=1e-2, seed=0, bias=0.0, capacity_factor=None, balance=False):
    if not 1 <= top_k <= experts:
        raise ValueError(f"top_k={top_k} must be between 1 and experts={experts}")

    def build(mlp, x, h, i):
        assign = split_neurons(h, experts, seed)
        mass = expert_mass(h, assign, experts)
        router = None
        shift = torch.zeros(experts)
        if kind == "linear":
            share = mass / mass.sum(1, keepdim=True).clamp_min(1e-12)
            router = fit_router(x, share, ridge)
            # the designed-grid knob: expert 0 favoured by `bias` standard deviations of the scores
            scores = x @ router[:-1] + router[-1]
            if balance:  # CMoE's training-free load balancing, on the calibration scores
                from studylib.quality.transforms.cmoe import balance_bias

                shift = balance_bias(scores, top_k)
            shift[0] += bias * float(scores.std())
        if kind == "constant":
            shift[int(mass.mean(0).argmax())] = 1.0
        sel = ExpertSelector(assign, experts, top_k, kind, router=router, bias=shift)
        return MaskedFFN(mlp, sel, experts, capacity_factor=capacity_factor)

    convert_sequentially(model, calib, build, desc=f"moe_{kind} K={experts} top{top_k}")
    return {"experts": experts, "top_k": top_k, "conversion": f"moe_{kind}", "bias": bias,
            "capacity_factor": capacity_factor}


@register("moe_literal")
def moe_literal(model, calib, experts: int = 4, top_k: int = 1, ridge: float = 1e-2, seed: int = 0,
                bias: float = 0.0, capacity_factor: float | None = None, balance: bool = False):
    """``bias`` and ``capacity_factor``: the Eq. 25 designed grid's knobs (imbalance, drops);
    ``balance``: per-expert score offsets that equalise loads on the calibration tokens."""
    return _convert(model, calib, experts, top_k, "linear", ridge, seed, bias, capacity_factor, balance)


@register("moe_oracle", not_executable="an oracle needs the dense activations (a bound)")
def moe_oracle(model, calib, experts: int = 4, top_k: int = 1, seed: int = 0):
    return _convert(model, calib, experts, top_k, "oracle", seed=seed)


@register("moe_constant", not_executable="the constant-expert floor is a bound, not a model")
def moe_constant(model, calib, experts: int = 4, seed: int = 0):
    return _convert(model, calib, experts, 1, "constant", seed=seed)
