"""From the tidy tables in data/ to the estimates the book reports (all with CIs)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from studylib.stats import (
    Estimate,
    bootstrap_ratio_of_medians,
    fieller_ratio,
    mcnemar_pvalue,
    paired_bootstrap_delta,
    paired_difference_ci,
)
from studylib.results import BASELINE

GPU_PROFILES = ("h100", "h200")


#: which profile's measurement judges a quality claim, when several have one: the largest model first
QUALITY_PROFILE_RANK = ("h200", "h100", "cpu-qwen", "cpu-real", "embedded")


def best_profile(df: pd.DataFrame) -> pd.DataFrame:
    """The rows of the first profile of ``QUALITY_PROFILE_RANK`` present in ``df``."""
    return first_profile(df, QUALITY_PROFILE_RANK)


def first_profile(df: pd.DataFrame, rank) -> pd.DataFrame:
    """The rows of the first profile of ``rank`` present in ``df`` (else of the alphabetically
    first profile): results of different models are reported side by side, never pooled."""
    if df.empty or "profile" not in df:
        return df
    present = [p for p in rank if p in set(df["profile"])] or sorted(set(df["profile"]))
    return df[df["profile"] == present[0]]


def samples(row) -> np.ndarray:
    return np.array([float(x) for x in str(row["samples_s"]).split()])


def speedups(timing: pd.DataFrame, baseline: str = BASELINE) -> pd.DataFrame:
    """Speedup of every variant over the dense baseline of the same profile/shape/component/
    batch, with a bootstrap CI of the ratio of medians."""
    keys = ["profile", "shape", "component", "batch", "context"]
    base = timing[timing["variant"] == baseline].set_index(keys)
    out = []
    for _, r in timing[timing["variant"] != baseline].iterrows():
        k = tuple(r[c] for c in keys)
        if k not in base.index:
            continue
        b = base.loc[k]
        b = b.iloc[0] if isinstance(b, pd.DataFrame) else b
        est = bootstrap_ratio_of_medians(samples(b), samples(r))
        out.append({**{c: r[c] for c in keys}, "variant": r["variant"], "routing": r["routing"],
                    "gpu": r.get("gpu_name", ""), "speedup": est.value, "lo": est.lo, "hi": est.hi})
    return pd.DataFrame(out)


def attention_fraction(timing: pd.DataFrame) -> pd.DataFrame:
    """Measured f_attn = 1 - t_ffn / t_layer of the dense model (median times)."""
    d = timing[timing["variant"] == BASELINE]
    piv = d.pivot_table(index=["profile", "shape", "batch", "context"], columns="component", values="median_s")
    if not {"ffn", "layer"} <= set(piv.columns):
        return pd.DataFrame(columns=["profile", "shape", "batch", "context", "ffn", "layer", "f_attn"])
    piv = piv.dropna(subset=["ffn", "layer"])  # whole-model units exist for some shapes only
    piv["f_attn"] = 1 - piv["ffn"] / piv["layer"]
    return piv.reset_index()


def quality_deltas(items: pd.DataFrame, baseline: str = BASELINE) -> pd.DataFrame:
    """Per profile × variant × task: paired (by item) loss vs dense. Accuracy loss in percentage
    points (dense - variant) with Tango's score interval (never a point, even with no discordant
    item) and McNemar's exact p; for generated answers also the loss under the flexible
    extraction and both truncation rates; the drop of gold log-probability per token (nats,
    paired bootstrap) where a task scores one."""
    out = []
    for (prof, model, task), g in items.groupby(["profile", "model", "task"]):
        base = g[g["variant"] == baseline].drop_duplicates("item_id").set_index("item_id")
        for var, gv in g[g["variant"] != baseline].groupby("variant"):
            gv = gv.drop_duplicates("item_id").set_index("item_id")
            common = base.index.intersection(gv.index)
            if len(common) == 0:
                continue
            b, v = base.loc[common], gv.loc[common]
            row = {"profile": prof, "model": model, "task": task, "task_type": g["task_type"].iloc[0],
                   "variant": var, "n_items": len(common)}
            if b["correct"].notna().all() and v["correct"].notna().all():
                cb, cv = b["correct"].astype(bool), v["correct"].astype(bool)
                e = paired_difference_ci(cb, cv)
                row.update(acc_dense=100 * cb.mean(), acc_variant=100 * cv.mean(),
                           acc_loss_pp=100 * e.value, acc_loss_lo=100 * e.lo, acc_loss_hi=100 * e.hi,
                           discordance=float((cb != cv).mean()), mcnemar_p=mcnemar_pvalue(cb, cv))
            if "correct_flexible" in g and b["correct_flexible"].notna().all() and v["correct_flexible"].notna().all():
                e = paired_difference_ci(b["correct_flexible"].astype(bool), v["correct_flexible"].astype(bool))
                row.update(acc_flex_dense=100 * b["correct_flexible"].mean(),
                           acc_flex_variant=100 * v["correct_flexible"].mean(),
                           acc_flex_loss_pp=100 * e.value, acc_flex_loss_lo=100 * e.lo, acc_flex_loss_hi=100 * e.hi)
            if "correct_norm" in g and b["correct_norm"].notna().all() and v["correct_norm"].notna().all():
                e = paired_difference_ci(b["correct_norm"].astype(bool), v["correct_norm"].astype(bool))
                row.update(acc_norm_dense=100 * b["correct_norm"].mean(), acc_norm_variant=100 * v["correct_norm"].mean(),
                           acc_norm_loss_pp=100 * e.value, acc_norm_loss_lo=100 * e.lo, acc_norm_loss_hi=100 * e.hi,
                           norm_discordance=float((b["correct_norm"] != v["correct_norm"]).mean()))
            if "score" in g and b["score"].notna().all() and v["score"].notna().all():   # a continuous item score
                e = paired_bootstrap_delta(100 * b["score"].astype(float), 100 * v["score"].astype(float))
                row.update(score_dense=100 * b["score"].mean(), score_variant=100 * v["score"].mean(),
                           score_loss_pp=e.value, score_loss_lo=e.lo, score_loss_hi=e.hi)
            if "truncated" in g and v["truncated"].notna().all():
                row.update(truncated_dense=float(b["truncated"].mean()), truncated_variant=float(v["truncated"].mean()))
            if b["gold_logprob"].notna().all() and v["gold_logprob"].notna().all():
                e = paired_bootstrap_delta(b["gold_logprob"] / b["n_tokens"], v["gold_logprob"] / v["n_tokens"])
                row.update(lp_loss=e.value, lp_loss_lo=e.lo, lp_loss_hi=e.hi)
            out.append(row)
    return pd.DataFrame(out)


def versus(items: pd.DataFrame, variant: str, baseline: str) -> pd.DataFrame:
    """``variant`` against another variant (not dense) on the same items, paired: ``quality_deltas`` with
    ``baseline`` as the reference, so a positive ``acc_loss_pp`` means ``variant`` is worse. Answers
    "what does this step add on top of that one" (int8 after SparseGPT, GPTQ instead of RTN)."""
    d = quality_deltas(items[items["variant"].isin([variant, baseline])], baseline=baseline)
    return d[(d["variant"] == variant) & d["acc_loss_pp"].notna()] if "acc_loss_pp" in d else d.iloc[:0]


def estimate_of(df: pd.DataFrame, value: str, lo: str, hi: str) -> Estimate | None:
    if df.empty or value not in df or df[value].isna().all():
        return None
    r = df.iloc[0]
    return Estimate(float(r[value]), float(r[lo]), float(r[hi]))


def floor_status(items: pd.DataFrame, task: str, variant: str = BASELINE) -> dict | None:
    """Where ``variant`` stands against the floor of ``task`` (criteria.CHANCE: the chance rate of
    a multiple-choice task, 0 for generated answers): items, correct, accuracy with its 95% Wilson
    interval, and ``above`` — the interval's lower end above the floor, i.e. a one-sided score test
    of "accuracy = floor" rejected at 2.5%. None when the variant has no item of the task."""
    from statsmodels.stats.proportion import proportion_confint

    from studylib.paper.criteria import ABOVE_CHANCE_LEVEL, CHANCE

    d = items[(items["task"] == task) & (items["variant"] == variant)]["correct"].dropna()
    if d.empty:
        return None
    k, n = int(d.sum()), len(d)
    lo, hi = proportion_confint(k, n, alpha=1 - ABOVE_CHANCE_LEVEL, method="wilson")
    floor = CHANCE.get(task)
    # no success at all is never above the floor (Wilson's lower bound is then 0 up to rounding)
    above = floor is not None and k > 0 and lo > floor + 1e-9
    return {"variant": variant, "task": task, "n": n, "k": k, "acc": k / n, "lo": float(lo), "hi": float(hi),
            "floor": floor, "above": bool(above)}


def floor_text(st: dict) -> str:
    """'<variant> on <task>: k/n = x% (95% [lo, hi]) vs floor f%' (the numbers behind a floor verdict)."""
    f = "unknown" if st["floor"] is None else f"{100 * st['floor']:.0f}%"
    return (f"{st['variant']} on {st['task']}: {st['k']}/{st['n']} = {100 * st['acc']:.1f}% "
            f"(95% [{100 * st['lo']:.1f}, {100 * st['hi']:.1f}]) vs floor {f}")


def above_chance(items: pd.DataFrame, task: str, variant: str = BASELINE) -> bool:
    """Whether ``variant`` scores above the floor of ``task`` (``floor_status``)."""
    st = floor_status(items, task, variant)
    return bool(st and st["above"])


def _paired(items: pd.DataFrame, task: str, variant: str, column: str, baseline: str = BASELINE):
    d = items[items["task"] == task]
    b = d[d["variant"] == baseline].set_index("item_id")
    v = d[d["variant"] == variant].set_index("item_id")
    common = b.index.intersection(v.index)
    if column == "logprob_per_token":
        return (b.loc[common, "gold_logprob"] / b.loc[common, "n_tokens"]).to_numpy(), \
            (v.loc[common, "gold_logprob"] / v.loc[common, "n_tokens"]).to_numpy()
    return 100 * b.loc[common, column].to_numpy(float), 100 * v.loc[common, column].to_numpy(float)


def degradation_ratio(items: pd.DataFrame, variant: str, pairs=None) -> dict | None:
    """Reasoning loss / factual loss of ``variant`` vs dense, per the pre-registered rule in
    ``studylib.paper.criteria`` (accuracy points if dense is above chance on both tasks, else
    gold log-prob per token), first task pair of RATIO_TASK_PAIRS present. CI: percentile
    bootstrap over items within each task. When the factual loss's own interval includes 0 the
    ratio is unbounded (a Fieller interval would be the whole line): its CI is reported as
    (-inf, inf), never as the bootstrap's arbitrary percentiles of a ratio with a ~0 denominator.
    ``floored``: in accuracy points, the variant is at chance on the reasoning task, so its loss is
    dense's accuracy and the ratio is bounded by it (reported beside the verdict, not judged)."""
    from studylib.paper.criteria import CHANCE, RATIO_TASK_PAIRS
    from studylib.stats import bootstrap_ratio_of_paired_means

    for reasoning, factual in pairs or RATIO_TASK_PAIRS:
        have = set(items.loc[items["variant"] == variant, "task"])
        if not {reasoning, factual} <= have:
            continue
        use_acc = above_chance(items, reasoning) and above_chance(items, factual)
        col = "correct" if use_acc else "logprob_per_token"
        rb, rv = _paired(items, reasoning, variant, col)
        fb, fv = _paired(items, factual, variant, col)
        if use_acc:
            f_loss = paired_difference_ci(fb > 0, fv > 0)
            f_loss = Estimate(100 * f_loss.value, 100 * f_loss.lo, 100 * f_loss.hi)
            r_loss = paired_difference_ci(rb > 0, rv > 0)
            r_loss = Estimate(100 * r_loss.value, 100 * r_loss.lo, 100 * r_loss.hi)
        else:
            f_loss, r_loss = paired_bootstrap_delta(fb, fv), paired_bootstrap_delta(rb, rv)
        ratio = bootstrap_ratio_of_paired_means(rb, rv, fb, fv)
        dr, df_ = rb - rv, fb - fv
        fieller = fieller_ratio(float(dr.mean()), float(df_.mean()), float(dr.var(ddof=1) / len(dr)),
                                float(df_.var(ddof=1) / len(df_)))
        if f_loss.lo <= 0 <= f_loss.hi:
            ratio = Estimate(ratio.value, -np.inf, np.inf)
        acc = float(rv.mean()) / 100 if use_acc else None   # _paired gives accuracy in points
        return {"reasoning_task": reasoning, "factual_task": factual,
                "measure": "accuracy points" if use_acc else "gold log-prob per token (nats)",
                "reasoning_loss": r_loss, "factual_loss": f_loss, "ratio": ratio, "fieller": fieller,
                "reasoning_acc": acc, "floored": use_acc and acc <= CHANCE.get(reasoning, 0.0),
                "floor": {t: {v: floor_status(items, t, v) for v in (BASELINE, variant)} for t in (reasoning, factual)}}
    return None


