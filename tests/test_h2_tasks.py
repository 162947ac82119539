"""Issue 34's tasks as data: MATH-500 (math-verify judged), TruthfulQA MC2 (lm-eval's own scorer)
and HellaSwag's length-normalised accuracy, without a model (lm-eval's logged samples faked)."""
from pathlib import Path

import numpy as np
import pytest

from studylib.quality import evaluation
from studylib.quality.taskdata import build_task_files

BENCH = Path(__file__).resolve().parents[2] / "shared" / "data"


def test_mc2_takes_lm_evals_scorer_and_multiple_choice_logs_acc_norm(tmp_path):
    cfg = evaluation.task_config("truthfulqa_mc2", tmp_path / "x.jsonl")
    from lm_eval.tasks.truthfulqa.utils import process_results_mc2

    assert cfg["process_results"] is process_results_mc2 and "item_score" not in cfg
    assert {"metric": "acc_norm"} in evaluation.task_config("hellaswag", tmp_path / "x.jsonl")["metric_list"]
    doc = {"id": "tqa-1", "question": "q", "mc2_targets": {"choices": [" a", " b", " c"], "labels": [1, 0, 0]}}
    lls = [-1.0, -2.0, -3.0]
    s = {"doc": doc, "resps": [[(ll, False)] for ll in lls], "target": 0,
         **process_results_mc2(doc, [(ll, False) for ll in lls])}
    row = evaluation._scored_row("truthfulqa_mc2", "multiple_choice", s, _Tok())
    p = np.exp(lls)
    assert row["score"] == pytest.approx(p[0] / p.sum()) and np.isnan(row["correct"])
    hs = {"doc": {"id": "h", "ctx": "c", "choices": [" a", " bbbb"], "gold": 1},
          "resps": [[(-1.0, False)], [(-3.0, False)]], "target": 1, "acc": 0.0, "acc_norm": 1.0}
    r2 = evaluation._scored_row("hellaswag", "multiple_choice", hs, _Tok())
    assert (r2["correct"], r2["correct_norm"]) == (0.0, 1.0)


class _Tok:
    def __call__(self, text, add_special_tokens=False):
        return type("T", (), {"input_ids": text.split()})()


@pytest.mark.skipif(not BENCH.is_dir(), reason="../shared/data not present")
def test_math500_and_mc2_items_from_the_benchmark_files(tmp_path):
    files = build_task_files(tmp_path, 10**9, 0, [], str(BENCH), tasks=["math500", "truthfulqa_mc2"])
    import json

    math = [json.loads(x) for x in files["math500"].read_text().splitlines()]
    mc2 = [json.loads(x) for x in files["truthfulqa_mc2"].read_text().splitlines()]
    assert len(math) == 500 and len({m["id"] for m in math}) == 500 and all(m["answer"] for m in math)
    assert len(mc2) == 817
    for it in mc2:
        lab = it["mc2_targets"]["labels"]
        assert lab[0] == 1 and 0 in lab and lab == sorted(lab, reverse=True)   # true answers first
    # every MATH-500 gold answer is readable by the checker
    from studylib.quality.tasks import answers

    spec = evaluation.answer_check("math500")
    assert all(answers.check(spec, f"\\boxed{{{m['answer']}}}", m).correct == 1.0 for m in math[:60])
