"""Quality claims, judged on the largest-scale profile that measured them (Llama-8B on a GPU
box, then Qwen2.5-1.5B, then SmolLM2-135M on real items, then on probes) and labelled with
that scale. An accuracy loss is judged only where the dense model is above chance."""
from __future__ import annotations

import numpy as np
import pandas as pd

from studylib.claims.base import GROUP_H2, GROUP_H3, GROUP_PHASES, Claim, Data, Measured, band, ci_text
from studylib.estimates import analysis
from studylib.estimates.analysis import QUALITY_PROFILE_RANK, best_profile
from studylib.paper import criteria as C
from studylib.quality.transforms import with_role, without_pruning
from studylib.stats import Estimate, paired_n_required, upper_bound_verdict
from studylib.results import BASELINE

COMBOS = with_role(C.H2_ROLE)  # the paper's combination: repaired conversion first


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


def engines(d: Data, rows: pd.DataFrame) -> str:
    """Which engine evaluated the compared units, from their provenance, where it is not ours alone:
    'evaluated through vllm 0.32.0' (both sides), or each side's engine when they differ."""
    if rows.empty or d.items.empty:
        return ""
    r = rows.iloc[0]
    its = d.items[(d.items["profile"] == r["profile"]) & (d.items["task"] == r["task"])]
    sides = {v: analysis.unit_engines(its[its["variant"] == v]) for v in (BASELINE, r["variant"])}
    if set(sides.values()) == {"ours"}:
        return ""
    if len(set(sides.values())) == 1:
        return f"evaluated through {sides[BASELINE]}"
    return "engines: " + ", ".join(f"{v} {e}" for v, e in sides.items())


def above_chance(d: Data, rows: pd.DataFrame, task: str) -> bool:
    if rows.empty:
        return False
    return analysis.above_chance(d.items[d.items["profile"] == rows["profile"].iloc[0]], rows["task"].iloc[0])


def floors(d: Data, rows: pd.DataFrame) -> tuple[dict | None, dict | None]:
    """(dense, variant) against the floor of the task of a deltas row, on its profile
    (``analysis.floor_status``)."""
    if rows.empty:
        return None, None
    r = rows.iloc[0]
    its = d.items[d.items["profile"] == r["profile"]]
    task = FLOOR_TASK.get(r["task"], r["task"])
    return analysis.floor_status(its, task), analysis.floor_status(its, task, r["variant"])


def floor_note(*status) -> str:
    """'floor: <numbers>' for each model below its floor ('' when none is)."""
    below = [analysis.floor_text(st) for st in status if st is not None and not st["above"]]
    return ("floor: " + "; ".join(below)) if below else ""


def power_note(n: int, discordance: float, loss_pp: float, margin_pp: float) -> str:
    """Power at the observed effect (criteria, 2026-12-03): the items a "< margin" verdict needs at
    the measured loss and discordance (power 0.8), and the exact power of Tango's interval at n."""
    from studylib.stats import paired_power_exact

    psi = max(float(discordance), 1e-3)
    delta = min(max(loss_pp / 100, -psi), psi)
    if delta >= margin_pp / 100:
        return f"n={n}; at the observed {loss_pp:.1f} pp no n would support < {margin_pp:g} pp"
    need = paired_n_required(psi, margin_pp / 100, delta)
    return (f"n={n}; at the observed {loss_pp:.1f} pp ~{need:,} items would resolve it; "
            f"exact power at n={n}: {paired_power_exact(n, psi, margin_pp / 100, delta):.2f}")


#: the loss column a task is judged on, first present (criteria, 2026-12-03): HellaSwag by lm-eval's
#: length-normalised accuracy, TruthfulQA MC2 by its true-answer mass; accuracy otherwise
LOSS_MEASURES = {"hellaswag": ("acc_norm_loss", "acc_loss"), "truthfulqa_mc2": ("score_loss",)}
#: a task whose floor is read on another task's items (MC2 has no chance rate; MC1 asks the same questions)
FLOOR_TASK = {"truthfulqa_mc2": "truthfulqa_mc1"}


