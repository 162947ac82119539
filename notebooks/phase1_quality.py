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
# Each model variant the profile names (declared pipelines in `studylib/quality/variants*.yaml`:
# SparseGPT / Wanda at each ratio and 2:4, expert conversions, the paper's 30% SparseGPT + 4-expert
# top-1, the Eq. 25 designed grid, quantizers) is evaluated with lm-evaluation-harness on the same
# items; per-item outcomes go to `data/quality_items/<profile>/`, one resumable unit at a time.

# %% tags=["parameters"]
profile = "embedded"
overrides = {}

# %%
from studylib.config import load_profile, require_device
from studylib.quality.taskdata import require_bench_dir
from studylib.quality.units import plan, run_quality, sections

prof = load_profile(profile, overrides)
require_device(prof)
require_bench_dir(prof)
for part in sections(prof):
    units = plan(part)
    print(prof["description"], "-", len({u["variant"] for u in units}), "variants in",
          len({u["key"] for u in units}), f"units ({part['quality'].get('unit', 'chunk')} layout)")

# %%
summary = run_quality(prof)
summary

# %%
from studylib.quality.evaluation import task_summary
from studylib.results import read_table

task_summary(read_table("quality_items", [profile])).round(3)
