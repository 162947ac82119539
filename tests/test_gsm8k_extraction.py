"""GSM8K answer extraction (studylib/tasks/gsm8k_cot.yaml) through lm-eval's own filters and
exact_match, on hand-written model outputs."""
import pytest
import yaml

from studylib.taskdata import TASKS_DIR

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