def above_floor_on_both(info: dict) -> bool:
    """Whether dense and the variant of a ``degradation_ratio`` result are above the floor on both tasks."""
    return all(st is not None and st["above"] for f in info["floor"].values() for st in f.values())


def working_ratios(items: pd.DataFrame, pairs=None) -> pd.DataFrame:
    """The reasoning/factual loss ratio (``degradation_ratio``) of every variant of one profile's
    items that is above the floor on both tasks of the pair, with dense above it too (criteria,
    2026-12-03): one row per variant with both losses, the bootstrap ratio and Fieller's interval."""
    rows = []
    for v in sorted(set(items["variant"]) - {BASELINE}):
        info = degradation_ratio(items, v, pairs)
        if not info or info["measure"] != "accuracy points":
            continue
        if not above_floor_on_both(info):
            continue
        r, f, e, fl = info["reasoning_loss"], info["factual_loss"], info["ratio"], info["fieller"]
        if not np.isfinite(e.value):   # no loss on either task (the fp32 check of the evaluation): no ratio
            continue
        rows.append({"variant": v, "reasoning_task": info["reasoning_task"], "factual_task": info["factual_task"],
                     "reasoning_loss": r.value, "reasoning_lo": r.lo, "reasoning_hi": r.hi,
                     "factual_loss": f.value, "factual_lo": f.lo, "factual_hi": f.hi,
                     "ratio": e.value, "ratio_lo": e.lo, "ratio_hi": e.hi,
                     "fieller_lo": fl.lo, "fieller_hi": fl.hi})
    return pd.DataFrame(rows, columns=["variant", "reasoning_task", "factual_task", "reasoning_loss", "reasoning_lo",
                                       "reasoning_hi", "factual_loss", "factual_lo", "factual_hi", "ratio",
                                       "ratio_lo", "ratio_hi", "fieller_lo", "fieller_hi"])


