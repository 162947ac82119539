"""Chapter 5's views of Phase 3's failure modes: throughput under forced load imbalance on the GPU
(Table 4) and load concentration in the converted real models (§7.3's abort condition 2). Functions
from tidy tables to a table, a figure or a paragraph, tested on fixtures; the chapter holds the calls."""
from __future__ import annotations

import pandas as pd

from studylib.paper import criteria as C
from studylib.paper.tables import TABLE4
from studylib.timing.modules import TIMED_MODULES, routed

ROUTED_CONVERSIONS = ("moe_linear", "moe_oracle", "cmoe")   # quality_variants' ``conversion`` of a routed model


def relative_to_uniform(gpu_timing: pd.DataFrame) -> pd.DataFrame:
    """Per shape, component, routed timed module and batch: the step time under uniform routing over
    the step time under each skewed routing (> 1: the skew made the step faster). ``gpu_timing``:
    one GPU's rows (``gpu_claims.gpu_timing``)."""
    cols = ["shape", "component", "variant", "batch", "routing", "relative"]
    moe = gpu_timing[gpu_timing["variant"].map(lambda v: v in TIMED_MODULES and routed(v))] \
        if not gpu_timing.empty else gpu_timing
    if moe.empty or "uniform" not in set(moe["routing"]):
        return pd.DataFrame(columns=cols)
    rel = moe.pivot_table(index=["shape", "component", "variant", "batch"], columns="routing", values="median_s")
    rel = rel.rdiv(rel["uniform"], axis=0).drop(columns="uniform").reset_index()
    long = rel.melt(id_vars=["shape", "component", "variant", "batch"], var_name="routing", value_name="relative")
    return long.dropna(subset=["relative"])[cols]


def imbalance_figure(long: pd.DataFrame, variant: str, component: str = "ffn"):
    """Figure 5.1: ``variant``'s relative throughput against batch per shape and skew, with Table 4's
    predictions dotted; None when it was not timed under a skew."""
    import seaborn as sns

    d = long[(long["component"] == component) & (long["variant"] == variant)]
    if d.empty:
        return None
    g = sns.relplot(data=d, x="batch", y="relative", hue="routing", col="shape", col_wrap=3, kind="line",
                    marker="o", height=2.5, aspect=1.2, facet_kws={"sharey": False})
    for ax in g.axes.flat:
        for r, col in zip(("mild", "severe", "catastrophic"), sns.color_palette()):
            ax.axhline(TABLE4[r]["throughput"], color=col, ls=":", lw=1)
        ax.axhline(1, color="grey", lw=0.8)
        ax.set_xscale("log", base=2)
    g.set_axis_labels("batch", "throughput relative to uniform routing")
    return g.figure


def routed_conversions(qv: pd.DataFrame, profiles=("cpu-real", "cpu-qwen"), exclude=()) -> pd.DataFrame:
    """The routed conversions of real models (``data/quality_variants``) on ``profiles``, design points
    (``exclude``) left out, short model names, by model and busiest-expert share."""
    r = qv[qv["conversion"].isin(ROUTED_CONVERSIONS) & qv["profile"].isin(profiles) & ~qv["variant"].isin(exclude)] \
        if not qv.empty else qv
    if r.empty:
        return r
    return r.assign(model=r["model"].str.split("/").str[-1]).sort_values(["model", "max_expert_fraction"])


def concentration_figure(routed_df: pd.DataFrame):
    """Figure 5.2: busiest expert's share in the worst layer per conversion and model, §7.3's abort
    threshold dashed."""
    import seaborn as sns

    g = sns.catplot(data=routed_df, y="variant", x="max_expert_fraction", col="model", kind="bar", color="C0",
                    height=3.2, aspect=1.3, sharey=False)
    for ax in g.axes.flat:
        ax.axvline(C.ABORT2_MAX_EXPERT_FRACTION, color="C3", ls="--", lw=1)
        ax.set_xlim(0, 1)
    g.set_axis_labels("fraction of tokens to the busiest expert (worst layer)", "")
    return g.figure


def oracle_reading(routed_df: pd.DataFrame, oracle: str, literal: str) -> str | None:
    """Whether the concentration comes from the partition or from the router: the oracle (best expert
    of the same partition per token) against the fitted router, per model with both; None without."""
    mx = routed_df.pivot_table(index="model", columns="variant", values="max_expert_fraction")
    pairs = [(m, r[oracle], r[literal]) for m, r in mx.iterrows() if {oracle, literal} <= set(r.dropna().index)]
    if not pairs:
        return None
    return ("Expert oracle vs the fitted literal router, busiest expert in the worst layer: " + "; ".join(
        f"{m}: oracle {o:.2f}, router {r:.2f}" for m, o, r in pairs) + ". " + (
        "The oracle concentrates at least as much as the router on every model: the activation mass sits "
        "mostly in one cluster of the equal-size partition, so concentration comes from the partition, "
        "not from the router." if all(o >= r for _, o, r in pairs) else
        "The router concentrates more than the oracle on some model: there, part of the concentration is "
        "the router's."))
