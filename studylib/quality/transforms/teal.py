"""TEAL-style activation sparsity (Liu et al. 2024, arXiv 2408.14690), FFN only: per layer,
magnitude thresholds on the input of gate/up (x) and of down (h), calibrated so that a fraction
``sparsity`` of entries falls below them on the calibration tokens. No router: a token reads the
gate/up columns of its kept inputs and the down columns of its kept neurons, so sparsity 0.75
reads ~25% of the FFN's weight bytes, the paper's top-1-of-4 budget. Uniform sparsity across
layers (TEAL's baseline; its greedy per-layer allocation is not reproduced here).
"""
from __future__ import annotations

import torch

from studylib.quality.transforms.ffn import MaskedFFN, NeuronSelector, convert_sequentially, ffn_hidden
from studylib.quality.transforms.registry import register


def magnitude_quantile(t: torch.Tensor, q: float, max_samples: int = 1 << 22, seed: int = 0) -> float:
    """q-quantile of |t| (on a fixed random subsample when t is large: torch.quantile's limit)."""
    a = t.abs().reshape(-1).float()
    if a.numel() > max_samples:
        g = torch.Generator().manual_seed(seed)
        a = a[torch.randint(0, a.numel(), (max_samples,), generator=g)]
    return float(torch.quantile(a, q)) if q > 0 else 0.0


@register("teal")
def teal(model, calib, sparsity: float = 0.75, sparsify_input: bool = True):
    """``sparsify_input=False`` thresholds only the intermediate activations (down's input): gate
    and up still read all their weights, so the byte budget is ~2/3 + 1/3 x (1 - sparsity) of the
    FFN, not 1 - sparsity — the threshold counterpart of the neuron oracle, for comparison."""
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"TEAL sparsity must be in [0, 1), got {sparsity}")

    def build(mlp, x, h, i):
        tx = magnitude_quantile(x, sparsity) if sparsify_input else 0.0
        xs = x * (x.abs() > tx) if sparsify_input else x
        th = magnitude_quantile(ffn_hidden(mlp, xs.to(mlp.gate_proj.weight.dtype)).float(), sparsity)
        return MaskedFFN(mlp, NeuronSelector(threshold=th),
                         input_threshold=tx if (sparsity and sparsify_input) else None)

    convert_sequentially(model, calib, build, desc=f"teal {sparsity}")
    return {"conversion": "teal", "activation_sparsity": sparsity, "sparsify_input": sparsify_input}


@register("neuron_oracle", not_executable="an oracle needs the dense activations (a bound)")
def neuron_oracle(model, calib, active: float = 0.25):
    """Per token, keep the ``active`` fraction of intermediate neurons with the largest true |h|:
    the ceiling of any neuron-level selection at that budget (it needs the dense activations it
    would save computing, so it is a bound, not a method)."""
    if not 0.0 < active <= 1.0:
        raise ValueError(f"active fraction must be in (0, 1], got {active}")
    convert_sequentially(model, calib, lambda mlp, x, h, i: MaskedFFN(mlp, NeuronSelector(top_fraction=active)),
                         desc=f"neuron oracle {active}")
    return {"conversion": "neuron_oracle", "active_target": active}
