"""From the tidy tables in data/ to the estimates the book reports (all with CIs)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .stats import Estimate, bootstrap_ratio_of_medians, paired_bootstrap_delta

GPU_PROFILES = ("h100", "h200")


def samples(row) -> np.ndarray:
    return np.array([float(x) for x in str(row["samples_s"]).split()])


def speedups(timing: pd.DataFrame, baseline: str = "dense") -> pd.DataFrame:
    """Speedup of every variant over the dense baseline of the same profile/shape/component/
    batch, with a bootstrap CI of the ratio of medians."""
    keys = ["profile", "shape", "component", "batch", "context"]
    base = timing[timing["variant"] == baseline].set_index(keys)
    out = []
    for _, r in timing[timing["variant"] != baseline].iterrows():
        k = tuple(r[c] for c in keys)
        if k not in base.index:
            continue
        b = base.loc[k]
        b = b.iloc[0] if isinstance(b, pd.DataFrame) else b
        est = bootstrap_ratio_of_medians(samples(b), samples(r))
        out.append({**{c: r[c] for c in keys}, "variant": r["variant"], "routing": r["routing"],
                    "gpu": r.get("gpu_name", ""), "speedup": est.value, "lo": est.lo, "hi": est.hi})
    return pd.DataFrame(out)


def attention_fraction(timing: pd.DataFrame) -> pd.DataFrame:
    """Measured f_attn = 1 - t_ffn / t_layer of the dense model (median times)."""
    d = timing[timing["variant"] == "dense"]
    piv = d.pivot_table(index=["profile", "shape", "batch", "context"], columns="component", values="median_s")
    piv = piv.dropna()
    piv["f_attn"] = 1 - piv["ffn"] / piv["layer"]
    return piv.reset_index()


def quality_deltas(items: pd.DataFrame, baseline: str = "dense") -> pd.DataFrame:
    """Per profile × variant × task: paired (by item) loss vs dense, with bootstrap CIs.
    accuracy loss in percentage points (dense - variant) where accuracy is defined, and the
    drop of gold log-probability per token (nats) for every task."""
    out = []
    for (prof, model, task), g in items.groupby(["profile", "model", "task"]):
        base = g[g["variant"] == baseline].set_index("item_id")
        for var, gv in g[g["variant"] != baseline].groupby("variant"):
            gv = gv.set_index("item_id")
            common = base.index.intersection(gv.index)
            if len(common) == 0:
                continue
            b, v = base.loc[common], gv.loc[common]
            row = {"profile": prof, "model": model, "task": task, "task_type": g["task_type"].iloc[0],
                   "variant": var, "n_items": len(common)}
            if b["correct"].notna().all():
                e = paired_bootstrap_delta(100 * b["correct"], 100 * v["correct"])
                row.update(acc_dense=100 * b["correct"].mean(), acc_variant=100 * v["correct"].mean(),
                           acc_loss_pp=e.value, acc_loss_lo=e.lo, acc_loss_hi=e.hi)
            lp_b = b["gold_logprob"] / b["n_tokens"]
            lp_v = v["gold_logprob"] / v["n_tokens"]
            e = paired_bootstrap_delta(lp_b, lp_v)
            row.update(lp_loss=e.value, lp_loss_lo=e.lo, lp_loss_hi=e.hi)
            out.append(row)
    return pd.DataFrame(out)


def estimate_of(df: pd.DataFrame, value: str, lo: str, hi: str) -> Estimate | None:
    if df.empty or value not in df or df[value].isna().all():
        return None
    r = df.iloc[0]
    return Estimate(float(r[value]), float(r[lo]), float(r[hi]))
