"""Tables and figures of the book's quality chapter that read the floor rule, the re-judged GSM8K
answers, the reasoning/factual ratio of the working variants and Eq. 25's pruning term (issue 36).

Each is a named function from tidy tables to a DataFrame or a matplotlib Figure, so a chapter
holds prose and calls, and tests can run them on fixtures. Numbers come from the caller's data.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from . import analysis


def floor_table(items: pd.DataFrame, profile: str) -> pd.DataFrame:
    """Every variant x task of ``profile`` against the task's floor (``analysis.floor_status``):
    accuracy, its 95% Wilson interval, the floor and whether the variant is above it."""
    its = items[items["profile"] == profile]
    rows = []
    for task in sorted(its["task"].unique()):
        for v in sorted(its.loc[its["task"] == task, "variant"].unique(), key=lambda v: (v != "dense", v)):
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
