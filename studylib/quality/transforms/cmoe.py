"""CMoE-style carving (Pei et al. 2025, arXiv 2502.04416), written from the paper's description.

Per layer, on calibration activations: a neuron is "active" for a token when it is among the
token's largest ``marker_top`` fraction of |h|. The neurons with the highest activation rate form
an always-on shared expert (``shared`` of the D_ff neurons); the rest are split into ``routed``
equal experts by balanced k-means on their 0/1 activation patterns (the paper solves a balanced
linear assignment; the greedy balanced assignment here keeps the equal sizes). Each routed
expert's router score is the activation magnitude of its *representative neuron* (the member
closest to the expert's mean pattern) — an analytic router, no training; selected experts are
combined with weight 1. Load balancing adjusts a per-expert bias on the calibration tokens
until loads are near equal (training-free).

Active fraction per token = shared + top_k/routed × (1 - shared): 1/8 + 1/7·7/8 = 25% for the
default (shared 1/8, 7 routed, top-1), 2/8 + 2/6·6/8 = 50% for shared 2/8, 6 routed, top-2.
"""
from __future__ import annotations

import torch

from studylib.quality.transforms.ffn import (
    ExpertSelector,
    MaskedFFN,
    balanced_kmeans,
    convert_sequentially,
    top_fraction_markers,
)
from studylib.quality.transforms.registry import register


def balance_bias(scores: torch.Tensor, top_k: int, steps: int = 100, rate: float = 0.5) -> torch.Tensor:
    """Bias that equalises expert loads of top-k(scores + bias) on calibration tokens."""
    K = scores.shape[1]
    bias = torch.zeros(K)
    scale = float(scores.std()) or 1.0
    for _ in range(steps):
        top = torch.topk(scores + bias, top_k, dim=1).indices
        load = torch.bincount(top.reshape(-1), minlength=K).float() / top.numel()
        bias -= rate * scale * (load - 1.0 / K)
    return bias


@register("cmoe")
def cmoe(model, calib, shared: float = 0.125, routed: int = 7, top_k: int = 1, marker_top: float = 0.1,
         balance: bool = True, seed: int = 0):
    def build(mlp, x, h, i):
        D = h.shape[1]
        n_shared = int(round(D * shared))
        markers = top_fraction_markers(h, marker_top)
        rate = markers.float().mean(0)
        shared_idx = torch.topk(rate, n_shared).indices
        rest = torch.ones(D, dtype=torch.bool)
        rest[shared_idx] = False
        rest_idx = rest.nonzero().squeeze(1)
        if len(rest_idx) % routed:
            raise ValueError(f"{len(rest_idx)} non-shared neurons do not split into {routed} equal experts")
        groups = balanced_kmeans(markers[:, rest_idx].float().T, routed, seed=seed)
        assign = torch.full((D,), -1, dtype=torch.long)
        assign[rest_idx] = groups
        reps = torch.empty(routed, dtype=torch.long)
        pat = markers.float()
        for e in range(routed):
            members = rest_idx[groups == e]
            centre = pat[:, members].mean(1, keepdim=True)
            reps[e] = members[int(((pat[:, members] - centre) ** 2).sum(0).argmin())]
        bias = balance_bias(h[:, reps].abs(), top_k) if balance else None
        return MaskedFFN(mlp, ExpertSelector(assign, routed, top_k, "representative", reps=reps, bias=bias), routed)

    convert_sequentially(model, calib, build, desc=f"cmoe shared={shared} {routed} routed top{top_k}")
    return {"experts": routed, "top_k": top_k, "conversion": "cmoe", "shared_fraction": shared}

