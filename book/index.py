# %% [markdown]
# # Sparse routing for LLM inference, measured
#
# The paper under test ("Sparse Routing for LLM Inference: Theoretical Analysis and When to Use
# It", 2025) predicts that 30% SparseGPT pruning plus splitting each dense FFN into 4 experts
# with top-1 routing gives a 1.7–1.9x decode speedup on A100/H100 with < 1% MMLU loss, that the
# speedup grows with model size (Eq. 19, Table 1), that quality loss follows Eq. 25, and that
# int8 quantization and speculative decoding beat it on engineering ROI. Its own disclaimer
# says none of its numbers were measured. This book measures them.
#
# **Verdict table.** Every numbered claim beside the measurement that tests it. Verdicts
# follow rules written in code before the data were looked at
# (`studylib/paper/criteria.py`): *supported* when the whole confidence interval lies inside
# the predicted band, *refuted* when it lies wholly outside, *inconclusive* otherwise.
# Claims about A100/H100 speed are judged only on GPU measurements; where those are not in
# `data/` yet the row says so. Quality rows are measured on a real but small model
# (SmolLM2-135M) and say so in the *scale* column.

# %% tags=["remove-input"]
import pandas as pd
from IPython.display import HTML
from studylib.verdicts import verdict_table

vt = verdict_table()
vt["chapter"] = vt["chapter"].map(lambda c: f'<a href="chapters/{c}.html">{c}</a>' if c else "")
HTML(vt.to_html(index=False, escape=False))

# %% [markdown]
# ## What is measured so far
# * **Arithmetic audit (no GPU needed)**: §3.1 is internally inconsistent and its dense
#   latency sits *below* the physical bandwidth bound — see [the latency audit](chapters/ch1_latency_audit).
# * **CPU (embedded profile)**: timing harness and every variant at small shapes; quality of
#   pruning and MoE conversion on SmolLM2-135M with generated probes.
# * **Pending**: the H100 sweep (issue 3), alternatives (issue 5) and scale/failure-mode
#   timing (issue 6) need the GPU machine; the exact commands are in the
#   [reproducibility appendix](chapters/appendix_repro).
