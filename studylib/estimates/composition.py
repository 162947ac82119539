"""Whole-model decode time composed from one measured layer: layers × t(layer) + t(head).

Timing a whole 70B model needs ~140 GB of weights, more than one H100 holds, so its
end-to-end numbers are *composed*: ``shape.layers`` times the measured decoder-layer time plus
the LM head, whose time is its bytes (vocab × hidden × 2) at the bandwidth the dense FFN of the
same shape and batch achieved (a GEMV of similar size). At Llama-3-8B the composition is
checked against the whole-model decode step that was measured (``composition_check``); the
book reports 70B by composition and says so.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from studylib.estimates.analysis import samples
from studylib.estimates.gpu_claims import gpu_timing, unit_samples
from studylib.shapes import get_shape
from studylib.stats import DEFAULT_B, DEFAULT_SEED, Estimate
from studylib.timing.modules import routed
from studylib.results import BASELINE


def head_seconds(t: pd.DataFrame, shape_name: str, batch: int) -> float | None:
    s = get_shape(shape_name)
    ffn = unit_samples(t, shape_name, BASELINE, "ffn", batch, "none")
    if ffn is None:
        return None
    return s.vocab * s.hidden * 2 / float(ffn["achieved_Bps"])


def _parts(t: pd.DataFrame, shape_name: str, variant: str, batch: int):
    """(replay samples of the layer, number of layers, head seconds), or None when not measured."""
    layer = unit_samples(t, shape_name, variant, "layer", batch, "uniform" if routed(variant) else "none")
    head = head_seconds(t, shape_name, batch)
    return None if layer is None or head is None else (samples(layer), get_shape(shape_name).layers, head)


def composed_seconds(timing: pd.DataFrame, shape_name: str, variant: str, batch: int = 1) -> float | None:
    """layers × median layer time + head."""
    p = _parts(gpu_timing(timing), shape_name, variant, batch)
    return None if p is None else p[1] * float(np.median(p[0])) + p[2]


def composed_speedup(timing: pd.DataFrame, shape_name: str, variant: str, batch: int = 1) -> Estimate | None:
    """Whole-model speedup of ``variant`` over dense by composition, percentile-bootstrap CI over
    the replay samples of both layers."""
    t = gpu_timing(timing)
    d, v = _parts(t, shape_name, BASELINE, batch), _parts(t, shape_name, variant, batch)
    if d is None or v is None:
        return None
    rng = np.random.default_rng(DEFAULT_SEED)

    def draws(x, layers, head):
        return layers * np.median(x[rng.integers(0, len(x), (DEFAULT_B, len(x)))], axis=1) + head

    r = draws(*d) / draws(*v)
    value = (d[1] * np.median(d[0]) + d[2]) / (v[1] * np.median(v[0]) + v[2])
    return Estimate(float(value), float(np.quantile(r, 0.025)), float(np.quantile(r, 0.975)))


def composition_check(timing: pd.DataFrame) -> pd.DataFrame:
    """Measured whole-model decode step vs its composition, for every model unit with its layer."""
    t = gpu_timing(timing)
    models = t[(t["component"] == "model") & (t["tokens"].fillna(1) == 1)] if not t.empty else t
    rows = []
    for _, m in models.iterrows():
        c = composed_seconds(t, m["shape"], m["variant"], int(m["batch"]))
        if c is not None:
            rows.append({"shape": m["shape"], "variant": m["variant"], "batch": int(m["batch"]),
                         "measured_ms": m["median_s"] * 1e3, "composed_ms": c * 1e3,
                         "error_pct": (c / m["median_s"] - 1) * 100})
    return pd.DataFrame(rows)
