"""Quality claims, judged on the largest-scale profile that measured them (Llama-8B on a GPU
box, then Qwen2.5-1.5B, then SmolLM2-135M on real items, then on probes) and labelled with
that scale. An accuracy loss is judged only where the dense model is above chance."""
from __future__ import annotations

import pandas as pd

from .. import analysis
from ..paper import criteria as C
from ..stats import paired_n_required, upper_bound_verdict
from . import Claim, Data, Measured, band, ci_text

QUALITY_PROFILE_RANK = ("h200", "h100", "cpu-qwen", "cpu-real", "embedded")
COMBOS = C.H2_VARIANTS


def best_profile(df: pd.DataFrame) -> pd.DataFrame:
    return analysis.first_profile(df, QUALITY_PROFILE_RANK)


def task_alias(task: str) -> tuple[str, ...]:
    """The tasks that measure ``task`` in order of preference (GSM8K: generated answers first)."""
    return C.GSM8K_TASKS if task in C.GSM8K_TASKS else (task,)


def deltas_of(d: Data, variant: str | tuple, task: str) -> pd.DataFrame:
    """The deltas of the first of ``variant`` (a name or names in preference order) and of the
    first alias of ``task`` present on the best profile that has any of them."""
    df = d.deltas
    if df.empty:
        return df
    names = (variant,) if isinstance(variant, str) else tuple(variant)
    rows = best_profile(df[df["variant"].isin(names) & df["task"].isin(task_alias(task))])
    for v in names:
        for t in task_alias(task):
            hit = rows[(rows["variant"] == v) & (rows["task"] == t)]
            if not hit.empty:
                return hit
    return rows.iloc[:0]


def scale(df: pd.DataFrame, what: str = "") -> str:
    if df.empty:
        return ""
    model = str(df["model"].iloc[0]).split("/")[-1]
    return f"{model} ({df['profile'].iloc[0]}){', ' + what if what else ''}"


def judged_on(rows: pd.DataFrame) -> str:
    """'<variant>, <task>, n=<items>': what a quality row judges (issue 13: every row names it)."""
    if rows.empty:
        return ""
    r = rows.iloc[0]
    return f"{r['variant']}, {r['task']}, n={int(r['n_items'])}"


def above_chance(d: Data, rows: pd.DataFrame, task: str) -> bool:
    if rows.empty:
        return False
    return analysis.above_chance(d.items[d.items["profile"] == rows["profile"].iloc[0]], rows["task"].iloc[0])


def loss(d: Data, task: str, variant=COMBOS):
    """(estimate of the paired accuracy loss in pp, the rows it came from)."""
    rows = deltas_of(d, variant, task)
    return analysis.estimate_of(rows, "acc_loss_pp", "acc_loss_lo", "acc_loss_hi"), rows


def judged_loss(d: Data, task: str, variant=COMBOS):
    """The loss only where it can be judged (dense above chance), else None."""
    e, rows = loss(d, task, variant)
    return e if e is not None and above_chance(d, rows, task) else None


def _accuracy_loss(task: str, margin: float):
    def measure(d: Data) -> Measured:
        e, rows = loss(d, task)
        if e is None:
            return Measured()
        chance = "" if above_chance(d, rows, task) else "dense at chance: accuracy loss uninformative"
        r = rows.iloc[0]
        need = paired_n_required(max(float(r.get("discordance", 0.0) or 0.0), 1e-3), margin / 100)
        return Measured(e, f"{e.value:.1f} pp", ci_text(e, "{:.1f}"),
                        scale(rows, "; ".join(x for x in (judged_on(rows), chance) if x)),
                        inputs={"judgeable": not chance, "n": int(r["n_items"]), "n_needed": need})
    return measure


def _upper(bound: float):
    """'< bound' on the interval; an open verdict says how many items would resolve it (at the
    observed discordance, if the true loss were 0; power 0.8)."""
    def verdict(m: Measured) -> str:
        if not m.inputs["judgeable"]:
            return C.AT_CHANCE
        v = upper_bound_verdict(m.estimate, bound)
        if v == "inconclusive" and m.inputs["n_needed"] > m.inputs["n"]:
            v += f" (n={m.inputs['n']}; ~{m.inputs['n_needed']:,} items would resolve it)"
        return v
    return verdict