def combination_ratio_on(items: pd.DataFrame, variants, pairs) -> dict | None:
    """``combination_ratio`` on the given task pairs."""
    for v in variants:
        info = degradation_ratio(items, v, pairs)
        if info:
            return {**info, "variant": v}
    return None


def combination_ratio(items: pd.DataFrame, variants) -> dict | None:
    """``degradation_ratio`` of the first of ``variants`` (preference order) measured on a
    reasoning/factual pair in ``items``, with the variant's name under "variant"."""
    for v in variants:
        info = degradation_ratio(items, v)
        if info:
            return {**info, "variant": v}
    return None


def eq25_design(items: pd.DataFrame, variants: pd.DataFrame) -> pd.DataFrame:
    """One row per grid configuration of one profile: p, imbalance = 1 - Balance (Eq. 32),
    c_drop, the primary outcome q_loss (mean accuracy points lost over the grid tasks where the
    dense model is above chance; NaN if none) and the secondary lp_loss (mean gold log-prob
    per token lost, nats, over every grid task)."""
    rows = []
    is_grid = variants["grid"].astype(str).str.lower().eq("true")
    grid = variants[is_grid]
    # a configuration measured twice (older runs named grid points separately) counts once
    grid = grid.drop_duplicates(["profile", "ratio", "bias", "capacity_factor", "experts", "top_k"], keep="last")
    for prof, gv in grid.groupby("profile"):
        its = items[items["profile"] == prof]
        deltas = quality_deltas(its[its["variant"].isin([BASELINE, *gv["variant"]])])
        # the same tasks for every design point (named variants were evaluated on more)
        common = set.intersection(*(set(deltas.loc[deltas["variant"] == v, "task"]) for v in gv["variant"]))
        deltas = deltas[deltas["task"].isin(common)]
        acc_tasks = [t for t in sorted(common) if above_chance(its, t)]
        for _, r in gv.iterrows():
            d = deltas[deltas["variant"] == r["variant"]]
            acc = d[d["task"].isin(acc_tasks)]["acc_loss_pp"]
            rows.append({"profile": prof, "model": r["model"], "variant": r["variant"], "p": r["ratio"], "bias": r["bias"],
                         "capacity_factor": r["capacity_factor"], "balance": r["balance"],
                         "imbalance": 1 - r["balance"], "c_drop": r["c_drop"],
                         "q_loss": acc.mean() if len(acc) else np.nan, "lp_loss": d["lp_loss"].mean(),
                         "q_tasks": ",".join(sorted(acc_tasks))})
    return pd.DataFrame(rows)


