"""GPTQ (Frantar et al. 2022): weight quantization with second-order error compensation, the
GPTQ-class int4 that issue 14 asks for beside round-to-nearest.

Why written here: the maintained GPTQ libraries (gptqmodel, auto-gptq, llmcompressor) need a
CUDA toolchain or pin their own torch, and none installs beside this project's CPU torch;
torchao 0.18's prototype ``GPTQConfig`` (a dependency here for its CPU kernels) asserts
"GPTQ only supports CUDA currently" in its quantization step (checked 2026-11-25). GPTQ
is SparseGPT's column-by-column OBS update with "round to the int grid" in place of "set to
zero", so it shares SparseGPT's Hessian, Cholesky factor and sequential calibration loop
(``studylib.quality.transforms.prune.layerwise``). Asymmetric min-max grid per output row and group of
``group_size`` input columns (the common int4-g128 format; a narrower divisor where 128 does not divide
the row, as optimum-quanto does: ``group_for``), columns in natural order.

The result is *fake-quantized*: each weight holds its de-quantized value, which is what quality
measures need; decode speed of int4 weights is the packed kernel's (``transforms.quantize``),
whatever rounding chose the integers.
"""
from __future__ import annotations

import torch

from studylib.quality.transforms.prune import hessian, layerwise, obs_setup


def group_for(cols: int, group_size: int) -> int:
    """The group width actually used: ``group_size`` if it divides the row, else the largest
    multiple of 32 below it that does (what optimum-quanto does: SmolLM2's 576-wide inputs get
    groups of 96), so that GPTQ and the round-to-nearest int4 compare on the same groups."""
    if cols % group_size == 0:
        return group_size
    for g in range(group_size - group_size % 32, 31, -32):
        if cols % g == 0:
            return g
    return group_size


def grid(w: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row (scale, zero) of an asymmetric min-max grid over ``w``'s columns; 0 stays exact."""
    maxq = 2 ** bits - 1
    lo = torch.clamp(w.min(dim=1).values, max=0)
    hi = torch.clamp(w.max(dim=1).values, min=0)
    scale = (hi - lo) / maxq
    scale[scale == 0] = 1.0
    zero = torch.round(-lo / scale)
    return scale.unsqueeze(1), zero.unsqueeze(1)


def fake_quant(w: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, bits: int) -> torch.Tensor:
    q = torch.clamp(torch.round(w / scale) + zero, 0, 2 ** bits - 1)
    return scale * (q - zero)


def quantize_rtn(W: torch.Tensor, bits: int = 4, group_size: int = 128) -> torch.Tensor:
    """Round-to-nearest on the same grid (the baseline GPTQ improves on)."""
    W = W.float()
    group_size = group_for(W.shape[1], group_size)
    out = torch.empty_like(W)
    for c in range(0, W.shape[1], group_size):
        scale, zero = grid(W[:, c:c + group_size], bits)
        out[:, c:c + group_size] = fake_quant(W[:, c:c + group_size], scale, zero, bits)
    return out


def quantize_gptq(W: torch.Tensor, H: torch.Tensor, bits: int = 4, group_size: int = 128,
                  percdamp: float = 0.01) -> torch.Tensor:
    """GPTQ of one weight matrix (rows = outputs) against its input Hessian H = 2·XᵀX/n. Blocks of
    ``group_size`` columns: each group's grid is set from its weights as updated by the errors of
    all earlier groups, then its columns are rounded one by one, each rounding error spread over
    the columns not yet rounded."""
    W, Hinv = obs_setup(W, H, percdamp)
    cols = W.shape[1]
    group_size = group_for(cols, group_size)
    for i1 in range(0, cols, group_size):
        i2 = min(i1 + group_size, cols)
        W1 = W[:, i1:i2].clone()
        Err1 = torch.zeros_like(W1)
        Hinv1 = Hinv[i1:i2, i1:i2]
        scale, zero = grid(W1, bits)
        for i in range(i2 - i1):
            w = W1[:, i]
            q = fake_quant(w.unsqueeze(1), scale, zero, bits).squeeze(1)
            err = (w - q) / Hinv1[i, i]
            W1[:, i:] -= err.unsqueeze(1).matmul(Hinv1[i, i:].unsqueeze(0))
            W1[:, i] = q
            Err1[:, i] = err
        W[:, i1:i2] = W1
        W[:, i2:] -= Err1.matmul(Hinv[i1:i2, i2:])
    return W


def gptq_model(model, calib_ids: torch.Tensor, bits: int = 4, group_size: int = 128, progress: bool = True,
               percdamp: float = 0.01) -> dict:
    """GPTQ every Linear of every decoder layer in place, calibrated sequentially.

    ``percdamp`` is the Hessian damping as a fraction of its mean diagonal (GPTQ's default 0.01).
    ``make gptq-holdout`` measures how it trades calibration fit for held-out error.
    """
    if bits not in (2, 3, 4, 8):
        raise ValueError(f"GPTQ bits must be 2, 3, 4 or 8, got {bits!r}")
    if group_size < 8:
        raise ValueError(f"GPTQ group_size must be >= 8, got {group_size!r}")
    if not 0 < percdamp < 1:
        raise ValueError(f"GPTQ percdamp must be in (0, 1), got {percdamp!r}")
    layerwise(model, calib_ids, lambda W, st: quantize_gptq(W, hessian(st), bits, group_size, percdamp), need_h=True,
              desc=f"gptq int{bits} g{group_size}", progress=progress)
    return {"method": f"gptq_int{bits}", "weight_bits": bits, "group_size": group_size}


# ----------------------------------------------------------------------------- registered step
from studylib.quality.transforms.registry import register  # noqa: E402  (the registry imports this module last)


@register("gptq", weights_only=True, not_executable="fake-quantized weights (de-quantized bf16): its speed is the int4 kernel's")
def gptq(model, calib, bits: int = 4, group_size: int = 128, percdamp: float = 0.01):
    """GPTQ int-k, fake-quantized, before the cast (a variant's ``{gptq: {bits: 4}}``)."""
    return gptq_model(model, calib, bits, group_size, percdamp=percdamp)