def _probe(task: str):
    def measure(d: Data) -> Measured:
        e, rows = loss(d, task)
        return Measured() if e is None else Measured(e, f"{e.value:.1f} pp", ci_text(e, "{:.1f}"),
                                                     scale(rows, f"generated probe; {judged_on(rows)}"))
    return measure



def _eq25(d: Data) -> Measured:
    """Eq. 25 at item level on the repaired grid of the largest-scale profile that has one
    (``fits.fit_eq25_items``, ``fits.eq25_equivalence``); the old 8-point fit on the broken
    router's grid only where no repaired grid is complete."""
    from ..fits import fit_eq25, fit_eq25_items

    if d.items.empty:
        return Measured()
    keys = (("α", "p"), ("β", "imbalance"), ("γ", "c_drop"))
    for prof in [p for p in QUALITY_PROFILE_RANK if p in set(d.items["profile"])]:
        design = d.once(f"eq25_items_{prof}", lambda prof=prof: analysis.eq25_item_design(d.items, d.variants, prof))
        if design.empty:
            continue
        for outcome, unit in (("loss", "pp"), ("lp_loss", "nats/token")):
            try:
                res, tests = fit_eq25_items(design, outcome)
            except ValueError:
                continue
            meas = ", ".join(f"{n}={tests.loc[k, 'estimate']:.2f}" for n, k in keys)
            ci = ", ".join(f"[{tests.loc[k, 'lo']:.2f}, {tests.loc[k, 'hi']:.2f}]" for _, k in keys)
            used = design.dropna(subset=[outcome])
            n_items = used[["task", "item_id"]].drop_duplicates().shape[0]
            per = used.groupby("variant").size()
            span = f"{per.min()}" if per.min() == per.max() else f"{per.min()}-{per.max()} per point"
            return Measured(text=f"{meas} ({unit}; item level, {n_items} items ({span}) x "
                                 f"{design['variant'].nunique()} points)",
                            ci=ci, scale=scale(d.items[d.items['profile'] == prof].assign(profile=prof),
                                               "repaired literal conversion grid"),
                            inputs={"tests": tests, "outcome": outcome, "item_level": True})
    design = best_profile(analysis.eq25_design(d.items, d.variants))
    for outcome, unit in (("q_loss", "pp"), ("lp_loss", "nats/token")):
        try:
            res, tests = fit_eq25(design, outcome)
        except (ValueError, KeyError):
            continue
        meas = ", ".join(f"{n}={tests.loc[k, 'estimate']:.2f}" for n, k in keys)
        ci = ", ".join(f"[{tests.loc[k, 'lo']:.2f}, {tests.loc[k, 'hi']:.2f}]" for _, k in keys)
        return Measured(text=f"{meas} ({unit}, R²={res.rsquared:.2f}, n={int(res.nobs)})", ci=ci,
                        scale=scale(design, "old router's grid"),
                        inputs={"tests": tests, "r2": res.rsquared, "outcome": outcome})
    return Measured(inputs={"grid_incomplete": True})


def _eq25_verdict(m: Measured) -> str:
    from ..fits import eq25_equivalence

    if m.inputs.get("grid_incomplete"):
        return C.NOT_MEASURED + " (grid incomplete)"
    if m.inputs.get("item_level"):
        if m.inputs["outcome"] != "loss":
            return "inconclusive (continuous measure only; not the paper's unit)"
        return eq25_equivalence(m.inputs["tests"])
    return C.eq25_verdict(m.inputs["tests"], m.inputs["r2"], m.inputs["outcome"])


def ratio(d: Data):
    """The reasoning/factual loss ratio of the paper's combination on the largest-scale profile
    where some version of it (COMBOS, repaired first) was measured on a reasoning/factual pair."""
    if d.items.empty:
        return None, None, pd.DataFrame()
    for prof in [p for p in QUALITY_PROFILE_RANK if p in set(d.items["profile"])]:
        its = d.items[d.items["profile"] == prof]
        info = analysis.combination_ratio(its, COMBOS)
        if info:
            return info["ratio"], info, its[its["variant"] == info["variant"]]
    return None, None, pd.DataFrame()


