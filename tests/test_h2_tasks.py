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


def test_the_retrieval_attribution_reads_both_losses_on_their_intervals():
    from studylib.paper import criteria as C
    from studylib.stats import Estimate

    assert C.attribution_verdict(Estimate(8.0, 6.0, 10.0), Estimate(20.0, 15.0, 25.0)).startswith("refuted")
    assert C.attribution_verdict(Estimate(1.0, -1.0, 3.0), Estimate(20.0, 15.0, 25.0)) == "supported"
    assert C.attribution_verdict(Estimate(1.0, -1.0, 6.0), Estimate(20.0, 15.0, 25.0)) == "inconclusive"
    assert C.attribution_verdict(Estimate(1.0, -1.0, 3.0), Estimate(4.0, 1.0, 7.0)) == "inconclusive"
    assert C.attribution_verdict(Estimate(1.0, -1.0, 3.0), None).startswith("inconclusive")


def test_the_retrieval_attribution_is_not_decided_by_an_ffn_variant_at_zero():
    """The FFN-only variant at the floor (0 retrieved) cannot decide §4.5's attribution, whatever its loss."""
    from studylib.claims.quality import _attribution_verdict
    from studylib.claims.base import Measured
    from studylib.paper import criteria as C
    from studylib.stats import Estimate

    big = Estimate(100.0, 90.3, 100.0)
    floored = Measured(big, "", "", "", inputs={"attention": None, "dense_above": True, "variant_above": False})
    assert _attribution_verdict(floored) == C.FLOOR
    working = Measured(big, "", "", "", inputs={"attention": None, "dense_above": True, "variant_above": True})
    assert _attribution_verdict(working).startswith("refuted")
    at_chance = Measured(big, "", "", "", inputs={"attention": None, "dense_above": False, "variant_above": True})
    assert _attribution_verdict(at_chance) == C.AT_CHANCE


def test_needle_qa_items_fill_every_length_and_depth_cell_in_rounds():
    from studylib.quality.taskdata import needle_qa_items

    items = needle_qa_items([64, 128], 25, seed=0)
    assert len(items) == 25 and len({i["id"] for i in items}) == 25
    first = items[:20]                                          # two full rounds of 2 lengths x 5 depths
    cells = {(i["length"], i["depth"]) for i in first}
    assert len(cells) == 10 and all(sum((i["length"], i["depth"]) == c for i in first) == 2 for c in cells)
    for i in items:
        assert f"The secret passphrase is {i['answer']}." in i["context"]
    assert needle_qa_items([64, 128], 25, seed=0) == items      # fixed by its seed


@pytest.mark.parametrize("response,strict,flexible", [
    ("The secret passphrase is amber-falcon-42.", 1.0, 1.0),
    ("amber-falcon-42", 1.0, 1.0),
    ("Amber - Falcon - 42", 0.0, 1.0),          # the flexible reading forgives case and spaces
    ("amber-falcon-24", 0.0, 0.0),
    ("I could not find a passphrase.", 0.0, 0.0),
    ("It is copper-maple-11, not amber-falcon-42", 0.0, 0.0),   # the first passphrase given counts
])
def test_needle_qa_is_judged_by_lm_evals_filters_and_exact_match(response, strict, flexible):
    import yaml
    from lm_eval.api.metrics import exact_match_hf_evaluate
    from lm_eval.filters.extraction import RegexFilter

    from studylib.quality.taskdata import TASKS_DIR

    cfg = yaml.safe_load((TASKS_DIR / "needle_qa.yaml").read_text())
    m = cfg["metric_list"][0]
    got = {}
    for f in cfg["filter_list"]:
        rx = f["filter"][0]
        pred = list(RegexFilter(rx["regex_pattern"], rx.get("group_select", 0)).apply([[response]], [{}]))[0][0]
        got[f["name"]] = exact_match_hf_evaluate([pred], ["amber-falcon-42"], regexes_to_ignore=m["regexes_to_ignore"],
                                                 ignore_case=m["ignore_case"],
                                                 ignore_punctuation=m["ignore_punctuation"])["exact_match"]
    assert (got["strict-match"], got["flexible-extract"]) == (strict, flexible)


def test_table3_ratio_bands_and_the_verdict_on_each_side():
    from studylib.claims.base import Measured
    from studylib.claims.quality import _table3_ratios_verdict
    from studylib.paper import criteria as C
    from studylib.stats import Estimate

    assert C.table3_ratio_band("gsm8k") == pytest.approx((1.0, 8.0))
    assert C.table3_ratio_band("long_context") == pytest.approx((5.0, 60.0))
    band = C.table3_ratio_band("gsm8k")
    inside = {"gsm8k_cot": {"combination": Estimate(3.0, 2.0, 4.0), "band": band, "working": {"int8": "refuted"}}}
    assert _table3_ratios_verdict(Measured(inputs={"per_task": inside})).startswith("supported; working variants: 0 in")
    below = {"gsm8k_cot": {"combination": Estimate(0.5, 0.2, 0.8), "band": band, "working": {}}}
    assert _table3_ratios_verdict(Measured(inputs={"per_task": below})) == "refuted"
    floored = {"gsm8k_cot": {"combination": None, "band": band, "working": {"a": "supported"}}}
    assert _table3_ratios_verdict(Measured(inputs={"per_task": floored})).startswith(C.FLOOR + "; working variants: 1 in")