def loss(d: Data, task: str, variant=COMBOS):
    """(estimate of the paired loss in pp on the task's measure, the rows it came from)."""
    rows = deltas_of(d, variant, task)
    for m in LOSS_MEASURES.get(task, ("acc_loss",)):
        e = analysis.estimate_of(rows, f"{m}_pp", f"{m}_lo", f"{m}_hi")
        if e is not None:
            return e, rows
    return None, rows


def judged_loss(d: Data, task: str, bound: float, variant=COMBOS) -> tuple[Estimate | None, bool]:
    """(the measured loss or None, whether the floor rule lets it decide an aggregate row's part: dense
    and the variant above the floor). ``bound``: the part's upper bound (a lower-bound loss above it
    decides only while ``criteria.FLOOR_DECIDES``)."""
    e, rows = loss(d, task, variant)
    if e is None:
        return None, False
    dense, var = floors(d, rows)
    return e, C.floor_lets_decide(bool(dense and dense["above"]), bool(var and var["above"]), e.lo > bound)


def _loss_measure(task: str, what: str = ""):
    """A variant's paired loss on ``task`` with where dense and the variant stand against the floor."""
    def measure(d: Data) -> Measured:
        e, rows = loss(d, task)
        if e is None:
            return Measured()
        dense, var = floors(d, rows)
        r = rows.iloc[0]
        note = floor_note(dense, var)
        return Measured(e, f"{e.value:.1f} pp", ci_text(e, "{:.1f}"),
                        scale(rows, "; ".join(x for x in (what, judged_on(rows), engines(d, rows), note) if x)),
                        inputs={"dense_above": bool(dense and dense["above"]), "variant_above": bool(var and var["above"]),
                                "n": int(r["n_items"]),
                                "discordance": _discordance(r, task)})
    return measure


def _discordance(r: pd.Series, task: str) -> float:
    """The discordance of the comparison the loss was judged on (acc_norm's where that was the
    measure); NaN for a continuous score, which has no paired-accuracy power."""
    col = "norm_discordance" if LOSS_MEASURES.get(task, ("acc_loss",))[0] == "acc_norm_loss" \
        and pd.notna(r.get("norm_discordance")) else "discordance"
    return float(r[col]) if pd.notna(r.get(col)) and LOSS_MEASURES.get(task, ("",))[0] != "score_loss" else float("nan")


def _upper(bound: float):
    """'< bound' on the interval under the floor rule; an open verdict states its power at the
    observed effect (``power_note``)."""
    def verdict(m: Measured) -> str:
        e, i = m.estimate, m.inputs
        v = C.floor_rule(upper_bound_verdict(e, bound), i["dense_above"], i["variant_above"], e.lo > bound)
        if v == "inconclusive" and i["discordance"] == i["discordance"]:   # a paired accuracy: its power
            v += f" ({power_note(i['n'], i['discordance'], e.value, bound)})"
        return v
    return verdict


def _floored_band(lo: float, hi: float):
    """A loss inside [lo, hi] under the floor rule (a floored loss refutes only from above)."""
    from studylib.stats import interval_verdict

    return lambda m: C.floor_rule(interval_verdict(m.estimate, lo, hi), m.inputs["dense_above"],
                                  m.inputs["variant_above"], m.estimate.lo > hi)


def _probe(task: str):
    return _loss_measure(task, "generated probe")



def _attribution(d: Data) -> Measured:
    """The paired needle_qa losses of the paper's combination (FFN only) and of the attention-side
    variant (the one declaring ``criteria.ATTENTION_ROLE``, dense FFN), each with where it stands against the floor."""
    e_ffn, rows = loss(d, "needle_qa")
    if e_ffn is None:
        return Measured()
    attention = with_role(C.ATTENTION_ROLE)[0]
    e_att, att_rows = loss(d, "needle_qa", (attention,))
    dense, var = floors(d, rows)
    att = f"; {attention} {e_att.value:.1f} pp {ci_text(e_att, '{:.1f}')}" if e_att is not None else ""
    return Measured(e_ffn, f"FFN only {e_ffn.value:.1f} pp{att}", ci_text(e_ffn, "{:.1f}"),
                    scale(rows, "; ".join(x for x in (judged_on(rows), floor_note(dense, var)) if x)),
                    inputs={"attention": e_att, "dense_above": bool(dense and dense["above"]),
                            "variant_above": bool(var and var["above"])})


