"""Appendix A's views: the pre-registered quality plan against what landed, and which machine
measured each unit (with the machine checks that say whether another machine reproduces them).
Functions from tidy tables to a table or paragraphs, tested on fixtures; the appendix holds the calls."""
from __future__ import annotations

import json

import pandas as pd


def coverage_grid(c: pd.DataFrame) -> pd.DataFrame:
    """``quality.units.coverage`` as variant × task cells "measured / planned" (⏳ while landing), in
    the plan's order."""
    c = c.assign(cell=[f"{m:,} / {p:,}" + ("" if m == p else " ⏳") for m, p in zip(c["measured"], c["planned"])])
    grid = c.pivot(index="variant", columns="task", values="cell").reindex(list(dict.fromkeys(c["variant"])))
    return grid[list(dict.fromkeys(c["task"]))].reset_index()


def machine_check_table(mc: pd.DataFrame) -> pd.DataFrame:
    """One row per re-measured unit (``data/machine_check``): the machines, the unit's size and
    ``machine_check.summary``'s agreement figures."""
    from studylib.quality import machine_check

    rows = [{"profile": prof, "variant": v, "task": t, "here": g["cpu"].iloc[0], "reference": g["cpu_reference"].iloc[0],
             "unit_items": json.loads(g["params"].iloc[0])["unit_items"][1], **machine_check.summary(g)}
            for (prof, v, t, _), g in mc.groupby(["profile", "variant", "task", "unit"])]
    return pd.DataFrame(rows)


def machine_check_readings(mct: pd.DataFrame, qi: pd.DataFrame) -> list[str]:
    """A paragraph per re-measured generation unit: outcomes and token-identical responses kept on the
    other machine, and how many committed units that machine measured."""
    gen = mct.dropna(subset=["same_response"]) if "same_response" in mct else mct.iloc[:0]
    out = []
    for r in gen.itertuples():
        text = (f"On {r.here}, {r.variant}'s first {r.items} {r.task} items gave the committed outcome on "
                f"{r.items - r.outcome_differs} of {r.items} and a token-identical response on "
                f"{int(r.same_response)} of {r.items}")
        if r.same_response < r.items:
            text += ": greedy generation takes other paths on this machine"
            if pd.notna(getattr(r, "median_first_difference", float("nan"))):
                text += (f" (where they differ, the median response stays the same for its first "
                         f"{r.median_first_difference:.0f} characters)")
            if r.items < r.unit_items:
                text += (f" (these {r.items} of the unit's {r.unit_items} items also batch differently, so part "
                         "of it may be batching)")
        n_here = int(qi.loc[qi["cpu"] == r.here, "unit"].nunique()) if not qi.empty else 0
        out.append(text + ". A unit from such a machine is not comparable item by item with one from the other "
                   "unless its dense reference is re-measured there too; "
                   + {0: "no unit", 1: "1 unit"}.get(n_here, f"{n_here} units")
                   + f" in data/quality_items/ {'come' if n_here > 1 else 'comes'} from {r.here}.")
    return out


def residual_figure(res, title: str, measured=None, xlabel: str = "fitted"):
    """A fit's two diagnostic panels: residuals against fitted values (as a percentage of ``measured``
    on a log axis where it is given: the latency model's errors are relative) and a normal Q-Q plot."""
    import matplotlib.pyplot as plt
    import statsmodels.api as sm

    fig, ax = plt.subplots(1, 2, figsize=(9, 3.2))
    if measured is None:
        ax[0].scatter(res.fittedvalues, res.resid)
        ax[0].set(xlabel=xlabel, ylabel="residual", title=f"{title}: residuals")
    else:
        ax[0].scatter(res.fittedvalues, res.resid / measured * 100, s=8)
        ax[0].set(xlabel=xlabel, ylabel="residual (% of measured)", title=f"{title}: relative residuals")
        ax[0].set_xscale("log")
    ax[0].axhline(0, color="grey")
    sm.qqplot(res.resid, line="s", ax=ax[1])
    ax[1].set_title("normal Q-Q")
    fig.tight_layout()
    return fig
