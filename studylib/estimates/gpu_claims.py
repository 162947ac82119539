"""Estimates with CIs for the hardware claims, from the GPU timing campaign (data/timing/h100|h200).

Each function reads the tidy timing table and returns an ``Estimate`` (or None when the unit is
not in data/). CIs are percentile bootstraps of ratios of medians over the per-replay samples of
one run: they cover replay-to-replay noise on one GPU, not run-to-run or GPU-to-GPU spread.
The verdict rows that use them live in ``studylib.claims.verdicts``; the bands in
``studylib.paper.criteria``.
"""
from __future__ import annotations

import pandas as pd

from studylib.estimates.analysis import GPU_PROFILES, samples
from studylib.stats import Estimate, bootstrap_ratio_of_medians
from studylib.results import BASELINE
from studylib.timing.modules import TIMED_MODULES, routed, slice_of, with_role, with_technique

COMBO = with_role("paper_recipe")  # the paper's combination as a timed module
#: The shape that stands for each Table 1 size (Table 1's rows are Llama-2 sizes; 30B is LLaMA-1).
SIZE_SHAPES = {"7B": "llama-2-7b", "13B": "llama-2-13b", "30B": "llama-30b", "70B": "llama-2-70b"}
HEADLINE_SHAPE = "llama-3-8b"  # the paper's §8.2 Phase 1 model (Llama-8B)


#: The GPU that judges the hardware claims first: the paper names A100/H100, so the H100 where it
#: was measured; an H200 (same SMs, faster HBM3e) only where no H100 data exist. Changed 2026-11-30
#: from "h200 before h100", written before any H200 data existed, when the first (partial: no
#: Table 4 or companion units) H200 campaign landed; the H200 is reported beside the H100 as a
#: replication (``replication``), never pooled with it.
JUDGING_GPUS = ("h100", "h200")


def gpu_timing(timing: pd.DataFrame, profile: str | None = None) -> pd.DataFrame:
    """The rows of one GPU profile: ``profile``, or the first of JUDGING_GPUS present (works for
    any table with a profile column: timing, expert_sweep, latency-model scores)."""
    present = set(timing.get("profile", []))
    for p in ([profile] if profile else JUDGING_GPUS):
        if p in present:
            return timing[timing["profile"] == p]
    return timing.iloc[0:0]


def unit_samples(t: pd.DataFrame, shape: str, variant: str, component: str, batch: int, routing: str | None = None,
          tokens: int = 1) -> pd.Series | None:
    d = t[(t["shape"] == shape) & (t["variant"] == variant) & (t["component"] == component) & (t["batch"] == batch)]
    if "tokens" in d:
        d = d[d["tokens"].fillna(1) == tokens]
    if routing is not None:
        d = d[d["routing"] == routing]
    return None if d.empty else d.iloc[0]


def ratio(t: pd.DataFrame, shape: str, num: tuple, den: tuple, batch: int, component: str = "layer") -> Estimate | None:
    """median(time of ``num`` unit) / median(time of ``den`` unit); each unit = (variant, routing)."""
    a = unit_samples(t, shape, num[0], component, batch, num[1])
    b = unit_samples(t, shape, den[0], component, batch, den[1])
    if a is None or b is None:
        return None
    return bootstrap_ratio_of_medians(samples(a), samples(b))


def speedup(t: pd.DataFrame, shape: str, variant: str, batch: int = 1, component: str = "layer",
            routing: str = "uniform") -> Estimate | None:
    """t(dense) / t(variant) at the same shape, batch and component."""
    r = routing if routed(variant) else "none"
    return ratio(t, shape, (BASELINE, "none"), (variant, r), batch, component)


def h1_speedups(timing: pd.DataFrame, batch: int = 1) -> dict[str, Estimate]:
    """Table 1 / H1: the paper's combination over dense, one decoder layer, per size."""
    t = gpu_timing(timing)
    out = {}
    for size, shape in SIZE_SHAPES.items():
        e = speedup(t, shape, COMBO, batch)
        if e is not None:
            out[size] = e
    return out


def headline_speedup(timing: pd.DataFrame, batch: int = 1) -> tuple[Estimate | None, str]:
    """Abstract / Phase 1: whole-model decode of Llama-3-8B (falls back to one layer)."""
    t = gpu_timing(timing)
    e = speedup(t, HEADLINE_SHAPE, COMBO, batch, component="model")
    if e is not None:
        return e, "whole model"
    return speedup(t, HEADLINE_SHAPE, COMBO, batch), "one layer"


