"""Weight-only quantization of a (N, K) weight: what the decode kernels read.

Round-to-nearest, symmetric: int8 and fp8-e4m3 with one scale per output row; int4 with one
scale per row and group of ``group`` input columns, two values per byte along K (low nibble =
even column). Written here because the GPU image has no torchao; on CPU machines the quality
runs use maintained libraries (see ``studylib.conversions``) and these functions are checked
against them only through the round-trip tests.
"""
from __future__ import annotations

import torch

FP8_MAX = 448.0


def quantize_rowwise(w: torch.Tensor, kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    """int8 or fp8 weights with per-row fp32 scales; w ≈ q * scale[:, None]."""
    w32 = w.float()
    amax = w32.abs().amax(dim=1).clamp_min(1e-12)
    if kind == "int8":
        s = amax / 127.0
        q = torch.round(w32 / s[:, None]).clamp(-127, 127).to(torch.int8)
    elif kind == "fp8":
        s = amax / FP8_MAX
        q = (w32 / s[:, None]).clamp(-FP8_MAX, FP8_MAX).to(torch.float8_e4m3fn)
    else:
        raise ValueError(f"unknown row-wise quantization {kind!r}")
    return q, s


def quantize_int4(w: torch.Tensor, group: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    """int4 in [-8, 7] with a scale per (row, group); packed (N, K/2) int8 and scales (N, K/group)."""
    N, K = w.shape
    if K % group or K % 2:
        raise ValueError(f"K={K} must be a multiple of group={group} and of 2")
    g = w.float().view(N, K // group, group)
    s = (g.abs().amax(dim=2) / 7.0).clamp_min(1e-12)
    q = torch.round(g / s[..., None]).clamp(-8, 7).to(torch.int8).view(N, K)
    packed = (q[:, 0::2] & 0xF) | (q[:, 1::2] << 4)
    return packed.to(torch.int8), s


def dequantize(q: torch.Tensor, s: torch.Tensor, kind: str, group: int = 128) -> torch.Tensor:
    if kind in ("int8", "fp8"):
        return q.float() * s[:, None]
    if kind == "int4":
        lo = (q << 4) >> 4
        hi = q >> 4
        v = torch.stack([lo, hi], dim=-1).view(q.shape[0], -1).float()
        N, K = v.shape
        return (v.view(N, K // group, group) * s[..., None]).view(N, K)
    raise ValueError(f"unknown quantization {kind!r}")


def weight_bytes(q: torch.Tensor, s: torch.Tensor | None) -> int:
    """Bytes a kernel must read for this weight: the packed values plus their scales."""
    return q.numel() * q.element_size() + (0 if s is None else s.numel() * s.element_size())
