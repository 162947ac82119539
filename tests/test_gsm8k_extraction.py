"""GSM8K answer extraction (studylib/quality/tasks/gsm8k_cot.yaml) through lm-eval's own filters and
exact_match, on hand-written model outputs."""
import pytest
import yaml

from studylib.quality.taskdata import TASKS_DIR

CFG = yaml.safe_load((TASKS_DIR / "gsm8k_cot.yaml").read_text())


def _score(response: str, gold_solution: str) -> dict:
    from lm_eval.api.metrics import exact_match_hf_evaluate
    from lm_eval.filters.extraction import RegexFilter

    m = CFG["metric_list"][0]
    out = {}
    for f in CFG["filter_list"]:
        rx = f["filter"][0]
        got = list(RegexFilter(rx["regex_pattern"], rx.get("group_select", 0)).apply([[response]], [{}]))[0][0]
        em = exact_match_hf_evaluate([got], [gold_solution], regexes_to_ignore=m["regexes_to_ignore"],
                                     ignore_case=m["ignore_case"], ignore_punctuation=m["ignore_punctuation"])
        out[f["name"]] = (got, em["exact_match"])
    return out


GOLD = "She pays 3 * 6 = <<3*6=18>>18 dollars.\n#### 18"


@pytest.mark.parametrize("response,strict,flexible", [
    ("3 times 6 is 18.\nThe answer is \\boxed{18}.", 1.0, 1.0),
    ("So she pays \\boxed{\\$18} in total.", 1.0, 1.0),
    ("First 12, then 18 dollars, so \\boxed{ 18 }", 1.0, 1.0),
    # an algebraic box: the strict rule finds no number, the flexible rule takes the last one
    ("Let W_0 be ... \\boxed{6W_0 + 18}", 0.0, 1.0),
    # the last boxed number counts, not an earlier one
    ("Try \\boxed{12}? No: recompute, \\boxed{18}", 1.0, 1.0),
    ("I think it is 18 but I am not sure, maybe 20", 0.0, 0.0),
    ("The total is \\boxed{17}. Earlier I wrote 18", 0.0, 1.0),
])
def test_strict_and_flexible_extraction(response, strict, flexible):
    s = _score(response, GOLD)
    assert s["strict-match"][1] == strict, s
    assert s["flexible-extract"][1] == flexible, s


def test_thousands_separator_and_cut_off_answer():
    gold = "Total: 1000 + 250 = <<1000+250=1250>>1250\n#### 1,250"
    assert _score("\\boxed{1,250}", gold)["strict-match"][1] == 1.0
    assert _score("\\boxed{1250}", gold)["strict-match"][1] == 1.0
    # a response cut off at the token limit before its box scores nothing under strict
    assert _score("Step 1: 1000 + 250 = 1250. Step 2: we now need to", gold)["strict-match"][0] == "[invalid]"


# ---- issue 36: the same answers judged by math-verify (studylib/quality/tasks/answers.py), the primary
# score since 2026-12-03; the string scores above stay beside it for one release
from studylib.quality.tasks import answers  # noqa: E402

SPEC = CFG["answer_check"]


@pytest.mark.parametrize("response,strict,flexible", [
    ("3 times 6 is 18.\nThe answer is \\boxed{18}.", 1.0, 1.0),
    ("So she pays \\boxed{\\$18} in total.", 1.0, 1.0),
    # numbers compared as numbers: the string rule scored this wrong under both filters
    ("So she pays \\boxed{18.00}.", 1.0, 1.0),
    # an algebraic box is not 18, and the flexible reading no longer takes a number out of it
    ("Let W_0 be ... \\boxed{6W_0 + 18}", 0.0, 0.0),
    ("Try \\boxed{12}? No: recompute, \\boxed{18}", 1.0, 1.0),
    ("I think it is 18 but I am not sure, maybe 20", 0.0, 0.0),
    # the final answer is the box, not a number written after it
    ("The total is \\boxed{17}. Earlier I wrote 18", 0.0, 0.0),
    ("She pays \\boxed{18}. On the 3rd day she rests.", 1.0, 1.0),
    # no box: strict reads nothing; flexible reads the final answer
    ("The final answer is $18$.", 0.0, 1.0),
])
def test_math_verify_judges_numbers_as_numbers(response, strict, flexible):
    c = answers.check(SPEC, response, {"answer": GOLD})
    assert (c.correct, c.correct_flexible) == (strict, flexible), c


def test_known_math_answers_are_equivalent():
    spec = {"checker": "math_verify", "gold_field": "answer"}
    assert answers.check(spec, "\\boxed{0.5}", {"answer": "\\frac{1}{2}"}).correct == 1.0
    assert answers.check(spec, "\\boxed{\\frac{2}{4}}", {"answer": "0.5"}).correct == 1.0
    assert answers.check(spec, "\\boxed{\\frac{1}{3}}", {"answer": "0.5"}).correct == 0.0
    assert answers.check(spec, "\\boxed{1,250}", {"answer": "1250"}).correct == 1.0


def test_unknown_checker_and_unreadable_gold_fail_clearly():
    with pytest.raises(ValueError, match="unknown answer checker"):
        answers.check({"checker": "nope"}, "\\boxed{1}", {"answer": "1"})
    with pytest.raises(ValueError, match="cannot read the gold"):
        answers.check(SPEC, "\\boxed{1}", {"answer": "#### "})


def test_rescored_units_replace_the_string_scores_and_keep_them_beside():
    import pandas as pd

    from studylib.results import apply_rescores

    items = pd.DataFrame({"profile": "p", "unit": ["u"] * 3 + ["w"], "item_id": ["a", "b", "c", "a"],
                          "correct": [0.0, 1.0, 0.0, 1.0], "correct_flexible": [1.0, 1.0, 0.0, 1.0]})
    scores = pd.DataFrame({"profile": "p", "unit": "u", "item_id": ["a", "b"], "correct": [1.0, 1.0],
                           "correct_flexible": [1.0, 0.0], "answer_checker": "math-verify==x"})
    out = apply_rescores(items, scores).set_index(["unit", "item_id"])
    assert out.loc[("u", "a"), "correct"] == 1.0 and out.loc[("u", "a"), "correct_string"] == 0.0
    assert out.loc[("u", "b"), "correct_flexible"] == 0.0 and out.loc[("u", "b"), "correct_flexible_string"] == 1.0
    # an item without a re-judged score keeps its score; another unit with the same item id too
    assert out.loc[("u", "c"), "correct"] == 0.0 and pd.isna(out.loc[("u", "c"), "correct_string"])
    assert out.loc[("w", "a"), "correct"] == 1.0
    assert len(out) == len(items)