def _attribution_verdict(m: Measured) -> str:
    """The floor rule on the FFN-only variant as on every quality row (``criteria.attribution_verdict``'s note)."""
    return C.floor_rule(C.attribution_verdict(m.estimate, m.inputs["attention"]), m.inputs["dense_above"],
                        m.inputs.get("variant_above", True))


#: a conversion can carry the routing terms of Eq. 25 when it stays this far above chance (issue 36)
ROUTING_MARGIN_PP = 10.0


def grid_floor(d: Data, prof: str, design: pd.DataFrame) -> str:
    """The floor rule on a designed grid: '' when dense and every design point are above the floor
    on every task the fit's accuracy outcome uses, else the numbers that put them there."""
    its = d.items[d.items["profile"] == prof]
    tasks = sorted(design.dropna(subset=["loss"])["task"].unique()) if "loss" in design else []
    if not tasks:
        return "no task with dense above the floor"
    below = []
    for t in tasks:
        sts = [analysis.floor_status(its, t, v) for v in [BASELINE, *sorted(design["variant"].unique())]]
        low = [s for s in sts if s is not None and not s["above"]]
        if low:
            accs = [100 * s["acc"] for s in low]
            below.append(f"{len(low)} of {len(sts)} models at the floor on {t} ({min(accs):.1f}-{max(accs):.1f}% "
                         f"vs {100 * low[0]['floor']:.0f}%)")
    return "; ".join(below)


def pruning_series(d: Data, prof: str) -> pd.DataFrame:
    """The profile's pruning series on the one task with the most pruning levels (same items)."""
    des = d.once(f"pruning_{prof}", lambda: analysis.pruning_design(d.items, d.variants, prof))
    if des.empty:
        return des
    levels = des[des["p"] > 0].groupby("task")["p"].nunique()
    if levels.empty:
        return des.iloc[:0]
    task = max(levels.index, key=lambda t: (levels[t], (des["task"] == t).sum()))
    return des[des["task"] == task]


