# %% [markdown]
# # Chapter 4 — Phase 2: quantization, speculative decoding, ROI (H3)
#
# **Claims.** int8 1.8–2.2x, speculative decoding 2.3–2.7x, both 2.7–3.3x (Tables 5, 7–9);
# η_interaction ≈ 0.8 (Eq. 34); sparse routing costs 412 h per 1x speedup vs 42 for int8.
#
# The paper's Table 5 does not follow from its own ranges: hours ÷ speedup at the range
# midpoints gives the values below (Eq. 33).

# %%
import pandas as pd
from studylib.paper import equations as eq
from studylib.paper.tables import TABLE5
from studylib.results import read_table
from studylib.analysis import speedups

pd.DataFrame([{"technique": k, "printed h per 1x": v["hours_per_x"],
               "Eq. 33 at midpoints": eq.eq33_hours_per_speedup(sum(v["hours"]) / 2, sum(v["speedup"]) / 2)}
              for k, v in TABLE5.items()]).round(1)

# %% [markdown]
# ## Measured so far
# Weight-only quantization is timed by the Phase 1 sweep; on the CPU only an int8 reference
# kernel exists. Speculative decoding, stacking and the H3 Monte Carlo are pending (issue 5,
# GPU). Data: `data/timing/*/` (variants `int8wo`, `fp8`, `int4wo`).

# %%
sp = speedups(read_table("timing"))
sp[sp["variant"].isin(["int8wo", "fp8", "int4wo"])][["profile", "shape", "component", "batch", "variant", "speedup", "lo", "hi"]].round(3)
