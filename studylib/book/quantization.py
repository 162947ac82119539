"""Chapter 4's GPTQ figure and reading: the layer-level check (``quality.gptq_holdout``) of how much of
GPTQ's fitted advantage over round-to-nearest carries to held-out text, beside the end-to-end paired
comparison of the two int4 variants. Functions from tidy tables to a Figure or a paragraph, so the
chapter holds the calls and the tests run them on fixtures."""
from __future__ import annotations

import pandas as pd

from studylib.decoding.weight_kernels import DECODE_KERNELS  # declared beside the kernels
from studylib.estimates import gpu_claims as G
from studylib.timing.modules import TIMED_MODULES, with_role


def gptq_holdout_figure(rel: pd.DataFrame, model: str):
    """Output error relative to round-to-nearest against calibration tokens, one panel per layer
    site; held-out (solid) and calibration (dotted) per damping. ``rel``: ``gptq_holdout.relative_to_rtn``."""
    import matplotlib.pyplot as plt

    sites = list(dict.fromkeys(rel["site"]))
    fig, axes = plt.subplots(1, len(sites), figsize=(2.9 * len(sites), 3.2), sharey=True, squeeze=False)
    for ax, site in zip(axes[0], sites):
        r = rel[rel["site"] == site]
        for (damp, g), color in zip(r.groupby("percdamp"), ("tab:blue", "tab:orange")):
            ax.plot(g["calib_tokens"], g["heldout_vs_rtn"], marker="o", color=color, label=f"held-out, damp {damp:g}")
            ax.plot(g["calib_tokens"], g["calib_vs_rtn"], marker="x", ls=":", color=color,
                    label=f"calibration, damp {damp:g}")
        ax.axhline(1, color="k", lw=0.8)
        ax.set_xscale("log", base=2)
        ax.set(title=site, xlabel="calibration tokens")
    axes[0][0].set_ylabel("output error / RTN's")
    axes[0][-1].legend(fontsize=7)
    fig.suptitle(f"GPTQ int4 g128 vs round-to-nearest, {model} (1 = no better than RTN)", fontsize=10)
    fig.tight_layout()
    return fig


def gptq_holdout_reading(rel: pd.DataFrame, versus: pd.DataFrame, sweep_damp: float = 0.01) -> str:
    """The chapter's reading: at the sweep's calibration budget (the smallest measured, damping
    ``sweep_damp``) the median calibration and held-out error ratios over layers; at the largest
    budget the held-out ratio per damping; and the end-to-end paired result (``versus``: rows of
    ``analysis.versus(gptq, rtn)`` on the same profile; may be empty)."""
    end_to_end = ("The end-to-end result above" if versus.empty else "The end-to-end result above (" + "; ".join(
        f"{r.task}, n={int(r.n_items)}: GPTQ {'worse' if r.acc_loss_pp > 0 else 'better'} than round-to-nearest "
        f"by {abs(r.acc_loss_pp):.1f} pp, McNemar p = {r.mcnemar_p:.2f}" for r in versus.itertuples()) + ")")
    swp = rel[(rel["calib_tokens"] == rel["calib_tokens"].min()) & (rel["percdamp"] == sweep_damp)]
    big = rel[rel["calib_tokens"] == rel["calib_tokens"].max()]
    best = big.groupby("percdamp")["heldout_vs_rtn"].median()
    return (f"**Reading.** With the sweep's {int(swp['calib_tokens'].iloc[0]):,} calibration tokens and {sweep_damp:.0%} "
            f"damping, GPTQ's output error on its own calibration tokens is {swp['calib_vs_rtn'].median():.2f} of "
            f"round-to-nearest's (median over the {len(swp)} layers), but on held-out text "
            f"{swp['heldout_vs_rtn'].median():.2f}: most of the advantage it fits does not carry to tokens it did "
            f"not see. With {int(big['calib_tokens'].iloc[0]):,} tokens the held-out ratio is "
            + ", ".join(f"{v:.2f} at damping {d:g}" for d, v in best.items())
            + ". " + end_to_end + " is therefore what GPTQ gives at this calibration "
            "budget, not necessarily what it can give: the study's `gptq_int4` is GPTQ calibrated on as many tokens as "
            "SparseGPT here (a budget fixed for the 2-core CPU), and the layer check says how much more a larger "
            "budget would buy. Data: data/gptq_holdout/; heldout = WikiText-2 test windows never in calibration; "
            "activations from the bf16 model.")




