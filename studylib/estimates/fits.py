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

from studylib.paper import equations as eq

EQ25_MIN_POINTS = 6  # 4 parameters + at least 2 residual degrees of freedom


def fit_eq25(df: pd.DataFrame, outcome: str = "q_loss"):
    """df columns: outcome, p, imbalance (= 1 - balance), c_drop. Returns (result, tests).
    The intercept is tested against 0 too (Eq. 25 has none). Raises ValueError when the
    design cannot identify the coefficients (too few points, or a regressor constant)."""
    d = df.dropna(subset=[outcome, "p", "imbalance", "c_drop"])
    if len(d) < EQ25_MIN_POINTS:
        raise ValueError(f"Eq. 25 needs >= {EQ25_MIN_POINTS} design points with {outcome!r}, got {len(d)}")
    flat = [c for c in ("p", "imbalance", "c_drop") if d[c].nunique() < 2]
    if flat:
        raise ValueError(f"Eq. 25 regressor(s) {flat} do not vary over the design")
    res = smf.ols(f"{outcome} ~ p + imbalance + c_drop", data=d).fit(cov_type="HC3")
    return res, _tests_vs_paper(res, {"Intercept": 0.0, "p": eq.EQ26_ALPHA, "imbalance": eq.EQ27_BETA,
                                      "c_drop": eq.EQ28_GAMMA})


#: Eq. 25 "supported" means the data pin each coefficient near the paper's value: its 90% CI
#: (TOST at 5%) inside [1 - m, 1 + m] x the paper's value. m fixed 2026-11-24, before the
#: repaired grid ran; "refuted": some 95% CI excludes the paper's value.
EQ25_EQUIVALENCE_MARGIN = 0.5
EQ25_TERMS = ("p", "imbalance", "c_drop")
EQ25_PAPER = {"p": eq.EQ26_ALPHA, "imbalance": eq.EQ27_BETA, "c_drop": eq.EQ28_GAMMA}


def fit_eq25_items(df: pd.DataFrame, outcome: str = "loss", intercept: bool = True):
    """Eq. 25 at item level: one row per (item, design point) with the item's loss (pp: 100 x
    (dense correct - variant correct), or nats per token) and the point's p, imbalance, c_drop.
    OLS with standard errors clustered by item (an item appears at every design point, so its
    rows are not independent) and t inference with (items - 1) degrees of freedom. Returns
    (result, tests) with the 95% and 90% CIs and the equivalence verdict's ingredients."""
    d = df.dropna(subset=[outcome, *EQ25_TERMS])
    points = d[list(EQ25_TERMS)].drop_duplicates()
    if len(points) < EQ25_MIN_POINTS - (0 if intercept else 1):
        raise ValueError(f"Eq. 25 needs >= {EQ25_MIN_POINTS} design points, got {len(points)}")
    flat = [c for c in EQ25_TERMS if d[c].nunique() < 2]
    if flat:
        raise ValueError(f"Eq. 25 regressor(s) {flat} do not vary over the design")
    groups = pd.factorize(d["item_id"].astype(str) + "|" + d.get("task", "").astype(str))[0]
    formula = f"{outcome} ~ p + imbalance + c_drop" + ("" if intercept else " - 1")
    res = smf.ols(formula, data=d).fit(cov_type="cluster", cov_kwds={"groups": groups}, use_t=True)
    ci90 = res.conf_int(alpha=0.10)
    tests = _tests_vs_paper(res, ({"Intercept": 0.0} if intercept else {}) | EQ25_PAPER)
    tests["lo90"], tests["hi90"] = ci90[0].reindex(tests.index), ci90[1].reindex(tests.index)
    tests["df"] = float(res.df_resid_inference) if getattr(res, "df_resid_inference", None) else float(len(set(groups)) - 1)
    return res, tests


def eq25_equivalence(tests: pd.DataFrame, margin: float = EQ25_EQUIVALENCE_MARGIN) -> str:
    """Pre-registered Eq. 25 verdict on an item-level fit (see EQ25_EQUIVALENCE_MARGIN)."""
    rows = tests.loc[list(EQ25_TERMS)]
    if ((rows["lo"] > rows["paper"]) | (rows["hi"] < rows["paper"])).any():
        return "refuted"
    near = (rows["lo90"] >= (1 - margin) * rows["paper"]) & (rows["hi90"] <= (1 + margin) * rows["paper"])
    return "supported" if near.all() else "inconclusive"


