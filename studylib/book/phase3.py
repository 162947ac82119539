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


def sweet_spot_figure(speed: pd.DataFrame, quality: pd.DataFrame, shapes):
    """Figure 5.4: (a) the combination's one-layer speedup per shape x batch on the judging GPU, the
    paper's stated sweet spot boxed; (b) MMLU loss of every conversion at Phase 3's active fraction
    (bounds in grey), the paper's 1 pp dashed. ``speed``/``quality``: ``sweet_spot.speed_map`` /
    ``quality_at_fraction``; ``shapes``: the shapes in display order."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8), gridspec_kw={"width_ratios": [1.1, 1]})
    grid = speed.pivot_table(index="shape", columns="batch", values="speedup").reindex(
        [s for s in shapes if s in set(speed["shape"])])
    sns.heatmap(grid, annot=True, fmt=".2f", cmap="RdBu", center=1.0, cbar_kws={"label": "speedup over dense"}, ax=ax1)
    for r in speed[speed["paper_sweet_spot"]].itertuples():
        ax1.add_patch(plt.Rectangle((list(grid.columns).index(r.batch), list(grid.index).index(r.shape)), 1, 1,
                                    fill=False, ec="black", lw=2.5))
    ax1.set_title("(a) paper's combination, one layer, H100\n(boxed: the paper's stated sweet spot)", fontsize=9)
    ax1.set_xlabel("batch")
    ax1.set_ylabel("")
    q = quality[quality["task"] == "mmlu"].sort_values("acc_loss_pp") if not quality.empty else quality
    if q.empty:
        ax2.set_axis_off()
        ax2.text(0.5, 0.5, "no quality units at a quarter of the FFN yet", ha="center", va="center")
    else:
        y = range(len(q))
        ax2.errorbar(q["acc_loss_pp"], y, xerr=[q["acc_loss_pp"] - q["acc_loss_lo"], q["acc_loss_hi"] - q["acc_loss_pp"]],
                     fmt="none", ecolor="grey", capsize=2)
        ax2.scatter(q["acc_loss_pp"], y, c=["grey" if b else "C0" for b in q["bound"]], zorder=3)
        ax2.set_yticks(list(y), [f"{v}{' (bound)' if b else ''}" for v, b in zip(q["variant"], q["bound"])], fontsize=8)
        ax2.axvline(C.H2_MMLU_MAX_LOSS_PP, color="C3", ls="--", lw=1)
        ax2.axvline(0, color="black", lw=0.8)
        m = q.iloc[0]
        ax2.set_title(f"(b) MMLU loss at {C.PHASE3_ACTIVE_FRACTION:.0%} of the FFN per token\n"
                      f"{str(m['model']).split('/')[-1]} ({m['profile']}); dashed: the paper's "
                      f"{C.H2_MMLU_MAX_LOSS_PP:g} pp", fontsize=9)
        ax2.set_xlabel("accuracy loss vs dense, pp (95% Tango CI, paired)")
    fig.tight_layout()
    return fig


def sweet_spot_reading(speed: pd.DataFrame, lim: pd.DataFrame, quality: pd.DataFrame, items: pd.DataFrame,
                       declared: dict) -> str:
    """The reading under Table 5.4: where the combination is faster than dense by batch, and the best
    usable conversion at Phase 3's active fraction against the next best (paired) and the oracles, under
    the floor rule (criteria, 2026-12-03: if no usable conversion is above chance on MMLU, it says so)."""
    from studylib.book import tables as book
    from studylib.estimates import sweet_spot as S
    from studylib.estimates.analysis import floor_status, floor_text

    r = S.speed_ranges(speed)
    text = (f"**Reading.** At batch 1 the combination is {r['b1']} "
            f"faster than dense at every shape; at batch ≥ {C.PHASE3_MIN_BATCH} it is "
            f"{r['large']}, and inside the paper's sweet spot {r['paper']}. "
            if {"b1", "large", "paper"} <= set(r) else "**Reading.** ")
    if (lim["best_batch"] == 1).all():
        text += ("Every shape is fastest at batch 1, the single-token decode the paper calls unsuitable: a decode "
                 "step that reads a quarter of the FFN's weights saves bytes when the step is bound by weight "
                 "reads, and at larger batches the experts together read the whole FFN again. ")
    best = S.best_method(quality)
    if best is None:
        return text
    bound = quality[(quality["task"] == "mmlu") & quality["bound"]]
    its = items[items["profile"] == best["profile"]]
    usable = quality.loc[(quality["task"] == "mmlu") & ~quality["bound"], "variant"]
    sts = [st for st in (floor_status(its, "mmlu", v) for v in usable) if st]
    if sts and not any(st["above"] for st in sts):
        text += (f"**No conversion at {C.PHASE3_ACTIVE_FRACTION:.0%} of the FFN is above chance on MMLU** "
                 f"({'; '.join(floor_text(st) for st in sts)}), so none can be called the best: the "
                 "losses below are lower bounds of conversions that no longer answer the task. ")
    text += (f"On quality, the best usable conversion at {C.PHASE3_ACTIVE_FRACTION:.0%} of the FFN "
             f"({best['variant']}) loses {book.ci(best['acc_loss_pp'], best['acc_loss_lo'], best['acc_loss_hi'], ' pp')} "
             f"of MMLU on {str(best['model']).split('/')[-1]} (n = {int(best['n_items'])})")
    vs = S.best_versus_next(quality, items)
    if vs is not None:
        text += (f" — not distinguishable from the next best, {vs['next']} ({vs['next_loss_pp']:.1f} pp, n = "
                 f"{vs['next_n']}; paired on the {vs['n']} items both answered: difference "
                 f"{book.est(vs['diff'], ' pp', digits=1)}, McNemar p = "
                 f"{vs['p']:.2f}; {vs['discordant'][0]} items right only with {vs['best']}, "
                 f"{vs['discordant'][1]} only with {vs['next']})"
                 if vs["p"] >= 0.05 else
                 f", {-vs['diff'].value:.1f} pp less than the next best, {vs['next']} (paired on the "
                 f"{vs['n']} items both answered: "
                 f"{book.est(vs['diff'], ' pp', digits=1)}, McNemar p = {vs['p']:.3f})")
    if not bound.empty:
        o = bound.loc[bound["acc_loss_pp"].idxmin()]
        text += (f", where the per-token oracle {o['variant']} loses "
                 f"{book.ci(o['acc_loss_pp'], o['acc_loss_lo'], o['acc_loss_hi'], ' pp')} (n = {int(o['n_items'])})")
    text += (". The practical limit at this scale is the choice of the active quarter, not the quarter itself: "
             "no training-free router or threshold we tried comes near the oracle."
             if not bound.empty and bound["acc_loss_hi"].min() < best["acc_loss_lo"] else ".")
    blocks = bound[[any(t == "moe_oracle" for t, _ in declared[v]["steps"]) for v in bound["variant"]]]
    if not blocks.empty:
        e = blocks.loc[blocks["acc_loss_pp"].idxmin()]
        text += (f" An oracle that must pick one of the four expert blocks per token ({e['variant']}) loses "
                 f"{book.ci(e['acc_loss_pp'], e['acc_loss_lo'], e['acc_loss_hi'], ' pp')} (n = {int(e['n_items'])})")
        text += (": with the blocks fixed, even perfect routing does not recover the model — the partition into "
                 "experts fails before the router does." if e["acc_loss_lo"] > bound["acc_loss_hi"].min() else ".")
    return text
