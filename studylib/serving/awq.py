"""GPTQ's int4 weights written in AWQ's packed checkpoint format: the int4 layout with zero points
that vLLM's CPU build loads (``AutoAWQConfig`` → its ``CPUWNA16`` kernel), so that the engine times
int4 *as int4*.

Why this format, and why written here: vLLM's CPU GPTQ path takes only symmetric int4/int8
(``uint4b8``/``uint8b128``, no zero points), while the study's GPTQ (``quality.transforms.gptq``)
uses an asymmetric min-max grid with a zero point per output row and group, which AWQ's format
holds exactly. The libraries that write it (AutoAWQ, archived and CUDA-only; llm-compressor and
gptqmodel, which pin their own torch) do not install beside this project's CPU torch, and the
format is small — AutoAWQ's "GEMM" layout:

* ``qweight``: ``(in, out / 8)`` int32, eight 4-bit codes per word along the output dimension, in the
  channel order ``AWQ_ORDER`` within each eight (nibble ``j`` holds channel ``AWQ_ORDER[j]``);
* ``qzeros``: ``(groups, out / 8)`` int32, packed the same way; ``scales``: ``(groups, out)``;
* ``w[o, i] = (q[i, o] - z[g, o]) · s[g, o]`` with ``g = i // group_size``.

The transform stores *fake-quantized* weights (each its de-quantized value, in the model's bf16), so
the integer codes are read back from those values (``grid_codes``): per row and group the values lie
on a grid ``s · n``, ``n`` an integer; ``s`` is estimated from the smallest gap between distinct
values and refined by least squares. A group whose values are not on a 4-bit grid is an error (the
weights are then not GPTQ int4). The scales are re-rounded to the checkpoint's dtype, so the engine's
weights equal ours up to one bf16 rounding; ``served_exactness`` measures what that does to tokens.

**Weight-only, said to the engine.** On a CPU with AMX and bf16 activations, vLLM 0.32 runs an int4
checkpoint as *W4A8* by default (``VLLM_CPU_INT4_W4A8=1``: each token's activations quantized to int8
on the fly, ``int4_scaled_mm_cpu``), a different technique from GPTQ's weight-only int4. Found
2026-12-04: served that way, an RTN-int4 SmolLM2 scored text 0.30 nats/token from our model (dense:
< 0.05). The export therefore writes ``engine_env.json`` (``serving.engine.ENGINE_ENV_FILE``) asking
for the weight-only kernel (``cpu_gemm_wna16``), and every served row records it.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

AWQ_ORDER = (0, 2, 4, 6, 1, 3, 5, 7)
#: the engine runs the checkpoint weight-only (W4A16), as GPTQ is, not with int8 activations (W4A8)
WEIGHT_ONLY_ENV = {"VLLM_CPU_INT4_W4A8": "0"}
PACK = 8   # 4-bit codes per int32


def grid_codes(w: torch.Tensor, bits: int, group_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(codes ``(out, in)`` int32, zeros ``(out, groups)`` int32, scales ``(out, groups)`` float32) of a
    weight ``(out, in)`` whose every row × group of ``group_size`` columns lies on an integer grid
    ``scale · (code - zero)`` with ``0 <= code, zero < 2**bits``. ``ValueError`` where it does not."""
    out, cols = w.shape
    if cols % group_size:
        raise ValueError(f"{cols} input columns are not a multiple of the group size {group_size}")
    v = w.detach().float().reshape(out, cols // group_size, group_size)
    amax = v.abs().amax(-1)
    srt = v.sort(-1).values
    gaps = srt.diff(dim=-1)
    gaps = torch.where(gaps > 1e-3 * amax.unsqueeze(-1), gaps, torch.full_like(gaps, float("inf")))
    s = gaps.amin(-1)
    s = torch.where(torch.isinf(s), torch.where(amax > 0, amax, torch.ones_like(amax)), s)
    s = _refined(v, s)
    maxq = 2 ** bits - 1
    n, zeros, codes, _, bad = _on_grid(v, s, amax, maxq)
    if bad.any():
        # the smallest gap is not the step where a group uses few, distant codes (an outlier row after
        # GPTQ's updates: {-4, 0, 11} x s): on those groups try every step span / k, k = 1 .. 2**bits - 1,
        # and keep the one that gives the values back best (a wrong step misses some by a fraction of it)
        span = (v.amax(-1) - v.amin(-1)).clamp(min=1e-30)
        best = torch.full_like(amax, float("inf"))
        for k in range(1, maxq + 1):
            sk = _refined(v, span / k)
            nk, zk, ck, errk, badk = _on_grid(v, sk, amax, maxq)
            errk = torch.where(badk, torch.full_like(amax, float("inf")), errk)
            fix = bad & (errk < best)
            s, n, zeros, codes = (torch.where(fix, sk, s), torch.where(fix.unsqueeze(-1), nk, n),
                                  torch.where(fix, zk, zeros), torch.where(fix.unsqueeze(-1), ck, codes))
            best = torch.where(fix, errk, best)
        bad = bad & torch.isinf(best)
    if bad.any():
        r, g = (int(x) for x in bad.nonzero()[0])
        raise ValueError(f"row {r}, group {g}: the weights are not on a {bits}-bit grid (not GPTQ int{bits} values)")
    return codes.reshape(out, cols).to(torch.int32), zeros.to(torch.int32), s


def _refined(v: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """Least-squares steps for the codes a step ``s`` gives: first on codes near zero (robust to the
    estimate's rounding), then on all."""
    for small in (4, None):
        for _ in range(3):
            n = torch.round(v / s.unsqueeze(-1))
            m = n if small is None else torch.where(n.abs() <= small, n, torch.zeros_like(n))
            num, den = (m * v).sum(-1), (m * m).sum(-1)
            s = torch.where(den > 0, num / den.clamp(min=1), s)
    return s


def _on_grid(v, s, amax, maxq):
    """(integer steps, zeros, codes, each group's largest miss, where a group is *not* on the grid ``s``):
    every value within 2**-7 of its group's largest magnitude of a step (a bf16 rounding of the values is
    2**-9 of it, the step's estimate adds to that), codes and zero within ``0 .. maxq``."""
    n = torch.round(v / s.unsqueeze(-1))
    zeros = (-n.amin(-1)).clamp(min=0)
    codes = n + zeros.unsqueeze(-1)
    err = (n * s.unsqueeze(-1) - v).abs().amax(-1)
    return n, zeros, codes, err, (codes.amax(-1) > maxq) | (zeros > maxq) | (err > 2 ** -7 * amax + 1e-12)


def pack(codes: torch.Tensor) -> torch.Tensor:
    """``(rows, cols)`` 4-bit codes → ``(rows, cols / 8)`` int32 in AWQ's order."""
    rows, cols = codes.shape
    if cols % PACK:
        raise ValueError(f"{cols} columns do not pack into int32 words of {PACK}")
    c = codes.to(torch.int64).reshape(rows, cols // PACK, PACK)[..., list(AWQ_ORDER)]
    shifts = torch.arange(0, 32, 4, dtype=torch.int64)
    word = (c << shifts).sum(-1)
    return torch.where(word >= 2 ** 31, word - 2 ** 32, word).to(torch.int32)


def unpack(words: torch.Tensor) -> torch.Tensor:
    """The inverse of ``pack``."""
    shifts = torch.arange(0, 32, 4, dtype=torch.int32)
    nib = (words.unsqueeze(-1) >> shifts) & 0xF                   # nibble j = channel AWQ_ORDER[j]
    out = torch.empty_like(nib)
    out[..., list(AWQ_ORDER)] = nib
    return out.reshape(words.shape[0], -1)


def quantize_linear(w: torch.Tensor, bits: int, group_size: int, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """A Linear's weight ``(out, in)`` as AWQ's ``qweight``, ``qzeros``, ``scales``."""
    codes, zeros, scales = grid_codes(w, bits, group_size)
    return {"qweight": pack(codes.T.contiguous()), "qzeros": pack(zeros.T.contiguous()),
            "scales": scales.T.contiguous().to(dtype)}


def dequantize(qweight: torch.Tensor, qzeros: torch.Tensor, scales: torch.Tensor, group_size: int) -> torch.Tensor:
    """``(out, in)`` float32 weights from AWQ's tensors (what the engine's kernel computes with)."""
    q, z = unpack(qweight).float(), unpack(qzeros).float()                 # (in, out), (groups, out)
    g = torch.arange(q.shape[0]) // group_size
    return ((q - z[g]) * scales.float()[g]).T.contiguous()


def write_awq(model, tok, where: Path, bits: int, group_size: int) -> dict:
    """The model with every Linear inside its decoder layers as AWQ int4 (embeddings, norms, the LM
    head as they are), a ``quantization_config`` vLLM reads, and the tokenizer. Returns what the
    export records, with the bytes the quantized weights take against their bf16 form."""
    from studylib.quality.transforms.gptq import group_for
    from studylib.serving.checkpoint import decoder_linears, own_tensors, write_quantized

    linears = decoder_linears(model)
    groups = {group_for(m.in_features, group_size) for m in linears.values()}
    if len(groups) != 1:
        raise ValueError(f"AWQ's format has one group size per model; this model's layers need {sorted(groups)}")
    g = groups.pop()
    sd = own_tensors(model)
    packed_bytes = replaced_bytes = 0
    for name, mod in linears.items():
        t = quantize_linear(mod.weight, bits, g, mod.weight.dtype)
        replaced_bytes += sd.pop(f"{name}.weight").numel() * mod.weight.element_size()
        for k, x in t.items():
            sd[f"{name}.{k}"] = x
            packed_bytes += x.numel() * x.element_size()
    qc = {"quant_method": "awq", "bits": bits, "group_size": g, "zero_point": True, "version": "gemm"}
    write_quantized(model, tok, where, sd, qc, engine_env=WEIGHT_ONLY_ENV)
    (where / "quant_config.json").write_text(json.dumps(qc))
    return {"architecture": model.config.architectures[0] if model.config.architectures else type(model).__name__,
            "format": "awq", "bits": bits, "group_size": g, "quantized_linears": len(linears),
            "int4_bytes": packed_bytes, "replaced_bf16_bytes": replaced_bytes, "engine_env": WEIGHT_ONLY_ENV}
