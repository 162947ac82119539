"""Phase 3 (§8.2): where sparse routing's practical limits and sweet spots lie, from the data.

The paper states where the idea pays: at 70B parameters and more, at batch sizes of 32 and more,
and not for single-token chat inference (§7.1's ``workload_suitable``: ``batch_size >= 32``;
§9.1 items 1 and 3). Phase 3 asks for the limits and sweet spots; this module maps both axes
the study measured and puts the paper's statement beside them:

* **speed**: the paper's combination (30% pruning + 4 experts, top-1) over dense, one decoder
  layer on the GPU, for every (shape, batch) of the H1 campaign (``gpu_claims.speedup``; CIs are
  bootstraps over replays). A cell is *faster* when its CI lies above 1.
* **quality**: the paired MMLU (and GSM8K) loss of every usable conversion at the paper's active
  fraction (a quarter of the FFN per token), beside the per-token oracles (bounds no router can
  beat), on the largest quality model measured (``estimates.analysis.best_profile``).

The rule that judges the paper's stated sweet spot is ``criteria.phase3_verdict``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from studylib.estimates import gpu_claims as G
from studylib.estimates.conversion_analysis import is_bound
from studylib.paper import criteria as C
from studylib.shapes import get_shape
from studylib.stats import Estimate

#: the batch sizes of the H1 campaign, in order
BATCHES = (1, 8, 32, 128)
#: the shapes of the H1 campaign, smallest first (Table 1's sizes and the Phase 1 Llama-8B)
SHAPES = ("llama-2-7b", "llama-3-8b", "llama-2-13b", "llama-30b", "llama-2-70b")
#: the shapes standing for the sizes the paper's sweet spot names (§7.1: 70B)
PAPER_SHAPES = frozenset(G.SIZE_SHAPES[s] for s in C.PHASE3_SIZES)


def speed_map(timing: pd.DataFrame, variant: str = G.COMBO, component: str = "layer") -> pd.DataFrame:
    """One row per measured (shape, batch): speedup over dense with its CI, whether the CI lies
    above 1, and whether the cell is inside the paper's stated sweet spot."""
    t = G.gpu_timing(timing)
    rows = []
    for shape in SHAPES:
        params_b = get_shape(shape).n_params / 1e9
        for b in BATCHES:
            e = G.speedup(t, shape, variant, b, component=component)
            if e is None:
                continue
            rows.append({"shape": shape, "params_b": params_b, "batch": b, "speedup": e.value,
                         "lo": e.lo, "hi": e.hi, "faster": e.lo > 1.0,
                         "paper_sweet_spot": shape in PAPER_SHAPES and b >= C.PHASE3_MIN_BATCH})
    return pd.DataFrame(rows)


def speed_ranges(speed: pd.DataFrame) -> dict[str, str]:
    """'min–max x' of the speedups at batch 1 (``b1``), at batch ≥ PHASE3_MIN_BATCH (``large``) and
    inside the paper's sweet spot (``paper``); a subset with no cell is left out."""
    if speed.empty:
        return {}
    subsets = {"b1": speed["batch"] == 1, "large": speed["batch"] >= C.PHASE3_MIN_BATCH,
               "paper": speed["paper_sweet_spot"]}
    return {k: f"{speed.loc[m, 'speedup'].min():.2f}–{speed.loc[m, 'speedup'].max():.2f}x"
            for k, m in subsets.items() if m.any()}


def batch_limits(speed: pd.DataFrame) -> pd.DataFrame:
    """Per shape: the largest batch at which the combination is still faster (CI above 1), the
    batch of its largest speedup, and that speedup."""
    rows = []
    for shape, g in speed.groupby("shape", sort=False):
        best = g.loc[g["speedup"].idxmax()]
        faster = g[g["faster"]]
        rows.append({"shape": shape, "params_b": float(g["params_b"].iloc[0]),
                     "largest_faster_batch": int(faster["batch"].max()) if not faster.empty else np.nan,
                     "best_batch": int(best["batch"]), "best_speedup": float(best["speedup"])})
    return pd.DataFrame(rows)


