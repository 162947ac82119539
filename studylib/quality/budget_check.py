"""``make budget-check``: do the answers a generated task cut at its token budget change at a longer one?

A generated task's budget is pre-registered (MATH-500's 1,280 tokens came from a 40-item dense pilot);
what it truncates is reported per variant. This check asks what the truncation costs: every committed
item of ``variant`` on ``task`` whose answer reached the budget is generated again with the longer
budget of the task's declared ``budget_check`` task (the same prompt, items and answer checker, only
``max_gen_toks`` larger), through an engine of the sweep's registry (``units.BACKENDS``), and both
outcomes are stored per item (``data/budget_check/<profile>/``). It is a sensitivity check beside the
verdicts, never an input to them: the units keep the budget they ran at, so every paired comparison
stays at one budget."""
from __future__ import annotations

import json

import pandas as pd

from studylib.config import StudyConfigError


def long_task(task: str) -> str:
    """The task declared to re-run ``task``'s truncated answers (its YAML's ``budget_check``)."""
    from studylib.quality.evaluation import budget_check_task

    t = budget_check_task(task)
    if not t:
        raise StudyConfigError(f"task {task!r} declares no budget_check task (a generated task with a longer budget)")
    return t


def truncated_items(prof: dict, variant: str, task: str) -> pd.DataFrame:
    """The committed rows of ``variant`` on ``task`` whose answers reached the budget (all its units)."""
    from studylib.results import read_table

    it = read_table("quality_items", [prof["name"]])
    it = it[(it["variant"] == variant) & (it["task"] == task)] if not it.empty else it
    if it.empty:
        raise StudyConfigError(f"no committed items of {variant!r} on {task!r} (profile {prof['name']})")
    if "truncated" not in it:
        raise StudyConfigError(f"{task!r} is not a generated task with a budget (no 'truncated' column)")
    return it[it["truncated"] == 1]


def check_budget(prof: dict, variant: str, task: str, backend: str = "ours") -> pd.DataFrame:
    """Re-run the truncated items at the longer budget; per item, both outcomes (stored)."""
    from studylib import provenance
    from studylib.quality.evaluation import budget
    from studylib.quality.transforms import variant as declared
    from studylib.quality.units import BACKENDS, BuiltVariant, task_lines
    from studylib.results import ResultStore, safe_key

    longer = long_task(task)
    if backend not in BACKENDS:
        raise StudyConfigError(f"backend {backend!r} is not one of {sorted(BACKENDS)}")
    b, b_long = budget(task), budget(longer)
    if b is None or b_long is None or b_long <= b:
        raise StudyConfigError(f"{longer!r}'s budget ({b_long}) is not longer than {task!r}'s ({b})")
    cut = truncated_items(prof, variant, task)
    spec = declared(variant)
    make = BACKENDS[backend]
    if hasattr(make, "check"):
        make.check(prof, variant, spec)
    q = prof["quality"]
    out = pd.DataFrame()
    if not cut.empty:
        n = int(prof["quality"]["counts"][task]) if task in prof["quality"].get("counts", {}) else None
        lines = task_lines(prof, {task: n or len(cut)})[task]
        want = set(cut["item_id"])
        mine = [ln for ln in lines if json.loads(ln)["id"] in want]
        if len(mine) != len(want):
            raise StudyConfigError(f"{len(want) - len(mine)} truncated items are not in {task!r}'s lines")
        with make(prof, variant, spec, BuiltVariant(prof, variant, spec)) as (evaluate, labels):
            res = evaluate([{"task": longer, "lo": 0, "hi": len(mine)}], {longer: mine})
        keep = ["item_id", "correct", "n_tokens", "truncated"]
        out = cut[keep].merge(res[keep], on="item_id", suffixes=("_budget", "_long"))
        out = out.assign(model=q["model"], variant=variant, task=task, budget=b, budget_long=b_long,
                         engine=labels.get("engine", backend))
        ResultStore("budget_check", prof["name"]).write(
            safe_key(q["model"], variant, task), out,
            provenance.collect(prof["name"], {"variant": variant, "task": task, "long_task": longer,
                                              "budget": b, "budget_long": b_long, **labels}))
    return out


def reading(t: pd.DataFrame) -> str:
    """One sentence: how many truncated answers finish and how many turn correct at the longer budget."""
    if t.empty:
        return "no answer reached the budget: nothing to re-run"
    r = t.iloc[0]
    fin = int((t["truncated_long"] == 0).sum())
    gained = int(((t["correct_long"] == 1) & (t["correct_budget"] == 0)).sum())
    lost = int(((t["correct_long"] == 0) & (t["correct_budget"] == 1)).sum())
    return (f"{r['variant']} on {r['task']}: of {len(t)} answers cut at {int(r['budget'])} tokens, {fin} finish within "
            f"{int(r['budget_long'])}; {gained} turn correct, {lost} turn wrong (engine {r['engine']})")
