"""Side-by-side view of the dense→expert conversions (issue 12): the paper's literal conversion,
the best training-free alternatives, the activation-sparsity competitor and the bounds, each at
its measured active fraction, on the same items as dense.

Perplexity (WikiText-2 documents) is compared as the per-token log-likelihood difference,
paired by document (bootstrap over documents; with a handful of documents the interval is wide
and says so); accuracy losses use Tango's paired score interval (``analysis.quality_deltas``).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .stats import paired_bootstrap_delta

#: transform name → what the chapter calls the technique
TECHNIQUE = {"moe_literal": "paper's literal MoE (repaired)", "cmoe": "CMoE-style", "teal": "TEAL-style sparsity",
             "moe_oracle": "expert oracle (bound)", "neuron_oracle": "neuron oracle (bound)",
             "moe_constant": "constant expert (floor)"}


def describe(variant: str) -> dict:
    """Technique, pruning and nominal active fraction of a declared variant, from its steps."""
    from .transforms import declared_variants

    declared = declared_variants()
    if variant not in declared and variant != "dense":
        legacy = "moe" in variant
        return {"technique": "old k-means + ridge router" if legacy else "pruning only",
                "pruned": 0.3 if variant.startswith("sparsegpt30") else 0.0, "knobs": "legacy grid variant"}
    spec = declared.get(variant, {"steps": []})
    names = [t for t, _ in spec["steps"]]
    pruned = next((p.get("ratio") for t, p in spec["steps"] if t in ("sparsegpt", "wanda", "magnitude")), 0.0)
    conv = [(t, p) for t, p in spec["steps"] if t in TECHNIQUE]
    tech = TECHNIQUE[conv[-1][0]] if conv else ("pruning only" if names else "dense")
    return {"technique": tech, "pruned": pruned or 0.0, "knobs": ", ".join(f"{k}={v}" for _, p in conv for k, v in p.items())}


def perplexity(rows: pd.DataFrame) -> float:
    """Token-weighted perplexity of scored documents."""
    n = rows["n_tokens"].sum()
    return float(np.exp(-rows["gold_logprob"].sum() / n)) if n > 0 else float("nan")


def perplexity_vs_dense(items: pd.DataFrame, variant: str, task: str = "wikitext") -> dict:
    d = items[items["task"] == task]
    b = d[d["variant"] == "dense"].drop_duplicates("item_id").set_index("item_id")
    v = d[d["variant"] == variant].drop_duplicates("item_id").set_index("item_id")
    common = b.index.intersection(v.index)
    if len(common) == 0:
        return {}
    b, v = b.loc[common], v.loc[common]
    ppl = perplexity(v)
    # per-document log-ppl increase, paired; exp() of it = perplexity ratio vs dense
    e = paired_bootstrap_delta(b["gold_logprob"] / b["n_tokens"], v["gold_logprob"] / v["n_tokens"])
    return {"ppl": ppl, "ppl_ratio": float(np.exp(e.value)), "ppl_ratio_lo": float(np.exp(e.lo)),
            "ppl_ratio_hi": float(np.exp(e.hi)), "docs": len(common)}


def conversion_table(items: pd.DataFrame, variants: pd.DataFrame, deltas: pd.DataFrame, profile: str,
                     names: list[str]) -> pd.DataFrame:
    """One row per variant of ``names`` measured on ``profile``."""
    its = items[items["profile"] == profile]
    vq = variants[variants["profile"] == profile].drop_duplicates("variant", keep="last").set_index("variant")
    dl = deltas[deltas["profile"] == profile]
    rows = []
    for v in names:
        if v not in set(its["variant"]):
            continue
        row = {"variant": v, **describe(v)}
        if v in vq.index:
            r = vq.loc[v]
            for c in ("active_fraction", "bytes_fraction", "balance", "max_expert_fraction", "c_drop",
                      "router_oracle_agreement"):
                row[c] = float(r[c]) if c in r and pd.notna(r[c]) else np.nan
        if v == "dense":
            row["ppl"] = perplexity(its[(its["variant"] == v) & (its["task"] == "wikitext")])
            row["ppl_ratio"] = 1.0
        else:
            row.update(perplexity_vs_dense(its, v))
        for task in ("mmlu", "hellaswag"):
            d = dl[(dl["variant"] == v) & (dl["task"] == task)]
            if not d.empty:
                row[f"{task}_loss_pp"] = float(d["acc_loss_pp"].iloc[0])
                row[f"{task}_loss_ci"] = f"[{d['acc_loss_lo'].iloc[0]:.0f}, {d['acc_loss_hi'].iloc[0]:.0f}]"
        rows.append(row)
    return pd.DataFrame(rows)
