"""The decode-step modules being timed, at real model shapes with random weights.

Per decoder layer: attention over a KV cache of ``context`` tokens (+ RMSNorms) and an FFN
variant; or the FFN alone. Variants:

* ``dense``            SwiGLU FFN, one fused gate|up GEMM + down GEMM (torch / cuBLAS).
* ``semi24``           2:4 semi-structured weights through ``to_sparse_semi_structured``
                       (cuSPARSELt on Ampere/Hopper). GPU only.
* ``unstructured30``   30% of weights zeroed, dense kernel — what "30% SparseGPT" buys a
                       dense GEMM: the honest baseline of unstructured pruning.
* ``moeK_topk``        the FFN split into K experts of width D_ff/K, a router, top-k
                       dispatch with ``torch._grouped_mm`` (no host sync, graph-capturable).
* ``pruned30_moe4_top1`` experts additionally 30% narrower: the *most favourable* reading of
                       the paper's "30% pruning + 4 experts" (structured, all zeros removed).
* ``int8wo`` / ``fp8`` / ``int4wo`` weight-only quantized FFN (torchao on the GPU; an int8
                       dequant-matmul reference on the CPU).

Routing for timing is forced from a load distribution (Table 4): each token's expert is
drawn from the given fractions, so imbalance is a controlled variable.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .paper.tables import TABLE4
from .shapes import Shape

VARIANTS = {
    "dense": {"kind": "dense"},
    "semi24": {"kind": "semi24", "gpu_only": True},
    "unstructured30": {"kind": "dense", "zero_frac": 0.3},
    "moe4_top1": {"kind": "moe", "K": 4, "k": 1},
    "moe4_top2": {"kind": "moe", "K": 4, "k": 2},
    "moe8_top1": {"kind": "moe", "K": 8, "k": 1},
    "pruned30_moe4_top1": {"kind": "moe", "K": 4, "k": 1, "width": 0.7},
    "int8wo": {"kind": "quant", "scheme": "int8wo"},
    "fp8": {"kind": "quant", "scheme": "fp8", "gpu_only": True},
    "int4wo": {"kind": "quant", "scheme": "int4wo", "gpu_only": True},
}
ROUTINGS = {"uniform": None, **{k: v["fractions"] for k, v in TABLE4.items() if k != "balanced"}}


class RMSNorm(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.w = nn.Parameter(torch.ones(d))

    def forward(self, x):
        return F.rms_norm(x, (x.shape[-1],), self.w, 1e-5)


class DenseFFN(nn.Module):
    def __init__(self, D, Dff, zero_frac: float = 0.0):
        super().__init__()
        self.gu = nn.Linear(D, 2 * Dff, bias=False)
        self.down = nn.Linear(Dff, D, bias=False)
        if zero_frac:
            for lin in (self.gu, self.down):
                lin.weight.data *= (torch.rand_like(lin.weight) >= zero_frac)

    def forward(self, x):
        g, u = self.gu(x).chunk(2, dim=-1)
        return self.down(F.silu(g) * u)


class MoEFFN(nn.Module):
    """K experts of width Dff_e, router, top-k, grouped GEMMs. ``forced`` (B, k) expert ids
    replace the router's choice (the router is still computed) to control the load."""

    def __init__(self, D, Dff, K, k, width: float = 1.0):
        super().__init__()
        De = int(Dff * width) // K
        De -= De % 8
        self.K, self.k = K, k
        self.router = nn.Linear(D, K, bias=False)
        self.w_gu = nn.Parameter(torch.randn(K, D, 2 * De) / math.sqrt(D))
        self.w_d = nn.Parameter(torch.randn(K, De, D) / math.sqrt(De))
        self.forced: torch.Tensor | None = None

    def forward(self, x):
        B = x.shape[0]
        logits = self.router(x)
        w, idx = torch.topk(logits.float().softmax(-1), self.k, dim=-1)
        if self.forced is not None:
            idx = self.forced
        flat = idx.reshape(-1)
        order = torch.argsort(flat, stable=True)
        tok = order // self.k
        counts = torch.bincount(flat, minlength=self.K)
        offs = torch.cumsum(counts, 0).to(torch.int32)
        xs = x[tok]
        h = torch._grouped_mm(xs, self.w_gu, offs=offs)
        g, u = h.chunk(2, dim=-1)
        y = torch._grouped_mm((F.silu(g) * u).contiguous(), self.w_d, offs=offs)
        y = y * w.reshape(-1)[order].unsqueeze(-1).to(y.dtype)
        return torch.zeros_like(x).index_add_(0, tok, y)

    def expert_bytes(self) -> int:
        return (self.w_gu[0].numel() + self.w_d[0].numel()) * self.w_gu.element_size()


