"""Quality claims, judged on the largest-scale profile that measured them (Llama-8B on a GPU
box, then Qwen2.5-1.5B, then SmolLM2-135M on real items, then on probes) and labelled with
that scale. An accuracy loss is judged only where the dense model is above chance."""
from __future__ import annotations

import pandas as pd

from .. import analysis
from ..paper import criteria as C
from ..stats import upper_bound_verdict
from . import Claim, Data, Measured, band, ci_text

QUALITY_PROFILE_RANK = ("h200", "h100", "cpu-qwen", "cpu-real", "embedded")
COMBO = C.H2_VARIANT


def best_profile(df: pd.DataFrame) -> pd.DataFrame:
    if df.empty or "profile" not in df:
        return df
    present = [p for p in QUALITY_PROFILE_RANK if p in set(df["profile"])] or sorted(set(df["profile"]))
    return df[df["profile"] == present[0]]


def deltas_of(d: Data, variant: str, task: str) -> pd.DataFrame:
    df = d.deltas
    return best_profile(df[(df["variant"] == variant) & (df["task"] == task)])


def scale(df: pd.DataFrame, what: str = "") -> str:
    if df.empty:
        return ""
    model = str(df["model"].iloc[0]).split("/")[-1]
    return f"{model} ({df['profile'].iloc[0]}){', ' + what if what else ''}"


def above_chance(d: Data, rows: pd.DataFrame, task: str) -> bool:
    return not rows.empty and analysis.above_chance(d.items[d.items["profile"] == rows["profile"].iloc[0]], task)


def loss(d: Data, task: str, variant: str = COMBO):
    """(estimate of the paired accuracy loss in pp, the rows it came from)."""
    rows = deltas_of(d, variant, task)
    return analysis.estimate_of(rows, "acc_loss_pp", "acc_loss_lo", "acc_loss_hi"), rows


def judged_loss(d: Data, task: str, variant: str = COMBO):
    """The loss only where it can be judged (dense above chance), else None."""
    e, rows = loss(d, task, variant)
    return e if e is not None and above_chance(d, rows, task) else None


def _accuracy_loss(task: str):
    def measure(d: Data) -> Measured:
        e, rows = loss(d, task)
        if e is None:
            return Measured()
        chance = "" if above_chance(d, rows, task) else "dense at chance: accuracy loss uninformative"
        return Measured(e, f"{e.value:.1f} pp", ci_text(e, "{:.1f}"), scale(rows, chance),
                        inputs={"judgeable": not chance})
    return measure


def _upper(bound: float):
    return lambda m: upper_bound_verdict(m.estimate, bound) if m.inputs["judgeable"] else C.AT_CHANCE


def _probe(task: str):
    def measure(d: Data) -> Measured:
        e, rows = loss(d, task)
        return Measured() if e is None else Measured(e, f"{e.value:.1f} pp", ci_text(e, "{:.1f}"),
                                                     scale(rows, "generated probe"))
    return measure



def _eq25(d: Data) -> Measured:
    """Eq. 25 fitted on the largest-scale profile with a grid (``criteria.eq25_verdict``)."""
    from ..fits import fit_eq25

    if d.items.empty:
        return Measured()
    design = best_profile(analysis.eq25_design(d.items, d.variants))
    for outcome, unit in (("q_loss", "pp"), ("lp_loss", "nats/token")):
        try:
            res, tests = fit_eq25(design, outcome)
        except (ValueError, KeyError):
            continue
        keys = (("α", "p"), ("β", "imbalance"), ("γ", "c_drop"))
        meas = ", ".join(f"{n}={tests.loc[k, 'estimate']:.2f}" for n, k in keys)
        ci = ", ".join(f"[{tests.loc[k, 'lo']:.2f}, {tests.loc[k, 'hi']:.2f}]" for _, k in keys)
        return Measured(text=f"{meas} ({unit}, R²={res.rsquared:.2f}, n={int(res.nobs)})", ci=ci, scale=scale(design),
                        inputs={"tests": tests, "r2": res.rsquared, "outcome": outcome})
    return Measured(inputs={"grid_incomplete": True})


def _eq25_verdict(m: Measured) -> str:
    if m.inputs.get("grid_incomplete"):
        return C.NOT_MEASURED + " (grid incomplete)"
    return C.eq25_verdict(m.inputs["tests"], m.inputs["r2"], m.inputs["outcome"])


