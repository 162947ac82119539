"""The study's own latency model beside the paper's Eqs. 1-18, both scored on held-out shapes.

Bytes-moved model (fitted by OLS, statsmodels, HC3 SEs) on the measured decode timings:

    t = a · bytes_moved / copy_bandwidth  +  c_component  +  e · experts_touched  +  r · routed

* ``bytes_moved / copy_bandwidth``: the time to stream the unit's weights and KV cache at the
  device's *measured* copy bandwidth (``a`` ≥ 1 is the inverse of the achieved fraction);
* ``c_component``: a fixed cost per unit kind (one FFN vs one whole layer: launches, norms);
* ``experts_touched``: a per-active-expert cost (one more GEMV/grouped-GEMM tile each);
* ``routed``: the router (linear + top-k + softmax) and index bookkeeping of an MoE layer.

Scored by leave-one-shape-out: fitted on every other shape, predicting the held-out one; the
mean absolute % error (MAPE) per held-out shape. The paper's model (Eqs. 1-4 dense, Eqs. 9-11
sparse: 1 byte per parameter, D² attention, 2·D·D_ff FFN, 3/5 µs overheads, no batch term) has
no fitted parameters; it is scored on the same whole-layer units, both with its own A100
bandwidth (2 TB/s, literal) and with the measured copy bandwidth of the device (its form at
its best). Only the bf16 families the paper models (dense and MoE conversions) enter.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf

from studylib.paper import equations as eq
from studylib.shapes import get_shape
from studylib.timing.modules import TIMED_MODULES, routing_of

#: the modelled families: every timed module whose bytes are its structure (a dense FFN, a slice of one,
#: or experts behind a router) — not the quantized, 2:4 or zeroed-weight modules, whose kernels read
#: something else than their width says
FAMILIES = tuple(v for v, s in TIMED_MODULES.items() if s["kind"] in ("dense", "moe") and not s.get("zero_frac"))
FORMULA = "median_us ~ 0 + t_bytes_us + C(component) + experts + routed"


def design(timing: pd.DataFrame, peaks: pd.DataFrame) -> pd.DataFrame:
    """Decode units (one new token, uniform or no routing) of the modelled families, with features."""
    t = timing[timing["variant"].isin(FAMILIES) & timing["component"].isin(["layer", "ffn"])
               & timing["routing"].isin(["uniform", "none"])]
    if "tokens" in t:
        t = t[t["tokens"].fillna(1) == 1]
    t = t.merge(peaks[["profile", "copy_bandwidth_Bps"]], on="profile")
    if t.empty:
        return t
    parsed = t["variant"].map(routing_of)
    K = parsed.map(lambda r: r[0])
    k = parsed.map(lambda r: r[1])
    inferred = np.minimum(K, t["batch"] * k).where(K > 1, 0)   # uniform routing is round-robin
    touched = t["experts_touched"] if "experts_touched" in t else pd.Series(np.nan, index=t.index)
    return t.assign(median_us=t["median_s"] * 1e6,
                    t_bytes_us=t["bytes_moved"] / t["copy_bandwidth_Bps"] * 1e6,
                    experts=touched.where(K > 1, 0).fillna(inferred).astype(float),
                    routed=(K > 1).astype(float), K=K, k=k, p=parsed.map(lambda r: r[2]))


def fit(d: pd.DataFrame):
    return smf.ols(FORMULA, data=d).fit(cov_type="HC3")


def paper_layer_us(shape_name: str, variant: str, bandwidth: float = eq.PAPER_BW_BYTES_PER_S) -> float:
    """Eqs. 1-4 (dense) / Eqs. 9-11 (top-k of K, pruned p) for one layer, µs, the paper's own convention."""
    s = get_shape(shape_name)
    t_attn, t_ffn = eq.eq2_t_attn(s.hidden, bandwidth), eq.eq3_t_ffn(s.hidden, s.intermediate, bandwidth)
    K, k, p = routing_of(variant)
    if K == 1:
        return eq.eq1_t_layer_dense(t_attn, t_ffn)
    return eq.eq9_t_layer_sparse(t_attn, t_ffn * k, eq.eq10_t_gate(s.hidden, K, bandwidth), p=p, K=K)


def _mape(pred, obs) -> float:
    return float(np.mean(np.abs(np.asarray(pred) - np.asarray(obs)) / np.asarray(obs)) * 100)


def held_out_scores(d: pd.DataFrame) -> pd.DataFrame:
    """MAPE per profile and held-out shape: the bytes-moved model fitted without that shape, and
    the paper's model (literal and at the measured bandwidth) on that shape's whole-layer units."""
    rows = []
    for profile, dp in d.groupby("profile"):
        shapes = sorted(dp["shape"].unique())
        for held in shapes:
            train, test = dp[dp["shape"] != held], dp[dp["shape"] == held]
            if train["shape"].nunique() < 2 and len(shapes) > 2:
                continue
            try:
                pred = fit(train).predict(test)
            except (ValueError, np.linalg.LinAlgError):
                continue
            rows.append({"profile": profile, "held_out": held, "model": "bytes-moved (fitted on the other shapes)",
                         "units": len(test), "mape_pct": _mape(pred, test["median_us"])})
            layer = test[(test["component"] == "layer") & ~test["variant"].map(lambda v: TIMED_MODULES[v].get("slice", False))]
            if layer.empty:
                continue
            bw = float(layer["copy_bandwidth_Bps"].iloc[0])
            for name, b in (("paper Eqs. 1-18 (2 TB/s, literal)", eq.PAPER_BW_BYTES_PER_S),
                            ("paper Eqs. 1-18 at the measured bandwidth", bw)):
                pred = [paper_layer_us(s, v, b) for s, v in zip(layer["shape"], layer["variant"])]
                rows.append({"profile": profile, "held_out": held, "model": name, "units": len(layer),
                             "mape_pct": _mape(pred, layer["median_us"])})
    return pd.DataFrame(rows)