def _ratio(d: Data) -> Measured:
    e, info, best = ratio(d)
    if e is None:
        return Measured()
    note = (f"; at the floor on {info['reasoning_task']} ({info['reasoning_acc']:.0%}): the ratio is bounded by "
            "dense accuracy") if info["floored"] else ""
    return Measured(e, f"{e.value:.2f} ({info['reasoning_task']}/{info['factual_task']}, {info['measure']})",
                    ci_text(e), scale(best, info["variant"] + note))


def _abort2(d: Data) -> Measured:
    """The max-expert fraction of the paper's combination (worst layer), judged; beside it, the
    same conversion without pruning on the same profile, which §7.3 does not name but a reader
    deploying the conversion alone would ask about."""
    vq = d.variants
    vc = best_profile(vq[vq["variant"].isin(COMBOS)]) if not vq.empty else vq
    if vc.empty:
        return Measured()
    variant = next(v for v in COMBOS if v in set(vc["variant"]))
    vc = vc[vc["variant"] == variant]
    mx = float(vc["max_expert_fraction"].iloc[0])
    alone = vq[(vq["profile"] == vc["profile"].iloc[0]) & (vq["variant"] == variant.removeprefix("sparsegpt30_"))]
    beside = (f"; the conversion alone ({alone['variant'].iloc[0]}): "
              f"{float(alone['max_expert_fraction'].iloc[0]):.2f}") if not alone.empty else ""
    return Measured(text=f"{mx:.2f} (max layer{beside})", scale=scale(vc, variant),
                    inputs={"max_fraction": mx})


def quality_ranges() -> dict[str, tuple[float, float]]:
    from ..paper.tables import TABLE8, TABLE9

    return {"sparse_routing": TABLE8["sparse_routing"]["quality_loss_pct"],
            "int8": TABLE8["int8"]["quality_loss_pct"], "spec_decode": TABLE9["spec_decode"]["quality_loss_pct"]}


def _table89_quality(d: Data) -> Measured:
    """Each technique's paired accuracy loss where it can be judged: sparse routing and int8 on
    MMLU, speculative decoding on GSM8K with and without the draft (γ=4, the plain target); with
    each part's item count and the count that would resolve it (at its observed discordance, if
    the true loss were 0; power 0.8)."""
    from ..decoding import spec_analysis as S

    losses, texts, power = {}, [], {}
    ceiling = {k: hi for k, (_, hi) in quality_ranges().items()}
    for tech, (task, variants) in C.TABLE89_QUALITY.items():
        if tech == "spec_decode":
            sd = d.table("spec_decoding")
            g = S.gsm8k_paired(S.main_pair(sd), 4) if not sd.empty else None
            if g:
                losses[tech] = g["delta_pp"]
                power[tech] = (g["n"], paired_n_required(max(g["discordance"], 1e-3), ceiling[tech] / 100))
                texts.append(f"{tech} {g['delta_pp'].value:.1f} pp {ci_text(g['delta_pp'], '{:.1f}')} "
                             f"(GSM8K with/without the draft, γ=4, n={g['n']})")
            continue
        e, rows = loss(d, task, variants)
        if e is not None and above_chance(d, rows, task):
            r = rows.iloc[0]
            losses[tech] = e
            power[tech] = (int(r["n_items"]), paired_n_required(max(float(r.get("discordance", 0.0) or 0.0), 1e-3),
                                                                 ceiling[tech] / 100))
            texts.append(f"{tech} {e.value:.1f} pp {ci_text(e, '{:.1f}')} ({judged_on(rows)}, {rows['profile'].iloc[0]})")
    return Measured(text="; ".join(texts) or "—", ci="in the measured column", scale="paired accuracy loss vs dense; "
                    "each part names its variant, task, items and profile",
                    inputs={"losses": losses, "power": power} if losses else {})


def _table89_verdict(m: Measured) -> str:
    parts = C.quality_cost_verdict(m.inputs["losses"], quality_ranges()).split("; ")
    out = []
    for part in parts:
        tech = part.split(" ")[0]
        n, need = m.inputs["power"][tech]
        out.append(part + (f" (n={n}; ~{need:,} items would resolve it)" if part.endswith("inconclusive") and need > n
                           else ""))
    return "; ".join(out)


