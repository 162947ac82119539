# %% [markdown]
# # Chapter 5 — Phase 3: failure modes and the decision framework
#
# **Claims.** Load imbalance costs throughput (Table 4: 85/55/35%); > 70% of tokens to one
# expert is an abort condition (§7.3); long-context retrieval loses 5–15%; §7.1 qualifies
# sparse routing only at ≥ 70B, batch ≥ 32, on A100/H100.
#
# Data: `data/timing/*/` (routing column), `data/quality_variants/*/`, `data/quality_items/*/`
# (task `needle`).

# %%
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from studylib.analysis import speedups, quality_deltas
from studylib.paper.decision import should_consider_sparse_routing
from studylib.results import read_table

timing = read_table("timing")
moe = timing[timing["variant"].str.startswith("moe") | timing["variant"].str.startswith("pruned")]
rel = moe.pivot_table(index=["profile", "shape", "component", "variant", "batch"], columns="routing", values="median_s")
(rel.rdiv(rel["uniform"], axis=0)).round(3).head(40)

# %% [markdown]
# Relative throughput (uniform time ÷ skewed time; Table 4 predicts 0.85 / 0.55 / 0.35 for
# mild / severe / catastrophic). In a memory-bound decode step a skewed batch touches *fewer*
# experts, so the physics predicts the opposite sign at small batch: measured values above 1
# mean imbalance made the step faster. CPU rows are pipeline checks; the GPU sweep decides.
#
# ## Long-context retrieval vs context length

# %%
items = read_table("quality_items")
needle = items[items["task"] == "needle"]
acc = needle.groupby(["profile", "variant", "length"])["correct"].mean().reset_index()
sel = acc[acc["variant"].isin(["dense", "sparsegpt30", "moe4_top1", "sparsegpt30_moe4_top1"])]
if not sel.empty:
    ax = sns.lineplot(data=sel, x="length", y="correct", hue="variant", style="profile", marker="o")
    ax.set_ylabel("passphrase recalled exactly (greedy)"); ax.set_xlabel("context length (≈ tokens)")
    plt.show()

# %% [markdown]
# *Figure: `data/quality_items/*/` task `needle`; notebook `notebooks/phase1_quality.py`.*
#
# ## The §7.1 qualification function, evaluated
# The paper's own function rejects every deployment below 70B regardless of measurements;
# e.g. Llama-8B at batch 32 on an H100 with a capable team:

# %%
should_consider_sparse_routing(8, "H100", {"batch_size": 32, "throughput_priority": 1, "latency_priority": 0,
                                           "long_context_critical": False, "inference_scale_tokens_per_day": 1e9,
                                           "cost_reduction": 0.3, "research_exploration": False},
                               {"engineering_budget": 800, "ml_infra_expertise": 0.8,
                                "implemented_optimizations": ["quantization", "speculative_decoding"]})
