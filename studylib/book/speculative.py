"""Chapter 4's speculative-decoding views on the CPU (``data/spec_decoding``): acceptance per draft
position and speedup per draft length (Figure 4.1), and how often greedy outputs stay identical with
the draft (Table 4.2) with the paired GSM8K reading. Functions from the tidy table to a figure, a
table or a paragraph; the chapter holds the calls."""
from __future__ import annotations

import pandas as pd

from studylib.book import tables as book
from studylib.estimates import spec_analysis as S
from studylib.paper.tables import TABLE5

PAPER_SPEC_BAND = TABLE5["spec_decode"]["speedup"]   # Table 5's speculative-decoding speedup, drawn as a band


def acceptance_figure(sd: pd.DataFrame):
    """Figure 4.1: left, acceptance per draft position with bootstrap CIs; right, the CPU wall-clock
    speedup and tokens per target step per draft length, our loop beside transformers' assisted
    generation, with the paper's band. ``sd``: one draft/target pair's rows (``spec_analysis.main_pair``)."""
    import matplotlib.pyplot as plt

    acc = S.acceptance_by_position(sd)
    pg = pd.concat([S.per_gamma(sd, method=m) for m in ("own_loop", "transformers")])
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.6))
    ax[0].errorbar(acc["position"], acc["acceptance"], yerr=[acc["acceptance"] - acc["lo"], acc["hi"] - acc["acceptance"]],
                   marker="o", capsize=3)
    ax[0].set(xlabel="draft position i", ylabel="P(accepted | 1..i-1 accepted)", ylim=(0, 1),
              title="Acceptance per draft position (bf16)")
    own = pg[pg["method"] == "own_loop"]
    ax[1].errorbar(own["gamma"], own["cpu_speedup"], yerr=[own["cpu_speedup"] - own["cpu_lo"], own["cpu_hi"] - own["cpu_speedup"]],
                   marker="o", capsize=3, label="CPU wall-clock speedup")
    ax[1].plot(own["gamma"], own["tokens_per_step"], marker="s", ls="--", label="tokens per target step")
    ref = pg[pg["method"] == "transformers"]
    ax[1].scatter(ref["gamma"], ref["cpu_speedup"], marker="*", s=120, color="k", label="transformers assisted", zorder=3)
    ax[1].axhspan(*PAPER_SPEC_BAND, color="tab:red", alpha=0.12, label="paper {}–{}x".format(*PAPER_SPEC_BAND))
    ax[1].set(xlabel="draft length γ", title="Speedup over the target alone (2 CPU cores)")
    ax[1].legend(fontsize=8)
    fig.tight_layout()
    return fig


def identity_table(sd: pd.DataFrame) -> pd.DataFrame:
    """Table 4.2: identical greedy generations with and without the draft, per dtype, Wilson interval."""
    rows = []
    for dt in ("float32", "bfloat16"):
        i = S.identity(sd, dt)
        if i:
            rows.append({"dtype": dt, "identical / runs": f"{i['identical']}/{i['n']}",
                         "rate": i["rate"].value, "95% CI (Wilson)": f"[{i['rate'].lo:.2f}, {i['rate'].hi:.2f}]",
                         "median first divergence (token)": i["first_divergence_median"]})
    return pd.DataFrame(rows).set_index("dtype") if rows else pd.DataFrame()


def gsm8k_reading(sd: pd.DataFrame, gamma: int = 4) -> str | None:
    """GSM8K accuracy alone and with the draft on the same items, paired; None without such items."""
    g = S.gsm8k_paired(sd, gamma)
    if not g:
        return None
    return (f"GSM8K on the same {g['n']} items, bf16: target alone {100 * g['alone']:.0f}%, with the draft "
            f"(γ={gamma}) {100 * g['assisted']:.0f}%; paired difference {book.est(g['delta_pp'], ' pp')}, McNemar "
            f"p = {g['mcnemar_p']:.2f}. Few items: this bounds nothing tightly; it shows whether the drafts "
            "change answers.")
