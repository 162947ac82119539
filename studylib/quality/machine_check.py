"""Does this machine give the committed answers? Re-measure some committed quality items here and
compare them item by item (``make machine-check``; data/machine_check/).

Why: quality units are pooled across sessions, and sessions land on different CPUs. A bf16 product
is computed by different kernels on a CPU with hardware bf16 (AVX-512 BF16: the machines most units
came from) and on one without (AVX2: oneDNN converts to fp32 first), so logits round differently
and a greedy generation may take another path. A paired comparison (variant vs dense on the same
items) is only about the variant if both were measured the same way, or if the machine does not
change answers. This module measures the second: it evaluates items ``[lo, hi)`` of one committed
unit of a variant here, and stores per item the outcome and gold log-probability here and in the
committed unit, and whether a generated response is token-for-token the same.

Re-measuring a whole committed unit (``--items`` = its chunk size, the default) keeps the batches
exactly as they were; fewer items batch differently, which by itself can change the last bits
(the row's ``items`` says which it was), and so does any evaluation setting changed since the unit
was committed (the cpu-qwen MMLU units of dense predate fp32 log-softmax scoring: their gold
log-probs are bf16-rounded, so their log-prob gap is not the machine's alone; their outcomes are
comparable). The provenance's ``cpu`` names both machines: this one in the row's provenance, the
committed unit's in ``cpu_reference``.
"""
from __future__ import annotations

import pandas as pd

TABLE = "machine_check"


def comparison(here: pd.DataFrame, ref: pd.DataFrame) -> pd.DataFrame:
    """Per item of ``here``: correct, gold log-prob and (generation tasks) response, here and in
    the reference rows, and whether the response is identical. Every item must be in ``ref``."""
    from studylib.stats import first_divergence

    keys = ["task", "item_id"]
    cols = [c for c in ("correct", "gold_logprob", "response") if c in here and c in ref]
    t = here[keys + cols].merge(ref[keys + cols + ["cpu"]].rename(columns={"cpu": "cpu_reference"}),
                                on=keys, how="left", suffixes=("_here", "_reference"), indicator=True)
    if (t["_merge"] != "both").any():
        missing = t.loc[t["_merge"] != "both", "item_id"].tolist()[:5]
        raise ValueError(f"items not in the committed unit: {missing}")
    t = t.drop(columns="_merge")
    if "response_here" in t:
        a, b = t["response_here"].fillna(""), t["response_reference"].fillna("")
        t["same_response"] = a == b
        # the character where the two part (NaN when identical): how far greedy generation ran on
        # the same path before the machines' roundings sent it elsewhere
        t["first_difference"] = pd.Series([first_divergence(x, y) for x, y in zip(a, b)], index=t.index, dtype=float)
        t = t.drop(columns=["response_reference"])      # the committed one is in its unit; keep this one
    return t


def summary(t: pd.DataFrame) -> dict:
    """Items compared, items whose outcome differs, identical responses, largest gold log-prob gap."""
    out = {"items": len(t), "outcome_differs": int((t["correct_here"] != t["correct_reference"]).sum())}
    if "same_response" in t and t["same_response"].notna().any():   # generation tasks only
        out["same_response"] = int(t["same_response"].fillna(False).astype(bool).sum())
        if "first_difference" in t and t["first_difference"].notna().any():
            out["median_first_difference"] = float(t["first_difference"].median())
    if "gold_logprob_here" in t and t["gold_logprob_here"].notna().any():
        out["max_gold_logprob_gap"] = float((t["gold_logprob_here"] - t["gold_logprob_reference"]).abs().max())
    return out


def committed_unit(prof: dict, variant: str, task: str, n_items: int | None = None) -> tuple[dict, int, pd.DataFrame]:
    """(unit, n, committed rows) of ``variant``'s first planned unit of ``task``, items [0, n); clear errors
    before any model is built when it is not planned, not committed, or ``n_items`` is out of range."""
    from studylib.config import StudyConfigError
    from studylib.quality.units import plan
    from studylib.results import ResultStore

    unit = next((u for u in plan(prof, [variant]) if u["task"] == task and u["lo"] == 0), None)
    if unit is None:
        raise StudyConfigError(f"{variant!r} has no planned unit of {task!r} on profile {prof['name']}")
    n = n_items or unit["hi"]
    if not 0 < n <= unit["hi"]:
        raise StudyConfigError(f"--items must be in 1..{unit['hi']} (the first unit's items), got {n}")
    committed = ResultStore("quality_items", prof["name"]).path(unit["key"])
    if not committed.exists():
        raise StudyConfigError(f"unit {unit['key']!r} is not committed yet: nothing to compare with")
    return unit, n, pd.read_csv(committed)


def check(prof: dict, variant: str, task: str, n_items: int | None = None) -> pd.DataFrame:
    """Evaluate items [0, n) of ``variant``'s first committed unit of ``task`` on this machine, as
    the sweep does, and store the per-item comparison in ``data/machine_check/<profile>/``."""
    from studylib import provenance
    from studylib.quality.units import build_variant, evaluate_task_items, evaluation_kernels, task_lines
    from studylib.results import ResultStore, safe_key

    q = prof["quality"]
    unit, n, ref = committed_unit(prof, variant, task, n_items)
    lines = task_lines(prof, {task: n})[task]
    model, tok, _ = build_variant(prof, variant, unit["spec"])
    params = {"quality": dict(q), "variant": variant, "task": task, "items": [0, n],
              "unit_items": [0, unit["hi"]], "reference_unit": unit["key"], **evaluation_kernels(model, prof)}
    here = evaluate_task_items(model, tok, prof, task, lines, 0, n)
    t = comparison(here.assign(task=task), ref).assign(model=q["model"], variant=variant)
    ResultStore(TABLE, prof["name"]).write(safe_key(q["model"], variant, task, provenance.cpu_isa(), f"n{n}"), t,
                                           provenance.collect(prof["name"], params))
    return t
