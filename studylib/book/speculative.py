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
PAPER_BOTH_BAND = TABLE5["int8+spec_decode"]["speedup"]   # Table 5's int8 + speculative decoding
#: the GPU pair the "both" curves are predicted for
BOTH_PAIR = "llama-3-8b with a 0.5B draft"


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


def gpu_predictions(sd: pd.DataFrame, timing: pd.DataFrame) -> pd.DataFrame:
    """Figure 4.2's curves: the speedup the formula predicts on the GPU per pair and draft length, from
    the CPU acceptance and the GPU step times (``spec_analysis.gpu_prediction``)."""
    parts = [S.gpu_prediction(sd, timing, p) for p in S.GPU_PAIRS]
    return pd.concat(parts) if parts else pd.DataFrame()


def curves_figure(curves: pd.DataFrame, by: str, band: tuple[float, float], band_label: str, ylabel: str, title: str):
    """Speedup per draft length γ with its 95% interval, one curve per ``by`` value, the paper's band
    shaded (Figures 4.2 and 4.2b)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    for name, d in curves.groupby(by, sort=False):
        ax.errorbar(d["gamma"], d["speedup"], yerr=[d["speedup"] - d["lo"], d["hi"] - d["speedup"]], marker="o",
                    capsize=3, label=name)
    ax.axhspan(*band, color="tab:red", alpha=0.12, label="{} {}–{}x".format(band_label, *band))
    ax.axhline(1, color="grey", lw=0.8)
    ax.set(xlabel="draft length γ", ylabel=ylabel, title=title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def int8_plus_draft(sd_all: pd.DataFrame, sd: pd.DataFrame, timing: pd.DataFrame, gpus) -> tuple[str | None, pd.DataFrame]:
    """Figure 4.2b's curves on the first of ``gpus`` that timed int8 verification steps: the draft for
    the int8 target with the measured int8 steps, the same at dense's bandwidth efficiency (the most a
    better int8 kernel could add), and the draft alone for the dense target. (None, empty) without one."""
    rows_both = S.stack_rows(sd_all, S.BOTH[0])  # sd holds the plain pair only
    gpu = next((p for p in gpus if not S.gpu_prediction(rows_both, timing, BOTH_PAIR, target_variant=S.BOTH[1],
                                                         profile=p).empty), None)
    if gpu is None:
        return None, pd.DataFrame()
    kw = dict(target_variant=S.BOTH[1], profile=gpu)
    return gpu, pd.concat([
        S.gpu_prediction(rows_both, timing, BOTH_PAIR, **kw).assign(what="int8 + draft (measured int8 steps)"),
        S.gpu_prediction(rows_both, timing, BOTH_PAIR, at_dense_efficiency=True, **kw)
        .assign(what="int8 + draft (int8 at dense's bandwidth efficiency)"),
        S.gpu_prediction(S.main_pair(sd), timing, BOTH_PAIR, profile=gpu).assign(what="draft alone (dense target)")],
        ignore_index=True)


def best_gamma(curves: pd.DataFrame, by: str = "what") -> pd.DataFrame:
    """Table 4.3b: each curve's best draft length, with its interval and step times."""
    best = curves.loc[curves.groupby(by)["speedup"].idxmax()].set_index(by)
    return best[["gamma", "alpha", "speedup", "lo", "hi", "t_target_1_ms", "t_verify_ms", "t_draft_ms"]]


def stack_table(sd_all: pd.DataFrame, cd: pd.DataFrame, stack: str, parts: tuple[str, str]) -> pd.DataFrame:
    """Table 4.7: the paper's η (Eq. 34) for every variant drafted for (``spec_analysis.eta``) and, from the
    CPU decode, for the weight stack ``stack`` of ``parts`` (pruning, int8) per profile and batch, on each
    variant's fastest kernel (``cpu_decode.stack_eta``)."""
    from studylib.estimates.cpu_decode import fastest_kernel, stack_eta

    rows = []
    for v in S.stacks(sd_all):
        e = S.eta(sd_all, v)
        if e:
            rows.append({"stack": f"{v} + draft", "γ": e["gamma"], "prompts": e["prompts"],
                         "S_variant": book.est(e["s_variant"], "x", max_digits=2),
                         "S_spec": book.est(e["s_spec"], "x", max_digits=2),
                         "S_stack": book.est(e["s_stack"], "x", max_digits=2), "η": book.est(e["eta"], max_digits=2)})
    for prof, g in cd.groupby("profile") if not cd.empty else []:
        for b in sorted(g["batch"].unique()):
            e = stack_eta(fastest_kernel(g), stack, parts, int(b))
            if e:
                rows.append({"stack": f"{parts[0]} + {parts[1]} (weights; {prof}, B={b})", "γ": "—", "prompts": "—",
                             "S_variant": "—", "S_spec": "—", "S_stack": "—", "η": book.est(e, max_digits=2)})
    return pd.DataFrame(rows)
