# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Phase 2 — alternatives on the same hardware (H3)
# Weight-only quantization is timed by the Phase 1 sweep (variants `int8wo`, `fp8`, `int4wo`;
# the last two on the GPU only). Speculative decoding and the stacking measurements
# (issue 5) are not built yet: this notebook validates its parameters and reports what exists.

# %% tags=["parameters"]
profile = "embedded"
overrides = {}

# %%
from studylib.config import load_profile, require_device
from studylib.results import read_table
from studylib.analysis import speedups

prof = load_profile(profile, overrides)
require_device(prof)
t = read_table("timing", [profile])
sp = speedups(t)
sp[sp["variant"].isin(["int8wo", "fp8", "int4wo"])].round(3)