class QuantFFN(nn.Module):
    """Weight-only quantized FFN. CUDA: torchao (int8wo / fp8 / int4wo). CPU: int8 weights with
    per-output-channel scales, de-quantized inside the matmul (a reference, not a fast kernel)."""

    def __init__(self, D, Dff, scheme: str, device: str):
        super().__init__()
        self.ffn = DenseFFN(D, Dff)
        self.scheme = scheme
        if device == "cuda":
            from torchao.quantization import quantize_  # noqa: PLC0415
            from torchao.quantization import (Float8WeightOnlyConfig, Int4WeightOnlyConfig,
                                              Int8WeightOnlyConfig)
            cfg = {"int8wo": Int8WeightOnlyConfig(), "fp8": Float8WeightOnlyConfig(),
                   "int4wo": Int4WeightOnlyConfig(group_size=128)}[scheme]
            self.ffn = self.ffn.to(device=device, dtype=torch.bfloat16)
            quantize_(self.ffn, cfg)
            self.cpu_ref = False
        else:
            if scheme != "int8wo":
                raise ValueError(f"{scheme} needs a GPU")
            self.cpu_ref = True
            for name in ("gu", "down"):
                W = getattr(self.ffn, name).weight.data
                s = W.abs().amax(1, keepdim=True) / 127
                self.register_buffer(f"{name}_q", torch.round(W / s).to(torch.int8))
                self.register_buffer(f"{name}_s", s.squeeze(1))

    def forward(self, x):
        if not self.cpu_ref:
            return self.ffn(x)
        g, u = ((x @ self.gu_q.T.to(x.dtype)) * self.gu_s).chunk(2, dim=-1)
        return (F.silu(g) * u) @ self.down_q.T.to(x.dtype) * self.down_s


class DecodeAttention(nn.Module):
    """One decode step of GQA attention over a static KV cache of ``context`` tokens."""

    def __init__(self, shape: Shape, batch: int, context: int):
        super().__init__()
        D, hd = shape.hidden, shape.head_dim
        self.h, self.kv, self.hd = shape.heads, shape.kv_heads, hd
        self.qkv = nn.Linear(D, hd * (shape.heads + 2 * shape.kv_heads), bias=False)
        self.o = nn.Linear(shape.heads * hd, D, bias=False)
        self.register_buffer("k_cache", torch.randn(batch, shape.kv_heads, context, hd))
        self.register_buffer("v_cache", torch.randn(batch, shape.kv_heads, context, hd))

    def forward(self, x):
        B = x.shape[0]
        q, k, v = self.qkv(x).split([self.h * self.hd, self.kv * self.hd, self.kv * self.hd], -1)
        q = q.view(B, self.h, 1, self.hd)
        # the new token's k/v are written in place of the last cache slot (static cache)
        self.k_cache[:, :, -1] = k.view(B, self.kv, self.hd)
        self.v_cache[:, :, -1] = v.view(B, self.kv, self.hd)
        o = F.scaled_dot_product_attention(q, self.k_cache, self.v_cache, enable_gqa=True)
        return self.o(o.reshape(B, self.h * self.hd))


