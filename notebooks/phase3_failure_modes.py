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
# # Phase 3 — failure modes
# Load imbalance (Table 4 distributions) is timed by the Phase 1 sweep (`routing` column);
# routing balance and long-context retrieval of the converted real model come from the
# Phase 1 quality sweep. This notebook validates its parameters and summarises both.

# %% tags=["parameters"]
profile = "embedded"
overrides = {}

# %%
from studylib.config import load_profile, require_device
from studylib.results import read_table

prof = load_profile(profile, overrides)
require_device(prof)
v = read_table("quality_variants", [profile])
v[["variant", "balance", "max_expert_fraction", "c_drop"]].round(3)