def repaired_grid(profile: str) -> list[str]:
    """The Eq. 25 design on the repaired conversion, as the profile declares it (may be empty)."""
    from studylib.config import StudyConfigError, load_profile

    try:
        q = load_profile(profile)["quality"]
    except (StudyConfigError, KeyError):
        return []
    return list((q.get("declared") or q).get("eq25_grid_variants") or [])


def eq25_item_design(items: pd.DataFrame, variants: pd.DataFrame, profile: str) -> pd.DataFrame:
    """One row per (item, design point) of the profile's repaired grid: the item's accuracy loss
    in pp (tasks where dense is above chance; ``loss``) and gold log-prob lost per token
    (``lp_loss``), with the point's p, imbalance (1 - Balance, Eq. 32) and c_drop measured on
    the routing pass. Empty when the grid is not complete in data/."""
    grid = repaired_grid(profile)
    its = items[items["profile"] == profile]
    vq = variants[(variants["profile"] == profile) & variants["variant"].isin(grid)].drop_duplicates("variant", keep="last")
    if not grid or set(grid) - set(vq["variant"]):
        return pd.DataFrame()
    dense = its[its["variant"] == BASELINE].drop_duplicates(["task", "item_id"]).set_index(["task", "item_id"])
    acc_tasks = {t for t in its["task"].unique() if above_chance(its, t)}
    rows = []
    for _, v in vq.iterrows():
        mine = its[its["variant"] == v["variant"]].drop_duplicates(["task", "item_id"]).set_index(["task", "item_id"])
        common = mine.index.intersection(dense.index)
        b, m = dense.loc[common], mine.loc[common]
        loss = np.where([t in acc_tasks for t, _ in common], 100 * (b["correct"] - m["correct"]), np.nan)
        lp = b["gold_logprob"] / b["n_tokens"] - m["gold_logprob"] / m["n_tokens"]
        for (task, item), lo, lpv in zip(common, loss, lp):
            rows.append({"profile": profile, "variant": v["variant"], "task": task, "item_id": item,
                         "p": float(v["ratio"] or 0.0), "imbalance": 1 - float(v["balance"]),
                         "c_drop": float(v["c_drop"]), "loss": lo, "lp_loss": lpv})
    return pd.DataFrame(rows)


