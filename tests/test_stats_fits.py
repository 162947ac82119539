import numpy as np
import pandas as pd
import pytest

from studylib.estimates.fits import fit_eq19, fit_eq25
from studylib.paper import criteria as C
from studylib.stats import (
    Estimate,
    bootstrap_ratio_of_medians,
    interval_verdict,
    mcnemar_pvalue,
    paired_bootstrap_delta,
    upper_bound_verdict,
)

COMBO = "sparsegpt30_moe4_top1"  # a label for the variant under test


def test_fit_eq25_recovers_known_coefficients():
    rng = np.random.default_rng(0)
    n = 200
    df = pd.DataFrame({"p": rng.uniform(0, 0.5, n), "imbalance": rng.uniform(0, 0.6, n), "c_drop": rng.uniform(0, 0.2, n)})
    df["q_loss"] = 0.3 + 1.5 * df.p + 4.0 * df.imbalance + 12.0 * df.c_drop + rng.normal(0, 0.05, n)
    res, tests = fit_eq25(df)
    assert tests.loc["p", "estimate"] == pytest.approx(1.5, abs=0.1)
    assert tests.loc["imbalance", "estimate"] == pytest.approx(4.0, abs=0.1)
    assert tests.loc["c_drop", "estimate"] == pytest.approx(12.0, abs=0.3)
    assert tests.loc["c_drop", "p_value_vs_paper"] < 1e-6   # 12 is not the paper's 8


def test_fit_eq19_does_not_reject_paper_on_paper_data():
    N = np.array([7e9, 13e9, 30e9, 70e9, 175e9] * 3)
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"n_params": N, "f_attn": 0.45 - 0.13 * np.log10(N / 7e9) + rng.normal(0, 0.005, len(N))})
    _, tests = fit_eq19(df)
    assert tests.loc["logN", "estimate"] == pytest.approx(-0.13, abs=0.02)
    assert tests.loc["logN", "p_value_vs_paper"] > 0.01


def test_bootstrap_ratio_ci_covers_true_ratio():
    rng = np.random.default_rng(2)
    a = rng.normal(2.0, 0.05, 200)
    b = rng.normal(1.0, 0.02, 200)
    e = bootstrap_ratio_of_medians(a, b)
    assert e.lo < 2.0 < e.hi and e.hi - e.lo < 0.1


def test_paired_delta_and_mcnemar():
    a = np.array([1] * 80 + [0] * 20)
    b = np.array([1] * 60 + [0] * 40)
    e = paired_bootstrap_delta(a, b)
    assert e.value == pytest.approx(0.2) and e.lo > 0
    assert mcnemar_pvalue(a, b) < 0.001


def test_verdict_rules():
    assert interval_verdict(Estimate(1.0, 0.95, 1.05), 0.9, 1.1) == "supported"
    assert interval_verdict(Estimate(0.5, 0.45, 0.55), 0.9, 1.1) == "refuted"
    assert interval_verdict(Estimate(0.9, 0.85, 0.95), 0.9, 1.1) == "inconclusive"
    assert upper_bound_verdict(Estimate(0.5, 0.2, 0.8), 1.0) == "supported"
    assert upper_bound_verdict(Estimate(5, 4, 6), 3.0) == "refuted"


def test_h1_criterion():
    mid = {s: C.table1_midpoint(s) for s in C.H1_SIZES}
    good = {s: Estimate(m, m * 0.97, m * 1.03) for s, m in mid.items()}
    assert C.h1_verdict(good) == "supported"
    bad = dict(good, **{"70B": Estimate(1.1, 1.05, 1.15)})
    assert C.h1_verdict(bad) == "refuted"
    assert C.h1_verdict({}) == C.NOT_MEASURED


def test_fit_eq25_refuses_unidentified_design_and_reports_diagnostics():
    from studylib.estimates.fits import diagnostics

    df = pd.DataFrame({"p": [0.0, 0.3] * 4, "imbalance": [0.1, 0.2, 0.3, 0.4] * 2, "c_drop": 0.0, "q_loss": 1.0})
    with pytest.raises(ValueError, match="c_drop"):
        fit_eq25(df)
    with pytest.raises(ValueError, match=">= 6"):
        fit_eq25(df.head(4))
    rng = np.random.default_rng(3)
    n = 40
    d = pd.DataFrame({"p": rng.uniform(0, .5, n), "imbalance": rng.uniform(0, .5, n), "c_drop": rng.uniform(0, .2, n)})
    d["q_loss"] = 0.8 * d.p + 2.5 * d.imbalance + 8 * d.c_drop + rng.normal(0, 0.01, n)
    res, tests = fit_eq25(d)
    assert tests.loc["Intercept", "p_value_vs_paper"] > 0.01  # generated with no intercept
    diag = diagnostics(res)
    assert diag["n"] == n and diag["max_vif"] < 2 and diag["r2"] > 0.99


def _items(task, variant, correct, lp, n_tok=1):
    return pd.DataFrame({"profile": "t", "model": "m", "task": task, "task_type": "x", "variant": variant,
                         "item_id": [f"{task}-{i}" for i in range(len(correct))], "correct": correct,
                         "gold_logprob": lp, "n_tokens": n_tok})


