"""Tables and figures of the book's quality chapter that read the floor rule, the re-judged GSM8K
answers, the reasoning/factual ratio of the working variants and Eq. 25's pruning term (issue 36).

Each is a named function from tidy tables to a DataFrame or a matplotlib Figure, so a chapter
holds prose and calls, and tests can run them on fixtures. Numbers come from the caller's data.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from studylib.estimates import analysis
from studylib.results import BASELINE


def floor_table(items: pd.DataFrame, profile: str) -> pd.DataFrame:
    """Every variant x task of ``profile`` against the task's floor (``analysis.floor_status``):
    accuracy, its 95% Wilson interval, the floor and whether the variant is above it."""
    its = items[items["profile"] == profile]
    rows = []
    for task in sorted(its["task"].unique()):
        for v in sorted(its.loc[its["task"] == task, "variant"].unique(), key=lambda v: (v != BASELINE, v)):
            st = analysis.floor_status(its, task, v)
            if st is None or st["floor"] is None:
                continue
            rows.append({"task": task, "variant": v, "n": st["n"], "accuracy %": 100 * st["acc"],
                         "95% interval": f"[{100 * st['lo']:.1f}, {100 * st['hi']:.1f}]",
                         "floor %": 100 * st["floor"], "above the floor": "yes" if st["above"] else "**no**"})
    return pd.DataFrame(rows, columns=["task", "variant", "n", "accuracy %", "95% interval", "floor %",
                                       "above the floor"])


def rescore_table(items: pd.DataFrame) -> pd.DataFrame:
    """Per profile x variant of a re-judged generation task: accuracy under the string rules and
    under the answer checker, strict and flexible, and the items whose outcome changed."""
    if "correct_string" not in items:
        return pd.DataFrame()
    g = items[items["correct_string"].notna()]
    rows = []
    for (prof, task, v), d in g.groupby(["profile", "task", "variant"]):
        rows.append({"profile": prof, "task": task, "variant": v, "n": len(d),
                     "strict, string %": 100 * d["correct_string"].mean(), "strict, math-verify %": 100 * d["correct"].mean(),
                     "flexible, string %": 100 * d["correct_flexible_string"].mean(),
                     "flexible, math-verify %": 100 * d["correct_flexible"].mean(),
                     "strict changed": int((d["correct"] != d["correct_string"]).sum()),
                     "flexible changed": int((d["correct_flexible"] != d["correct_flexible_string"]).sum())})
    return pd.DataFrame(rows)


def ratio_figure(working: pd.DataFrame, band: tuple[float, float], combination: dict | None = None):
    """The reasoning/factual loss ratio of every working variant (bootstrap interval, Fieller's as a
    thin bar beside it) against the paper's band; the paper's combination, when at the floor, is
    named in the title rather than drawn (its ratio measures dense's headroom). Open intervals are
    drawn to the axis edge with an arrow."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 0.55 * max(len(working), 2) + 1.2))
    ax.axvspan(*band, color="tab:green", alpha=0.15, label=f"paper's band {band[0]:.1f}-{band[1]:.1f}")
    ax.axvline(1.0, color="grey", lw=0.8, ls=":")
    lim = (-2.0, 8.0)
    for y, r in enumerate(working.itertuples()):
        for lo, hi, dy, lw, c in ((r.ratio_lo, r.ratio_hi, 0.0, 3.0, "tab:blue"), (r.fieller_lo, r.fieller_hi, 0.22, 1.2, "tab:orange")):
            a, b = max(lo, lim[0]), min(hi, lim[1])
            ax.plot([a, b], [y + dy, y + dy], color=c, lw=lw, solid_capstyle="butt")
            for end, edge, mark in ((lo, lim[0], "<"), (hi, lim[1], ">")):
                if not np.isfinite(end) or end == edge or (mark == "<" and end < edge) or (mark == ">" and end > edge):
                    ax.plot([edge], [y + dy], marker=mark, color=c, ms=5)
        if np.isfinite(r.ratio):
            ax.plot([min(max(r.ratio, lim[0]), lim[1])], [y], "o", color="tab:blue")
    ax.plot([], [], color="tab:blue", lw=3, label="bootstrap 95% (items)")
    ax.plot([], [], color="tab:orange", lw=1.2, label="Fieller 95%")
    ax.set_yticks(range(len(working)), list(working["variant"]))
    ax.set_xlim(*lim)
    ax.set_xlabel("reasoning loss / factual loss (GSM8K pp / MMLU pp)")
    title = "Variants above the floor on both tasks"
    if combination is not None and combination.get("floored"):
        title += f"\n(the paper's combination is at the floor: {combination['text']})"
    ax.set_title(title, fontsize=9)
    ax.invert_yaxis()
    fig.tight_layout()
    fig.subplots_adjust(bottom=0.30)
    fig.legend(*ax.get_legend_handles_labels(), loc="lower center", ncol=3, fontsize=7, frameon=False)
    return fig


def pruning_figure(series: pd.DataFrame, forms: dict, paper_alpha: float):
    """Mean accuracy loss per pruning level (Tango-free here: the mean item loss with its
    item-level 95% t interval) and the two fitted lines: the paper's form (through 0) and the one
    with an intercept, beside the line Eq. 26's α would draw."""
    import matplotlib.pyplot as plt
    from scipy.stats import t as tdist

    g = series.groupby("p")["loss"].agg(["mean", "std", "size"]).reset_index()
    half = tdist.ppf(0.975, g["size"] - 1) * g["std"] / np.sqrt(g["size"])
    fig, ax = plt.subplots(figsize=(5.6, 3.6))
    ax.errorbar(g["p"], g["mean"], yerr=half, fmt="o", color="black", capsize=3, label="measured (95% over items)")
    xs = np.linspace(0, max(g["p"].max(), 0.5), 50)
    ax.plot(xs, forms["paper"].params["p"] * xs, color="tab:blue", label=f"paper's form: α={forms['paper'].params['p']:.1f}")
    f = forms["free"]
    ax.plot(xs, f.params["Intercept"] + f.params["p"] * xs, color="tab:orange", ls="--",
            label=f"with intercept: {f.params['Intercept']:.1f} + {f.params['p']:.1f}·p")
    ax.plot(xs, paper_alpha * xs, color="tab:green", ls=":", label=f"Eq. 26: α={paper_alpha}")
    ax.axhline(0, color="grey", lw=0.6)
    ax.set_xlabel("SparseGPT ratio p")
    ax.set_ylabel("accuracy loss vs dense (pp)")
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig


def pruning_levels(deltas: pd.DataFrame, declared: dict | None = None) -> pd.DataFrame:
    """The paired losses of every pruning-alone variant (declared ``family: pruning``, one step), with
    the method (its transform), the ratio ``p`` and the pattern read from its declaration: unstructured
    at ``ratio``, or N:M (``nm``) drawn at its sparsity 1 - N/M."""
    if declared is None:
        from studylib.quality.transforms import declared_variants

        declared = declared_variants()
    rows = {}
    for v, spec in declared.items():
        if spec.get("family") != "pruning" or len(spec["steps"]) != 1:
            continue
        method, params = spec["steps"][0]
        if "nm" in params:
            n, m = params["nm"]
            rows[v] = {"method": method, "p": 1 - n / m, "pattern": f"{n}:{m}"}
        elif "ratio" in params:
            rows[v] = {"method": method, "p": float(params["ratio"]), "pattern": "unstructured"}
    if deltas.empty or not rows:
        return pd.DataFrame()
    pr = deltas[deltas["variant"].isin(list(rows))].dropna(subset=["lp_loss"])
    info = pd.DataFrame.from_dict(rows, orient="index")
    return pr.join(info, on="variant")


def pruning_levels_figure(pr: pd.DataFrame):
    """Log-prob lost per token against the pruning ratio, one panel per profile x task: a line with
    95% CI bars per method (unstructured), a cross per N:M pattern at its sparsity."""
    import seaborn as sns

    g = sns.FacetGrid(pr, col="task", row="profile", sharey=False, height=2.4, aspect=1.2, margin_titles=True)
    for (prof, task), ax in g.axes_dict.items():
        for m, col in zip(sorted(pr["method"].unique()), sns.color_palette()):
            d = pr[(pr["profile"] == prof) & (pr["task"] == task) & (pr["method"] == m)].sort_values("p")
            u = d[d["pattern"] == "unstructured"]
            ax.errorbar(u["p"], u["lp_loss"], yerr=[u["lp_loss"] - u["lp_loss_lo"], u["lp_loss_hi"] - u["lp_loss"]],
                        marker="o", color=col, label=m, capsize=2)
            nm = d[d["pattern"] != "unstructured"]
            ax.scatter(nm["p"], nm["lp_loss"], marker="x", color=col, s=60)
        ax.axhline(0, color="grey", lw=0.8)
    g.set_axis_labels("pruning ratio p", "log-prob lost / token")
    g.axes.flat[0].legend(fontsize=7)
    return g.figure


#: the paper's claim for its combination (abstract): 1.7-1.9x decode speedup at < 1% MMLU loss
PAPER_SPEEDUP = (1.7, 1.9)
PAPER_MAX_LOSS_PP = 1.0


def speed_quality_figure(tq: pd.DataFrame, gpu_marks: dict[str, float] | None = None, task: str = "MMLU",
                         floored: set[str] | frozenset = frozenset()):
    """Figure 1: decode speedup over dense against the paired accuracy loss for every variant of one
    model (``tradeoff.speed_quality``: each on its fastest measured CPU kernel), 95% intervals on
    both axes, the paper's claimed region shaded, and GPU speedups (``gpu_marks``: label -> x)
    marked on the speed axis (right). Variants in ``floored`` (at chance on the task) are drawn
    hollow: their loss is a lower bound. One panel, every point labelled, the legend below the axes
    (it never covers data), so it reads at phone width."""
    import matplotlib.pyplot as plt

    # small and square-ish with 8-pt text: the figure is shown at the column's width, so on a phone
    # (~350 px) its text stays near the size of the caption's
    fig, ax = plt.subplots(figsize=(4.6, 4.4))
    ax.add_patch(plt.Rectangle((-100, PAPER_SPEEDUP[0]), 100 + PAPER_MAX_LOSS_PP, PAPER_SPEEDUP[1] - PAPER_SPEEDUP[0],
                               color="tab:green", alpha=0.18, lw=0,
                               label=f"paper's claim: {PAPER_SPEEDUP[0]}-{PAPER_SPEEDUP[1]}x at < {PAPER_MAX_LOSS_PP:g} pp"))
    for k, (fam, g) in enumerate(tq.groupby("family", sort=False)):
        c = f"C{k}"
        ax.errorbar(g["loss_pp"], g["speedup"], xerr=[g["loss_pp"] - g["loss_lo"], g["loss_hi"] - g["loss_pp"]],
                    yerr=[g["speedup"] - g["speedup_lo"], g["speedup_hi"] - g["speedup"]], fmt="none", capsize=2.5,
                    lw=1, color=c)
        hollow = g["variant"].isin(floored)
        ax.plot(g.loc[~hollow, "loss_pp"], g.loc[~hollow, "speedup"], "o", ms=5, color=c)
        ax.plot(g.loc[hollow, "loss_pp"], g.loc[hollow, "speedup"], "o", ms=6, mfc="white", color=c)
        ax.plot([], [], "o", ms=5, color=c, label=fam)   # one legend entry per family
    if len(floored & set(tq["variant"])):
        ax.plot([], [], "o", mfc="white", color="grey", label="hollow: at chance (loss is a lower bound)")
    order = tq.sort_values(["loss_pp", "speedup"]).reset_index(drop=True)
    mid = (float(tq["loss_pp"].min()) + float(tq["loss_pp"].max())) / 2 if len(tq) else 0.0
    for i, r in order.iterrows():   # alternate label sides: neighbouring points sit close together;
        right = r["loss_pp"] > mid  # points in the right half are labelled to their left (inside the axes)
        ax.annotate(r["variant"], (r["loss_pp"], r["speedup"]), textcoords="offset points",
                    xytext=(-4 if right else 4, 5 if i % 2 else -10), ha="right" if right else "left", fontsize=7.5)
    ax.axhline(1.0, color="k", lw=0.6, ls=":")
    ax.axvline(0.0, color="k", lw=0.6)
    hi_loss = max(float(tq["loss_hi"].max()) if len(tq) else 5.0, 5.0)
    ax.set_xlim(min(-2.0, float(tq["loss_lo"].min()) - 1 if len(tq) else -2.0), hi_loss + 2)
    ax.set_xlabel(f"{task} accuracy lost vs dense (pp, paired)", fontsize=8.5)
    ax.set_ylabel("decode speedup over dense (B=1)", fontsize=8.5)
    ax.tick_params(labelsize=8)
    if gpu_marks:   # the GPU's speedups as ticks of the speed axis, on the right
        for x in gpu_marks.values():
            ax.axhline(x, color="tab:purple", lw=0.7, ls="--")
        right = ax.twinx()
        right.set_ylim(ax.get_ylim())
        right.set_yticks(list(gpu_marks.values()), list(gpu_marks), fontsize=7.5, color="tab:purple")
    fig.tight_layout()
    fig.subplots_adjust(bottom=0.30)
    fig.legend(*ax.get_legend_handles_labels(), loc="lower center", ncol=2, fontsize=7.5, frameon=False,
               borderaxespad=0.2)
    return fig


def floored_variants(items: pd.DataFrame, profile: str, task: str = "mmlu") -> set[str]:
    """The variants of ``profile`` at the floor of ``task`` (``analysis.floor_status``)."""
    its = items[items["profile"] == profile]
    return {v for v in its.loc[its["task"] == task, "variant"].unique()
            if not analysis.floor_status(its, task, v)["above"]}


def figure1(d) -> tuple:
    """The front page's Figure 1 from a ``claims.Data``: (figure, the points) or (None, empty) when
    no variant has both a CPU decode speed and a loss on one profile."""
    from studylib.book import tradeoff
    from studylib.estimates import gpu_claims as G

    tq = tradeoff.speed_quality(d)
    if tq.empty:
        return None, tq
    marks = {}
    for label, (e, _) in (("routing", G.headline_speedup(d.timing)), ("int8", G.quant_speedup(d.timing))):
        if e is not None:
            marks[f"H100 {label}\n{e.value:.2f}x"] = e.value
    return speed_quality_figure(tq, marks, floored=floored_variants(d.items, tq["profile"].iloc[0])), tq


#: H2's test list (§8.1.2) and Table 3's retrieval row, in the order the chapter reads them
H2_TASKS = ("mmlu", "gsm8k_cot", "math500", "hellaswag", "truthfulqa_mc1", "truthfulqa_mc2", "needle_qa")


def task_losses(deltas: pd.DataFrame, items: pd.DataFrame, profile: str, tasks=H2_TASKS) -> pd.DataFrame:
    """One row per variant x task measured on ``profile``: the paired loss in points on the task's
    judged measure (``claims.quality.LOSS_MEASURES``: acc_norm for HellaSwag, the true-answer mass
    for TruthfulQA MC2, accuracy elsewhere) with its interval, n, and whether the variant is at the
    task's floor (its loss then a lower bound)."""
    from studylib.claims.quality import FLOOR_TASK, LOSS_MEASURES

    d = deltas[(deltas["profile"] == profile) & deltas["task"].isin(tasks)]
    its = items[items["profile"] == profile]
    rows = []
    for r in d.itertuples():
        for m in LOSS_MEASURES.get(r.task, ("acc_loss",)):
            v, lo, hi = (getattr(r, f"{m}_{s}", np.nan) for s in ("pp", "lo", "hi"))
            if pd.notna(v):
                st = analysis.floor_status(its, FLOOR_TASK.get(r.task, r.task), r.variant)
                rows.append({"variant": r.variant, "task": r.task, "measure": m, "loss_pp": float(v),
                             "lo": float(lo), "hi": float(hi), "n_items": int(r.n_items),
                             "at_floor": bool(st is not None and not st["above"])})
                break
    out = pd.DataFrame(rows, columns=["variant", "task", "measure", "loss_pp", "lo", "hi", "n_items", "at_floor"])
    order = {t: i for i, t in enumerate(tasks)}
    return out.sort_values(["task", "variant"], key=lambda c: c.map(order) if c.name == "task" else c).reset_index(drop=True)


def task_loss_figure(t: pd.DataFrame):
    """Every variant's loss on every task, one panel per task, 95% intervals; a variant at the
    task's floor drawn hollow (its loss is a lower bound). None when ``t`` is empty."""
    import matplotlib.pyplot as plt

    if t.empty:
        return None
    tasks = list(dict.fromkeys(t["task"]))
    variants = sorted(t["variant"].unique())
    fig, axes = plt.subplots(1, len(tasks), figsize=(2.6 * len(tasks) + 2.5, 0.28 * len(variants) + 1.6),
                             sharey=True, squeeze=False)
    y = {v: i for i, v in enumerate(variants)}
    for ax, task in zip(axes[0], tasks):
        g = t[t["task"] == task]
        for r in g.itertuples():
            ax.errorbar(r.loss_pp, y[r.variant], xerr=[[r.loss_pp - r.lo], [r.hi - r.loss_pp]], fmt="o",
                        color="C0", mfc="white" if r.at_floor else "C0", capsize=2, ms=5)
        ax.axvline(0, color="0.5", lw=0.8)
        ax.set_title(task, fontsize=9)
        ax.set_xlabel("loss (pp)")
    axes[0][0].set_yticks(range(len(variants)), variants, fontsize=8)
    fig.tight_layout()
    return fig


def retrieval_cells(items: pd.DataFrame, profile: str, task: str = "needle_qa") -> pd.DataFrame:
    """Retrieval accuracy per variant x haystack length x needle depth (percent, items per cell)."""
    r = items[(items["profile"] == profile) & (items["task"] == task)]
    if r.empty or "length" not in r or "depth" not in r:
        return pd.DataFrame(columns=["variant", "length", "depth", "accuracy", "n"])
    g = r.groupby(["variant", "length", "depth"])["correct"]
    return pd.DataFrame({"accuracy": 100 * g.mean(), "n": g.size()}).reset_index()


def retrieval_heatmap(cells: pd.DataFrame):
    """One heat map per variant: accuracy by needle depth (rows) and haystack length (columns)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    if cells.empty:
        return None
    variants = list(dict.fromkeys(cells["variant"]))
    fig, axes = plt.subplots(1, len(variants), figsize=(2.4 * len(variants) + 1, 2.6), squeeze=False)
    for ax, v in zip(axes[0], variants):
        c = cells[cells["variant"] == v]
        m = c.pivot(index="depth", columns="length", values="accuracy")
        m.columns = [int(x) for x in m.columns]                              # token counts, not floats
        sns.heatmap(m, ax=ax, vmin=0, vmax=100, cmap="viridis", annot=True, fmt=".0f", cbar=False,
                    annot_kws={"fontsize": 7})
        lo, hi = c["n"].min(), c["n"].max()                                  # probes per cell (units still landing differ)
        ax.set_title(f"{v}\n{lo if lo == hi else f'{lo}-{hi}'} per cell", fontsize=8)
        ax.set_xlabel("haystack (tokens)")
        ax.set_ylabel("needle depth" if ax is axes[0][0] else "")
    fig.tight_layout()
    return fig


#: the paper's §8.1.2 bounds on accuracy loss, drawn as bands (pp)
MARGIN_PP = {"mmlu": 1.0, "gsm8k_cot": 3.0}


def loss_forest(deltas: pd.DataFrame, variants, tasks=("mmlu", "gsm8k_cot", "hellaswag"),
                profiles=("cpu-qwen", "cpu-real"), margins: dict | None = None):
    """Figure 3.1: accuracy lost against dense with its interval for ``variants`` (in that order),
    one panel per profile x task measured; green: the paper's bound where it gives one. None when
    nothing is measured."""
    import matplotlib.pyplot as plt

    margins = MARGIN_PP if margins is None else margins
    kd = deltas[deltas["variant"].isin(variants) & deltas["task"].isin(tasks)
                & deltas["profile"].isin(profiles)].dropna(subset=["acc_loss_pp"])
    if kd.empty:
        return None
    panels = kd[["profile", "task"]].drop_duplicates().sort_values(["profile", "task"]).values.tolist()
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 0.35 * kd["variant"].nunique() + 1.6),
                             sharey=True, squeeze=False)
    order = [v for v in variants if v in set(kd["variant"])]
    for ax, (prof, task) in zip(axes[0], panels):
        d = kd[(kd["profile"] == prof) & (kd["task"] == task)].set_index("variant").reindex(order)
        y = np.arange(len(order))
        ax.errorbar(d["acc_loss_pp"], y, xerr=[d["acc_loss_pp"] - d["acc_loss_lo"], d["acc_loss_hi"] - d["acc_loss_pp"]],
                    fmt="o", capsize=3, color="tab:blue")
        if task in margins:  # "loss < margin": everything left of the margin
            left = min(float(np.nanmin(d["acc_loss_lo"])), -margins[task]) - 2
            ax.axvspan(left, margins[task], color="tab:green", alpha=0.15, label="paper: loss < margin")
            ax.set_xlim(left=left)
        ax.axvline(0, color="grey", lw=0.8)
        ax.set_title(f"{prof}: {task} (n ≤ {int(d['n_items'].max())})", fontsize=9)
        ax.set_xlabel("accuracy lost (pp)")
        ax.set_yticks(y, order)
    axes[0][0].invert_yaxis()
    fig.tight_layout()
    return fig


def accuracy_table(items: pd.DataFrame) -> pd.DataFrame:
    """Table 3.1: accuracy per variant x task (percent, items); generated tasks add the flexible
    reading and the share of answers that used the whole token budget."""
    rows = []
    for (v, t), g in items.groupby(["variant", "task"]):
        r = {"variant": v, "task": t, "items": len(g), "accuracy %": 100 * g["correct"].mean()}
        if "correct_flexible" in g and g["correct_flexible"].notna().any():
            r["flexible %"] = 100 * g["correct_flexible"].mean()
            r["truncated %"] = 100 * g["truncated"].mean()
        r["engine"] = analysis.unit_engines(g)
        rows.append(r)
    return pd.DataFrame(rows)


def truncation_notes(items: pd.DataFrame, task: str = "gsm8k_cot", share: float = 0.25) -> str | None:
    """A sentence for each variant that used the whole token budget on more than ``share`` of its
    ``task`` items, with how many of the items it finished it got right (dense's beside them);
    None when no variant did."""
    gen = items[items["task"] == task].dropna(subset=["truncated"]) if "truncated" in items else items.iloc[:0]
    finished = gen[~gen["truncated"].astype(bool)]
    notes = []
    for v, g in gen.groupby("variant"):
        done, cut = finished[finished["variant"] == v], g["truncated"].mean()
        if cut > share and len(done):  # lost to the budget rather than to reasoning?
            notes.append(f"{v} used the whole budget on {cut:.0%} of {len(g)} items and got "
                         f"{int(done['correct'].sum())} of the {len(done)} it finished right")
    if not notes:
        return None
    d = finished[finished["variant"] == BASELINE]
    return (f"**Truncation ({task}).** " + "; ".join(notes) + (f" (dense: {int(d['correct'].sum())} of {len(d)})" if len(d) else "")
            + ". Whether a longer budget would rescue the truncated items is not measured; the items these "
            "variants did finish are the evidence on how they reason.")


def budget_notes(checks: pd.DataFrame, items: pd.DataFrame, task: str) -> str | None:
    """What the budget check (``make budget-check``, data/budget_check) found for ``task``: per variant,
    its truncated answers re-run at the longer budget, and its accuracy at that budget — exact under
    greedy decoding, whose answers that finished within the budget do not change with a longer one.
    None when no check of the task is in data/."""
    from studylib.quality.budget_check import reading

    c = checks[checks["task"] == task] if not checks.empty else checks
    if c.empty:
        return None
    out = []
    for (prof, v), g in c.groupby(["profile", "variant"]):
        it = items[(items["profile"] == prof) & (items["variant"] == v) & (items["task"] == task)]
        n, right = len(it), int(it["correct"].sum())
        delta = int(((g["correct_long"] == 1) & (g["correct_budget"] == 0)).sum()
                    - ((g["correct_long"] == 0) & (g["correct_budget"] == 1)).sum())
        acc = (f"; on its {n} items that is {right / n:.1%} at {int(g['budget'].iloc[0]):,} tokens and "
               f"{(right + delta) / n:.1%} at {int(g['budget_long'].iloc[0]):,}") if n else ""
        out.append(reading(g) + acc)
    return (f"**Budget check ({task}).** " + "; ".join(out) + ". The units keep the pre-registered budget, so "
            "every paired comparison is made at one budget; this check says how much that budget costs.")


def conversion_ppl_figure(ct: pd.DataFrame, title: str):
    """Figure 3.3: every conversion's WikiText-2 perplexity over dense (log scale, 95% CI over documents),
    coloured by technique, sorted. ``ct``: ``conversion_analysis.conversion_table``."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    d = ct.dropna(subset=["ppl_ratio"]).sort_values("ppl_ratio")
    fig, ax = plt.subplots(figsize=(8, 0.3 * len(d) + 1.2))
    colors = {t: c for t, c in zip(sorted(d["technique"].unique()), sns.color_palette("tab10"))}
    err = [d["ppl_ratio"] - d["ppl_ratio_lo"].fillna(d["ppl_ratio"]), d["ppl_ratio_hi"].fillna(d["ppl_ratio"]) - d["ppl_ratio"]]
    ax.errorbar(d["ppl_ratio"], range(len(d)), xerr=err, fmt="none", ecolor="grey", capsize=2)
    ax.scatter(d["ppl_ratio"], range(len(d)), c=[colors[t] for t in d["technique"]], zorder=3)
    ax.set_yticks(range(len(d)), d["variant"])
    ax.set_xscale("log")
    ax.axvline(1, color="black", lw=0.8)
    for t, c in colors.items():
        ax.scatter([], [], c=[c], label=t)
    ax.legend(fontsize=7, loc="lower right")
    ax.set(xlabel="WikiText-2 perplexity / dense (log scale; 95% CI over documents)", title=title)
    fig.tight_layout()
    return fig


def combination_ratio_table(items: pd.DataFrame, variants) -> tuple[pd.DataFrame, list[str]]:
    """Table 3.13: per profile, the reasoning/factual loss ratio of the variant the reasoning_ratio claim
    judges (``analysis.combination_ratio``), and the profiles where that variant sits at the floor."""
    rows, floored = [], []
    for prof in sorted(items["profile"].unique()):
        r = analysis.combination_ratio(items[items["profile"] == prof], variants)
        if r is None:
            continue
        rows.append({"profile": prof, "variant": r["variant"], "reasoning": r["reasoning_task"],
                     "loss (reasoning)": r["reasoning_loss"], "factual": r["factual_task"],
                     "loss (factual)": r["factual_loss"], "measure": r["measure"], "ratio": r["ratio"]})
        if r["floored"]:
            floored.append(f"{prof} ({r['variant']} scores {r['reasoning_acc']:.0%} on {r['reasoning_task']})")
    return pd.DataFrame(rows), floored


def working_ratio_table(wr: pd.DataFrame) -> pd.DataFrame:
    """Table 3.13b: the ratio of every variant above the floor on both tasks, losses and ratio with their
    bootstrap intervals and Fieller's interval beside (``analysis.working_ratios``)."""
    from studylib.book import tables as book

    return wr.assign(**{
        "reasoning loss": [book.ci(v, lo, hi, " pp", max_digits=1)
                           for v, lo, hi in zip(wr["reasoning_loss"], wr["reasoning_lo"], wr["reasoning_hi"])],
        "factual loss": [book.ci(v, lo, hi, " pp", max_digits=1)
                         for v, lo, hi in zip(wr["factual_loss"], wr["factual_lo"], wr["factual_hi"])],
        "ratio (bootstrap)": [book.ci(v, lo, hi, max_digits=2) for v, lo, hi in zip(wr["ratio"], wr["ratio_lo"], wr["ratio_hi"])],
        "Fieller": [f"[{lo:.2f}, {hi:.2f}]" for lo, hi in zip(wr["fieller_lo"], wr["fieller_hi"])],
    })[["variant", "reasoning loss", "factual loss", "ratio (bootstrap)", "Fieller"]]


def pruning_forms_table(forms: dict) -> pd.DataFrame:
    """Table 3.14b: Eq. 25's pruning term fitted in the paper's form (through 0) and with an intercept
    (``fits.fit_forms``): α and the intercept with their 95% intervals, and each form's AIC."""
    from studylib.book import tables as book

    paper, free, c = forms["paper"], forms["free"], forms["compare"]
    return pd.DataFrame([
        {"form": "paper's (no intercept)", "α (pp per unit p)": book.ci(paper.params["p"], *paper.conf_int().loc["p"], max_digits=1),
         "intercept (pp)": "0 (fixed)", "AIC": c["aic_paper"]},
        {"form": "with intercept", "α (pp per unit p)": book.ci(free.params["p"], *free.conf_int().loc["p"], max_digits=1),
         "intercept (pp)": book.ci(free.params["Intercept"], *free.conf_int().loc["Intercept"], max_digits=1),
         "AIC": c["aic_free"]}])