def pruning_only(declared: dict[str, dict], method: str = "sparsegpt") -> dict[str, float]:
    """{variant: p} of the declared variants whose pipeline is one ``method`` pruning step at ratio p
    and nothing else (read from the declarations, never from the names)."""
    return {v: float(s["steps"][0][1]["ratio"]) for v, s in declared.items()
            if len(s["steps"]) == 1 and s["steps"][0][0] == method and set(s["steps"][0][1]) == {"ratio"}
            and not s.get("dtype")}


def pruning_design(items: pd.DataFrame, variants: pd.DataFrame, profile: str) -> pd.DataFrame:
    """Eq. 25's pruning term alone (issue 36): one row per (item, variant) of every variant of
    ``profile`` declared as SparseGPT pruning and nothing else (``pruning_only``), on each task
    where dense is above the floor: ``p``, ``loss`` (100 x (dense correct - variant correct)) and
    ``correct``; dense's own rows at p = 0 with loss 0 come along for the logit check. Empty
    without at least one such variant."""
    from studylib.quality.transforms import declared_variants

    its = items[items["profile"] == profile]
    vq = variants[(variants["profile"] == profile)].drop_duplicates("variant", keep="last")
    ratios = pruning_only(declared_variants())
    pure = vq[vq["variant"].isin(list(ratios))].assign(ratio=lambda x: x["variant"].map(ratios))
    if pure.empty:
        return pd.DataFrame(columns=["variant", "task", "item_id", "p", "loss", "correct"])
    dense = its[its["variant"] == BASELINE].drop_duplicates(["task", "item_id"]).set_index(["task", "item_id"])
    tasks = [t for t in its["task"].unique() if t in set(dense.index.get_level_values(0)) and above_chance(its, t)]
    rows = []
    for v in [BASELINE, *pure["variant"]]:
        p = 0.0 if v == BASELINE else float(pure.loc[pure["variant"] == v, "ratio"].iloc[0])
        mine = its[(its["variant"] == v) & its["task"].isin(tasks)].drop_duplicates(["task", "item_id"])
        mine = mine.set_index(["task", "item_id"])
        common = mine.index.intersection(dense.index)
        if common.empty:
            continue
        b, m = dense.loc[common, "correct"].astype(float), mine.loc[common, "correct"].astype(float)
        rows.append(pd.DataFrame({"variant": v, "task": common.get_level_values(0), "item_id": common.get_level_values(1),
                                  "p": p, "loss": 100 * (b.to_numpy() - m.to_numpy()), "correct": m.to_numpy()}))
    return pd.concat(rows, ignore_index=True)


