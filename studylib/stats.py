"""Confidence intervals and tests used for every reported number.

Bootstrap resampling is written here (numpy, ~20 lines) because the two shapes we need —
the ratio of two *medians* from independent timing samples, and a paired per-item delta —
are not single calls in statsmodels/scipy with a fixed seed and percentile output.
Equivalence (TOST) and McNemar come from statsmodels.
"""
from __future__ import annotations

from collections.abc import Sequence
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


def paired_difference_ci(correct_a, correct_b, level: float = 0.95) -> Estimate:
    """Tango's (1998) score interval for the paired difference of proportions mean(a) - mean(b).

    Why not the paired bootstrap: with no discordant item it returns [0, 0] (every resample has
    difference 0), which would "pass" a "< X pp" claim on no evidence. The score interval inverts
    the score test of H0: p12 - p21 = Δ with the constrained maximum-likelihood p21, so at zero
    discordance it is [-z²/(n+z²), z²/(n+z²)], never a point. Written here because neither
    statsmodels nor scipy ships a paired score interval (statsmodels' confint_proportions_2indep
    is for independent samples).
    """
    a = np.asarray(correct_a, bool)
    b_ = np.asarray(correct_b, bool)
    if a.shape != b_.shape or a.size == 0:
        raise ValueError("paired outcomes must be two equal-length, non-empty arrays")
    return tango_interval(int(np.sum(a & ~b_)), int(np.sum(~a & b_)), a.size, level)


def tango_interval(b: int, c: int, n: int, level: float = 0.95) -> Estimate:
    """Tango's interval from the counts: ``b`` items only the first system gets right, ``c`` only
    the second, ``n`` items in all (``paired_difference_ci`` counts them)."""
    from scipy.optimize import brentq
    from scipy.stats import norm

    b, c = float(b), float(c)
    z = float(norm.ppf(0.5 + level / 2))
    theta = (b - c) / n

    def score(d):
        w = -b - c + (2 * n - b + c) * d
        q = (-w + np.sqrt(max(w * w + 8 * n * c * d * (1 - d), 0.0))) / (4 * n)
        var = n * (2 * q + d * (1 - d))
        num = b - c - n * d
        if var > 0:
            return num / np.sqrt(var)
        return 0.0 if num == 0 else np.copysign(np.inf, num)

    eps = 1e-12
    lo = -1.0 if score(-1 + eps) <= z else brentq(lambda d: score(d) - z, -1 + eps, theta)
    hi = 1.0 if score(1 - eps) >= -z else brentq(lambda d: score(d) + z, theta, 1 - eps)
    return Estimate(float(theta), float(lo), float(hi), level)


def paired_power(n: int, discordance: float, margin: float, true_delta: float = 0.0,
                 level: float = 0.95) -> float:
    """Probability that a two-sided ``level`` CI of a paired difference (loss) lies wholly below
    ``margin`` ("loss < margin" supported) with n items, when the true loss is ``true_delta``
    and a fraction ``discordance`` of items flips between the two systems. Normal approximation
    to the paired difference (Connor 1987): sd of one item's difference = sqrt(ψ - δ²)."""
    from scipy.stats import norm

    sd = np.sqrt(max(discordance - true_delta ** 2, 1e-12))
    z = norm.ppf(0.5 + level / 2)
    return float(norm.cdf((margin - true_delta) * np.sqrt(n) / sd - z))


def paired_n_required(discordance: float, margin: float, true_delta: float = 0.0, power: float = 0.8,
                      level: float = 0.95) -> int:
    """Items needed for ``paired_power`` to reach ``power`` (inf when the true loss is at or
    above the margin: no n supports the claim then)."""
    from scipy.stats import norm

    if true_delta >= margin:
        return int(np.iinfo(np.int64).max)
    sd2 = max(discordance - true_delta ** 2, 1e-12)
    z = norm.ppf(0.5 + level / 2) + norm.ppf(power)
    return int(np.ceil(z * z * sd2 / (margin - true_delta) ** 2))


def paired_power_exact(n: int, discordance: float, margin: float, true_delta: float = 0.0,
                       level: float = 0.95, tail: float = 1e-7) -> float:
    """Exact probability that Tango's ``level`` interval of the loss lies wholly below ``margin``
    (the "loss < margin" verdict) with n paired items, a discordance ψ and a true loss δ: the
    number of discordant items is Binomial(n, ψ), and each discordant item is a loss (dense right,
    variant wrong) with probability (ψ + δ) / 2ψ. For each discordant count the largest number of
    losses that still passes is found by bisection (the upper end grows with the losses), so the
    sum is exact up to the ``tail`` mass left out. ``paired_power`` is its normal approximation."""
    from scipy.stats import binom

    if not 0 < discordance <= 1 or abs(true_delta) > discordance:
        raise ValueError(f"need 0 < discordance <= 1 and |true_delta| <= discordance, got {discordance}, {true_delta}")
    p_loss = (discordance + true_delta) / (2 * discordance)
    lo, hi = int(binom.ppf(tail, n, discordance)), int(binom.isf(tail, n, discordance))
    passes = lambda nd, b: tango_interval(b, nd - b, n, level).hi < margin  # noqa: E731
    power = 0.0
    for nd in range(max(lo, 0), min(hi, n) + 1):
        if not passes(nd, 0):
            continue
        a, z = 0, nd          # passes(nd, a) holds; find the largest such b
        if passes(nd, nd):
            a = nd
        else:
            while z - a > 1:
                m = (a + z) // 2
                a, z = (m, z) if passes(nd, m) else (a, m)
        power += binom.pmf(nd, n, discordance) * binom.cdf(a, nd, p_loss)
    return float(power)


def fieller_ratio(num: float, den: float, var_num: float, var_den: float, cov: float = 0.0,
                  level: float = 0.95) -> Estimate:
    """Fieller's interval for num/den from two approximately normal estimates (their variances and
    covariance): the θ with (num - θ·den)² ≤ z²·(var_num - 2θ·cov + θ²·var_den). Bounded only when
    the denominator is itself distinguishable from 0 (den² > z²·var_den); otherwise (-inf, inf) —
    a ratio over a loss that may be 0 has no finite interval. The check beside the bootstrap."""
    from scipy.stats import norm

    z2 = float(norm.ppf(0.5 + level / 2)) ** 2
    value = num / den if den != 0 else float("nan")
    a = den * den - z2 * var_den
    b = -2 * (num * den - z2 * cov)
    c = num * num - z2 * var_num
    disc = b * b - 4 * a * c
    if a <= 0 or disc < 0:
        return Estimate(value, -np.inf, np.inf, level)
    r = np.sqrt(disc)
    return Estimate(value, float((-b - r) / (2 * a)), float((-b + r) / (2 * a)), level)


def first_divergence(a: Sequence, b: Sequence) -> int | None:
    """Index of the first differing element — token ids here, characters of a response in
    ``machine_check`` (None when the two are equal; the shorter length when one is a prefix)."""
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))