def test_the_per_task_losses_and_the_retrieval_cells_read_every_variant_and_cell():
    import pandas as pd

    from studylib.book import figures
    from studylib.estimates.analysis import quality_deltas

    rows = []
    for v, hits in (("dense", (1, 1, 1, 1)), ("combo", (1, 0, 0, 0))):
        for i, (length, depth) in enumerate(((1024, 0.1), (1024, 0.9), (4096, 0.1), (4096, 0.9))):
            for rep in range(5):
                rows.append({"profile": "cpu-qwen", "model": "m", "variant": v, "task": "needle_qa",
                             "task_type": "retrieval", "item_id": f"n{i}-{rep}", "correct": float(hits[i]),
                             "gold_logprob": float("nan"), "n_tokens": 5, "length": length, "depth": depth})
    items = pd.DataFrame(rows)
    cells = figures.retrieval_cells(items, "cpu-qwen")
    assert len(cells) == 8 and (cells["n"] == 5).all()
    assert cells.set_index(["variant", "length", "depth"]).loc[("combo", 4096, 0.9), "accuracy"] == 0.0
    t = figures.task_losses(quality_deltas(items), items, "cpu-qwen")
    assert list(t["variant"]) == ["combo"] and t["loss_pp"].iloc[0] == pytest.approx(75.0)
    assert t["lo"].iloc[0] < 75 < t["hi"].iloc[0] and not t["at_floor"].iloc[0]
    assert figures.task_loss_figure(t) is not None and figures.retrieval_heatmap(cells) is not None


def test_the_quantization_quality_table_pairs_each_variant_with_dense_per_profile():
    import pandas as pd

    from studylib.estimates.analysis import quality_deltas
    from studylib.estimates.quantization import quality_table

    rows = [{"profile": "p", "model": "m", "variant": v, "task": "mmlu", "task_type": "factual", "item_id": f"i{i}",
             "correct": float(i % 4 != 0 or v == "dense"), "gold_logprob": -1.0, "n_tokens": 1}
            for v in ("dense", "int8_quanto") for i in range(40)]
    items = pd.DataFrame(rows)
    t = quality_table(items, quality_deltas(items), ["int8_quanto", "int4_quanto"])
    assert list(t["variant"]) == ["int8_quanto"]                 # int4 not measured: no row
    assert t["mmlu loss pp"].iloc[0].startswith("25.0 [") and t["mmlu loss pp"].iloc[0].endswith("(n=40)")


def test_the_token_budget_covers_all_but_the_allowed_share_of_pilot_answers():
    import pandas as pd

    from studylib.estimates.analysis import token_budget

    n = list(range(100, 2100, 100))                        # 20 answers, 100 ... 2000 tokens
    items = pd.DataFrame({"task": "math500_pilot", "variant": "dense", "n_tokens": n,
                          "truncated": [0.0] * 19 + [1.0]})
    b = token_budget(items, "math500_pilot")
    assert b["quantile_tokens"] == 1900 and b["budget"] == 1920 and b["enough"]   # one answer of 20 may hit it
    assert sum(x >= b["budget"] - 1 for x in n) <= 1
    assert not token_budget(items.assign(truncated=0.5), "math500_pilot")["enough"]
    assert token_budget(items, "math500") is None


def test_a_quality_row_names_the_engine_when_it_is_not_ours_alone():
    import types

    import pandas as pd

    from studylib.claims.quality import engines

    rows = pd.DataFrame([{"profile": "p", "task": "math500", "variant": "v", "n_items": 2}])
    def items(dense_engine, v_engine):
        return pd.DataFrame({"profile": "p", "task": "math500", "variant": ["dense", "dense", "v", "v"],
                             "params": [dense_engine] * 2 + [v_engine] * 2})
    vllm, ours = '{"engine": "vllm", "vllm": "0.32.0"}', '{"linear_kernel": "x"}'
    assert engines(types.SimpleNamespace(items=items(vllm, vllm)), rows) == "evaluated through vllm 0.32.0"
    assert engines(types.SimpleNamespace(items=items(ours, ours)), rows) == ""
    assert engines(types.SimpleNamespace(items=items(vllm, ours)), rows) == "engines: dense vllm 0.32.0, v ours"
