"""The numbers the front page's abstract states, computed from data/ (glued into the book, never
typed). Each value is the same measurement the verdict table judges (the claims registry), or a
measurement of a chapter's key result, formatted with its interval."""
from __future__ import annotations

import pandas as pd
from statsmodels.stats.proportion import proportion_confint

from studylib.book.tables import MISSING, ci, est
from studylib.claims import Data, registry, verdicts
from studylib.claims.phases import spec_estimates
from studylib.estimates.analysis import estimate_of
from studylib.estimates.conversion_analysis import at_25_by_technique, perplexity_vs_dense
from studylib.quality.transforms import with_role
from studylib.results import BASELINE

#: the abstract's name for each conversion it compares at 25% of the FFN per token (SmolLM2 and
#: Qwen), by the transform that makes it; the variants are those of the declared role ``at_25``
CONVERSION_KEYS = {"moe_literal": "literal", "cmoe": "cmoe", "teal": "teal", "moe_oracle": "expert_oracle",
                   "neuron_oracle": "neuron_oracle"}
#: the claims whose measurements the abstract quotes (the others it quotes by verdict only)
MEASURED = ("headline_b1", "headline_b8", "int8_speed", "table6_cpu", "h1", "probe_facts", "mmlu_loss",
            "gsm8k_loss", "hellaswag_loss", "truthfulqa_loss", "math_loss")
#: H2's other benchmarks (§8.1.2), as the abstract names them, by their claim
H2_OTHER_TASKS = {"hellaswag_loss": "HellaSwag", "truthfulqa_loss": "TruthfulQA", "math_loss": "MATH"}


def other_tasks_words(measured: dict, verdict: dict) -> str:
    """The combination's loss on H2's other benchmarks, for the abstract's quality sentence: the measured
    ones with their intervals; those where dense itself is at chance named as such; unmeasured left out."""
    from studylib.paper.criteria import AT_CHANCE

    lost, chance = [], []
    for cid, name in H2_OTHER_TASKS.items():
        m = measured.get(cid)
        if verdict.get(cid, "").startswith(AT_CHANCE):
            chance.append(name)
        elif m is not None and m.estimate is not None:
            lost.append(f"{est(m.estimate, ' pp', digits=1)} of {name}")
    words = (", and " + (" and ".join(lost) if len(lost) < 3 else ", ".join(lost[:-1]) + " and " + lost[-1])) if lost else ""
    if chance:
        words += f" (on {' and '.join(chance)} dense itself is at chance)"
    return words


def verdict_counts(vt: pd.DataFrame) -> dict[str, int]:
    """Claims per verdict kind (``verdicts.kind``: a verdict in parts counts by the kind its parts share)."""
    kinds = vt["verdict"].astype(str).map(verdicts.kind)
    return {k: int((kinds == k).sum()) for k in verdicts.KINDS}


def _accuracy(items: pd.DataFrame, profile: str, variant: str, task: str) -> str:
    g = items[(items["profile"] == profile) & (items["variant"] == variant) & (items["task"] == task)]
    if g.empty:
        return MISSING
    k, n = int(g["correct"].sum()), len(g)
    lo, hi = proportion_confint(k, n, method="wilson")
    return f"{ci(100 * k / n, 100 * lo, 100 * hi, '%')} (n = {n:,})"


def _loss(deltas: pd.DataFrame, profile: str, variant: str, task: str) -> str:
    """Paired accuracy loss vs dense with its interval and item count, as the chapters print it."""
    d = deltas[(deltas["profile"] == profile) & (deltas["variant"] == variant) & (deltas["task"] == task)] \
        if not deltas.empty else deltas
    e = estimate_of(d, "acc_loss_pp", "acc_loss_lo", "acc_loss_hi")
    return MISSING if e is None else f"{est(e, ' pp', digits=1)} (n = {int(d['n_items'].iloc[0]):,})"


def _ppl_ratio(items: pd.DataFrame, profile: str, variant: str) -> str:
    """WikiText-2 perplexity of ``variant`` over dense's on ``profile``, with its interval."""
    its = items[items["profile"] == profile] if not items.empty else items
    r = perplexity_vs_dense(its, variant) if not its.empty else {}
    return ci(r["ppl_ratio"], r["ppl_ratio_lo"], r["ppl_ratio_hi"], "x") if r else MISSING


