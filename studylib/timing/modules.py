"""The decode-step modules being timed, at real model shapes with random weights.

Per decoder layer: attention over a KV cache of ``context`` tokens (+ RMSNorms) and an FFN
variant; or the FFN alone. Each variant runs with the best kernel this study has for it on the
device at hand (the kernel is recorded with every timing row):

* ``dense``            SwiGLU FFN, one fused gate|up GEMM + down GEMM (cuBLAS / oneDNN).
* ``expert_alone`` / ``pruned_expert_alone``  a dense FFN a quarter (0.7 x a quarter) as wide:
                       one expert of ``moe4_top1`` (``pruned30_moe4_top1``) with no router — the
                       floor that any top-1-of-4 kernel is measured against.
* ``semi24``           2:4 semi-structured weights through ``to_sparse_semi_structured``
                       (cuSPARSELt on Hopper). GPU only.
* ``unstructured30``   30% of weights zeroed, dense kernel: what "30% SparseGPT" buys a dense
                       GEMM (no unstructured-sparse decode kernel beats dense at 30%).
* ``moeK_topk``        the FFN split into K experts of width D_ff/K, a router, top-k. Small
                       batches (B·k <= GEMV_MAX_SLOTS) run the Triton expert GEMV that reads only
                       the chosen experts' rows; larger batches ``torch._grouped_mm`` (CUTLASS
                       grouped GEMM, empty groups skipped). Neither syncs with the host, so
                       both are CUDA-graph capturable.
* ``pruned30_moe4_top1`` experts additionally 30% narrower: the *most favourable* reading of
                       the paper's "30% pruning + 4 experts" (structured, all zeros removed).
* ``int8wo`` / ``fp8wo`` / ``int4wo``  weight-only quantized FFN, de-quantized in registers by
                       the Triton kernel (``studylib.kernels``); in a decoder layer the attention
                       projections are quantized too, and in a whole model the LM head, as
                       gpt-fast and torchao quantize every linear (until 2026-11-30 only the FFN
                       was: the H100 campaign's quantized layer and model units are of that kind); ``int8wo_torch`` /
                       ``int4wo_torch`` the same through torch's own packed kernels
                       (``_weight_int8pack_mm``, tinygemm ``_weight_int4pack_mm``);
                       ``int8wo_compiled`` gpt-fast's torch.compile'd de-quantize + linear;
                       ``fp8_scaled_mm`` fp8 weights and per-row dynamically quantized
                       activations through ``torch._scaled_mm`` (cuBLASLt). Where a kernel
                       does not exist on the device, building the variant raises.

Routing for timing is forced from a load distribution (Table 4): each token's expert is
drawn from the given fractions, so imbalance is a controlled variable.
"""
from __future__ import annotations

import functools
import math
from contextlib import contextmanager

import torch
import torch.nn as nn
import torch.nn.functional as F

from studylib.kernels import quant as Q
from studylib.kernels import triton_gemv as TG
from studylib.paper.tables import TABLE4
from studylib.results import BASELINE
from studylib.shapes import Shape