def kernel_readings(cp: pd.DataFrame, profile: str) -> tuple[str, str]:
    """Two paragraphs on one profile's CPU weight kernels (``data/cpu_kernels``): the fastest kernel
    per layer, width and batch (kernels whose median's 95% CI overlaps the fastest's listed
    together), then whether the kernels the whole-model decode uses are the fastest at batch 1
    and, where not, by how much."""
    parts = []
    for (layer, bits, b), g in cp.groupby(["layer", "bits", "batch"]):
        g = g.sort_values("median_s")
        tied = g[g["ci_lo_s"] <= g["ci_hi_s"].iloc[0]]   # CI of the median overlaps the fastest's
        parts.append(f"{layer}, {bits}-bit, B={b}: " + " ≈ ".join(tied["kernel"]))
    fastest = (f"**{profile}** — fastest kernel per format (kernels whose median's 95% CI overlaps the fastest's "
               "are listed together): " + "; ".join(parts) + ".")
    have = set(cp["kernel"])
    used = {}
    for bits, k in DECODE_KERNELS.items():
        k = next((x for x in k if x in have), None) if isinstance(k, tuple) else (k if k in have else None)
        if k:
            used[bits] = k
    gaps = []
    for (layer, bits), g in cp[cp["batch"] == 1].groupby(["layer", "bits"]):
        best, mine = g.loc[g["median_s"].idxmin()], g[g["kernel"] == used.get(bits)]
        if not mine.empty and best["kernel"] != used[bits]:
            gaps.append(f"{layer} {bits}-bit: {used[bits]} takes {mine['median_s'].iloc[0] / best['median_s']:.3f}x "
                        f"the time of {best['kernel']}")
    decode = (f"On {profile} the whole-model decode uses " + ", ".join(used.values()) + ". " + (
        "Where another kernel is faster at batch 1: " + "; ".join(gaps) + "." if gaps else
        "Each is the fastest of its format at batch 1."))
    return fastest, decode


def weight_only_speedups(gt: pd.DataFrame, batches=(1, 8)) -> pd.DataFrame:
    """Table 4.1: whole-model decode speedup over dense of every weight-only timed module (each that
    declares a ``technique``) and of the paper's combination, on the headline shape, per batch, with
    the 95% CI; ``gt``: one GPU's timing rows (``gpu_claims.gpu_timing``). Modules not measured there
    are absent."""
    modules = [*(m for m, s in TIMED_MODULES.items() if s.get("technique")), with_role("paper_recipe")]
    rows = []
    for v in modules:
        for b in batches:
            e = G.speedup(gt, G.HEADLINE_SHAPE, v, b, component="model")
            if e is not None:
                rows.append({"variant": v, "technique": TIMED_MODULES[v].get("technique", "sparse routing"),
                             "batch": b, "speedup": e.value, "95% CI": f"[{e.lo:.2f}, {e.hi:.2f}]"})
    return pd.DataFrame(rows, columns=["variant", "technique", "batch", "speedup", "95% CI"])


def with_layer(ck: pd.DataFrame) -> pd.DataFrame:
    """``data/cpu_kernels`` rows with their layer ('in→out') and weight-bytes share of the copy bandwidth."""
    return ck.assign(layer=ck["in_features"].astype(str) + "→" + ck["out_features"].astype(str),
                     bw_fraction=ck["achieved_Bps"] / ck["copy_bandwidth_Bps"])


def kernel_figure(ck: pd.DataFrame):
    """Figure 4.5: each CPU weight kernel's share of the copy bandwidth per layer and batch (``with_layer`` rows)."""
    import seaborn as sns

    g = sns.catplot(data=ck, x="bw_fraction", y="kernel", hue="batch", col="layer", row="profile", kind="bar",
                    height=3.2, aspect=1.3, palette="viridis", sharey=False,
                    order=list(dict.fromkeys(ck.sort_values("bits")["kernel"])))
    g.set_axis_labels("weight bytes / time ÷ measured copy bandwidth", "")
    return g.figure


def kernel_table(ck: pd.DataFrame) -> pd.DataFrame:
    """Table 4.6c: one linear layer under each kernel: median µs, weight MB, share of the copy bandwidth
    and the error against the fp32 product (``with_layer`` rows)."""
    t = ck.assign(**{"median µs": 1e6 * ck["median_s"], "weight MB": ck["weight_bytes"] / 1e6})
    return t[["profile", "layer", "kernel", "library", "batch", "median µs", "weight MB", "bw_fraction", "rel_error"]] \
        .sort_values(["profile", "layer", "batch", "median µs"])