def token_budget(items: pd.DataFrame, task: str, variant: str = BASELINE, max_truncated: float = 0.05,
                 step: int = 128) -> dict | None:
    """The generation budget a pilot supports: the smallest multiple of ``step`` tokens that at most
    ``max_truncated`` of ``variant``'s pilot answers reach (their lengths' quantile), with the pilot's own
    truncation rate (if that exceeds ``max_truncated`` the pilot's budget was too small to tell)."""
    g = items[(items["task"] == task) & (items["variant"] == variant)]
    if g.empty:
        return None
    n = g["n_tokens"].to_numpy(float)
    trunc = float(g["truncated"].mean()) if "truncated" in g else float("nan")
    k = int(np.floor(max_truncated * len(n)))              # the longest k answers may reach the budget
    q = float(np.sort(n)[len(n) - k - 1])                   # the longest answer that must not
    return {"items": int(len(g)), "pilot_truncated": trunc, "quantile_tokens": q,
            "budget": int(step * np.ceil((q + 2) / step)), "enough": bool(trunc <= max_truncated)}


def outcome_agreement(items: pd.DataFrame, other: str, baseline: str = BASELINE) -> pd.DataFrame:
    """Per task, on the items both measured: how many keep their outcome (right/wrong) between
    ``baseline`` and ``other`` (e.g. dense in bf16 and in fp32: the evaluation's own numerical noise
    floor), the agreement with its Wilson interval (which cannot collapse on a few items), and, for
    generation tasks, how many responses are the same text."""
    from statsmodels.stats.proportion import proportion_confint

    rows = []
    for t, g in items.groupby("task") if not items.empty else []:
        a = g[g["variant"] == baseline].drop_duplicates("item_id").set_index("item_id")
        b = g[g["variant"] == other].drop_duplicates("item_id").set_index("item_id")
        common = a.index.intersection(b.index)
        if len(common) == 0:
            continue
        same = int((a.loc[common, "correct"] == b.loc[common, "correct"]).sum())
        lo, hi = proportion_confint(same, len(common), method="wilson")
        r = {"task": t, "items": len(common), "same_outcome": same, "agreement": same / len(common),
             "lo": float(lo), "hi": float(hi)}
        if "response" in g and g["response"].notna().any():
            r["identical_text"] = int((a.loc[common, "response"] == b.loc[common, "response"]).sum())
        rows.append(r)
    return pd.DataFrame(rows)


def item_engines(params: pd.Series) -> pd.Series:
    """Per item row, the engine that evaluated its unit, from the unit's provenance (``params.engine``;
    units from before engines were recorded were all ours): "ours" or "vllm <version>". Each distinct
    provenance string is parsed once (a unit's rows share it)."""
    import json

    def name(text) -> str:
        p = json.loads(text) if isinstance(text, str) else {}
        return "vllm " + p.get("vllm", "") if p.get("engine") == "vllm" else p.get("engine", "ours")
    return params.map({t: name(t) for t in params.unique()})


def unit_engines(g: pd.DataFrame) -> str:
    """Which engine evaluated these rows (``item_engines``): "ours", "vllm 0.32.0", or both with their item counts."""
    if "params" not in g or g.empty:
        return "ours"
    counts = item_engines(g["params"]).value_counts()
    return counts.index[0] if len(counts) == 1 else ", ".join(f"{e} ({n})" for e, n in counts.items())
