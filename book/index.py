# %% [markdown]
# # Sparse routing for LLM inference, measured

# %% tags=["remove-cell"]
from myst_nb import glue

from studylib import abstract, book, verdicts

book.setup()
for key, value in abstract.values().items():
    glue(key, value, display=False)

# %% [markdown]
# ```{admonition} Abstract
# A 2025 paper predicts that pruning 30% of an LLM's weights with SparseGPT and splitting each
# dense FFN into 4 experts with top-1 routing speeds decoding by 1.7–1.9x on A100/H100 at < 1%
# MMLU loss, that the speedup grows with model size, that quality loss follows its Eq. 25, and
# that int8 quantization and speculative decoding beat it on engineering return. It measured
# none of this. We measured it, each technique with the best kernel or method that runs here.
#
# **Speed.** On one H100, a whole Llama-3-8B-shaped decode step at batch 1 with 30%-narrower
# top-1-of-4 experts runs {glue:text}`headline` faster than dense (*{glue:text}`headline_verdict`*
# against the paper's 1.7–1.9x), but {glue:text}`headline_b8` at batch 8, where eight tokens
# touch every expert (*{glue:text}`headline_b8_verdict`*). {glue:text}`headline_h200` Per layer the speedup does grow with
# size ({glue:text}`h1`), yet not along Table 1 (*{glue:text}`h1_verdict`*). Weight-only int8
# reaches {glue:text}`int8` {glue:text}`int8_on` (*{glue:text}`int8_verdict`* against
# 1.8–2.2x{glue:text}`int8_note`; published int8 kernels reach 1.48–1.59x on an A100). On this study's 2-core CPU,
# with converted FFNs that execute only their routed expert and each variant on its fastest
# kernel, the combination decodes at
# {glue:text}`table6_cpu` the speed of dense at batch 1 (Table 6 predicts 0.8–1.0x on a CPU:
# *{glue:text}`table6_cpu_verdict`*); TEAL-style activation sparsity, executed so that it reads
# only the weight rows of the activations it keeps, decodes at {glue:text}`teal_cpu` the speed of
# dense (batch 1). Where the paper places the sweet spot (70B and batch ≥ 32) the combination
# gains {glue:text}`sweet_paper` per layer on the H100; it gains most at batch 1
# ({glue:text}`sweet_b1` across the five shapes), the single-token decode the paper calls
# unsuitable (Phase 3: *{glue:text}`phase3_verdict`*).
#
# **Quality.** Without retraining, splitting an FFN into experts is where the idea fails. On
# SmolLM2-135M at 25% of the FFN per token, the paper's literal conversion multiplies WikiText-2
# perplexity by {glue:text}`ppl_literal`, and even routing each token to its best expert by true
# activations (an oracle) by {glue:text}`ppl_expert_oracle`; the best training-free methods
# tested, CMoE-style ({glue:text}`ppl_cmoe`) and TEAL-style activation sparsity
# ({glue:text}`ppl_teal`), stay far from a per-token neuron oracle ({glue:text}`ppl_neuron_oracle`).
# The paper's combination loses {glue:text}`probe_facts` on a factual probe ({glue:text}`probe_facts_on`;
# *{glue:text}`probe_facts_verdict`*). On Qwen2.5-Coder-1.5B-Instruct, the model that judges H2
# (dense MMLU {glue:text}`qwen_mmlu_dense`, GSM8K with zero-shot chain of thought
# {glue:text}`qwen_gsm8k_dense`), the combination loses {glue:text}`mmlu_loss` of MMLU accuracy
# ({glue:text}`mmlu_loss_on`; against the paper's < 1%: *{glue:text}`mmlu_loss_verdict`*) and
# {glue:text}`gsm8k_loss` of GSM8K accuracy ({glue:text}`gsm8k_loss_on`; against < 3%:
# *{glue:text}`gsm8k_loss_verdict`*), and H2 is *{glue:text}`h2_verdict`*. The best training-free
# alternative at the same budget, TEAL-style
# activation sparsity with 25% of each FFN's inputs kept, loses nearly as much MMLU accuracy
# ({glue:text}`qwen_mmlu_teal` lost; WikiText-2 perplexity {glue:text}`qwen_ppl_teal` of dense),
# while a per-token neuron oracle keeping the same quarter of the FFN multiplies perplexity by
# {glue:text}`qwen_ppl_neuron_oracle`: a quarter of the FFN can carry this model, but no
# training-free selector tested finds it. No verdict is decided where a model sits at chance (the
# floor rule, written 2026-12-03): the reasoning/factual ratio of the combination, whose GSM8K and
# MMLU scores are both at their floors, reads *{glue:text}`reasoning_ratio_verdict`*. Eq. 25, fitted
# at item level where the outcome can move ({glue:text}`eq25_on`), gives
# {glue:text}`eq25_measured` against the paper's α = 0.8, β = 2.5, γ = 8.0: *{glue:text}`eq25_verdict`*.
# So far {glue:text}`qwen_units` pre-registered
# evaluation units are measured; standard GSM8K for the variants and the remaining conversions
# on Qwen follow (what is left, per variant and task: [audit appendix](chapters/appendix_audit)).
#
# **Alternatives.** A 0.5B draft is accepted at α = {glue:text}`spec_alpha` per token by the
# 1.5B; speculative decoding gives {glue:text}`spec_cpu` on two CPU cores and, through measured
# H100 step times, {glue:text}`spec_gpu` for an 8B target. On the MMLU items that judge H2,
# weight-only int8 loses {glue:text}`qwen_mmlu_int8` and int4 {glue:text}`qwen_mmlu_int4` (Tables 8
# and 9 price quality at 0.8–3.0% for sparse routing, 0.5–1.5% for int8, 0.3–0.5% for speculative
# decoding: *{glue:text}`table89_quality_verdict`*). H3 is
# *{glue:text}`h3_verdict`*: with the paper's own hour estimates no measured speedup can satisfy it.
# ```
#
# Of {glue:text}`n_claims` claims, {glue:text}`n_supported` are supported, {glue:text}`n_refuted`
# refuted, {glue:text}`n_inconclusive` inconclusive and {glue:text}`n_not_yet_measured` not yet
# measured; one abort condition (§7.3) is *{glue:text}`abort2_verdict`*.
#
# ## Figure 1: speed bought against accuracy paid