def gate_overhead_fraction(timing: pd.DataFrame, batch: int = 1, shape: str = HEADLINE_SHAPE) -> Estimate | None:
    """Table 2: share of a top-1-of-4 layer's time spent on routing, measured in place:
    1 - t(layer with one dense expert-sized FFN, no router) / t(layer with the top-1-of-4 conversion)."""
    moe = with_role("paper_conversion")
    r = ratio(gpu_timing(timing), shape, (slice_of(moe), "none"), (moe, "uniform"), batch)
    return None if r is None else Estimate(1 - r.value, 1 - r.hi, 1 - r.lo)


def gate_isolated_us(timing: pd.DataFrame, batch: int = 1, shape: str = HEADLINE_SHAPE) -> float | None:
    """The router alone (linear + top-k + softmax) as its own CUDA graph: an upper bound that
    includes a graph launch."""
    u = unit_samples(gpu_timing(timing), shape, "gate4_top1", "gate", batch)
    return None if u is None else float(u["median_s"]) * 1e6


def imbalance_throughput(timing: pd.DataFrame, routing: str, batch: int, shape: str = HEADLINE_SHAPE,
                         variant: str | None = None, quantile: float = 0.5) -> Estimate | None:
    """Table 4: throughput under a load distribution relative to uniform load = t(uniform) /
    t(routing), at the median (or another quantile, e.g. p95) of the replay times. ``variant``: the
    paper's conversion (role ``paper_conversion``) unless named."""
    variant = variant or with_role("paper_conversion")
    t = gpu_timing(timing)
    a = unit_samples(t, shape, variant, "layer", batch, "uniform")
    b = unit_samples(t, shape, variant, "layer", batch, routing)
    if a is None or b is None:
        return None
    return bootstrap_ratio_of_medians(samples(a), samples(b), quantile=quantile)


def quant_speedup(timing: pd.DataFrame, batch: int = 1, profile: str | None = None) -> tuple[Estimate | None, str]:
    """Weight-only int8, whole Llama-3-8B decode, the fastest int8 kernel measured there."""
    t = gpu_timing(timing, profile)
    best, name = None, ""
    for v in with_technique("int8"):
        e = speedup(t, HEADLINE_SHAPE, v, batch, component="model")
        if e is not None and (best is None or e.value > best.value):
            best, name = e, v
    return best, name


ALL_LINEARS = "ffn+attention+head"


def copy_bandwidth(peaks: pd.DataFrame, profile: str) -> float:
    """The measured device-to-device copy bandwidth of a GPU profile (NaN when not measured)."""
    pk = peaks[peaks["profile"] == profile] if "profile" in peaks else peaks.iloc[0:0]
    return float(pk["copy_bandwidth_Bps"].iloc[0]) if not pk.empty else float("nan")


def int8_at_best(timing: pd.DataFrame, peaks: pd.DataFrame, batch: int = 1) -> dict | None:
    """The int8 weight-only whole-model speedup that judges the int8 claim: on the first GPU of
    JUDGING_GPUS whose int8 model quantized every linear (else the first with any int8 model), the
    fastest int8 kernel there, with its and dense's achieved fraction of that GPU's copy bandwidth."""
    found = []
    for p in JUDGING_GPUS:
        e, v = quant_speedup(timing, batch, p)
        if e is None:
            continue
        row = _beside_dense(gpu_timing(timing, p), HEADLINE_SHAPE, v, batch, "model", copy_bandwidth(peaks, p))
        found.append({"estimate": e, "variant": v, "profile": p, **row, "quantized": row["quantized"] or "ffn"})
    return next((f for f in found if f["quantized"] == ALL_LINEARS), found[0] if found else None)


def _beside_dense(t: pd.DataFrame, shape: str, variant: str, batch: int, component: str, bw: float) -> dict:
    """A measured variant's GPU, kernel, quantized linears ('' for none or not recorded) and achieved
    fraction of the copy bandwidth ``bw``, beside dense's at the same shape, batch and component."""
    r = "uniform" if routed(variant) else "none"
    u, d = unit_samples(t, shape, variant, component, batch, r), unit_samples(t, shape, BASELINE, component, batch, "none")
    q = u.get("quantized") if "quantized" in u else None
    return {"gpu": str(u["gpu_name"]), "kernel": str(u.get("kernel", "")), "quantized": q if isinstance(q, str) else "",
            "bw_fraction": float(u["achieved_Bps"]) / bw, "dense_bw_fraction": float(d["achieved_Bps"]) / bw}


