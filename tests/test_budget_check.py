"""``make budget-check``: a generated task's truncated answers, and only those, re-run at the longer
budget its YAML declares, through an engine of the registry; both outcomes stored per item."""
import json
from contextlib import contextmanager

import pandas as pd
import pytest

from studylib.config import StudyConfigError, load_profile


def test_only_truncated_items_are_rerun_at_the_declared_longer_budget(data_dir, monkeypatch):
    from studylib import provenance
    from studylib.quality import budget_check as B
    from studylib.quality import units
    from studylib.quality.evaluation import budget, budget_check_task
    from studylib.results import ResultStore, read_table

    assert budget_check_task("math500") == "math500_pilot" and budget("math500_pilot") > budget("math500")
    prof = units.declared_profile(load_profile("embedded", {"quality": {"declared": {
        "tasks": ["probe_facts"], "counts": {"probe_facts": 2}, "variants": ["dense"]}}}))
    ids = [f"math500-{i}" for i in range(4)]
    ResultStore("quality_items", prof["name"]).write("m__dense__math500__c000", pd.DataFrame({
        "model": "m", "variant": "dense", "task": "math500", "task_type": "reasoning", "item_id": ids,
        "correct": [0.0, 1.0, 0.0, 1.0], "gold_logprob": float("nan"), "n_tokens": [1280, 300, 1280, 500],
        "truncated": [1.0, 0.0, 1.0, 0.0]}), provenance.collect(prof["name"], {}))
    monkeypatch.setattr(units, "task_lines", lambda p, limits: {
        "math500": [json.dumps({"id": i}) + "\n" for i in ids]})
    seen = []

    @contextmanager
    def toy(prof, variant, spec, built):
        def evaluate(parts, lines):
            (u,) = parts
            seen.append((u["task"], [json.loads(x)["id"] for x in lines[u["task"]]]))
            got = [json.loads(x)["id"] for x in lines[u["task"]]][u["lo"]:u["hi"]]
            return pd.DataFrame({"item_id": got, "correct": [1.0 if g == "math500-0" else 0.0 for g in got],
                                 "n_tokens": [2000 if g == "math500-0" else 3072 for g in got],
                                 "truncated": [0.0 if g == "math500-0" else 1.0 for g in got]})
        yield evaluate, {"engine": "toy"}

    units.BACKENDS["toy"] = toy
    try:
        t = B.check_budget(prof, "dense", "math500", backend="toy")
    finally:
        units.BACKENDS.pop("toy")
    assert seen == [("math500_pilot", ["math500-0", "math500-2"])]          # the truncated two, at the long budget
    assert B.reading(t).endswith("of 2 answers cut at 1280 tokens, 1 finish within 3072; 1 turn correct, "
                                 "0 turn wrong (engine toy)")
    stored = read_table("budget_check", [prof["name"]])
    assert sorted(stored["item_id"]) == ["math500-0", "math500-2"] and set(stored["budget_long"]) == {3072}
    from studylib.book.figures import budget_notes

    note = budget_notes(stored, read_table("quality_items", [prof["name"]]), "math500")
    assert "50.0% at 1,280 tokens and 75.0% at 3,072" in note          # 2/4 right, one more at the long budget
    assert budget_notes(stored, read_table("quality_items", [prof["name"]]), "gsm8k_cot") is None
    with pytest.raises(StudyConfigError, match="declares no budget_check"):
        B.check_budget(prof, "dense", "gsm8k_cot")
    with pytest.raises(StudyConfigError, match="not one of"):
        B.check_budget(prof, "dense", "math500", backend="no such engine")