def test_degradation_ratio_uses_logprob_when_at_chance_and_recovers_ratio():
    from studylib.estimates.analysis import degradation_ratio

    rng = np.random.default_rng(4)
    n = 300
    at_chance = (rng.random(n) < 0.25).astype(float)
    base_r, base_f = rng.normal(-2, 0.3, n), rng.normal(-1, 0.3, n)
    items = pd.concat([
        _items("gsm8k", "dense", np.zeros(n), base_r), _items("gsm8k", COMBO, np.zeros(n), base_r - 0.6 + rng.normal(0, .1, n)),
        _items("mmlu", "dense", at_chance, base_f), _items("mmlu", COMBO, at_chance, base_f - 0.2 + rng.normal(0, .1, n))])
    r = degradation_ratio(items, COMBO)
    assert r["measure"].startswith("gold log-prob")
    assert r["ratio"].value == pytest.approx(3.0, rel=0.1) and r["ratio"].lo < 3.0 < r["ratio"].hi


def test_degradation_ratio_uses_accuracy_when_above_chance():
    from studylib.estimates.analysis import degradation_ratio

    n = 400
    dense = np.array([1.0] * 300 + [0.0] * 100)
    r_var = np.array([1.0] * 240 + [0.0] * 160)   # 15 pp lost
    f_var = np.array([1.0] * 280 + [0.0] * 120)   # 5 pp lost
    lp = np.full(n, -1.0)
    items = pd.concat([_items("probe_arith", "dense", dense, lp), _items("probe_arith", COMBO, r_var, lp),
                       _items("probe_facts", "dense", dense, lp), _items("probe_facts", COMBO, f_var, lp)])
    r = degradation_ratio(items, COMBO)
    assert r["measure"] == "accuracy points" and r["ratio"].value == pytest.approx(3.0)
    assert C.h2_verdict(None, None, r["ratio"]) in ("supported", "inconclusive")
    assert r["reasoning_acc"] == pytest.approx(0.6) and not r["floored"]
    # a variant scoring 0 on the reasoning task is at the floor: its loss is dense's accuracy (75 pp)
    floor = pd.concat([items[items["variant"] == "dense"], _items("probe_arith", COMBO, np.zeros(n), lp),
                       _items("probe_facts", COMBO, f_var, lp)])
    r0 = degradation_ratio(floor, COMBO)
    assert r0["floored"] and r0["reasoning_acc"] == 0.0 and r0["ratio"].value == pytest.approx(15.0)


def test_zero_correct_is_never_above_chance_so_no_accuracy_verdict():
    import pandas as pd

    from studylib.estimates.analysis import above_chance

    def items(task, correct):
        return pd.DataFrame({"task": task, "variant": "dense", "correct": correct})

    assert not above_chance(items("gsm8k", [0.0] * 50), "gsm8k")       # 0% on GSM8K: floor, not skill
    assert above_chance(items("gsm8k", [1.0] * 5 + [0.0] * 45), "gsm8k")
    assert not above_chance(items("mmlu", [1.0] * 27 + [0.0] * 73), "mmlu")   # 27% of 4-way: chance
    assert above_chance(items("mmlu", [1.0] * 45 + [0.0] * 55), "mmlu")


def test_paired_interval_at_zero_discordance_is_not_a_point():
    import numpy as np

    from studylib.stats import paired_difference_ci
    a = np.r_[np.ones(200), np.zeros(100)].astype(bool)
    e = paired_difference_ci(a, a)            # the same 300 outcomes: no discordant item
    half = 1.959964 ** 2 / (300 + 1.959964 ** 2)  # Tango's closed form at b = c = 0
    assert e.value == 0 and abs(e.hi - half) < 1e-6 and abs(e.lo + half) < 1e-6
    assert e.hi > 0.01                        # so "< 1 pp" is not supported on no evidence


def test_paired_interval_agrees_with_mcnemar_direction_and_covers():
    import numpy as np

    from studylib.stats import paired_difference_ci
    rng = np.random.default_rng(0)
    cover = 0
    for _ in range(300):                       # true difference 0.05, discordance 0.15
        u = rng.random(400)
        a = u < 0.7
        b = a.copy()
        b[(u >= 0.0) & (u < 0.10)] = False       # a right, b wrong: 10%
        b[(u >= 0.70) & (u < 0.75)] = True       # a wrong, b right: 5%
        e = paired_difference_ci(a, b)
        cover += e.lo <= 0.05 <= e.hi
    assert 0.92 <= cover / 300 <= 0.98         # a 95% interval covers about 95% of the time


