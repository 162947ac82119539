# %% [markdown]
# # Sparse routing for LLM inference, measured

# %% tags=["remove-cell"]
from myst_nb import glue

from studylib.book import abstract
from studylib.book import tables as book
from studylib.claims import verdicts

book.setup()
for key, value in abstract.values().items():
    glue(key, value, display=False)

# %% [markdown]
# ```{admonition} Abstract
# A 2025 paper predicts that pruning 30% of an LLM's weights with SparseGPT and splitting each
# feed-forward block into 4 experts with top-1 routing speeds decoding 1.7–1.9x on A100/H100 GPUs
# at under 1% MMLU loss, and that int8 quantization and speculative decoding are still the better
# investment. It measured none of this. We measured it on real hardware and real models, each
# technique with the best kernel or method that runs here.
#
# **Does it speed decoding?** At batch 1, yes: a Llama-3-8B-shaped decode step runs
# {glue:text}`headline` faster on an H100, and the converted Qwen2.5-Coder-1.5B
# {glue:text}`table6_cpu` faster on a 2-core CPU, where the paper expects no gain. At batch 8 the
# gain is gone ({glue:text}`headline_b8`): eight tokens read every expert.
#
# **What does it cost?** Without retraining, the model's ability. On Qwen2.5-Coder-1.5B the
# combination loses {glue:text}`a_mmlu_loss` of MMLU and {glue:text}`a_gsm8k_loss` of
# GSM8K{glue:text}`combo_floor_words`{glue:text}`a_other_tasks`; {glue:text}`quarter_words`. Pruning alone costs
# {glue:text}`a_sparsegpt30` of MMLU.
#
# **What should a practitioner do instead?** Quantize the weights: int8 loses
# {glue:text}`a_int8` of MMLU and decodes {glue:text}`int8_cpu` faster on the CPU, int4 loses
# {glue:text}`a_int4` at {glue:text}`int4_cpu`. Speculative decoding with a 0.5B draft gives
# {glue:text}`spec_cpu` here.
# ```
#
# Of {glue:text}`n_claims` claims, {glue:text}`n_supported` are supported, {glue:text}`n_refuted`
# refuted, {glue:text}`n_inconclusive` inconclusive, {glue:text}`n_at_the_floor` left open at the
# floor (the model cannot do the task), {glue:text}`n_mixed` mixed (parts that differ) and
# {glue:text}`n_not_yet_measured` not yet measured; one abort condition (§7.3) is
# *{glue:text}`abort2_verdict`*.
#
# ## Key results
# * **H100, batch 1:** the whole Llama-3-8B-shaped step gains {glue:text}`headline`
#   (*{glue:text}`headline_verdict`* against 1.7–1.9x); at batch 8 {glue:text}`headline_b8`
#   (*{glue:text}`headline_b8_verdict`*). {glue:text}`headline_h200` [Chapter 2](chapters/ch2_phase1_timing)
# * **Growth with size:** per layer the speedup grows ({glue:text}`h1`), but not along Table 1
#   (*{glue:text}`h1_verdict`*). [Chapter 2](chapters/ch2_phase1_timing)
# * **Weight-only int8 on the GPU:** {glue:text}`int8` {glue:text}`int8_on` (*{glue:text}`int8_verdict`*
#   against 1.8–2.2x{glue:text}`int8_note`; published int8 kernels reach 1.48–1.59x on an A100).
#   [Chapter 4](chapters/ch4_phase2)
# * **CPU decode (Table 6):** the executed combination {glue:text}`table6_cpu` of dense at batch 1
#   (*{glue:text}`table6_cpu_verdict`* against 0.8–1.0x); TEAL-style activation sparsity
#   {glue:text}`teal_cpu`. [Chapter 4](chapters/ch4_phase2)
# * **Sweet spot:** at 70B and batch ≥ 32 the combination gains {glue:text}`sweet_paper` per layer
#   on the H100, most at batch 1 ({glue:text}`sweet_b1`) (Phase 3: *{glue:text}`phase3_verdict`*).
#   [Chapter 5](chapters/ch5_phase3)
# * **Conversions on SmolLM2-135M** at 25% of the FFN multiply WikiText-2 perplexity by
#   {glue:text}`ppl_literal` (literal), {glue:text}`ppl_cmoe` (CMoE-style), {glue:text}`ppl_teal`
#   (TEAL-style); a per-token expert oracle {glue:text}`ppl_expert_oracle`, a neuron oracle
#   {glue:text}`ppl_neuron_oracle`. [Chapter 3](chapters/ch3_phase1_quality)
# * **H2 on Qwen2.5-Coder-1.5B** (dense MMLU {glue:text}`qwen_mmlu_dense`, GSM8K
#   {glue:text}`qwen_gsm8k_dense`): the combination loses {glue:text}`mmlu_loss` of MMLU
#   (*{glue:text}`mmlu_loss_verdict`*) and {glue:text}`gsm8k_loss` of GSM8K
#   (*{glue:text}`gsm8k_loss_verdict`*); H2 is *{glue:text}`h2_verdict`*. TEAL at 25% loses
#   {glue:text}`qwen_mmlu_teal` of MMLU (perplexity {glue:text}`qwen_ppl_teal` of dense); a neuron
#   oracle keeping the same quarter {glue:text}`qwen_ppl_neuron_oracle`. [Chapter 3](chapters/ch3_phase1_quality)
# * **The floor rule:** no verdict is decided where a model sits at chance; the combination's
#   reasoning/factual ratio reads *{glue:text}`reasoning_ratio_verdict`*. [Chapter 3](chapters/ch3_phase1_quality)
# * **Eq. 25** where the outcome can move ({glue:text}`eq25_on`): {glue:text}`eq25_measured`
#   against α = 0.8, β = 2.5, γ = 8.0 (*{glue:text}`eq25_verdict`*). [Chapter 3](chapters/ch3_phase1_quality)
# * **Alternatives:** a 0.5B draft is accepted at α = {glue:text}`spec_alpha` per token;
#   speculative decoding gives {glue:text}`spec_cpu` on two CPU cores and {glue:text}`spec_gpu`
#   through measured H100 step times for an 8B target. Quality costs (Tables 8, 9):
#   *{glue:text}`table89_quality_verdict`*. H3 is *{glue:text}`h3_verdict`*: with the paper's own
#   hour estimates no measured speedup can satisfy it. [Chapter 4](chapters/ch4_phase2)
# * **Progress:** {glue:text}`qwen_units` pre-registered Qwen evaluation units are measured (what is
#   left: [audit appendix](chapters/appendix_audit)).
#
# ## Figure 1: speed bought against accuracy paid

# %% tags=["remove-input"]
import matplotlib.pyplot as plt

from studylib.book import figures
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
# * **Eq. 25 where the outcome can move.** On Qwen the pruning term is measured alone (SparseGPT at
#   p = 0.1 … 0.5) and the literal conversion at top-2 and top-3 of 4 and CMoE at 50% show whether
#   any conversion short of dense stays above chance, which the routing terms need (chapter 3).
# * **H2's whole benchmark list.** HellaSwag and TruthfulQA MC1/MC2 on Qwen are declared; MATH-500
#   (judged by math-verify) waits for a dense pilot to fix its token budget; long-context retrieval
#   with attention-side variants (§4.5's own explanation) is not built yet.
# * **vLLM.** The engine a practitioner would deploy on is not yet beside our CPU decode loop.
#
# ## How to read this book
# [Methods](methods) says how everything was measured. Chapter 1 audits the paper's arithmetic;
# chapter 2 is speed on the H100 (H1); chapter 3 quality and the conversions (H2, Eq. 25);
# chapter 4 the alternatives and return on effort (H3); chapter 5 failure modes. Every figure's
# caption names its data files and the `studylib` function that made it; the appendices hold the
# full statistical fits, the provenance of every data file and the commands that rebuild it.