class DecoderLayer(nn.Module):
    def __init__(self, shape: Shape, ffn: nn.Module, batch: int, context: int):
        super().__init__()
        self.n1, self.n2 = RMSNorm(shape.hidden), RMSNorm(shape.hidden)
        self.attn = DecodeAttention(shape, batch, context)
        self.ffn = ffn

    def forward(self, x):
        x = x + self.attn(self.n1(x))
        return x + self.ffn(self.n2(x))


def build_ffn(variant: str, shape: Shape, device: str) -> nn.Module:
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; known: {', '.join(VARIANTS)}")
    spec = VARIANTS[variant]
    if spec.get("gpu_only") and device != "cuda":
        raise ValueError(f"variant {variant!r} needs a CUDA GPU")
    D, Dff = shape.hidden, shape.intermediate
    if spec["kind"] == "dense":
        return DenseFFN(D, Dff, spec.get("zero_frac", 0.0))
    if spec["kind"] == "moe":
        return MoEFFN(D, Dff, spec["K"], spec["k"], spec.get("width", 1.0))
    if spec["kind"] == "quant":
        return QuantFFN(D, Dff, spec["scheme"], device)
    if spec["kind"] == "semi24":
        from torch.sparse import to_sparse_semi_structured  # noqa: PLC0415

        ffn = DenseFFN(D, Dff).to(device=device, dtype=torch.bfloat16)
        for lin in (ffn.gu, ffn.down):
            W = lin.weight.data
            mask = torch.tensor([1, 1, 0, 0], device=device, dtype=torch.bool).repeat(W.numel() // 4).view_as(W)
            lin.weight = nn.Parameter(to_sparse_semi_structured(W * mask))
        return ffn
    raise AssertionError(spec)


def forced_routing(routing: str, batch: int, K: int, k: int, device: str, seed: int = 0) -> torch.Tensor | None:
    """(batch, k) expert ids drawn from a Table 4 load distribution (None = the router's choice
    on random inputs, which is near uniform). Distributions are given for 4 experts; for other
    K the first expert gets the same share and the rest split the remainder evenly."""
    fr = ROUTINGS[routing]
    if fr is None:
        return None
    if K != len(fr):
        fr = (fr[0],) + tuple((1 - fr[0]) / (K - 1) for _ in range(K - 1))
    g = torch.Generator().manual_seed(seed)
    probs = torch.tensor(fr, dtype=torch.float).clamp_min(0)
    idx = torch.stack([torch.multinomial(probs + 1e-9 * (i > 0), k, replacement=False, generator=g)
                       for i in range(batch)])
    return idx.to(device)


def variant_bytes(variant: str, module: nn.Module, component: str, forced: torch.Tensor | None,
                  shape: Shape, batch: int, context: int, dtype_bytes: int) -> int:
    """Bytes the step must read from memory at minimum (weights it touches + KV cache)."""
    D, Dff = shape.hidden, shape.intermediate
    spec = VARIANTS[variant]
    if spec["kind"] == "moe":
        ffn = module.ffn if component == "layer" else module
        touched = (forced.unique().numel() if forced is not None
                   else min(ffn.K, math.ceil(ffn.K * (1 - (1 - ffn.k / ffn.K) ** batch))))
        ffn_b = touched * ffn.expert_bytes() + D * ffn.K * dtype_bytes
    elif spec["kind"] == "quant":
        per = {"int8wo": 1, "fp8": 1, "int4wo": 0.5}[spec["scheme"]]
        ffn_b = int(3 * D * Dff * per)
    elif spec["kind"] == "semi24":
        ffn_b = int(3 * D * Dff * dtype_bytes * 0.5 * 1.125)  # half the values + 2-bit metadata
    else:
        ffn_b = 3 * D * Dff * dtype_bytes
    if component == "ffn":
        return ffn_b
    kv = 2 * batch * context * shape.kv_heads * shape.head_dim * dtype_bytes
    return ffn_b + shape.attn_params * dtype_bytes + kv
