"""``make quant-check``: does evaluating a quantized variant through its dequantized weights
(``quant_eval``'s fast path) change any answer? Both kernels on the same items, stored per item."""
from __future__ import annotations

import pandas as pd

from studylib import provenance
from studylib.config import StudyConfigError
from studylib.quality.quant_eval import MODES, agreement_table, prepare
from studylib.quality.transforms import TRANSFORMS
from studylib.quality.units import build_variant, evaluate_task_items, fast_exact_linears, plan, task_lines
from studylib.results import ResultStore, safe_key


def agreement(prof: dict, variant: str, task: str, n_items: int, progress: bool = True) -> pd.DataFrame:
    """Evaluate the first ``n_items`` of ``task`` on ``variant`` with quanto's kernels, then with
    its dequantized weights (oneDNN-packed where exact, as the sweep runs), and store both per item
    in ``data/quant_eval/<profile>/``. Resumes nothing: one call is one comparison (minutes)."""
    q = prof["quality"]
    if task not in q["tasks"]:
        raise StudyConfigError(f"task {task!r} is not in the profile's quality.tasks {q['tasks']}")
    spec = next((u["spec"] for u in plan(prof, [variant])), None)
    if spec is None:
        raise StudyConfigError(f"variant {variant!r} is not planned on profile {prof['name']}")
    if not any(TRANSFORMS[step].quantizer for step, _ in spec["steps"]):
        raise StudyConfigError(f"variant {variant!r} has no optimum-quanto step to compare")
    lines = task_lines(prof, {task: n_items})[task]
    model, tok, _ = build_variant(prof, variant, spec)
    runs = {}
    for mode in MODES:
        kernel = prepare(model, mode)
        linear = fast_exact_linears(model, prof["device"])
        runs[mode] = evaluate_task_items(model, tok, prof, task, lines, 0, n_items).assign(quant_kernel=kernel,
                                                                                      linear_kernel=linear)
    t = agreement_table(runs["library"], runs["dequantized"]).assign(model=q["model"], variant=variant)
    params = {"quality": dict(q), "variant": variant, "task": task, "items": [0, n_items],
              "kernels": {m: r["quant_kernel"].iloc[0] + "/" + r["linear_kernel"].iloc[0] for m, r in runs.items()}}
    ResultStore("quant_eval", prof["name"]).write(safe_key(q["model"], variant, task), t,
                                                  provenance.collect(prof["name"], params))
    return t
