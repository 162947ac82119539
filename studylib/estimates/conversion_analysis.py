"""Side-by-side view of the dense→expert conversions (issue 12): the paper's literal conversion,
the best training-free alternatives, the activation-sparsity competitor and the bounds, each at
its measured active fraction, on the same items as dense.

Perplexity (WikiText-2 documents) is compared as the per-token log-likelihood difference,
paired by document (t interval over documents, n - 1 degrees of freedom: with a handful of
documents the interval is wide and says so); accuracy losses use Tango's paired score interval (``analysis.quality_deltas``).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from studylib.results import BASELINE
from statsmodels.stats.weightstats import DescrStatsW

#: transform name → what the chapter calls the technique
TECHNIQUE = {"moe_literal": "paper's literal MoE (repaired)", "cmoe": "CMoE-style", "teal": "TEAL-style sparsity",
             "moe_oracle": "expert oracle (bound)", "neuron_oracle": "neuron oracle (bound)",
             "moe_constant": "constant expert (floor)", "moefy": "old k-means + ridge router"}
#: transforms that are bounds (a ceiling that needs the dense activations, or the floor), not methods
BOUNDS = frozenset({"moe_oracle", "neuron_oracle", "moe_constant"})


def is_bound(variant: str, declared: dict | None = None) -> bool:
    """A declared variant with an oracle or constant-expert step: a bound, not a usable method
    (``declared``: ``transforms.declared_variants()`` when the caller already has it)."""
    from studylib.quality.transforms import declared_variants

    spec = (declared if declared is not None else declared_variants()).get(variant)
    return spec is not None and any(t in BOUNDS for t, _ in spec["steps"])


def at_25_by_technique() -> dict[str, str]:
    """{transform of its last step: variant} of the variants declared in the role ``at_25`` (the
    conversions and bounds compared at 25% of the FFN per token)."""
    from studylib.quality.transforms import declared_variants, with_role

    declared = declared_variants()
    return {declared[v]["steps"][-1][0]: v for v in with_role("at_25")}


def describe(variant: str, stored: pd.Series | None = None) -> dict:
    """Technique, pruning and knobs of a declared variant, from its steps. A variant no longer
    declared (a unit an older run wrote under another name) is described from what its stored
    row says it did (``stored``: its ``quality_variants`` row: method, ratio, experts)."""
    from studylib.quality.transforms import declared_variants, pruning_ratio

    spec = declared_variants().get(variant)
    if spec is None:
        s = stored if stored is not None else pd.Series(dtype=object)
        experts = s.get("experts", 1)
        pruned = s.get("ratio", 0.0) if str(s.get("method", "none")) != "none" else 0.0
        return {"technique": "old k-means + ridge router" if pd.notna(experts) and experts > 1 else "pruning only",
                "pruned": float(pruned) if pd.notna(pruned) else 0.0, "knobs": "undeclared (an older run's name)"}
    names = [t for t, _ in spec["steps"]]
    conv = [(t, p) for t, p in spec["steps"] if t in TECHNIQUE]
    tech = TECHNIQUE[conv[-1][0]] if conv else ("pruning only" if names else BASELINE)
    return {"technique": tech, "pruned": pruning_ratio(spec),
            "knobs": ", ".join(f"{k}={v}" for _, p in conv for k, v in p.items())}


def perplexity(rows: pd.DataFrame) -> float:
    """Token-weighted perplexity of scored documents."""
    n = rows["n_tokens"].sum()
    return float(np.exp(-rows["gold_logprob"].sum() / n)) if n > 0 else float("nan")


def perplexity_vs_dense(items: pd.DataFrame, variant: str, task: str = "wikitext") -> dict:
    d = items[items["task"] == task]
    b = d[d["variant"] == BASELINE].drop_duplicates("item_id").set_index("item_id")
    v = d[d["variant"] == variant].drop_duplicates("item_id").set_index("item_id")
    common = b.index.intersection(v.index)
    if len(common) == 0:
        return {}
    b, v = b.loc[common], v.loc[common]
    ppl = perplexity(v)
    # per-document log-ppl increase, paired; exp() of it = perplexity ratio vs dense. A t interval
    # over documents (n - 1 df): with the handful of documents scored, a percentile bootstrap
    # has a few dozen distinct resamples and would be too narrow.
    d = (b["gold_logprob"] / b["n_tokens"] - v["gold_logprob"] / v["n_tokens"]).to_numpy(float)
    mean = float(d.mean())
    lo, hi = DescrStatsW(d).tconfint_mean(alpha=0.05) if len(d) > 1 else (np.nan, np.nan)
    return {"ppl": ppl, "ppl_ratio": float(np.exp(mean)), "ppl_ratio_lo": float(np.exp(lo)),
            "ppl_ratio_hi": float(np.exp(hi)), "docs": len(common)}


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
        row = {"variant": v, **describe(v, vq.loc[v] if v in vq.index else None)}
        if v in vq.index:
            r = vq.loc[v]
            for c in ("active_fraction", "bytes_fraction", "balance", "max_expert_fraction", "c_drop",
                      "router_oracle_agreement"):
                row[c] = float(r[c]) if c in r and pd.notna(r[c]) else np.nan
        if v == BASELINE:
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


def _times(r: float) -> str:
    return f"{r:.2f}x" if r < 10 else f"{r:,.0f}x"


def capacity_reading(ct: pd.DataFrame, model: str, factor: float = 2.0) -> str | None:
    """Issue 12's question answered from the measured rows of one model: at 25% of the FFN per
    token, does the paper's literal setting fail because of its router or because a quarter of
    the FFN cannot carry the model without training? Compares perplexity ratios (WikiText-2, vs
    dense) of the literal conversion, its expert oracle (best routing on the same partition), the
    neuron oracle (best choice of any 25% of neurons) and the best training-free method; "close"
    means within ``factor`` of each other: a rule written on 2026-11-25, after the SmolLM2 rows
    were seen and before the Qwen bounds were measured. None until the three rows it needs exist."""
    r = {v: float(x) for v, x in zip(ct.get("variant", []), ct.get("ppl_ratio", [])) if pd.notna(x)}
    mm = {v: float(x) for v, x in zip(ct.get("variant", []), ct.get("mmlu_loss_pp", [])) if pd.notna(x)}
    need = at_25_by_technique()
    need = (need.get("moe_literal"), need.get("moe_oracle"), need.get("neuron_oracle"))
    if not all(v in r for v in need):
        return None
    lit, eo, no = (r[v] for v in need)
    lit_v, eo_v, no_v = need

    def loss(v):
        return f", MMLU loss {mm[v]:.1f} pp" if v in mm else ""

    text = (f"**Reading ({model}).** At 25% of the FFN per token, the neuron oracle multiplies WikiText-2 "
            f"perplexity by {_times(no)}{loss(no_v)}: a quarter of the intermediate neurons, "
            f"chosen per token with knowledge of the true activations, "
            f"{'carries' if no < factor else 'does not carry'} this model. The paper's literal conversion "
            f"multiplies it by {_times(lit)}{loss(lit_v)}, and routing each token to the best "
            f"of its four experts by true activation mass (the expert oracle) by {_times(eo)}"
            f"{loss(eo_v)}. ")
    if lit < eo:
        text += ("The fitted router does better than the expert oracle on perplexity (the oracle picks the "
                 "expert with the most activation mass, not the one that costs the model least), so no router "
                 "on this partition is far from the best available: routing is not what fails; four fixed "
                 "groups, one per token, cannot hold the neurons a token needs. ")
    elif lit <= factor * eo:
        text += (f"The router is within {factor:g}x of the best any router could do on this partition: "
                 "routing is not what fails; four fixed groups, one per token, cannot hold the neurons a token needs. ")
    else:
        text += (f"The router is more than {factor:g}x worse than the expert oracle, so routing is part of the "
                 "failure — but even perfect routing on this partition "
                 f"{'stays' if eo > factor * no else 'does not stay'} more than {factor:g}x above the neuron oracle. ")
    cands = [v for v in at_25_by_technique().values() if v in r and not is_bound(v)]
    best = min(cands, key=lambda v: r[v])
    if r[best] > factor * no:
        gap, meaning = (f"still more than {factor:g}x the", "without training, no method tested here finds the "
                        "right quarter of the FFN before computing it.")
    else:
        gap, meaning = f"within {factor:g}x of the", "a training-free selector gets close to the best possible choice of neurons."
    text += (f"The best training-free method measured at this budget is `{best}` ({_times(r[best])}"
             f"{loss(best)}), {gap} neuron oracle's ratio: {meaning}")
    return text + (" (These compare point ratios; their 95% intervals over the few documents scored are in "
                   "the table.)")