# %% tags=["remove-input"]
import matplotlib.pyplot as plt

from studylib import figures
from studylib.claims import Data

_fig1, _tq = figures.figure1(Data())
if _tq.empty:
    book.md("*Figure 1 needs a model measured both for decode speed and for quality on one profile "
            "(`make sweep PROFILE=cpu-qwen` and `make phase2 PROFILE=cpu-qwen`).*")
else:
    plt.show()

# %% [markdown]
# *Figure 1. Every variant of Qwen2.5-Coder-1.5B-Instruct measured both ways: decode speedup over
# dense at batch 1 on this CPU (each on its fastest measured kernel) against its paired MMLU loss,
# 95% intervals on both axes. Shaded: what the paper claims for its combination. Right axis: the
# H100's whole-model speedups (Llama-3-8B shape). Hollow: at chance on MMLU (the loss is a lower
# bound). Chapter 4 (Figure 4.6) has the table behind it.*
#
# ## Verdict table
# Every numbered claim beside the measurement that tests it. Verdicts follow rules written in code
# (`studylib/paper/criteria.py`) before the data they judge were measured; a rule added or changed
# later is listed with its date and reason in the [audit appendix](chapters/appendix_audit).
# *Supported*: the whole 95% interval lies inside the predicted band; *refuted*: wholly outside;
# *inconclusive*: otherwise (an open "< X" row says how many items would decide it); *at chance*:
# the dense model cannot do the task, so a loss means nothing. A100/H100 speed claims are judged
# only on GPU measurements; every row names the model and profile it was measured on.

# %% tags=["remove-input"]
book.verdict_table(verdicts.committed(), link_prefix="chapters/")

# %% [markdown]
# ## What is still open, and why
# * **H2 on a model above chance.** Qwen2.5-Coder-1.5B-Instruct, MMLU 1,000 and standard GSM8K 300
#   items per variant (counts fixed by a power analysis before any variant ran), in resumable chunks
#   that sessions finish in turn (`make sweep PROFILE=cpu-qwen`); each run adds rows to the
#   verdicts without changing a rule.
# * **The best CPU kernel.** Every CPU speed runs each variant on its fastest measured kernel:
#   eager PyTorch, bf16 weights packed once for oneDNN (bit-identical outputs; eager re-packs
#   every weight on every call), optimum-quanto's int8/int4 kernels, and for TEAL PyTorch's
#   `embedding_bag` over the kept rows; one layer timed under every weight kernel of PyTorch,
#   optimum-quanto and torchao (chapter 4) shows the choice. Not tried yet: a compiled decode step
#   (gpt-fast style; `torch.compile` with inductor's weight freezing failed on the second
#   `generate` with a static KV cache).
# * **Quality at 8B and beyond** needs a GPU with the real weights (`h100` profile); GPU speed is
#   measured on random weights of the real shapes.
#
# ## How to read this book
# [Methods](methods) says how everything was measured. Chapter 1 audits the paper's arithmetic;
# chapter 2 is speed on the H100 (H1); chapter 3 quality and the conversions (H2, Eq. 25);
# chapter 4 the alternatives and return on effort (H3); chapter 5 failure modes. Every figure's
# caption names its data files and the `studylib` function that made it; the appendices hold the
# full statistical fits, the provenance of every data file and the commands that rebuild it.
