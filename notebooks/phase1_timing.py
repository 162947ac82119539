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
# # Phase 1 — timing: dense vs sparse-routing variants (H1)
# Measures every (shape, variant, component, batch, routing) unit of the profile and appends
# it to `data/timing/<profile>/`. Finished units are skipped, so an interrupted run resumes.

# %% tags=["parameters"]
profile = "embedded"
overrides = {}

# %%
from studylib.config import load_profile, require_device
from studylib.timing.campaign import run_timing

prof = load_profile(profile, overrides)   # fails fast on a bad profile or parameter
require_device(prof)                      # fails fast when a GPU profile finds no GPU
print(prof["description"])

# %%
summary = run_timing(prof)
summary

# %%
from studylib.estimates.analysis import speedups
from studylib.results import read_table

t = read_table("timing", [profile])
speedups(t).query("routing in ['uniform', 'none']").round(3).head(40)