def test_power_matches_the_closed_form_and_simulation():
    import numpy as np

    from studylib.stats import paired_difference_ci, paired_n_required, paired_power
    # closed form: n = (z_.975 + z_.8)^2 * psi / margin^2 = 7.849 * 0.1 / 1e-4
    assert paired_n_required(0.1, 0.01) == 7849
    assert abs(paired_power(7849, 0.1, 0.01) - 0.8) < 1e-3
    assert paired_power(100, 0.1, 0.01) < 0.1 and paired_n_required(0.1, 0.01, true_delta=0.02) > 10**9
    # simulation: with n from the formula, "upper end < margin" happens about 80% of the time
    rng = np.random.default_rng(1)
    n = paired_n_required(0.2, 0.05)
    hits = 0
    for _ in range(200):
        u = rng.random(n)
        a = u < 0.6
        b = a.copy()
        b[u < 0.1] = False
        b[(u >= 0.6) & (u < 0.7)] = True
        hits += paired_difference_ci(a, b).hi < 0.05
    assert 0.7 <= hits / 200 <= 0.9


def test_item_level_eq25_recovers_known_coefficients_and_is_honest_about_items():
    import numpy as np
    import pandas as pd

    from studylib.estimates.fits import eq25_equivalence, fit_eq25_items
    rng = np.random.default_rng(3)
    design = [(p, imb, cd) for p in (0.0, 0.3) for imb in (0.05, 0.4) for cd in (0.0, 0.2)]
    n_items = 400
    item_effect = rng.normal(0, 3, n_items)      # items differ in difficulty: shared across points
    rows = []
    for k, (p, imb, cd) in enumerate(design):
        mean = 0.8 * 100 * p / 10 + 2.5 * imb * 10 + 8.0 * cd * 10   # coefficients in pp per unit
        for i in range(n_items):
            rows.append({"item_id": f"i{i}", "task": "t", "variant": f"v{k}", "p": p, "imbalance": imb,
                         "c_drop": cd, "loss": mean + item_effect[i] + rng.normal(0, 2)})
    df = pd.DataFrame(rows)
    res, tests = fit_eq25_items(df)
    truth = {"p": 8.0, "imbalance": 25.0, "c_drop": 80.0}
    for k, v in truth.items():   # within 4 clustered standard errors (3 coefficients: no chance failure)
        assert abs(res.params[k] - v) < 4 * res.bse[k], (k, res.params[k], res.bse[k])
    assert tests.loc["p", "df"] == n_items - 1      # t with (items - 1) df, not n - 4
    # the same data, evaluated against the paper's printed values, are refuted (they differ)
    assert eq25_equivalence(tests) == "refuted"
    # a "paper" that printed the fitted values is supported (CIs narrow against the 50% margin) ...
    t2 = tests.copy()
    t2["paper"] = tests["estimate"]
    assert eq25_equivalence(t2) == "supported"
    # ... but not from a quarter of the items' evidence when the margin is tight
    _, few = fit_eq25_items(df[df["item_id"].isin([f"i{i}" for i in range(8)])])
    few["paper"] = few["estimate"]
    assert eq25_equivalence(few, margin=0.05) == "inconclusive"
    _, no_int = fit_eq25_items(df, intercept=False)
    assert "Intercept" not in no_int.index


def test_versus_pairs_a_step_against_the_variant_it_stacks_on_not_against_dense():
    from studylib.estimates.analysis import versus

    n = 200
    lp = np.zeros(n)
    base = np.ones(n)
    base[:20] = 0                                    # the base variant misses items 0-19
    stacked = base.copy()
    stacked[20:30] = 0                               # the added step loses 10 more items (5 pp)...
    stacked[:4] = 1                                  # ...and regains 4 of the base's misses (2 pp)
    items = pd.concat([_items("gsm8k", "dense", np.ones(n), lp), _items("gsm8k", "base", base, lp),
                       _items("gsm8k", "stack", stacked, lp)])
    d = versus(items, "stack", "base")
    assert len(d) == 1 and d["n_items"].iloc[0] == n
    r = d.iloc[0]
    assert r["acc_loss_pp"] == pytest.approx(3.0) and r["acc_loss_lo"] < 3.0 < r["acc_loss_hi"]
    assert r["discordance"] == pytest.approx(14 / n)
    assert versus(items, "missing", "base").empty


def test_outcome_agreement_counts_kept_outcomes_with_an_interval_that_cannot_collapse():
    import pandas as pd

    from studylib.estimates.analysis import outcome_agreement

    rows = [{"task": "mmlu", "variant": v, "item_id": i, "correct": c}
            for v, cs in (("dense", [1, 0, 1, 1]), ("dense_fp32", [1, 0, 0, 1, 1])) for i, c in enumerate(cs)]
    rows += [{"task": "gsm8k", "variant": v, "item_id": 0, "correct": 1, "response": t}
             for v, t in (("dense", "42"), ("dense_fp32", "42"))]
    a = outcome_agreement(pd.DataFrame(rows), "dense_fp32").set_index("task")
    assert a.loc["mmlu", "items"] == 4 and a.loc["mmlu", "same_outcome"] == 3
    assert a.loc["gsm8k", "agreement"] == 1.0 and a.loc["gsm8k", "lo"] < 1.0      # Wilson: not [1, 1] on one item
    assert a.loc["gsm8k", "identical_text"] == 1 and pd.isna(a.loc["mmlu", "identical_text"])