def ratio(d: Data):
    """The reasoning/factual loss ratio of the paper's variant, on its best profile."""
    if d.items.empty:
        return None, None, pd.DataFrame()
    best = best_profile(d.items[d.items["variant"] == COMBO])
    info = analysis.degradation_ratio(d.items[d.items["profile"].isin(best["profile"].unique())])
    return (info["ratio"] if info else None), info, best


def _ratio(d: Data) -> Measured:
    e, info, best = ratio(d)
    if e is None:
        return Measured()
    return Measured(e, f"{e.value:.2f} ({info['reasoning_task']}/{info['factual_task']}, {info['measure']})",
                    ci_text(e), scale(best))


def _abort2(d: Data) -> Measured:
    vq = d.variants
    vc = best_profile(vq[vq["variant"] == COMBO]) if not vq.empty else vq
    if vc.empty:
        return Measured()
    mx = float(vc["max_expert_fraction"].iloc[0])
    return Measured(text=f"{mx:.2f} (max layer)", scale=scale(vc), inputs={"max_fraction": mx})


def _h2(d: Data) -> Measured:
    parts = {"mmlu": judged_loss(d, "mmlu"), "gsm8k": judged_loss(d, "gsm8k"), "ratio": ratio(d)[0]}
    _, rows = loss(d, "mmlu")
    return Measured(scale=scale(rows), inputs=parts if any(v is not None for v in parts.values()) else {})


CLAIMS = [
    Claim("mmlu_loss", "MMLU loss < 1 pp", "Abstract, Table 3, §8.1.2", f"< {C.H2_MMLU_MAX_LOSS_PP} pp",
          "ch3_phase1_quality", _accuracy_loss("mmlu"), _upper(C.H2_MMLU_MAX_LOSS_PP),
          C.NOT_MEASURED + " (needs bench_dir: cpu-real or GPU profile)"),
    Claim("gsm8k_loss", "GSM8K loss < 3 pp", "§8.1.2, §7.3 (1)", f"< {C.H2_GSM8K_MAX_LOSS_PP} pp",
          "ch3_phase1_quality", _accuracy_loss("gsm8k"), _upper(C.H2_GSM8K_MAX_LOSS_PP),
          C.NOT_MEASURED + " (needs bench_dir: cpu-real or GPU profile)"),
    Claim("probe_facts", "Factual-recall probe (capitals): loss of 30% SparseGPT + 4-expert top-1", "Table 3",
          "0.3-0.8 pp (MMLU row)", "ch3_phase1_quality", _probe("probe_facts"), band(0.3, 0.8)),
    Claim("probe_arith", "Arithmetic reasoning probe: loss of 30% SparseGPT + 4-expert top-1", "Table 3",
          "1-2 pp (GSM8K row)", "ch3_phase1_quality", _probe("probe_arith"), band(1, 2)),
    Claim("needle", "Needle-in-a-haystack retrieval: loss of 30% SparseGPT + 4-expert top-1", "Table 3",
          "5-15 pp loss (Table 3)", "ch3_phase1_quality", _probe("needle"), band(5, 15)),
    Claim("eq25", "Quality loss follows Eq. 25 (α=0.8, β=2.5, γ=8.0)", "Eq. 25-28", "α=0.8, β=2.5, γ=8.0",
          "ch3_phase1_quality", _eq25, _eq25_verdict),
    Claim("reasoning_ratio", "Reasoning degrades 2-3x more than factual recall", "§8.1.2 (§4.4 says 3-5x)",
          f"ratio 2-3 (band {C.H2_RATIO_BAND[0]:.1f}-{C.H2_RATIO_BAND[1]:.1f})", "ch3_phase1_quality", _ratio,
          band(*C.H2_RATIO_BAND)),
    Claim("abort2", "Abort 2: > 70% of tokens to one expert", "§7.3 (2)", "abort if > 0.70", "ch5_phase3", _abort2,
          lambda m: "triggered" if m.inputs["max_fraction"] > 0.70 else "not triggered"),
    Claim("h2", "H2: quality preservation", "§8.1.2", "GSM8K < 3, MMLU < 1 pp, ratio 2-3", "ch3_phase1_quality",
          _h2, lambda m: C.h2_verdict(m.inputs["mmlu"], m.inputs["gsm8k"], m.inputs["ratio"])),
]
