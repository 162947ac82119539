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
# Weight-only quantization is timed by the Phase 1 sweep / GPU campaign (variants `int8wo`,
# `fp8wo`, `int4wo`, ...). Speculative decoding is measured here on real models on the CPU when
# the profile has a `spec_decoding` section (cpu-qwen: Qwen2.5-Coder-0.5B drafting for the 1.5B):
# every generation is one resumable unit in `data/spec_decoding/<profile>/`.

# %% tags=["parameters"]
profile = "embedded"
overrides = {}

# %%
from IPython.display import display

from studylib.config import load_profile, require_device
from studylib.estimates.analysis import speedups
from studylib.results import read_table
from studylib.timing.modules import TIMED_MODULES

prof = load_profile(profile, overrides)
require_device(prof)

if prof.get("cpu_decode"):
    from studylib.decoding.cpu_speed import run_cpu_decode

    print(run_cpu_decode(prof))
if prof.get("cpu_kernels"):
    from studylib.decoding.weight_kernels import run_cpu_kernels

    print(run_cpu_kernels(prof))
if prof.get("spec_decoding"):
    from studylib.decoding.spec_sweep import run_spec

    print(run_spec(prof))
t = read_table("timing", [profile])
if t.empty:
    print(f"no timing units for profile {profile!r}")
else:
    sp = speedups(t)
    display(sp[sp["variant"].map(lambda v: bool(TIMED_MODULES.get(v, {}).get("technique")))].round(3))