def eq25_influence(df: pd.DataFrame, outcome: str = "loss") -> pd.DataFrame:
    """Each design point's influence: the coefficients refitted without it (NaN when the rest
    cannot identify them)."""
    rows = []
    for v, _ in df.groupby("variant"):
        try:
            res, _ = fit_eq25_items(df[df["variant"] != v], outcome)
            rows.append({"left_out": v, **{k: float(res.params[k]) for k in EQ25_TERMS}})
        except ValueError:
            rows.append({"left_out": v, **{k: float("nan") for k in EQ25_TERMS}})
    return pd.DataFrame(rows)


def diagnostics(res) -> pd.Series:
    """Residual diagnostics a reviewer asks for: Breusch-Pagan (heteroskedasticity),
    Jarque-Bera (normality), condition number and max VIF (collinearity of the design)."""
    from statsmodels.stats.diagnostic import het_breuschpagan
    from statsmodels.stats.outliers_influence import variance_inflation_factor
    from statsmodels.stats.stattools import jarque_bera

    X = res.model.exog
    out = {"n": int(res.nobs), "r2": float(res.rsquared), "adj_r2": float(res.rsquared_adj),
           "jarque_bera_p": float(jarque_bera(res.resid)[1]), "condition_number": float(res.condition_number)}
    try:
        out["breusch_pagan_p"] = float(het_breuschpagan(res.resid, X)[1])
    except (ValueError, np.linalg.LinAlgError):
        out["breusch_pagan_p"] = float("nan")
    vifs = [variance_inflation_factor(X, i) for i in range(1, X.shape[1])] if X.shape[1] > 2 else [1.0]
    out["max_vif"] = float(np.max(vifs))
    return pd.Series(out)


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


# --- Eq. 25 where the outcome can move (issue 36): the paper's form beside a form with an intercept
def fit_forms(df: pd.DataFrame, terms: tuple[str, ...], extra: tuple[str, ...] = (), outcome: str = "loss") -> dict:
    """Item-level OLS of ``outcome`` on ``terms`` in two forms, standard errors clustered by item:

    * ``paper``: no intercept (Eq. 25 says an unpruned, balanced, drop-free model loses nothing);
    * ``free``: an intercept (a conversion's own cost, whatever its p) plus ``extra`` terms (the
      active fraction of a conversion, say).

    Returns {"paper": result, "free": result, "tests": the paper-form coefficients against Eq. 26-28
    (95% CIs, Wald p), "compare": AIC of each form, the likelihood-ratio statistic and its p (the OLS
    likelihoods: independent-errors approximation) and the clustered Wald test of the free form's
    extra terms (intercept included) = 0 — the test that says whether the paper's form is enough}."""
    from scipy.stats import chi2

    d = df.dropna(subset=[outcome, *terms, *extra])
    if d.empty or any(d[t].nunique() < 2 for t in terms):
        raise ValueError(f"terms {terms} do not vary over the design")
    groups = pd.factorize(d["item_id"].astype(str) + "|" + d.get("task", pd.Series("", index=d.index)).astype(str))[0]
    kw = {"cov_type": "cluster", "cov_kwds": {"groups": groups}, "use_t": True}
    paper = smf.ols(f"{outcome} ~ {' + '.join(terms)} - 1", data=d).fit(**kw)
    free = smf.ols(f"{outcome} ~ {' + '.join((*terms, *extra))}", data=d).fit(**kw)
    lr = 2 * (free.llf - paper.llf)
    k = len(extra) + 1
    wald = free.wald_test(", ".join(f"{t} = 0" for t in ("Intercept", *extra)), scalar=True)
    return {"paper": paper, "free": free,
            "tests": _tests_vs_paper(paper, {t: EQ25_PAPER[t] for t in terms if t in EQ25_PAPER}),
            "compare": {"aic_paper": float(paper.aic), "aic_free": float(free.aic), "lr": float(lr),
                        "lr_p": float(chi2.sf(max(lr, 0.0), k)), "wald_free_terms_p": float(wald.pvalue),
                        "n_items": int(len(set(groups))), "n_rows": int(len(d))}}


def logit_check(df: pd.DataFrame, term: str = "p"):
    """The pruning slope on the probability scale as a check on the linear fit: a logit of the
    variant's correctness on ``term`` (dense rows at 0 included), clustered by item; returns the
    result and the average marginal effect of ``term`` in accuracy points per unit."""
    import statsmodels.api as sm

    d = df.dropna(subset=["correct", term])
    groups = pd.factorize(d["item_id"].astype(str))[0]
    res = smf.glm(f"correct ~ {term}", data=d, family=sm.families.Binomial()).fit(
        cov_type="cluster", cov_kwds={"groups": groups})
    b = float(res.params[term])
    p = res.predict(d)
    return res, float(-100 * np.mean(b * p * (1 - p)))   # a loss: accuracy points lost per unit of term
