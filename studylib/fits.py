"""statsmodels fits of the paper's coefficients, with the tests against the printed values.

* Eq. 25: Q_loss = α·p + β·(1-Balance) + γ·C_drop, fitted by OLS (with intercept, HC3
  robust SEs) over the designed grid of (p, bias, capacity) configurations; α, β, γ tested
  against 0.8 / 2.5 / 8.0 with Wald t-tests.
* Eq. 19: f_attn = a + b·log10(N/7e9), tested against a = 0.45, b = -0.13.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf

from .paper import equations as eq


def fit_eq25(df: pd.DataFrame, outcome: str = "q_loss"):
    """df columns: outcome, p, imbalance (= 1 - balance), c_drop. Returns (result, tests)."""
    res = smf.ols(f"{outcome} ~ p + imbalance + c_drop", data=df).fit(cov_type="HC3")
    return res, _tests_vs_paper(res, {"p": eq.EQ26_ALPHA, "imbalance": eq.EQ27_BETA, "c_drop": eq.EQ28_GAMMA})


def _tests_vs_paper(res, paper: dict) -> pd.DataFrame:
    """Estimate, 95% CI and Wald t-test p-value against the paper's value, per coefficient."""
    tests = {}
    for name, value in paper.items():
        lo, hi = res.conf_int().loc[name]
        tests[name] = {"estimate": float(res.params[name]), "lo": float(lo), "hi": float(hi), "paper": value,
                       "p_value_vs_paper": float(np.asarray(res.t_test(f"{name} = {value}").pvalue))}
    return pd.DataFrame(tests).T


def fit_eq19(df: pd.DataFrame):
    """df columns: n_params, f_attn. Returns (result, tests) for intercept/slope vs 0.45/-0.13."""
    d = df.assign(logN=np.log10(df["n_params"] / 7e9))
    res = smf.ols("f_attn ~ logN", data=d).fit()
    return res, _tests_vs_paper(res, {"Intercept": 0.45, "logN": -0.13})