def step_time_s(timing: pd.DataFrame, shape: str, tokens: int, batch: int = 1, variant: str = BASELINE,
                profile: str | None = None) -> float | None:
    """Median time of one whole-model step of ``tokens`` new tokens per sequence."""
    u = unit_samples(gpu_timing(timing, profile), shape, variant, "model", batch, tokens=tokens)
    return None if u is None else float(u["median_s"])


def step_time_at_dense_efficiency_s(timing: pd.DataFrame, shape: str, tokens: int, variant: str, batch: int = 1,
                                    profile: str | None = None) -> float | None:
    """The step time ``variant`` would take if its kernels read its bytes at the dense step's
    achieved bandwidth (same shape, tokens, batch, GPU): t · achieved(variant) / achieved(dense)."""
    t = gpu_timing(timing, profile)
    u = unit_samples(t, shape, variant, "model", batch, tokens=tokens)
    d = unit_samples(t, shape, BASELINE, "model", batch, tokens=tokens)
    if u is None or d is None:
        return None
    return float(u["median_s"]) * float(u["achieved_Bps"]) / float(d["achieved_Bps"])


def spec_decode_speedup(alpha: float, gamma: int, t_target_1: float, t_target_verify: float, t_draft: float) -> float:
    """Expected speedup of draft-and-verify (Leviathan et al. 2023) with per-token acceptance
    ``alpha``: (1 - alpha^(γ+1)) / (1 - alpha) tokens per cycle of γ draft steps and one
    verification of γ+1 tokens, against one target step per token."""
    tokens = gamma + 1 if alpha >= 1 else (1 - alpha ** (gamma + 1)) / (1 - alpha)
    return tokens * t_target_1 / (gamma * t_draft + t_target_verify)


def bandwidth_fractions(timing: pd.DataFrame, peaks: pd.DataFrame) -> pd.DataFrame:
    """Achieved bytes/s of every GPU unit over the measured copy bandwidth of its profile."""
    t = timing[timing["profile"].isin(GPU_PROFILES)]
    if t.empty or peaks.empty:
        return t.assign(fraction_of_copy_bw=[])
    t = t.merge(peaks[["profile", "copy_bandwidth_Bps"]], on="profile")
    return t.assign(fraction_of_copy_bw=t["achieved_Bps"] / t["copy_bandwidth_Bps"])


#: What the H200 replication compares with the H100: (label, shape, variant, batch, component): the
#: combination at every Table 1 size and in the whole 8B model, and every timed module declaring a
#: ``label`` as a whole 8B model at B=1 (``timing.modules.TIMED_MODULES``).
REPLICATED = [
    *[(f"H1 {size}: the combination, one layer, B=1", shape, COMBO, 1, "layer") for size, shape in SIZE_SHAPES.items()],
    ("Headline: the combination, whole 8B model, B=1", HEADLINE_SHAPE, COMBO, 1, "model"),
    ("Headline: the combination, whole 8B model, B=8", HEADLINE_SHAPE, COMBO, 8, "model"),
    *[(f"{s['label']}, whole 8B model, B=1", HEADLINE_SHAPE, v, 1, "model")
      for v, s in TIMED_MODULES.items() if "label" in s],
]


def replication(timing: pd.DataFrame, peaks: pd.DataFrame) -> pd.DataFrame:
    """Each REPLICATED speedup over dense on every GPU profile that measured it, with its CI, the
    variant's kernel, which linears were quantized, and its achieved fraction of the measured copy
    bandwidth beside dense's."""
    rows = []
    for p in GPU_PROFILES:
        t = gpu_timing(timing, p)
        if t.empty:
            continue
        bw = copy_bandwidth(peaks, p)
        for label, shape, variant, batch, comp in REPLICATED:
            e = speedup(t, shape, variant, batch, comp)
            if e is not None:
                rows.append({"measure": label, "profile": p, "variant": variant, "shape": shape, "batch": batch,
                             "component": comp, "speedup": e.value, "lo": e.lo, "hi": e.hi,
                             **_beside_dense(t, shape, variant, batch, comp, bw)})
    return pd.DataFrame(rows)