def series_floor(d: Data, prof: str, series: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The floor rule on a pruning series: the levels whose variant is above the floor (a censored
    level cannot inform the slope), and the numbers of those left out."""
    its = d.items[d.items["profile"] == prof]
    task = series["task"].iloc[0]
    out = []
    for v in series.loc[series["variant"] != BASELINE, "variant"].unique():
        st = analysis.floor_status(its, task, v)
        if st is not None and not st["above"]:
            out.append(st)
    keep = series[~series["variant"].isin([st["variant"] for st in out])]
    return keep, "; ".join(analysis.floor_text(st) for st in out)


def routing_terms(d: Data, prof: str, task: str) -> str:
    """Whether a conversion short of dense can carry Eq. 25's routing terms on this profile: the
    measured conversions (active fraction < 1, unpruned) on ``task`` against its chance rate +
    ROUTING_MARGIN_PP (issue 36: the grid is built on the sparsest one that stays that far above)."""
    from studylib.estimates.conversion_analysis import is_bound
    from studylib.quality.transforms import declared_variants

    vq = d.variants[(d.variants["profile"] == prof)].drop_duplicates("variant", keep="last")
    conv = vq[vq["conversion"].notna() & (vq["ratio"].fillna(0) == 0) & (vq["active_fraction"].fillna(1) < 1)]
    declared = declared_variants()   # the oracles and the constant floor are bounds, not conversions to build on
    conv = conv[np.array([not is_bound(v, declared) for v in conv["variant"]], dtype=bool)]  # not a list: [] selects columns
    its = d.items[d.items["profile"] == prof]
    sts = [analysis.floor_status(its, task, v) for v in conv["variant"]]
    sts = [s for s in sts if s is not None]
    if not sts:
        return f"no conversion measured on {task}"
    ok = [s for s in sts if s["above"] and 100 * (s["acc"] - s["floor"]) >= ROUTING_MARGIN_PP]
    listed = ", ".join(f"{s['variant']} {100 * s['acc']:.1f}%" for s in sorted(sts, key=lambda s: -s["acc"]))
    if ok:
        return f"conversions >= {ROUTING_MARGIN_PP:g} pp above chance on {task}: {', '.join(s['variant'] for s in ok)}"
    return f"not identifiable: no conversion short of dense >= {ROUTING_MARGIN_PP:g} pp above chance on {task} ({listed})"


def _alpha_alone(d: Data, prof: str, series: pd.DataFrame, floored: str, left_out: str = "") -> Measured | None:
    """Eq. 25's pruning term alone on a pruning series (α per unit p, both forms)."""
    from studylib.estimates.fits import fit_forms

    try:
        f = fit_forms(series[series["variant"] != BASELINE], ("p",))
    except ValueError:
        return None
    t = f["tests"].loc["p"]
    c = f["compare"]
    free = f["free"]
    lo, hi = free.conf_int().loc["Intercept"]
    levels = ", ".join(f"{p:g}" for p in sorted(series.loc[series["p"] > 0, "p"].unique()))
    text = (f"α={t['estimate']:.1f} pp per unit p (paper's form; pruning alone, p = {levels}, "
            f"{c['n_items']} {series['task'].iloc[0]} items); with an intercept: α={free.params['p']:.1f}, "
            f"intercept {free.params['Intercept']:.1f} pp [{lo:.1f}, {hi:.1f}] (Wald p={c['wald_free_terms_p']:.2f}; "
            f"AIC {c['aic_paper']:.0f} vs {c['aic_free']:.0f})")
    return Measured(text=text, ci=f"α [{t['lo']:.1f}, {t['hi']:.1f}]",
                    scale=scale(d.items[d.items["profile"] == prof].assign(profile=prof), "pruning series")
                    + (f"; levels left out at the floor: {left_out}" if left_out else "")
                    + (f"; the routing grid: floor ({floored})" if floored else ""),
                    inputs={"alpha": t, "forms": f, "grid_floor": bool(floored),
                            "routing": routing_terms(d, prof, series["task"].iloc[0])})


def _eq25(d: Data) -> Measured:
    """Eq. 25 at item level under the floor rule (criteria, 2026-12-03), on the largest-scale profile
    where it can be judged: a repaired routing grid whose every point is above the floor (the full
    fit, ``fits.fit_eq25_items``); else the pruning series alone (α; ``fits.fit_forms``), with the
    routing terms said to be unidentifiable where no conversion is above chance; else a floored grid
    reads "inconclusive (floor)" with its numbers. The old 8-point fit on the broken router's grid
    only where nothing else is in data/."""
    from studylib.estimates.fits import fit_eq25, fit_eq25_items

    if d.items.empty:
        return Measured()
    keys = (("α", "p"), ("β", "imbalance"), ("γ", "c_drop"))
    floored = {}
    for prof in [p for p in QUALITY_PROFILE_RANK if p in set(d.items["profile"])]:
        design = d.once(f"eq25_items_{prof}", lambda prof=prof: analysis.eq25_item_design(d.items, d.variants, prof))
        if not design.empty and (why := grid_floor(d, prof, design)):
            floored[prof] = why
            design = design.iloc[:0]
        if design.empty:
            series = pruning_series(d, prof)
            if not series.empty:
                series, left_out = series_floor(d, prof, series)
                if series.loc[series["p"] > 0, "p"].nunique() >= 2:
                    m = _alpha_alone(d, prof, series, floored.get(prof, ""), left_out)
                    if m is not None:
                        return m
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
    if floored:
        prof, why = next(iter(floored.items()))
        return Measured(text=f"grid at the floor: {why}", scale=scale(d.items[d.items["profile"] == prof].assign(
                        profile=prof), "repaired literal conversion grid"), inputs={"floor": why})
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
    from studylib.estimates.fits import EQ25_EQUIVALENCE_MARGIN, eq25_equivalence

    if m.inputs.get("floor"):
        return C.FLOOR
    if "alpha" in m.inputs:   # the pruning term alone: α's 95% CI against 0.8, equivalence as for the grid
        t, f = m.inputs["alpha"], m.inputs["forms"]["paper"]
        lo90, hi90 = f.conf_int(alpha=0.10).loc["p"]
        if not t["lo"] <= t["paper"] <= t["hi"]:
            v = "refuted"
        elif (1 - EQ25_EQUIVALENCE_MARGIN) * t["paper"] <= lo90 and hi90 <= (1 + EQ25_EQUIVALENCE_MARGIN) * t["paper"]:
            v = "supported"
        else:
            v = "inconclusive"
        routing = m.inputs["routing"]
        if m.inputs["grid_floor"]:
            return f"α {v}; β, γ {C.FLOOR} (the routing grid)"
        return f"α {v}; β, γ " + (routing if routing.startswith("not identifiable") else f"not yet fitted ({routing})")
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


def working(d: Data, profile: str) -> pd.DataFrame:
    """The ratio's second reading (criteria, 2026-12-03): every variant above the floor on both tasks."""
    return d.once(f"working_ratios_{profile}",
                  lambda: analysis.working_ratios(d.items[d.items["profile"] == profile]))


def _ratio(d: Data) -> Measured:
    from studylib.stats import interval_verdict

    e, info, best = ratio(d)
    if e is None:
        return Measured()
    st = [s for f in info["floor"].values() for s in f.values()]
    note = floor_note(*st)
    w = working(d, str(best["profile"].iloc[0]))
    reads = {r.variant: interval_verdict(Estimate(r.ratio, r.ratio_lo, r.ratio_hi), *C.H2_RATIO_BAND)
             for r in w.itertuples()}
    text = f"{e.value:.2f} ({info['reasoning_task']}/{info['factual_task']}, {info['measure']}; Fieller {ci_text(info['fieller'])})"
    if len(w):
        text += "; working variants: " + ", ".join(
            f"{r.variant} {r.ratio:.2f} {ci_text(Estimate(r.ratio, r.ratio_lo, r.ratio_hi))}" for r in w.itertuples())
    return Measured(e, text, ci_text(e), scale(best, "; ".join(x for x in (info["variant"], note) if x)),
                    inputs={"dense_above": all(f[BASELINE] is not None and f[BASELINE]["above"] for f in info["floor"].values()),
                            "variant_above": not note, "working": reads})


def _ratio_verdict(m: Measured) -> str:
    """The paper's combination under the floor rule; then what the working variants show."""
    v = C.floor_rule(band(*C.H2_RATIO_BAND)(m), m.inputs["dense_above"], m.inputs["variant_above"])
    reads = list(m.inputs["working"].values())
    if reads:
        v += (f"; working variants: {reads.count('supported')} in the band, {reads.count('refuted')} outside, "
              f"{reads.count('inconclusive')} open (of {len(reads)})")
    return v


def _table3_ratios(d: Data) -> Measured:
    """H2's "ratios match Table 3 within 20%": for each Table 3 row beside MMLU measured on the best
    quality profile, the task / MMLU loss ratio of the paper's combination (under the floor rule) and
    of every variant above the floor on both tasks, each against ``criteria.table3_ratio_band``."""
    from studylib.stats import interval_verdict

    if d.items.empty:
        return Measured()
    for prof in [p for p in QUALITY_PROFILE_RANK if p in set(d.items["profile"])]:
        its = d.items[d.items["profile"] == prof]
        per, parts = {}, []
        for task, row in C.TABLE3_RATIO_TASKS.items():
            pair = ((task, "mmlu"),)
            combo = analysis.combination_ratio_on(its, COMBOS, pair)
            if combo is None:
                continue
            band_ = C.table3_ratio_band(row)
            floored = not analysis.above_floor_on_both(combo)
            w = analysis.working_ratios(its, pair)
            reads = {r.variant: interval_verdict(Estimate(r.ratio, r.ratio_lo, r.ratio_hi), *band_) for r in w.itertuples()}
            per[task] = {"combination": None if floored else combo["ratio"], "band": band_, "working": reads}
            parts.append(f"{task}/mmlu (band {band_[0]:.1f}-{band_[1]:.0f}): combination "
                         + ("at the floor" if floored else f"{combo['ratio'].value:.2f} {ci_text(combo['ratio'])}")
                         + ("; " + ", ".join(f"{r.variant} {r.ratio:.2f} {ci_text(Estimate(r.ratio, r.ratio_lo, r.ratio_hi))}"
                                             for r in w.itertuples()) if len(w) else ""))
        if per:
            return Measured(None, " | ".join(parts), "—", scale(its[its["variant"] == BASELINE].head(1), ""),
                            inputs={"per_task": per})
    return Measured()


def _table3_ratios_verdict(m: Measured) -> str:
    """The combination's reading per task (floor rule), then what the working variants show."""
    from studylib.stats import interval_verdict

    per = m.inputs["per_task"]
    combo = [interval_verdict(t["combination"], *t["band"]) if t["combination"] is not None else C.FLOOR
             for t in per.values()]
    head = ("refuted" if "refuted" in combo else "supported" if all(c == "supported" for c in combo)
            else C.FLOOR if all(c == C.FLOOR for c in combo) else "inconclusive")
    reads = [v for t in per.values() for v in t["working"].values()]
    if reads:
        head += (f"; working variants: {reads.count('supported')} in Table 3's band, {reads.count('refuted')} outside, "
                 f"{reads.count('inconclusive')} open (of {len(reads)}, over {len(per)} task(s))")
    return head


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
    alone = vq[(vq["profile"] == vc["profile"].iloc[0]) & (vq["variant"] == without_pruning(variant))]
    beside = (f"; the conversion alone ({alone['variant'].iloc[0]}): "
              f"{float(alone['max_expert_fraction'].iloc[0]):.2f}") if not alone.empty else ""
    return Measured(text=f"{mx:.2f} (max layer{beside})", scale=scale(vc, variant),
                    inputs={"max_fraction": mx})


def quality_ranges() -> dict[str, tuple[float, float]]:
    from studylib.paper.tables import TABLE8, TABLE9

    return {"sparse_routing": TABLE8["sparse_routing"]["quality_loss_pct"],
            "int8": TABLE8["int8"]["quality_loss_pct"], "spec_decode": TABLE9["spec_decode"]["quality_loss_pct"]}


def _table89_quality(d: Data) -> Measured:
    """Each technique's paired accuracy loss where it can be judged: sparse routing and int8 on
    MMLU, speculative decoding on GSM8K with and without the draft (γ=4, the plain target); with
    each part's item count and the count that would resolve it (at its observed discordance, if
    the true loss were 0; power 0.8)."""
    from studylib.estimates import spec_analysis as S

    losses, texts, power = {}, [], {}
    ceiling = {k: hi for k, (_, hi) in quality_ranges().items()}
    for tech, (task, role) in C.TABLE89_QUALITY.items():
        if tech == "spec_decode":
            sd = d.table("spec_decoding")
            g = S.gsm8k_paired(S.main_pair(sd), 4) if not sd.empty else None
            if g:
                losses[tech] = g["delta_pp"]
                power[tech] = (g["n"], g["discordance"], g["delta_pp"].value, ceiling[tech], True)
                texts.append(f"{tech} {g['delta_pp'].value:.1f} pp {ci_text(g['delta_pp'], '{:.1f}')} "
                             f"(GSM8K with/without the draft, γ=4, n={g['n']})")
            continue
        e, rows = loss(d, task, with_role(role))
        if e is not None and above_chance(d, rows, task):
            r = rows.iloc[0]
            _, var = floors(d, rows)
            losses[tech] = e
            power[tech] = (int(r["n_items"]), float(r.get("discordance", 0.0) or 0.0), e.value, ceiling[tech],
                           bool(var and var["above"]))
            note = floor_note(var)
            texts.append(f"{tech} {e.value:.1f} pp {ci_text(e, '{:.1f}')} ({judged_on(rows)}, {rows['profile'].iloc[0]}"
                         + (f"; {note}" if note else "") + ")")
    return Measured(text="; ".join(texts) or "—", ci="in the measured column", scale="paired accuracy loss vs dense; "
                    "each part names its variant, task, items and profile",
                    inputs={"losses": losses, "power": power} if losses else {})


def _table89_verdict(m: Measured) -> str:
    """Each technique's part under the floor rule (a variant at chance: its loss is a lower bound);
    an open part states its power at the observed effect."""
    parts = C.quality_cost_verdict(m.inputs["losses"], quality_ranges()).split("; ")
    out = []
    for part in parts:
        tech, v = part.split(" ", 1)
        n, psi, obs, ceiling, above = m.inputs["power"][tech]
        v = C.floor_rule(v, True, above, m.inputs["losses"][tech].lo > ceiling)
        if v == "inconclusive":
            v += f" ({power_note(n, psi, obs, ceiling)})"
        out.append(f"{tech} {v}")
    return "; ".join(out)


def _h2(d: Data) -> Measured:
    """H2's three parts, each only where the floor rule lets it decide (``criteria.floor_lets_decide``);
    the ratio only above the floor. A part set aside at the floor is named, so an H2 with no part
    left reads "inconclusive (floor)" rather than "not measured"."""
    parts, floored, text = {}, [], []
    for task, bound in (("mmlu", C.H2_MMLU_MAX_LOSS_PP), ("gsm8k", C.H2_GSM8K_MAX_LOSS_PP)):
        e, decides = judged_loss(d, task, bound)
        parts[task] = e if decides else None
        if e is not None:
            if not decides:
                floored.append(task)
            text.append(f"{task.upper()} loss {e.value:.1f} pp" + ("" if decides else " (at the floor: set aside)"))
    r = _ratio(d)
    parts["ratio"] = r.estimate if not r.empty and r.inputs["dense_above"] and r.inputs["variant_above"] else None
    if parts["ratio"] is not None:
        text.append(f"ratio {parts['ratio'].value:.2f}")
    _, rows = loss(d, "mmlu")
    if all(v is None for v in parts.values()) and not floored:
        return Measured()
    return Measured(text="; ".join(text) or "—", scale=scale(rows), inputs={**parts, "floored": floored})


def h2_verdict(m: Measured) -> str:
    """``criteria.h2_verdict`` on the parts the floor rule kept; parts set aside at the floor keep
    any verdict short of "refuted" open (``criteria.with_floored_parts``)."""
    i = m.inputs
    return C.with_floored_parts(C.h2_verdict(i["mmlu"], i["gsm8k"], i["ratio"]), i["floored"])


RANK = 1  # the order of its rows in the verdict table
CLAIMS = [
    Claim("mmlu_loss", "MMLU loss < 1 pp", "Abstract, Table 3, §8.1.2", f"< {C.H2_MMLU_MAX_LOSS_PP} pp",
          "ch3_phase1_quality", _loss_measure("mmlu"), _upper(C.H2_MMLU_MAX_LOSS_PP),
          C.NOT_MEASURED + " (needs bench_dir: cpu-real or GPU profile)", group=GROUP_H2),
    Claim("gsm8k_loss", "GSM8K loss < 3 pp", "§8.1.2, §7.3 (1)", f"< {C.H2_GSM8K_MAX_LOSS_PP} pp",
          "ch3_phase1_quality", _loss_measure("gsm8k"), _upper(C.H2_GSM8K_MAX_LOSS_PP),
          C.NOT_MEASURED + " (needs bench_dir: cpu-real or GPU profile)", group=GROUP_H2),
    Claim("probe_facts", "Factual-recall probe (capitals): loss of 30% SparseGPT + 4-expert top-1", "Table 3",
          "0.3-0.8 pp (MMLU row)", "ch3_phase1_quality", _probe("probe_facts"), _floored_band(0.3, 0.8), group=GROUP_H2),
    Claim("probe_arith", "Arithmetic reasoning probe: loss of 30% SparseGPT + 4-expert top-1", "Table 3",
          "1-2 pp (GSM8K row)", "ch3_phase1_quality", _probe("probe_arith"), _floored_band(1, 2), group=GROUP_H2),
    Claim("needle", "Needle-in-a-haystack probe (SmolLM2): loss of 30% SparseGPT + 4-expert top-1 "
          "(only the FFN is pruned and converted; the Qwen row is retrieval_loss)", "Table 3, §4.5",
          "5-15 pp loss (Table 3)", "ch3_phase1_quality", _probe("needle"), _floored_band(5, 15), group=GROUP_H2),
    Claim("retrieval_loss", "Long-context retrieval loss 5-15 pp (Qwen: a passphrase at 5 depths of 1k-4k-token "
          "haystacks)", "Table 3", "{:g}-{:g} pp".format(*C.TABLE3_RETRIEVAL_PP), "ch3_phase1_quality",
          _loss_measure("needle_qa"), _floored_band(*C.TABLE3_RETRIEVAL_PP),
          C.NOT_MEASURED + " (make sweep PROFILE=cpu-qwen TASKS=needle_qa)", group=GROUP_H2),
    Claim("h2_table3_ratios", "H2: loss ratios to MMLU match Table 3 within 20% (GSM8K, MATH, long context)",
          "§8.1.2, Table 3", "Table 3's ratio ranges ±20%", "ch3_phase1_quality", _table3_ratios,
          _table3_ratios_verdict, group=GROUP_H2),
    Claim("retrieval_attribution", "§4.5: the retrieval loss comes from sparse attention and KV eviction, "
          "not the FFN", "§4.5, Table 3", f"attention-side loss > {C.RETRIEVAL_LOSS_PP:g} pp, FFN-only below",
          "ch3_phase1_quality", _attribution, _attribution_verdict,
          C.NOT_MEASURED + " (make sweep PROFILE=cpu-qwen TASKS=needle_qa)", group=GROUP_H2),
    Claim("eq25", "Quality loss follows Eq. 25 (α=0.8, β=2.5, γ=8.0)", "Eq. 25-28", "α=0.8, β=2.5, γ=8.0",
          "ch3_phase1_quality", _eq25, _eq25_verdict, group=GROUP_H2),
    Claim("reasoning_ratio", "Reasoning degrades 2-3x more than factual recall", "§8.1.2 (§4.4 says 3-5x)",
          f"ratio 2-3 (band {C.H2_RATIO_BAND[0]:.1f}-{C.H2_RATIO_BAND[1]:.1f})", "ch3_phase1_quality", _ratio,
          _ratio_verdict, group=GROUP_H2),
    Claim("abort2", "Abort 2: > 70% of tokens to one expert", "§7.3 (2)", f"abort if > {C.ABORT2_MAX_EXPERT_FRACTION:.2f}", "ch5_phase3", _abort2,
          lambda m: "triggered" if m.inputs["max_fraction"] > C.ABORT2_MAX_EXPERT_FRACTION else "not triggered", group=GROUP_PHASES),
    Claim("table89_quality", "Quality loss: sparse routing 0.8-3.0%, int8 0.5-1.5%, spec. decoding 0.3-0.5%",
          "Tables 8, 9", "at most 3.0, 1.5, 0.5 pp", "ch4_phase2", _table89_quality,
          _table89_verdict, group=GROUP_H3),
    Claim("math_loss", "MATH loss 1.5-3.0 pp", "Table 3, §8.1.2", "{}-{} pp".format(*C.TABLE3_MATH_PP),
          "ch3_phase1_quality", _loss_measure("math500"), _floored_band(*C.TABLE3_MATH_PP),
          C.NOT_MEASURED + " (MATH-500 on Qwen, budget set by the dense pilot: make sweep PROFILE=cpu-qwen TASKS=math500 "
          "BACKEND=vllm)",
          group=GROUP_H2),
    Claim("hellaswag_loss", "HellaSwag loss within the combined bound (<= 2 pp)", "§8.1.2",
          f"<= {C.H2_COMBINED_MAX_LOSS_PP} pp", "ch3_phase1_quality", _loss_measure("hellaswag"),
          _upper(C.H2_COMBINED_MAX_LOSS_PP),
          C.NOT_MEASURED + " (make sweep PROFILE=cpu-qwen TASKS=hellaswag)", group=GROUP_H2),
    Claim("truthfulqa_loss", "TruthfulQA MC1 loss within the combined bound (<= 2 pp)", "§8.1.2",
          f"<= {C.H2_COMBINED_MAX_LOSS_PP} pp", "ch3_phase1_quality", _loss_measure("truthfulqa_mc1"),
          _upper(C.H2_COMBINED_MAX_LOSS_PP),
          C.NOT_MEASURED + " (make sweep PROFILE=cpu-qwen TASKS=truthfulqa_mc1)", group=GROUP_H2),
    Claim("truthfulqa_mc2_loss", "TruthfulQA MC2 (true-answer mass) loss within the combined bound (<= 2 pp)",
          "§8.1.2", f"<= {C.H2_COMBINED_MAX_LOSS_PP} pp", "ch3_phase1_quality", _loss_measure("truthfulqa_mc2"),
          _upper(C.H2_COMBINED_MAX_LOSS_PP),
          C.NOT_MEASURED + " (make sweep PROFILE=cpu-qwen TASKS=truthfulqa_mc2)", group=GROUP_H2),
    Claim("h2", "H2: quality preservation", "§8.1.2", "GSM8K < 3, MMLU < 1 pp, ratio 2-3", "ch3_phase1_quality",
          _h2, h2_verdict, group=GROUP_H2),
]
