"""What weight quantization (and its stack with pruning) costs in quality, as the book reports it:
paired losses against dense per task and the WikiText-2 perplexity ratio, per profile."""
from __future__ import annotations

import pandas as pd

from studylib.estimates.conversion_analysis import perplexity_vs_dense
from studylib.results import BASELINE


def quality_table(items: pd.DataFrame, deltas: pd.DataFrame, variants, tasks=("mmlu", "gsm8k_cot", "hellaswag")) -> pd.DataFrame:
    """One row per profile x variant of ``variants`` measured there: '<loss> [lo, hi] (n=...)' per task
    (paired accuracy loss against dense, points) and the WikiText-2 perplexity ratio with its interval."""
    qi = items[items["variant"].isin([BASELINE, *variants])]
    rows = []
    for prof, g in qi.groupby("profile"):
        dl = deltas[deltas["profile"] == prof]
        for v in variants:
            if v not in set(g["variant"]):
                continue
            r = {"profile": prof, "variant": v}
            for task in tasks:
                d = dl[(dl["variant"] == v) & (dl["task"] == task)]
                if not d.empty:
                    x = d.iloc[0]
                    r[f"{task} loss pp"] = (f"{x['acc_loss_pp']:.1f} [{x['acc_loss_lo']:.1f}, {x['acc_loss_hi']:.1f}]"
                                            f" (n={int(x['n_items'])})")
            pp = perplexity_vs_dense(g, v)
            if pp:
                r["WikiText-2 ppl / dense"] = f"{pp['ppl_ratio']:.3f} [{pp['ppl_ratio_lo']:.3f}, {pp['ppl_ratio_hi']:.3f}]"
            rows.append(r)
    return pd.DataFrame(rows)