#: The timed FFN modules, declared: ``kind`` picks the builder; ``K``/``k`` experts and top-k; ``width``
#: the fraction of D_ff each expert (or the dense FFN) keeps; ``pruned`` the pruning ratio the
#: paper's recipe applied (the latency model's feature; width alone also covers the 1/K slices).
#: Code reads these attributes, never the names. ``by_batch``: the timed form of its technique that
#: chapter 2's speedup-vs-batch figure draws (one per technique, its best GPU kernel). ``roles``: what
#: a claim reads a module as (``with_role``): ``paper_recipe`` the paper's combination (H1, the
#: headline), ``paper_conversion`` its conversion without pruning (Table 2's gate share),
#: ``int8_footprint`` the int8 form whose held bytes stand for Table 7's int8 memory (torch's packed
#: weights, as a deployment holds them). ``slice_of``: the router-free expert slice of that module.
#: ``technique``: the weight-only format a quantized module implements (every kernel of a format is a
#: candidate for its best speed). ``label``: the module's name in the H200-vs-H100 replication table
#: (modules with one are replicated as whole 8B models at B=1). ``tolerance``: its error bound against
#: the fp64 reference in the kernel check (bf16 default 2e-2).
TIMED_MODULES = {
    BASELINE: {"kind": "dense"},
    # one expert's slice timed by itself (``slice``): what a top-1 layer should cost, not a layer variant
    "expert_alone": {"kind": "dense", "width": 0.25, "slice": True, "slice_of": "moe4_top1"},
    "pruned_expert_alone": {"kind": "dense", "width": 0.25 * 0.7, "pruned": 0.3, "slice": True,
                            "slice_of": "pruned30_moe4_top1"},
    "semi24": {"kind": "semi24", "gpu_only": True, "by_batch": True},
    "unstructured30": {"kind": "dense", "zero_frac": 0.3},
    "moe4_top1": {"kind": "moe", "K": 4, "k": 1, "by_batch": True, "roles": ("paper_conversion",),
                  "label": "Top-1 of 4 unpruned"},
    "moe4_top2": {"kind": "moe", "K": 4, "k": 2},
    "moe8_top1": {"kind": "moe", "K": 8, "k": 1},
    "pruned30_moe4_top1": {"kind": "moe", "K": 4, "k": 1, "width": 0.7, "pruned": 0.3, "by_batch": True,
                           "roles": ("paper_recipe",)},
    "int8wo": {"kind": "quant", "scheme": "int8", "by_batch": True, "technique": "int8",
               "label": "int8 weight-only (Triton)"},
    # the same kernel with K never split (the A/B of split-K: its partial sums cost two small kernels)
    "int8wo_nosplit": {"kind": "quant", "scheme": "int8", "splits": 1, "technique": "int8",
                       "label": "int8 weight-only (Triton, K never split)"},
    "fp8wo": {"kind": "quant", "scheme": "fp8", "gpu_only": True, "by_batch": True, "technique": "fp8",
              "label": "fp8 weight-only (Triton)"},
    "int4wo": {"kind": "quant", "scheme": "int4", "technique": "int4", "label": "int4 weight-only (Triton)"},
    "int8wo_torch": {"kind": "quant", "scheme": "int8_torch", "technique": "int8", "roles": ("int8_footprint",)},
    # gpt-fast's int8: F.linear(x, W_int8.to(bf16)) * scales through torch.compile with coordinate-descent
    # tuning, under which inductor turns a one-row matmul into a fused de-quantize + reduction kernel
    "int8wo_compiled": {"kind": "quant", "scheme": "int8_compiled", "gpu_only": True, "technique": "int8",
                        "label": "int8 weight-only (torch.compile, gpt-fast)"},
    "int4wo_torch": {"kind": "quant", "scheme": "int4_torch", "gpu_only": True, "by_batch": True, "technique": "int4",
                     "label": "int4 weight-only (tinygemm)"},
    # fp8 activations too (dynamic per-row e4m3): its error against the fp64 reference is ~5e-2
    "fp8_scaled_mm": {"kind": "quant", "scheme": "fp8_scaled_mm", "gpu_only": True, "technique": "fp8",
                      "tolerance": 1e-1},
}


def with_role(role: str) -> str:
    """The one timed module that declares ``role`` (see TIMED_MODULES); an unknown role is an error."""
    found = [v for v, s in TIMED_MODULES.items() if role in s.get("roles", ())]
    if len(found) != 1:
        raise ValueError(f"{len(found)} timed modules declare the role {role!r}; declared: "
                         f"{sorted({r for s in TIMED_MODULES.values() for r in s.get('roles', ())})}")
    return found[0]


def with_technique(technique: str) -> tuple[str, ...]:
    """Every timed module implementing a weight-only ``technique`` (int8, int4, fp8), in declaration order."""
    return tuple(v for v, s in TIMED_MODULES.items() if s.get("technique") == technique)


def slice_of(module: str) -> str:
    """The router-free expert slice declared for a routed ``module`` (``slice_of``)."""
    return next(v for v, s in TIMED_MODULES.items() if s.get("slice_of") == module)


def routed(variant: str) -> bool:
    """Whether a timed variant has a router (its units carry a routing distribution)."""
    return TIMED_MODULES[variant]["kind"] == "moe"


def routing_of(variant: str) -> tuple[int, int, float]:
    """(experts K, top-k, pruned fraction) of a timed variant, from its declaration."""
    spec = TIMED_MODULES[variant]
    return spec.get("K", 1), spec.get("k", 1), spec.get("pruned", 0.0)


ROUTINGS = {"uniform": None, **{k: v["fractions"] for k, v in TABLE4.items() if k != "balanced"}}
GEMV_MAX_SLOTS = 4  # B·k up to this uses the expert GEMV; above it the grouped GEMM


