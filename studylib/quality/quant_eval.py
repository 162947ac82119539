"""Evaluating weight-quantized variants at bf16-GEMM speed on the CPU, and the check that doing so
changes no answer.

Why: optimum-quanto's CPU kernel for int8 weights with bf16 activations
(``torch._weight_int8pack_mm``) is built for decode. Over a prefill of thousands of tokens it is
~2.6x slower than a bf16 GEMM on the same layer (Qwen's 1536 -> 8960, 2,048 rows: 0.37 s vs
0.14 s on this CPU), and a quantized model cannot use the oneDNN-packed bf16 kernel the other
variants are evaluated with: a 250-item MMLU chunk of Qwen int8 ran at ~50 min instead of ~9.
For *quality* runs a profile may therefore set ``quality.quant_eval: dequantized``: each quanto
weight is dequantized once (its integers times their scales, rounded to the evaluation dtype)
into a plain ``nn.Linear``. The model is the same quantized model; the two kernels differ by
bf16 rounding only (one rounding of each weight instead of fp32 scaling inside the kernel).

``quality.quant_check.agreement`` measures what that rounding does to answers, on real items: it evaluates the first
items of a task with quanto's own kernels and again with the dequantized weights, and stores both
per item (``data/quant_eval/``). Decode *speed* is never measured this way: the CPU decode
harness times quanto's kernels (``decoding/cpu_speed``, ``kernels/cpu_weight_kernels``).
"""
from __future__ import annotations

import pandas as pd
import torch
import torch.nn as nn

MODES = ("library", "dequantized")


def quantized_linears(model: nn.Module) -> list[tuple[nn.Module, str, nn.Module]]:
    """(parent, attribute, module) of every optimum-quanto linear layer in ``model``."""
    from optimum.quanto import QLinear

    return [(parent, name, child) for parent in model.modules() for name, child in parent.named_children()
            if isinstance(child, QLinear)]


def dequantize_linears(model: nn.Module) -> int:
    """Replace each quanto ``QLinear`` by a plain ``nn.Linear`` holding its dequantized weight in
    the layer's activation dtype; returns how many were replaced."""
    found = quantized_linears(model)
    for parent, name, q in found:
        w = q.qweight.dequantize()
        dtype = q.bias.dtype if q.bias is not None else next(
            (p.dtype for p in model.parameters() if p.dtype.is_floating_point), torch.bfloat16)
        lin = nn.Linear(q.in_features, q.out_features, bias=q.bias is not None, device=w.device, dtype=dtype)
        with torch.no_grad():
            lin.weight.copy_(w.to(dtype))
            if q.bias is not None:
                lin.bias.copy_(q.bias)
        setattr(parent, name, lin)
    return len(found)


def prepare(model: nn.Module, mode: str) -> str:
    """Apply an evaluation mode to a built variant; returns the kernel label its provenance records."""
    if mode not in MODES:
        raise ValueError(f"quality.quant_eval must be one of {MODES}, not {mode!r}")
    if mode == "dequantized" and dequantize_linears(model):
        return f"dequantized_{str(next(model.parameters()).dtype).replace('torch.', '')}"
    return "library"


def agreement_table(library: pd.DataFrame, dequantized: pd.DataFrame) -> pd.DataFrame:
    """Per item: correct under each kernel and the gold log-probability of each, side by side."""
    keys = ["task", "item_id"]
    cols = [c for c in ("correct", "gold_logprob") if c in library]
    return library[keys + cols].merge(dequantized[keys + cols], on=keys, suffixes=("_library", "_dequantized"))


def summary(t: pd.DataFrame) -> dict:
    """Items, items whose outcome differs between the kernels, and the largest gold log-prob gap."""
    same = (t["correct_library"] == t["correct_dequantized"])
    return {"items": len(t), "differ": int((~same).sum()),
            "max_gold_logprob_gap": float((t["gold_logprob_library"] - t["gold_logprob_dequantized"]).abs().max())}
