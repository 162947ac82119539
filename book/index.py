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
# **Verdict table.** Every numbered claim beside the measurement that tests it. Verdicts follow
# rules written in code (`studylib/paper/criteria.py`), first committed before any data existed;
# where a rule was added or changed after data had been seen, the [audit appendix](chapters/appendix_audit)
# lists the change, its date and its reason, generated from git — "pre-registered" in this book
# means one or the other, never silently. *supported* when the whole confidence interval lies
# inside the predicted band, *refuted* when it lies wholly outside, *inconclusive* otherwise (an
# open "< X" row says how many items would decide it).
# Claims about A100/H100 speed are judged only on GPU measurements; where those are not in
# `data/` yet the row says so. Quality rows are measured on a real but small model
# (SmolLM2-135M) and say so in the *scale* column.

# %% tags=["remove-input"]
import pandas as pd
from IPython.display import HTML
from studylib import verdicts

vt = verdicts.committed().drop(columns=["id", "git_commit"])  # data/verdicts.csv, written by `make verdicts`
vt["chapter"] = vt["chapter"].map(lambda c: f'<a href="chapters/{c}.html">{c.split("_")[0]}</a>' if c else "")
vt["verdict"] = vt["verdict"].map(verdicts.badge_html)
HTML('<div style="overflow-x:auto">' + vt.to_html(index=False, escape=False) + "</div>")

# %% [markdown]
# ## What is measured so far
# * **Arithmetic audit (no GPU needed)**: §3.1 is internally inconsistent and its dense
#   latency sits *below* the physical bandwidth bound — see [the latency audit](chapters/ch1_latency_audit).
# * **H100 timing** ([chapter 2](chapters/ch2_phase1_timing)): the paper's combination at real
#   Llama shapes, 7B–70B, batch 1–128, with the best kernels this study has (a Triton expert GEMV
#   that reads only the chosen expert, CUTLASS grouped GEMM, cuBLAS, cuSPARSELt 2:4, Triton and
#   torch weight-only int8/int4/fp8), a whole 8B-shaped decode step, gate overhead, Table 4's
#   imbalance and the companion study's expert sweep. Speed is measured on random weights of
#   real shapes; quality is measured separately, on real models on the CPU.
# * **Quality on the CPU** ([chapter 3](chapters/ch3_phase1_quality)): pruning and training-free
#   MoE conversion of SmolLM2-135M on real benchmark items; Qwen2.5-Coder-1.5B dense.
# * **Phase 2 and H3** ([chapter 4](chapters/ch4_phase2)): weight-only int8/int4/fp8 decode on
#   the H100; speculative decoding with Qwen2.5-Coder-0.5B drafting for the 1.5B on the CPU
#   (acceptance per draft position, token identity in fp32 and bf16, CPU speed) and the H100
#   speedup it implies through measured step times; the bytes each variant holds (Table 7); the
#   ROI Monte Carlo, which shows H3 is decided by the paper's own hour estimates.
# * **Models of latency** ([chapter 2](chapters/ch2_phase1_timing)): a bytes-moved model fitted
#   on held-out shapes beside the paper's Eqs. 1–18; 70B whole-model numbers composed from layers.
# * **Dense → experts at its best** ([chapter 3](chapters/ch3_phase1_quality)): the paper's literal
#   conversion with a router fitted layer by layer, CMoE-style and TEAL-style alternatives, and the
#   oracle ceilings and constant-expert floor that bound any router, on SmolLM2-135M; the paper's
#   combination is judged with the repaired conversion wherever it has run.
# * **Open**: H2 on Qwen2.5-Coder-1.5B (MMLU 1,000 and generated GSM8K 300 items per variant, in
#   resumable chunks that sessions finish in turn), quantization quality, stacking (η) and CPU
#   end-to-end decode. Commands: [reproducibility appendix](chapters/appendix_repro).