def _units_done(profile: str) -> str:
    from studylib.config import load_profile
    from studylib.quality.units import coverage

    c = coverage(load_profile(profile))
    return f"{int((c['units'] - c['units_left']).sum())} of {int(c['units'].sum())}"


def values(data: Data | None = None) -> dict[str, str]:
    """Every number of the abstract as text, keyed by its glue name."""
    data = data or Data()
    m = {c.id: c.measure(data) for c in registry() if c.id in MEASURED}
    vt = verdicts.committed()
    verdict = dict(zip(vt["id"], vt["verdict"].astype(str)))
    out = {f"n_{k.replace(' ', '_')}": str(v) for k, v in verdict_counts(vt).items()}
    out["n_claims"] = str(len(vt))
    for cid, key in (("headline_b1", "headline"), ("headline_b8", "headline_b8"), ("int8_speed", "int8"),
                     ("table6_cpu", "table6_cpu")):
        out[key] = est(m[cid].estimate, "x")  # the digits that tell the ends apart (never a point)
        out[f"{key}_verdict"] = verdict.get(cid, MISSING).split(" (")[0]
    best = m["int8_speed"].inputs.get("best")
    out["int8_on"] = f"on the {best['gpu']} with every linear quantized" if best else "on the GPU"
    at_dense = (m["int8_speed"].estimate.value * best["dense_bw_fraction"] / best["bw_fraction"]) if best else None
    out["int8_note"] = (f"; our Triton int8 kernel is the limit: at dense's bandwidth efficiency the same bytes would give "
                        f"{at_dense:.2f}x" if "kernel-limited" in verdict.get("int8_speed", "") else "")
    from studylib.estimates import gpu_claims as G

    rep = G.replication(data.timing, data.table("device_peaks"))
    h = rep[(rep["profile"] == "h200") & (rep["variant"] == G.COMBO) & (rep["shape"] == G.HEADLINE_SHAPE)
            & (rep["component"] == "model") & (rep["batch"] == 1)] if not rep.empty else rep
    out["headline_h200"] = (f"On an H200 (a replication; verdicts stay on the H100) the same step gains "
                            f"{ci(h.iloc[0]['speedup'], h.iloc[0]['lo'], h.iloc[0]['hi'], 'x')}." if not h.empty else "")
    measured = dict(zip(vt["id"], vt["measured"].astype(str)))
    out["eq25_measured"] = measured.get("eq25", MISSING)
    out["eq25_on"] = dict(zip(vt["id"], vt["scale"].astype(str))).get("eq25", MISSING)
    out["reasoning_ratio_verdict"] = verdict.get("reasoning_ratio", MISSING)
    out["h1"] = m["h1"].text
    out["h1_verdict"] = verdict.get("h1", MISSING)
    for cid in ("probe_facts", "needle", "mmlu_loss", "gsm8k_loss", "eq25", "h2", "h3", "abort2"):
        out[f"{cid}_verdict"] = verdict.get(cid, MISSING)
    for cid in ("probe_facts", "mmlu_loss", "gsm8k_loss"):
        out[cid] = est(m[cid].estimate, " pp", digits=1)
        out[f"{cid}_on"] = m[cid].scale or MISSING
    for tech, variant in at_25_by_technique().items():
        key = CONVERSION_KEYS[tech]
        out[f"ppl_{key}"] = _ppl_ratio(data.items, "cpu-real", variant)
        out[f"qwen_ppl_{key}"] = _ppl_ratio(data.items, "cpu-qwen", variant)
        out[f"qwen_mmlu_{key}"] = _loss(data.deltas, "cpu-qwen", variant, "mmlu")
    int8, int4, recipe = with_role("int8")[0], with_role("int4")[0], with_role("paper_recipe")[0]
    for key, variant in (("int8", int8), ("int4", int4)):
        out[f"qwen_mmlu_{key}"] = _loss(data.deltas, "cpu-qwen", variant, "mmlu")
    out["table89_quality_verdict"] = verdict.get("table89_quality", MISSING)
    out["qwen_mmlu_dense"] = _accuracy(data.items, "cpu-qwen", BASELINE, "mmlu")
    out["qwen_gsm8k_dense"] = _accuracy(data.items, "cpu-qwen", BASELINE, "gsm8k_cot")
    out["qwen_units"] = _units_done("cpu-qwen")
    # the abstract's short forms (issue 37): value and interval only, no item counts in the sentences
    for key, variant, task in (("a_mmlu_loss", recipe, "mmlu"), ("a_gsm8k_loss", recipe, "gsm8k_cot"),
                               ("a_sparsegpt30", with_role("pruning_alone")[0], "mmlu"), ("a_int8", int8, "mmlu"),
                               ("a_int4", int4, "mmlu")):
        out[key] = _loss(data.deltas, "cpu-qwen", variant, task).split(" (n =")[0]
    from studylib.claims.hardware import cpu_decode_speedup as _cds

    for key, variant in (("int8_cpu", int8), ("int4_cpu", int4)):
        c = _cds(data, (variant,))
        out[key] = est(c["estimate"], "x", max_digits=2) if c else MISSING
    its = data.items[data.items["profile"] == "cpu-qwen"] if not data.items.empty else data.items
    from studylib.estimates.analysis import above_chance

    floored = [t for t in ("mmlu", "gsm8k_cot") if not its.empty
               and not above_chance(its, t, recipe) and (its["variant"] == recipe).any()]
    out["combo_floor_words"] = {2: ", down to chance on both", 1: ", down to chance on one"}.get(len(floored), "")
    out["a_other_tasks"] = other_tasks_words(m, verdict)
    from studylib.claims.phases import phase3_measure

    p3 = phase3_measure(data)
    best = p3.inputs.get("best") if not p3.empty else None
    out["quarter_words"] = ("no training-free conversion tested keeps a quarter of each FFN above chance"
                            if not p3.empty and p3.inputs.get("floor") else
                            f"the best training-free conversion at a quarter of each FFN loses {est(best, ' pp', digits=1)} of MMLU"
                            if best is not None else "conversions at a quarter of each FFN are not measured yet")
    from studylib.claims.hardware import cpu_decode_speedup
    from studylib.estimates import sweet_spot

    teal = cpu_decode_speedup(data, (at_25_by_technique()["teal"],))
    out["teal_cpu"] = est(teal["estimate"], "x", max_digits=2) if teal else MISSING
    r = sweet_spot.speed_ranges(sweet_spot.speed_map(data.timing))
    out["sweet_b1"], out["sweet_paper"] = r.get("b1", MISSING), r.get("paper", MISSING)
    out["phase3_verdict"] = verdict.get("phase3", MISSING)
    s = spec_estimates(data)
    out["spec_alpha"] = est(s.get("alpha")) if s else MISSING
    out["spec_cpu"] = est(s.get("cpu"), "x") if s else MISSING
    out["spec_gpu"] = est(s.get("gpu"), "x") if s else MISSING
    return out


#: the front page's abstract may not run longer than this (issue 37: read in two minutes)
MAX_WORDS = 250


def rendered_abstract(vals: dict[str, str] | None = None, index=None) -> str:
    """The abstract admonition of ``book/index.py`` with every glued value filled in: the text a
    reader sees (Markdown emphasis stripped), for the word limit and its test."""
    import re
    from pathlib import Path

    index = Path(index or Path(__file__).resolve().parents[2] / "book" / "index.py")
    lines = index.read_text().splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith("# ```{admonition} Abstract"))
    end = next(i for i in range(start + 1, len(lines)) if lines[i].strip() == "# ```")
    text = "\n".join(l[2:] for l in lines[start + 1:end])
    vals = values() if vals is None else vals
    text = re.sub(r"\{glue:text\}`([^`]+)`", lambda m: vals.get(m.group(1), MISSING), text)
    return re.sub(r"[*_`]", "", text)


def word_count(text: str) -> int:
    return len(text.split())
