"""What each technique buys and what it costs, on one model: its decode speedup on this CPU
(whole greedy generation, each variant on its fastest measured kernel) beside its paired MMLU loss
against dense, both with 95% intervals. One row per variant measured both ways on the same
profile; the figure in chapter 4 plots them."""
from __future__ import annotations

import pandas as pd

from .claims import Data
from .claims.hardware import cpu_decode_speedup
from .claims.quality import loss

#: Every technique the study executes on the CPU, in the order the chapter lists them.
VARIANTS = ("sparsegpt30", "literal_moe4_top1", "sparsegpt30_literal_moe4_top1", "cmoe_a25", "teal_a25",
            "int8_quanto", "int4_quanto", "sparsegpt30_int8_quanto")
FAMILY = {"sparsegpt30": "pruning", "literal_moe4_top1": "sparse routing",
          "sparsegpt30_literal_moe4_top1": "sparse routing", "cmoe_a25": "sparse routing",
          "teal_a25": "activation sparsity", "int8_quanto": "quantization", "int4_quanto": "quantization",
          "sparsegpt30_int8_quanto": "pruning + quantization"}


def speed_quality(d: Data | None = None, task: str = "mmlu", batch: int = 1) -> pd.DataFrame:
    """variant, family, profile, speedup (lo, hi), loss_pp (lo, hi), n_items — only where the speed
    and the loss were measured on the same profile."""
    d = d or Data()
    rows = []
    for v in VARIANTS:
        s = cpu_decode_speedup(d, (v,), batch)
        e, q = loss(d, task, (v,))
        if s is None or e is None or not s["scale"].startswith(f"{q['model'].iloc[0]} ({q['profile'].iloc[0]})"):
            continue
        sp = s["estimate"]
        rows.append({"variant": v, "family": FAMILY[v], "profile": q["profile"].iloc[0],
                     "speedup": sp.value, "speedup_lo": sp.lo, "speedup_hi": sp.hi,
                     "loss_pp": e.value, "loss_lo": e.lo, "loss_hi": e.hi, "n_items": int(q["n_items"].iloc[0])})
    return pd.DataFrame(rows)
