"""studylib.quality.machine_check: committed items re-measured on another machine, compared item by item."""
import pandas as pd
import pytest

from studylib.config import StudyConfigError, load_profile
from studylib.quality.machine_check import check, comparison, summary


def _items(correct, logp, responses=None, cpu="AMD EPYC (AVX512)"):
    d = pd.DataFrame({"task": "t", "item_id": [f"i{k}" for k in range(len(correct))], "correct": correct,
                      "gold_logprob": logp, "cpu": cpu})
    if responses is not None:
        d["response"] = responses
    return d


def test_the_comparison_counts_changed_outcomes_responses_and_the_log_prob_gap():
    ref = _items([1.0, 0.0, 1.0, 0.0], [-1.0, -2.0, -3.0, -4.0], ["a", "b", "c", None])
    here = _items([1.0, 1.0, 1.0], [-1.0, -2.5, -3.125], ["a", "B", "c"]).drop(columns="cpu")
    t = comparison(here, ref)
    assert list(t["item_id"]) == ["i0", "i1", "i2"] and (t["cpu_reference"] == "AMD EPYC (AVX512)").all()
    assert summary(t) == {"items": 3, "outcome_differs": 1, "same_response": 2, "median_first_difference": 0.0,
                          "max_gold_logprob_gap": 0.5}
    assert list(t["response_here"]) == ["a", "B", "c"]        # this machine's text is kept for the audit
    scored = comparison(here.drop(columns="response"), ref.drop(columns="response"))
    both = pd.concat([t, scored.assign(task="u")])          # as read back from data/: NaN where no response
    assert "same_response" not in summary(both[both["task"] == "u"])


def test_an_item_missing_from_the_committed_unit_is_an_error_not_a_silent_drop():
    with pytest.raises(ValueError, match="i3"):
        comparison(_items([1.0] * 4, [0.0] * 4).drop(columns="cpu"), _items([1.0] * 3, [0.0] * 3))


def test_nothing_is_built_when_the_reference_unit_is_not_committed_or_the_item_count_is_off(data_dir):
    from studylib.quality.units import declared_profile

    prof = declared_profile(load_profile("cpu-qwen"))
    with pytest.raises(StudyConfigError, match="not committed"):
        check(prof, "dense", "mmlu", 16)
    with pytest.raises(StudyConfigError, match="1..250"):
        check(prof, "dense", "mmlu", 251)
    with pytest.raises(StudyConfigError, match="no planned unit"):
        check(prof, "dense", "needle")   # cpu-qwen plans no needle unit


def test_the_first_difference_is_where_two_responses_part():
    ref = _items([1.0] * 3, [0.0] * 3, ["The answer is 41", "abcdef", "same"])
    here = _items([1.0] * 3, [0.0] * 3, ["The answer is 42", "abc", "same"]).drop(columns="cpu")
    d = comparison(here, ref)["first_difference"]
    assert d.iloc[0] == 15.0
    assert d.iloc[1] == 3.0                                    # one is a prefix of the other
    assert d.iloc[2] != d.iloc[2]                              # NaN when identical


def test_one_tasks_items_are_evaluated_as_a_unit_part(monkeypatch):
    """machine-check and quant-check evaluate items [lo, hi) of one task through the units' own call
    (its signature once changed under them: this pins the adapter)."""
    import studylib.quality.units as U

    seen = {}
    monkeypatch.setattr(U, "evaluate_items", lambda model, tok, prof, parts, lines, lm=None: seen.update(parts=parts, lines=lines))
    U.evaluate_task_items("m", "t", {}, "mmlu", ["a\n", "b\n", "c\n"], 0, 2)
    assert seen["parts"] == [{"task": "mmlu", "lo": 0, "hi": 2}] and seen["lines"] == {"mmlu": ["a\n", "b\n", "c\n"]}
