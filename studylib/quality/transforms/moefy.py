"""The first grid's conversion (issue 3): MoEfication (Zhang et al. 2022) adapted to SwiGLU, as
the study first ran it on SmolLM2 — kept as a registered step so the first grid's committed units
(``embedded``, ``cpu-real``: ``moe4_top1``, ``sparsegpt30_moe4_top1``, ``grid_p*_b*_cf*``) can be
rerun under their names; the repaired conversion the verdicts rest on is ``moe_literal``.

* Experts: the D_ff neurons split into K equal groups by balanced k-means on their calibration
  activation patterns (``ffn.split_neurons``, the same partition ``moe_literal`` uses).
* Router: a ridge regression from the FFN input to each expert's *raw* activation mass ‖h_e‖₁,
  fitted for every layer at once on the dense model's activations. (``moe_literal`` fits shares,
  not masses, layer by layer on the converted model's inputs: raw masses grow with the token's
  norm, and this router sends up to 96% of a layer's tokens to one expert — the finding that
  led to the repair.) Top-k of the scores picks the experts; their outputs are summed unweighted.
* ``bias`` adds ``bias`` standard deviations of the calibration scores to expert 0's score: the
  designed-grid knob that unbalances routing on purpose; ``capacity_factor`` drops assignments
  beyond an expert's capacity (``ffn.MaskedFFN``).

Expressed on the shared ``ffn.MaskedFFN`` since 2026-12-04 (it was a module of its own). Two
things differ from the committed first-grid units, so a rerun of a ``cf`` point or of a routing
row will not reproduce them digit for digit: capacity now counts per 64-position window of each
sequence (it counted over a whole padded batch, so a token's fate depended on its batch-mates),
and routing statistics come from the held-out routing pass on real tokens (they were counted
over the evaluation's padded batches).
"""
from __future__ import annotations

import torch

from studylib.models import decoder_layers
from studylib.quality.transforms.ffn import ExpertSelector, MaskedFFN, expert_mass, ffn_hidden, fit_router, split_neurons
from studylib.quality.transforms.registry import register


@torch.no_grad()
def dense_ffn_io(model, calib_ids: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per layer: (FFN inputs x, intermediate activations h) on the calibration tokens, all from
    one forward pass of the model as it is (the first grid fitted every router on the dense model)."""
    out, hooks = [], []
    for layer in decoder_layers(model):
        def hook(mod, inp, outp):
            x = inp[0].reshape(-1, inp[0].shape[-1])
            out.append((x.float(), ffn_hidden(mod, x).float()))
        hooks.append(layer.mlp.register_forward_hook(hook))
    try:
        model(calib_ids)
    finally:
        for h in hooks:
            h.remove()
    return out


@register("moefy")
def moefy(model, calib, experts: int = 4, top_k: int = 1, capacity_factor: float | None = None,
          bias: float = 0.0, seed: int = 0):
    if not 1 <= top_k <= experts:
        raise ValueError(f"top_k={top_k} must be between 1 and experts={experts}")
    io = dense_ffn_io(model, calib)
    for layer, (x, h) in zip(decoder_layers(model), io):
        assign = split_neurons(h, experts, seed)
        router = fit_router(x, expert_mass(h, assign, experts))
        shift = torch.zeros(experts)
        shift[0] = bias * float((x @ router[:-1] + router[-1]).std())
        sel = ExpertSelector(assign, experts, top_k, "linear", router=router, bias=shift)
        layer.mlp = MaskedFFN(layer.mlp, sel, experts, capacity_factor=capacity_factor)
    return {"experts": experts, "top_k": top_k, "conversion": "moefy", "bias": bias,
            "capacity_factor": capacity_factor}