@contextmanager
def building_on(device: str, dtype: torch.dtype):
    """Create parameters directly on the device in the timing dtype (a 70B layer built on the
    CPU and copied over would cost seconds per unit)."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            yield
    finally:
        torch.set_default_dtype(old)


class RMSNorm(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.w = nn.Parameter(torch.ones(d))

    def forward(self, x):
        return F.rms_norm(x, (x.shape[-1],), self.w, 1e-5)


def swiglu(h: torch.Tensor) -> torch.Tensor:
    g, u = h.chunk(2, dim=-1)
    return F.silu(g) * u


class DenseFFN(nn.Module):
    kernel = "cuBLAS/oneDNN GEMM"

    def __init__(self, D, Dff, zero_frac: float = 0.0):
        super().__init__()
        self.gu = nn.Linear(D, 2 * Dff, bias=False)
        self.down = nn.Linear(Dff, D, bias=False)
        if zero_frac:
            for lin in (self.gu, self.down):
                lin.weight.data *= (torch.rand_like(lin.weight) >= zero_frac)

    def forward(self, x):
        return self.down(swiglu(self.gu(x)))

    def bytes_read(self, forced=None, batch: int = 1) -> int:
        return sum(p.numel() * p.element_size() for p in self.parameters())


class MoEFFN(nn.Module):
    """K experts of width Dff_e, router, top-k. ``forced`` (B, k) expert ids replace the router's
    choice (the router is still computed) to control the load. Weights are kept in nn.Linear
    layout (rows = output neurons, contiguous over the input), gate rows before up rows."""

    def __init__(self, D, Dff, K, k, width: float = 1.0):
        super().__init__()
        De = int(Dff * width) // K
        De -= De % 8
        self.K, self.k, self.De = K, k, De
        self.router = nn.Linear(D, K, bias=False)
        self.w_gu = nn.Parameter(torch.randn(K, 2 * De, D) / math.sqrt(D))
        self.w_d = nn.Parameter(torch.randn(K, D, De) / math.sqrt(De))
        self.forced: torch.Tensor | None = None
        self.register_buffer("_experts", torch.arange(K), persistent=False)
        self._buffers_cache: dict = {}

    def _use_gemv(self, batch: int) -> bool:
        return batch * self.k <= GEMV_MAX_SLOTS and TG.available(self.w_gu.device.type)

    def kernel_for(self, batch: int) -> str:
        """The path ``forward`` takes for ``batch`` tokens."""
        return "triton expert GEMV" if self._use_gemv(batch) else "torch._grouped_mm"

    @property
    def kernel(self) -> str:
        return self.kernel_for(1) + " (B·k <= 4) / torch._grouped_mm"

    def route(self, x):
        logits = self.router(x)
        top, idx = torch.topk(logits, self.k, dim=-1)
        # combine weights renormalised over the chosen experts: exactly 1 for top-1 (no kernel)
        w = None if self.k == 1 else top.float().softmax(-1)
        if self.forced is not None:
            idx = self.forced
        return w, idx

    def _index_buffers(self, B: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        """Token row of each (token, expert) slot and the slot ids, made once per batch size so
        that a captured decode step launches no index kernels."""
        key = (B, str(device))
        if key not in self._buffers_cache:
            rows = torch.arange(B, device=device, dtype=torch.int32).repeat_interleave(self.k)
            self._buffers_cache[key] = (rows, torch.arange(B * self.k, device=device, dtype=torch.int32))
        return self._buffers_cache[key]

    def forward(self, x):
        w, idx = self.route(x)
        if self._use_gemv(x.shape[0]):
            return self._forward_gemv(x, w, idx)
        return self._forward_grouped(x, w, idx)

    def _forward_gemv(self, x, w, idx):
        B = x.shape[0]
        eids = idx.reshape(-1)
        rows, slots = self._index_buffers(B, x.device)
        h = TG.expert_gemv(x, self.w_gu, eids, rows, None, glu=True)
        y = TG.expert_gemv(h, self.w_d, eids, slots, None if w is None else w.reshape(-1), glu=False)
        return y if self.k == 1 else y.view(B, self.k, -1).sum(1)

    def _forward_grouped(self, x, w, idx):
        flat = idx.reshape(-1)
        order = torch.argsort(flat, stable=True)
        tok = order // self.k
        counts = (flat[:, None] == self._experts).sum(0)   # no bincount: it syncs with the host
        offs = torch.cumsum(counts, 0).to(torch.int32)
        xs = x[tok]
        h = torch._grouped_mm(xs, self.w_gu.transpose(-2, -1), offs=offs)
        y = torch._grouped_mm(swiglu(h).contiguous(), self.w_d.transpose(-2, -1), offs=offs)
        if w is not None:
            y = y * w.reshape(-1)[order].unsqueeze(-1).to(y.dtype)
        return torch.zeros_like(x).index_add_(0, tok, y)

    def expert_bytes(self) -> int:
        return (self.w_gu[0].numel() + self.w_d[0].numel()) * self.w_gu.element_size()

    def bytes_read(self, forced=None, batch: int = 1) -> int:
        touched = (forced.unique().numel() if forced is not None
                   else min(self.K, math.ceil(self.K * (1 - (1 - self.k / self.K) ** batch))))
        return touched * self.expert_bytes() + self.router.weight.numel() * self.router.weight.element_size()


class QuantLinear(nn.Module):
    """A bias-free linear layer with weight-only quantized weights (see the module docstring for
    the schemes): what gpt-fast's and torchao's weight-only handlers put in place of every
    ``nn.Linear``."""

    def __init__(self, W: torch.Tensor, scheme: str, splits: int | None = None):
        super().__init__()
        self.scheme, self.splits = scheme, splits
        q, s, self.kernel = self._pack(W, scheme, W.device.type, splits)
        self.register_buffer("q", q)
        self.register_buffer("s", s)

    @staticmethod
    def _pack(W, scheme, device, splits=None):
        if scheme in ("int8", "fp8", "int4"):
            if not TG.available(device):
                if scheme != "int8":
                    raise ValueError(f"{scheme} weight-only needs the Triton kernel (a CUDA GPU)")
                q, s = Q.quantize_rowwise(W, "int8")
                return q, s, "torch de-quantize + matmul (reference, not a fast kernel)"
            q, s = Q.quantize_int4(W) if scheme == "int4" else Q.quantize_rowwise(W, scheme)
            return q, s, f"triton weight-only {scheme} matmul ({'no split' if splits == 1 else 'split-K'})"
        if scheme == "int8_torch":
            q, s = Q.quantize_rowwise(W, "int8")
            return q, s.to(W.dtype), "torch._weight_int8pack_mm"
        if scheme == "int8_compiled":
            q, s = Q.quantize_rowwise(W, "int8")
            return q, s.to(W.dtype), ("torch.compile de-quantize + linear (gpt-fast)" if device == "cuda"
                                      else "eager de-quantize + linear (the compiled kernel's math, CPU)")
        if scheme == "int4_torch":
            if not hasattr(torch, "_weight_int4pack_mm") or device != "cuda":
                raise ValueError("int4_torch needs torch._weight_int4pack_mm on a CUDA GPU")
            return *_tinygemm_pack(W), "torch._weight_int4pack_mm (tinygemm)"
        if scheme == "fp8_scaled_mm":
            q, s = Q.quantize_rowwise(W, "fp8")
            return q, s.float().view(1, -1), "torch._scaled_mm (fp8 weights + dynamic fp8 activations)"
        raise ValueError(f"unknown quantization scheme {scheme!r}")

    def forward(self, x):
        q, s, sch = self.q, self.s, self.scheme
        if sch in ("int8", "fp8", "int4") and TG.available(x.device.type):
            return TG.wo_matmul(x, q, s, TG.QUANT_INT4 if sch == "int4" else TG.QUANT_ROW, splits=self.splits)
        if sch == "int8":  # CPU reference
            return (x @ q.T.to(x.dtype)) * s.to(x.dtype)
        if sch == "int8_torch":
            return torch._weight_int8pack_mm(x, q, s)
        if sch == "int8_compiled":
            return (_compiled_int8_linear() if x.device.type == "cuda" else _int8_linear)(x, q, s)
        if sch == "int4_torch":
            return torch._weight_int4pack_mm(x, q, TINYGEMM_GROUP, s)
        if sch == "fp8_scaled_mm":
            M = x.shape[0]
            pad = (-M) % 16
            xp = F.pad(x, (0, 0, 0, pad)) if pad else x
            xs = (xp.float().abs().amax(1, keepdim=True) / Q.FP8_MAX).clamp_min(1e-12)
            xq = (xp.float() / xs).to(torch.float8_e4m3fn)
            y = torch._scaled_mm(xq, q.t(), scale_a=xs, scale_b=s, out_dtype=x.dtype)
            return y[:M]
        raise AssertionError(sch)

    def bytes_read(self) -> int:
        return Q.weight_bytes(self.q, self.s)


def linear_bytes(m: nn.Module) -> int:
    """Weight bytes one call of a linear layer reads (quantized or not)."""
    return m.bytes_read() if isinstance(m, QuantLinear) else m.weight.numel() * m.weight.element_size()


class QuantFFN(nn.Module):
    """Weight-only quantized SwiGLU FFN: the fused gate|up and the down projection as ``QuantLinear``."""

    def __init__(self, D, Dff, scheme: str, splits: int | None = None):
        super().__init__()
        self.scheme, self.splits = scheme, splits
        ref = DenseFFN(D, Dff)
        self.gu = QuantLinear(ref.gu.weight.data, scheme, splits)
        self.down = QuantLinear(ref.down.weight.data, scheme, splits)
        self.kernel = self.gu.kernel
        del ref

    def forward(self, x):
        return self.down(swiglu(self.gu(x)))

    def bytes_read(self, forced=None, batch: int = 1) -> int:
        return self.gu.bytes_read() + self.down.bytes_read()


TINYGEMM_GROUP = 128


def _int8_linear(x, q, s):
    return F.linear(x, q.to(x.dtype)) * s


@functools.cache
def _compiled_int8_linear():
    """gpt-fast's recipe: with coordinate-descent tuning on, inductor decomposes a matmul with one
    row into multiply + sum, so the int8 -> bf16 cast fuses into the reduction and only int8 bytes
    are read. Compiled once per shape (dynamic=False), during the warm-up before graph capture."""
    import torch._dynamo.config as dynamo_config  # noqa: PLC0415
    import torch._inductor.config as inductor_config  # noqa: PLC0415

    inductor_config.coordinate_descent_tuning = True
    # one compiled graph per (M, N, K): a whole model has ~5 linear shapes per batch size, beyond
    # dynamo's default of 8 recompiles, after which it would silently run the eager (bf16-copy) path
    dynamo_config.recompile_limit = max(dynamo_config.recompile_limit, 64)
    return torch.compile(_int8_linear, dynamic=False)


def _tinygemm_pack(W: torch.Tensor):
    """int4 with per-group scale and zero for torch's tinygemm kernel (asymmetric, uint4)."""
    N, K = W.shape
    g = W.float().view(N, K // TINYGEMM_GROUP, TINYGEMM_GROUP)
    lo, hi = g.amin(2), g.amax(2)
    scale = ((hi - lo) / 15).clamp_min(1e-6)
    zero = lo + scale * 8  # tinygemm de-quantizes as (q - 8) * scale + zero
    q = torch.round((g - lo[..., None]) / scale[..., None]).clamp(0, 15).to(torch.int32).view(N, K)
    packed = (q[:, ::2] << 4 | q[:, 1::2]).to(torch.uint8)
    qw = torch._convert_weight_to_int4pack(packed, 8)
    sz = torch.stack([scale, zero], dim=-1).transpose(0, 1).contiguous().to(torch.bfloat16)
    return qw, sz


class DecodeAttention(nn.Module):
    """A decode step of GQA attention over a static KV cache of ``context`` tokens, for
    ``tokens`` new query tokens per sequence (1 = plain decode; γ+1 = speculative verification).
    Input and output are (batch·tokens, D)."""

    def __init__(self, shape: Shape, batch: int, context: int, tokens: int = 1):
        super().__init__()
        D, hd = shape.hidden, shape.head_dim
        self.h, self.kv, self.hd, self.B, self.T = shape.heads, shape.kv_heads, hd, batch, tokens
        self.qkv = nn.Linear(D, hd * (shape.heads + 2 * shape.kv_heads), bias=False)
        self.o = nn.Linear(shape.heads * hd, D, bias=False)
        self.register_buffer("k_cache", torch.randn(batch, shape.kv_heads, context, hd))
        self.register_buffer("v_cache", torch.randn(batch, shape.kv_heads, context, hd))

    def forward(self, x):
        B, T = self.B, self.T
        q, k, v = self.qkv(x).split([self.h * self.hd, self.kv * self.hd, self.kv * self.hd], -1)
        q = q.view(B, T, self.h, self.hd).transpose(1, 2)
        # the new tokens' k/v are written in place of the last cache slots (static cache)
        self.k_cache[:, :, -T:] = k.view(B, T, self.kv, self.hd).transpose(1, 2)
        self.v_cache[:, :, -T:] = v.view(B, T, self.kv, self.hd).transpose(1, 2)
        o = F.scaled_dot_product_attention(q, self.k_cache, self.v_cache, enable_gqa=True)
        return self.o(o.transpose(1, 2).reshape(B * T, self.h * self.hd))

    def quantize(self, scheme: str, splits: int | None = None) -> None:
        """Weight-only quantize the q|k|v and output projections (as gpt-fast quantizes every linear)."""
        self.qkv = QuantLinear(self.qkv.weight.data, scheme, splits)
        self.o = QuantLinear(self.o.weight.data, scheme, splits)

    def bytes_read(self) -> int:
        return (linear_bytes(self.qkv) + linear_bytes(self.o)
                + sum(t.numel() * t.element_size() for t in (self.k_cache, self.v_cache)))


class DecoderLayer(nn.Module):
    def __init__(self, shape: Shape, ffn: nn.Module, batch: int, context: int, tokens: int = 1):
        super().__init__()
        self.n1, self.n2 = RMSNorm(shape.hidden), RMSNorm(shape.hidden)
        self.attn = DecodeAttention(shape, batch, context, tokens)
        self.ffn = ffn
        if isinstance(ffn, QuantFFN):  # a weight-only quantized model quantizes attention too
            self.attn.quantize(ffn.scheme, ffn.splits)

    def forward(self, x):
        x = x + self.attn(self.n1(x))
        return x + self.ffn(self.n2(x))

    def bytes_read(self, forced=None, batch: int = 1) -> int:
        return self.attn.bytes_read() + self.ffn.bytes_read(forced, batch) + 2 * self.n1.w.numel() * self.n1.w.element_size()


def build_ffn(variant: str, shape: Shape, device: str) -> nn.Module:
    """An FFN variant at the shape's real size, parameters created on ``device`` in the current
    default dtype (wrap in ``building_on``)."""
    if variant not in TIMED_MODULES:
        raise ValueError(f"unknown variant {variant!r}; known: {', '.join(TIMED_MODULES)}")
    spec = TIMED_MODULES[variant]
    if spec.get("gpu_only") and device != "cuda":
        raise ValueError(f"variant {variant!r} needs a CUDA GPU")
    D, Dff = shape.hidden, shape.intermediate
    if spec["kind"] == "dense":
        w = int(Dff * spec.get("width", 1.0))
        return DenseFFN(D, w - w % 8, spec.get("zero_frac", 0.0))
    if spec["kind"] == "moe":
        return MoEFFN(D, Dff, spec["K"], spec["k"], spec.get("width", 1.0))
    if spec["kind"] == "quant":
        return QuantFFN(D, Dff, spec["scheme"], spec.get("splits"))
    if spec["kind"] == "semi24":
        from torch.sparse import to_sparse_semi_structured  # noqa: PLC0415

        ffn = DenseFFN(D, Dff)
        for lin in (ffn.gu, ffn.down):
            W = lin.weight.data
            mask = torch.tensor([1, 1, 0, 0], device=W.device, dtype=torch.bool).repeat(W.numel() // 4).view_as(W)
            lin.weight = nn.Parameter(to_sparse_semi_structured(W * mask))
        ffn.kernel = "to_sparse_semi_structured (cuSPARSELt)"
        ffn.bytes_read = lambda forced=None, batch=1: int(3 * D * Dff * 2 * 0.5 * 1.125)  # half + metadata
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
    g = torch.Generator(device="cpu").manual_seed(seed)
    probs = torch.tensor(fr, dtype=torch.float, device="cpu").clamp_min(0)
    idx = torch.stack([torch.multinomial(probs + 1e-9 * (i > 0), k, replacement=False, generator=g)
                       for i in range(batch)])
    return idx.to(device)


def uniform_routing(batch: int, K: int, k: int, device: str, seed: int = 0) -> torch.Tensor:
    """(batch, k) expert ids spread as evenly as possible (token t -> experts t·k .. t·k+k-1 mod K):
    the controlled 'uniform' load of the companion study, and of every timing unit."""
    ids = (torch.arange(batch * k, device="cpu") % K).view(batch, k)
    return ids.to(device)
