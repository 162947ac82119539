"""Confidence intervals and tests used for every reported number.

Bootstrap resampling is written here (numpy, ~20 lines) because the two shapes we need —
the ratio of two *medians* from independent timing samples, and a paired per-item delta —
are not single calls in statsmodels/scipy with a fixed seed and percentile output.
Equivalence (TOST) and McNemar come from statsmodels.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_B = 2000
DEFAULT_SEED = 20251101


@dataclass(frozen=True)
class Estimate:
    value: float
    lo: float
    hi: float
    level: float = 0.95

    def as_dict(self, prefix: str = "") -> dict:
        return {f"{prefix}value": self.value, f"{prefix}lo": self.lo, f"{prefix}hi": self.hi}

    def __str__(self) -> str:
        return f"{self.value:.3g} [{self.lo:.3g}, {self.hi:.3g}]"


def _percentiles(samples: np.ndarray, level: float) -> tuple[float, float]:
    a = (1 - level) / 2
    return float(np.quantile(samples, a)), float(np.quantile(samples, 1 - a))


def bootstrap_median(x, level: float = 0.95, B: int = DEFAULT_B, seed: int = DEFAULT_SEED) -> Estimate:
    """Percentile bootstrap CI of the median of independent samples."""
    x = np.asarray(x, dtype=float)
    rng = np.random.default_rng(seed)
    meds = np.median(x[rng.integers(0, len(x), (B, len(x)))], axis=1)
    return Estimate(float(np.median(x)), *_percentiles(meds, level), level)


def bootstrap_ratio_of_medians(num, den, level: float = 0.95, B: int = DEFAULT_B,
                               seed: int = DEFAULT_SEED, quantile: float = 0.5) -> Estimate:
    """CI of median(num)/median(den) (e.g. speedup = t_dense / t_variant), independent samples;
    another ``quantile`` (e.g. 0.95 for p95 latencies) in place of the median."""
    num, den = np.asarray(num, float), np.asarray(den, float)
    rng = np.random.default_rng(seed)
    mn = np.quantile(num[rng.integers(0, len(num), (B, len(num)))], quantile, axis=1)
    md = np.quantile(den[rng.integers(0, len(den), (B, len(den)))], quantile, axis=1)
    return Estimate(float(np.quantile(num, quantile) / np.quantile(den, quantile)), *_percentiles(mn / md, level),
                    level)


def paired_bootstrap_delta(a, b, level: float = 0.95, B: int = DEFAULT_B,
                           seed: int = DEFAULT_SEED) -> Estimate:
    """CI of mean(a - b) over items scored by both systems (paired by item)."""
    d = np.asarray(a, float) - np.asarray(b, float)
    if len(d) == 0:
        raise ValueError("no paired items")
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), (B, len(d)))].mean(axis=1)
    return Estimate(float(d.mean()), *_percentiles(means, level), level)


def bootstrap_ratio_of_paired_means(a_num, b_num, a_den, b_den, level: float = 0.95,
                                    B: int = DEFAULT_B, seed: int = DEFAULT_SEED) -> Estimate:
    """CI of mean(a_num-b_num)/mean(a_den-b_den), two independent paired item sets
    (e.g. reasoning loss / factual loss)."""
    dn = np.asarray(a_num, float) - np.asarray(b_num, float)
    dd = np.asarray(a_den, float) - np.asarray(b_den, float)
    rng = np.random.default_rng(seed)
    mn = dn[rng.integers(0, len(dn), (B, len(dn)))].mean(axis=1)
    md = dd[rng.integers(0, len(dd), (B, len(dd)))].mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = mn / md
    r = r[np.isfinite(r)]
    point = dn.mean() / dd.mean() if dd.mean() != 0 else float("nan")
    lo, hi = _percentiles(r, level) if len(r) else (float("nan"), float("nan"))
    return Estimate(float(point), lo, hi, level)


def mcnemar_pvalue(correct_a, correct_b) -> float:
    """Exact McNemar test on paired binary outcomes (statsmodels)."""
    from statsmodels.stats.contingency_tables import mcnemar

    a = np.asarray(correct_a, bool)
    b = np.asarray(correct_b, bool)
    table = [[int(np.sum(a & b)), int(np.sum(a & ~b))], [int(np.sum(~a & b)), int(np.sum(~a & ~b))]]
    return float(mcnemar(table, exact=True).pvalue)


def tost_ratio(x_variant_over_ref, low: float, upp: float) -> float:
    """TOST p-value that the mean log-ratio lies in [log low, log upp] (statsmodels ttost_ind
    is for two samples; here one sample of log-ratios against a band)."""
    from statsmodels.stats.weightstats import DescrStatsW

    lr = np.log(np.asarray(x_variant_over_ref, float))
    d = DescrStatsW(lr)
    return float(d.ttost_mean(np.log(low), np.log(upp))[0])


def interval_verdict(est: Estimate, lo: float, hi: float) -> str:
    """Pre-registered rule for a two-sided band: 'supported' when the whole CI lies in
    [lo, hi]; 'refuted' when the whole CI lies outside it; otherwise 'inconclusive'."""
    if not (np.isfinite(est.lo) and np.isfinite(est.hi)):
        return "inconclusive"
    if lo <= est.lo and est.hi <= hi:
        return "supported"
    if est.hi < lo or est.lo > hi:
        return "refuted"
    return "inconclusive"


def upper_bound_verdict(est: Estimate, bound: float) -> str:
    """Pre-registered rule for 'X < bound': supported when the CI's upper end is below the
    bound, refuted when its lower end is above it, else inconclusive."""
    if est.hi < bound:
        return "supported"
    if est.lo > bound:
        return "refuted"
    return "inconclusive"
