# %% [markdown]
# # Chapter 2 — Phase 1 timing and H1 (speedup vs model size)
#
# **Claim (Table 1, Eq. 18–19, §8.1.1).** 30% pruning + 4-expert top-1 gives 1.3–1.4x at 7B
# rising to 1.6–1.7x at 70B; 1.7–1.9x on A100/H100 for Llama-8B. **Criterion** (pre-registered,
# `studylib/paper/criteria.py`): at B = 1 the 90% CI of measured / Table 1 midpoint lies within
# ±10% for every size.
#
# Data: `data/timing/<profile>/*.csv`, `data/device_peaks/<profile>/*.csv`; notebook
# `notebooks/phase1_timing.py`.

# %%
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from studylib.analysis import GPU_PROFILES, speedups
from studylib.results import read_table

timing = read_table("timing")
peaks = read_table("device_peaks")
profiles = sorted(timing["profile"].unique())
gpu = [p for p in profiles if p in GPU_PROFILES]
print("profiles with timing data:", profiles, "| GPU profiles:", gpu or "none yet")

# %% [markdown]
# ## Status of the GPU measurement
# %%
if not gpu:
    print("No H100/H200 timing in data/ yet: H1, the headline speedup and Table 2 are 'not yet "
          "measured'. The command that produces them is in the reproducibility appendix.")

# %% [markdown]
# ## Speedup over dense, per variant and batch size
# Medians with 95% bootstrap CIs (ratio of medians). The embedded profile runs on 2 CPU cores
# at small shapes: it checks the pipeline and shows CPU behaviour, and is **not** evidence
# about A100/H100 (Table 6 predicts 0.8–1.0x on CPU).

# %%
sp = speedups(timing)
sp_u = sp[sp["routing"].isin(["uniform", "none"])]
g = sns.catplot(data=sp_u, x="batch", y="speedup", hue="variant", col="shape", row="component", kind="point",
                dodge=0.4, errorbar=None, height=3.2, aspect=1.3, sharey=False)
for ax, ((comp, shape), d) in zip(g.axes.flat, sp_u.groupby(["component", "shape"])):
    ax.axhline(1, color="grey", lw=0.8)
g.figure.suptitle("Speedup over dense (all profiles in data/)", y=1.02)
plt.show()

# %% [markdown]
# *Figure: `data/timing/*/` via `studylib.analysis.speedups`; notebook `notebooks/phase1_timing.py`.*

# %%
sp_u.assign(ci=lambda d: d.apply(lambda r: f"[{r.lo:.2f}, {r.hi:.2f}]", axis=1))[
    ["profile", "shape", "component", "batch", "variant", "speedup", "ci"]].round(3).sort_values(
    ["profile", "shape", "component", "variant", "batch"])

# %% [markdown]
# ## Roofline: achieved bandwidth against the measured copy bandwidth
# %%
t = timing.merge(peaks[["profile", "copy_bandwidth_Bps"]], on="profile")
t["fraction_of_copy_bw"] = t["achieved_Bps"] / t["copy_bandwidth_Bps"]
roof = t[t["routing"].isin(["uniform", "none"])].pivot_table(
    index=["profile", "shape", "component", "variant"], columns="batch", values="fraction_of_copy_bw").round(2)
roof

# %% [markdown]
# Every variant below 70% of the measured copy bandwidth on the GPU gets its kernel named and
# explained here once H100 data exist. On the CPU the fp32 dense GEMV reaches the fraction shown;
# the int8 CPU variant is a reference de-quantize-then-matmul, not a fast kernel, and its
# "bandwidth" counts only the int8 bytes.
