"""H3 / Phase 2: engineering ROI (Eq. 33, hours per 1x speedup) by Monte Carlo.

Hours are the paper's own ranges (Table 5), drawn uniformly — nothing here measures hours.
Speedups are the study's measurements, drawn from a normal whose 95% interval is the measured
CI (the GPU estimates' CIs are bootstraps of replay samples; a normal with the same 95% width is
the simplest faithful stand-in and is stated as such). Each draw evaluates the pre-registered
criteria of ``paper.criteria``; the verdict is the share of draws in which a criterion holds.

H3's wording, "< 300 h per 1x (within 30% of quantization)", reads two ways; both are computed:
* reading A: sparse routing's hours per 1x < 300;
* reading B: sparse routing's hours per 1x ≤ 1.3 × int8's;
* the pre-registered verdict (``criteria.h3_holds``) needs both.
Phase 2 (``criteria.phase2_verdict``), "quantization + speculative decoding beat sparse routing
on ROI": both alternatives have fewer hours per 1x than sparse routing in the same draw
(operationalised 2026-11-24, before any Monte Carlo result was computed).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from studylib.paper import criteria as C
from studylib.paper import equations as eq
from studylib.paper.tables import TABLE5
from studylib.stats import Estimate

DRAWS = 20000
SEED = 20261124


def _speedup_draws(e: Estimate, rng, n: int) -> np.ndarray:
    sd = max((e.hi - e.lo) / (2 * 1.96), 1e-9)
    return np.maximum(rng.normal(e.value, sd, n), 1e-3)


def simulate(speedups: dict[str, Estimate], hours: dict[str, tuple[float, float]] | None = None,
             n: int = DRAWS, seed: int = SEED) -> pd.DataFrame:
    """One row per draw: hours, speedup and hours per 1x of each technique in ``speedups``
    (keys of Table 5: sparse_routing, int8, spec_decode, ...)."""
    rng = np.random.default_rng(seed)
    hours = hours or {k: TABLE5[k]["hours"] for k in speedups}
    out = {}
    for k, e in speedups.items():
        lo, hi = hours[k]
        h = rng.uniform(lo, hi, n)
        s = _speedup_draws(e, rng, n)
        out[f"{k}_hours"], out[f"{k}_speedup"], out[f"{k}_hpx"] = h, s, eq.eq33_hours_per_speedup(h, s)
    return pd.DataFrame(out)


def h3_probabilities(draws: pd.DataFrame) -> dict[str, float]:
    sp, q = draws["sparse_routing_hpx"], draws["int8_hpx"]
    return {"A: < 300 h per 1x": float(np.mean(sp < C.H3_MAX_HOURS_PER_X)),
            "B: within 30% of int8": float(np.mean(sp <= C.H3_MAX_REL_TO_QUANT * q)),
            "A and B (pre-registered)": float(np.mean(C.h3_holds(sp, q)))}


def phase2_probability(draws: pd.DataFrame) -> float | None:
    need = {"sparse_routing_hpx", "int8_hpx", "spec_decode_hpx"}
    if not need <= set(draws):
        return None
    return float(np.mean((draws["int8_hpx"] < draws["sparse_routing_hpx"])
                         & (draws["spec_decode_hpx"] < draws["sparse_routing_hpx"])))


def ranking_probabilities(draws: pd.DataFrame) -> pd.Series:
    """Probability of each ordering of the techniques by hours per 1x (best first)."""
    cols = [c for c in draws if c.endswith("_hpx")]
    names = np.array([c[:-4] for c in cols])
    order = np.argsort(draws[cols].to_numpy(), axis=1)
    keys = [" < ".join(names[o]) for o in order]
    return pd.Series(keys).value_counts(normalize=True)


def sensitivity(speedups: dict[str, Estimate], sparse_hours=np.arange(100, 1601, 50), n: int = 4000) -> pd.DataFrame:
    """How H3's probability moves with the sparse-routing hours (a point value per x; the
    other techniques keep the paper's ranges)."""
    rows = []
    for h in sparse_hours:
        hours = {k: TABLE5[k]["hours"] for k in speedups} | {"sparse_routing": (float(h), float(h))}
        p = h3_probabilities(simulate(speedups, hours, n))
        rows += [{"sparse_routing_hours": float(h), "reading": k, "probability": v} for k, v in p.items()]
    return pd.DataFrame(rows)


def break_even_speedup(hours: float = TABLE5["sparse_routing"]["hours"][0]) -> float:
    """The speedup at which ``hours`` of work reach H3's 300 h per 1x (reading A)."""
    return hours / C.H3_MAX_HOURS_PER_X