def quality_at_fraction(deltas: pd.DataFrame, variants: pd.DataFrame, fraction: float = C.PHASE3_ACTIVE_FRACTION,
                        tasks: tuple[str, ...] = ("mmlu", "gsm8k_cot")) -> pd.DataFrame:
    """Paired accuracy losses of the variants whose measured active fraction is ``fraction`` (±0.02)
    on the best quality profile that measured any: one row per (variant, task), with ``bound``
    marking the oracles and the floor. Variants with a designed router bias (the Eq. 25 grid's
    imbalance knob) are left out: they are deliberately skewed, not candidates."""
    from studylib.estimates.analysis import best_profile
    from studylib.quality.transforms import declared_variants

    cols = ["profile", "model", "variant", "task", "n_items", "acc_loss_pp", "acc_loss_lo", "acc_loss_hi", "bound"]
    if "active_fraction" not in variants or "acc_loss_pp" not in deltas:
        return pd.DataFrame(columns=cols)
    declared = declared_variants()
    skewed = {v for v, s in declared.items() if any(p.get("bias") for _, p in s["steps"])}
    af = variants.dropna(subset=["active_fraction"])
    af = af[(af["active_fraction"] - fraction).abs() <= 0.02]
    keys = set(zip(af["profile"], af["variant"]))
    d = deltas[deltas["task"].isin(tasks) & deltas["acc_loss_pp"].notna()]
    # a boolean array, not a list: an empty list would select no *columns* (the KeyError of issue 37)
    d = d[np.array([(p, v) in keys and v in declared and v not in skewed for p, v in zip(d["profile"], d["variant"])],
                   dtype=bool)]
    d = best_profile(d) if not d.empty else d
    out = d[["profile", "model", "variant", "task", "n_items", "acc_loss_pp", "acc_loss_lo", "acc_loss_hi"]].copy()
    out["bound"] = [is_bound(v, declared) for v in out["variant"]]
    return out.sort_values(["task", "bound", "acc_loss_pp"]).reset_index(drop=True)


def best_method(quality: pd.DataFrame, task: str = "mmlu") -> pd.Series | None:
    """The usable conversion (not a bound) with the smallest loss on ``task``."""
    q = quality[(quality["task"] == task) & ~quality["bound"]]
    return None if q.empty else q.loc[q["acc_loss_pp"].idxmin()]


def best_versus_next(quality: pd.DataFrame, items: pd.DataFrame, task: str = "mmlu") -> dict | None:
    """The best usable conversion (``best_method``) against the next best, paired on their common
    items by ``analysis.quality_deltas`` with the next best as baseline: loss difference (best minus
    next, in pp, Tango's interval) and McNemar's exact p. Says whether "best" is more than the
    smaller of two point estimates; the pick itself is unchanged."""
    from studylib.estimates.analysis import quality_deltas

    best = best_method(quality, task)
    rest = quality[(quality["task"] == task) & ~quality["bound"]]
    rest = rest[rest["variant"] != best["variant"]] if best is not None else rest.iloc[:0]
    if rest.empty or items.empty:
        return None
    nxt = rest.loc[rest["acc_loss_pp"].idxmin()]
    it = items[(items["task"] == task) & (items["profile"] == best["profile"]) & (items["model"] == best["model"])
               & items["variant"].isin([best["variant"], nxt["variant"]])]
    d = quality_deltas(it, baseline=nxt["variant"])
    if d.empty or "acc_loss_pp" not in d:
        return None
    r = d.iloc[0]
    n, diff, disc = int(r["n_items"]), r["acc_loss_pp"] / 100, r["discordance"]
    # diff = acc(next) - acc(best) = (right only with next - right only with best) / n
    return {"best": best["variant"], "next": nxt["variant"], "next_loss_pp": float(nxt["acc_loss_pp"]),
            "best_n": int(best["n_items"]), "next_n": int(nxt["n_items"]),
            "diff": Estimate(float(r["acc_loss_pp"]), float(r["acc_loss_lo"]), float(r["acc_loss_hi"])),
            "p": float(r["mcnemar_p"]), "discordant": (round(n * (disc - diff) / 2), round(n * (disc + diff) / 2)),
            "n": n}


def as_estimate(row: pd.Series | None) -> Estimate | None:
    return None if row is None else Estimate(float(row["acc_loss_pp"]), float(row["acc_loss_lo"]),
                                             float(row["acc_loss_hi"]))
