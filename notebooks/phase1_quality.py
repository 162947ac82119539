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
# # Phase 1 — quality: prune and MoE-convert a real model, evaluate per task (H2, Eq. 25)
# Each model variant (SparseGPT / Wanda at each ratio and 2:4, K-expert top-k MoE conversion,
# the paper's 30% SparseGPT + 4-expert top-1, and the Eq. 25 designed grid) is evaluated with
# lm-evaluation-harness on the same items; per-item outcomes go to `data/quality_items/<profile>/`.

# %% tags=["parameters"]
profile = "embedded"
overrides = {}

# %%
from studylib.config import load_profile, require_device
from studylib.quality.grid import run_quality, variant_specs
from studylib.quality.taskdata import require_bench_dir
from studylib.quality.units import declared_profile, plan

prof = load_profile(profile, overrides)
require_device(prof)
require_bench_dir(prof)
legacy = 0 if prof["quality"].get("declared_only") else len(variant_specs(prof["quality"]))
declared = plan(declared_profile(prof)) if declared_profile(prof) else []
print(prof["description"], "-", legacy, "grid variants,", len({u["variant"] for u in declared}),
      "declared variants in", len(declared), "item-chunk units")

# %%
summary = run_quality(prof)
summary

# %%
from studylib.quality.evaluation import task_summary
from studylib.results import read_table

task_summary(read_table("quality_items", [profile])).round(3)
