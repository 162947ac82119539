"""What each technique buys and what it costs, on one model: its decode speedup on this CPU
(whole greedy generation, each variant on its fastest measured kernel) beside its paired MMLU loss
against dense, both with 95% intervals. One row per variant measured both ways on the same
profile; the figure in chapter 4 plots them."""
from __future__ import annotations

import pandas as pd

from studylib.claims import Data
from studylib.claims.hardware import cpu_decode_speedup
from studylib.claims.quality import loss
from studylib.quality.transforms import declared_variants


def techniques() -> dict[str, str]:
    """{variant: family} of every declared variant that is a technique (not a bound, not a design
    point), in declaration order (studylib/quality/variants.yaml)."""
    return {v: s["family"] for v, s in declared_variants().items() if s["family"] not in (None, "bound")}


def speed_quality(d: Data | None = None, task: str = "mmlu", batch: int = 1) -> pd.DataFrame:
    """variant, family, profile, speedup (lo, hi), loss_pp (lo, hi), n_items — only where the speed
    and the loss were measured on the same profile."""
    d = d or Data()
    rows = []
    for v, family in techniques().items():
        s = cpu_decode_speedup(d, (v,), batch)
        e, q = loss(d, task, (v,))
        if s is None or e is None or not s["scale"].startswith(f"{q['model'].iloc[0]} ({q['profile'].iloc[0]})"):
            continue
        sp = s["estimate"]
        rows.append({"variant": v, "family": family, "profile": q["profile"].iloc[0],
                     "speedup": sp.value, "speedup_lo": sp.lo, "speedup_hi": sp.hi,
                     "loss_pp": e.value, "loss_lo": e.lo, "loss_hi": e.hi, "n_items": int(q["n_items"].iloc[0])})
    return pd.DataFrame(rows)


def roi_sensitivity_figure(sens: pd.DataFrame):
    """H3 against the hours it would take (``estimates.roi.sensitivity``): the probability that H3's
    criterion holds per hour count spent on sparse routing, one line per reading, Table 5's range shaded."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    from studylib.paper.tables import TABLE5

    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    sns.lineplot(data=sens, x="sparse_routing_hours", y="probability", hue="reading", ax=ax)
    ax.axvspan(*TABLE5["sparse_routing"]["hours"], color="grey", alpha=0.15,
               label="paper's {}–{} h".format(*TABLE5["sparse_routing"]["hours"]))
    ax.set(xlabel="hours spent on sparse routing", ylabel="P(H3 criterion holds)", title="H3 against the hours it would take")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def figure1_table(tq: pd.DataFrame) -> pd.DataFrame:
    """Table 4.6d: Figure 1's points, speedup (B=1) and MMLU loss each with its interval."""
    from studylib.book import tables as book
    from studylib.stats import Estimate

    return pd.DataFrame({
        "variant": tq["variant"], "family": tq["family"],
        "speedup (B=1)": [book.est(Estimate(*r), "x", max_digits=2) for r in tq[["speedup", "speedup_lo", "speedup_hi"]].to_numpy()],
        "MMLU loss": [book.est(Estimate(*r), " pp") for r in tq[["loss_pp", "loss_lo", "loss_hi"]].to_numpy()],
        "n_items": tq["n_items"]})


def family_reading(tq: pd.DataFrame) -> str:
    """One sentence per technique family: the range of its speedups and of its MMLU losses."""
    fam = tq.groupby("family", sort=False).agg(s_lo=("speedup", "min"), s_hi=("speedup", "max"),
                                               l_lo=("loss_pp", "min"), l_hi=("loss_pp", "max"))
    return "Reading: " + "; ".join(
        f"{f} runs at {r.s_lo:.2f}x{'' if r.s_hi == r.s_lo else f'–{r.s_hi:.2f}x'} dense speed and loses "
        f"{r.l_lo:.1f}{'' if r.l_hi == r.l_lo else f'–{r.l_hi:.1f}'} pp of MMLU" for f, r in fam.iterrows()) + "."