def _h2(d: Data) -> Measured:
    parts = {"mmlu": judged_loss(d, "mmlu"), "gsm8k": judged_loss(d, "gsm8k"), "ratio": ratio(d)[0]}
    _, rows = loss(d, "mmlu")
    return Measured(scale=scale(rows), inputs=parts if any(v is not None for v in parts.values()) else {})


CLAIMS = [
    Claim("mmlu_loss", "MMLU loss < 1 pp", "Abstract, Table 3, §8.1.2", f"< {C.H2_MMLU_MAX_LOSS_PP} pp",
          "ch3_phase1_quality", _accuracy_loss("mmlu", C.H2_MMLU_MAX_LOSS_PP), _upper(C.H2_MMLU_MAX_LOSS_PP),
          C.NOT_MEASURED + " (needs bench_dir: cpu-real or GPU profile)"),
    Claim("gsm8k_loss", "GSM8K loss < 3 pp", "§8.1.2, §7.3 (1)", f"< {C.H2_GSM8K_MAX_LOSS_PP} pp",
          "ch3_phase1_quality", _accuracy_loss("gsm8k", C.H2_GSM8K_MAX_LOSS_PP), _upper(C.H2_GSM8K_MAX_LOSS_PP),
          C.NOT_MEASURED + " (needs bench_dir: cpu-real or GPU profile)"),
    Claim("probe_facts", "Factual-recall probe (capitals): loss of 30% SparseGPT + 4-expert top-1", "Table 3",
          "0.3-0.8 pp (MMLU row)", "ch3_phase1_quality", _probe("probe_facts"), band(0.3, 0.8)),
    Claim("probe_arith", "Arithmetic reasoning probe: loss of 30% SparseGPT + 4-expert top-1", "Table 3",
          "1-2 pp (GSM8K row)", "ch3_phase1_quality", _probe("probe_arith"), band(1, 2)),
    Claim("needle", "Needle-in-a-haystack retrieval: loss of 30% SparseGPT + 4-expert top-1 "
          "(the paper attributes this loss to sparse attention and KV eviction, §4.5, which this study "
          "does not implement: here only the FFN is pruned and converted)", "Table 3, §4.5",
          "5-15 pp loss (Table 3)", "ch3_phase1_quality", _probe("needle"), band(5, 15)),
    Claim("eq25", "Quality loss follows Eq. 25 (α=0.8, β=2.5, γ=8.0)", "Eq. 25-28", "α=0.8, β=2.5, γ=8.0",
          "ch3_phase1_quality", _eq25, _eq25_verdict),
    Claim("reasoning_ratio", "Reasoning degrades 2-3x more than factual recall", "§8.1.2 (§4.4 says 3-5x)",
          f"ratio 2-3 (band {C.H2_RATIO_BAND[0]:.1f}-{C.H2_RATIO_BAND[1]:.1f})", "ch3_phase1_quality", _ratio,
          band(*C.H2_RATIO_BAND)),
    Claim("abort2", "Abort 2: > 70% of tokens to one expert", "§7.3 (2)", f"abort if > {C.ABORT2_MAX_EXPERT_FRACTION:.2f}", "ch5_phase3", _abort2,
          lambda m: "triggered" if m.inputs["max_fraction"] > C.ABORT2_MAX_EXPERT_FRACTION else "not triggered"),
    Claim("table89_quality", "Quality loss: sparse routing 0.8-3.0%, int8 0.5-1.5%, spec. decoding 0.3-0.5%",
          "Tables 8, 9", "at most 3.0, 1.5, 0.5 pp", "ch4_phase2", _table89_quality,
          _table89_verdict),
    Claim("h2", "H2: quality preservation", "§8.1.2", "GSM8K < 3, MMLU < 1 pp, ratio 2-3", "ch3_phase1_quality",
          _h2, lambda m: C.h2_verdict(m.inputs["mmlu"], m.inputs["gsm8k"], m.inputs["ratio"])),
]
