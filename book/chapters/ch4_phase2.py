# %% [markdown]
# # Chapter 4 — Phase 2: quantization, speculative decoding and ROI (H3)
#
# **Claims.** int8 1.8–2.2x, speculative decoding 2.3–2.7x, both 2.7–3.3x (Tables 5, 7–9);
# η_interaction ≈ 0.8 (Eq. 34); sparse routing costs 412 h per 1x speedup vs 42 for int8, and H3
# says it should cost < 300 h per 1x "within 30% of quantization" (§8.1.3).

# %% tags=["remove-cell"]
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from myst_nb import glue

from studylib.book import tables as book
from studylib.claims import Data
from studylib.claims.phases import roi_inputs
from studylib.estimates import analysis, roi
from studylib.estimates import gpu_claims as G
from studylib.estimates import spec_analysis as S
from studylib.paper import equations as eq
from studylib.paper.tables import TABLE5
from studylib.book.quantization import kernel_figure, kernel_table, weight_only_speedups, with_layer
from studylib.book.tradeoff import family_reading, figure1_table, roi_sensitivity_figure
from studylib.book.speculative import (PAPER_BOTH_BAND, PAPER_SPEC_BAND, acceptance_figure, best_gamma,
                                       curves_figure, gpu_predictions, gsm8k_reading, identity_table,
                                       int8_plus_draft, stack_table)
from studylib.quality import quant_eval

book.setup()
data = Data()
timing, sd_all = data.timing, data.table("spec_decoding")
sd = S.main_pair(sd_all)  # Qwen 0.5B -> 1.5B; SmolLM2's self-draft is shown in its own section
gt = G.gpu_timing(timing)

# %% tags=["remove-input"]
book.chapter_verdicts("ch4_phase2")

# %% [markdown]
# ## The paper's Table 5 against its own Eq. 33
# Hours ÷ speedup at the midpoints of the paper's own ranges does not give its printed column:

# %% tags=["hide-input"]
book.table(pd.DataFrame([{"technique": k, "printed h per 1x": v["hours_per_x"],
                          "Eq. 33 at the range midpoints": eq.eq33_hours_per_speedup(sum(v["hours"]) / 2,
                                                                                     sum(v["speedup"]) / 2)}
                         for k, v in TABLE5.items()]).set_index("technique"), index=True, digits=0)

# %% [markdown]
# ## Weight-only quantization on the H100
# A whole Llama-3-8B-shaped decode step with each weight-only kernel that runs on the device
# image (no torchao there): a Triton int8/int4/fp8 kernel written for this study, torch's own
# `_weight_int8pack_mm` / `_weight_int4pack_mm` (tinygemm), and fp8 `torch._scaled_mm`.

# %% tags=["hide-input"]
int8_speedup = "(not measured)"
q = weight_only_speedups(gt)
if not q.empty:
    book.table(q.pivot_table(index="variant", columns="batch", values="speedup"), index=True, digits=2)
    best, _ = G.quant_speedup(timing)  # the fastest int8 kernel, whole model, B=1
    if best is not None:
        int8_speedup = f"{best.value:.2f}x"
glue("int8_speedup", int8_speedup, display=False)

# %% [markdown]
# *Table 4.1. Whole-model decode speedup over bf16 dense (H100, random weights of the real
# shape; CIs in `data/verdicts.csv`). The best int8 kernel reaches {glue:text}`int8_speedup` at
# batch 1, short of the paper's 1.8–2.2x: halving the weight bytes halves only the weight part of
# a step that also reads the KV cache, the head and pays launch costs, and the int8 GEMV does not
# reach the copy bandwidth that bf16 cuBLAS reaches (chapter 2). On the CPU, weight-only int8 and
# int4 are timed as CPU evidence only.*

# %% [markdown]
# ## Speculative decoding: Qwen2.5-Coder-0.5B drafting for the 1.5B, on the CPU
# Greedy draft-and-verify (`studylib/decoding/speculative.py`, checked token for token against
# the target alone and against transformers' assisted generation) on real prompts: GSM8K and MMLU
# items and three code prompts, in the models' chat template. Every generation is a unit in
# `data/spec_decoding/`.

# %% tags=["remove-input"]
if sd.empty:
    book.md("*No speculative-decoding data yet: `make setup-qwen && make phase2 PROFILE=cpu-qwen`.*")

# %% tags=["hide-input"]
glue("alpha", book.est(S.alpha(sd)) if not sd.empty else "(not measured)", display=False)
if not sd.empty:
    acceptance_figure(sd)
    plt.show()

# %% [markdown]
# *Figure 4.1. Left: how often the draft's i-th proposal survives verification, given the ones
# before it did (95% CIs, bootstrap over prompts); pooled per-token acceptance α =
# {glue:text}`alpha`. Right: tokens gained per target forward pass and the CPU wall-clock speedup
# per draft length (paired by prompt), beside the reference implementation. CPU evidence: on two
# cores a 0.5B draft step costs a large share of a 1.5B target step.*

# %% tags=["hide-input"]
kc = S.kernel_comparison(sd_all)
if len(kc) > 1:
    book.table(kc, digits={"target alone, tokens/s": 2},
               caption="Table 4.1b. The same prompts with target and draft on each CPU kernel (eager PyTorch, or "
               "bf16 weights packed once for oneDNN: bit-identical tokens). Figure 4.1 and the verdict rows read "
               "the kernel on which the target alone is fastest (studylib.estimates.spec_analysis.kernel_comparison).")
elif len(kc) == 1:
    book.md(f"*Measured on one kernel ({kc['kernel'].iloc[0]}); the packed-kernel runs are in the profile "
            "(`make phase2 PROFILE=cpu-qwen`).*")

# %% tags=["hide-input"]
if not sd.empty:
    book.table(identity_table(sd), index=True, digits=2)
    if text := gsm8k_reading(sd, 4):
        book.md(text)

# %% [markdown]
# *Table 4.2. "Lossless" is exact only in exact arithmetic. Verifying γ+1 tokens in one pass
# rounds differently from one token at a time, so in bf16 the greedy outputs can drift apart
# after some tokens; in fp32 they agree. The share of identical generations is reported with a
# Wilson interval, which cannot collapse to a point on a handful of runs.*

# %% [markdown]
# ## A model with no smaller sibling: SmolLM2 drafting with its own first layers
# SmolLM2-135M has no smaller model with its tokenizer, so its draft is itself cut after 15 of 30
# decoder layers (early exit, no training; `early-exit:15` in the cpu-real profile). Same
# measurements as above, on the cpu-real prompts; never pooled with the Qwen pair.

# %% tags=["hide-input"]
sr = sd_all[sd_all["profile"] == "cpu-real"] if "profile" in sd_all else sd_all.iloc[:0]
if sr.empty:
    book.md("*Not measured yet: `make phase2 PROFILE=cpu-real`.*")
else:
    a = S.alpha(sr)
    book.md(f"Acceptance α = {book.est(a)}" if a else "α: no loop runs")
    book.table(S.per_gamma(sr), digits=3)

# %% [markdown]
# ## What the CPU acceptance implies on the H100
# Expected speedup = E[tokens per cycle](α, γ) × t(target, 1 token) / (γ · t(draft) + t(target,
# γ+1 tokens)) (Leviathan et al. 2023), with α measured above and every step time measured on the
# H100 (whole-model decode steps of the Qwen2.5 1.5B and 0.5B shapes and of the Llama-3-8B shape,
# `data/timing/h100/`). The 8B row assumes a 0.5B draft that agrees with the 8B as often as the
# 0.5B agrees with the 1.5B — an assumption, labelled as such.

# %% tags=["hide-input"]
pred = gpu_predictions(sd, timing) if not sd.empty else pd.DataFrame()
if not pred.empty:
    curves_figure(pred, "pair", PAPER_SPEC_BAND, "paper", "predicted speedup", "Speculative decoding on the H100 (formula)")
    plt.show()
    book.table(pred.set_index(["pair", "gamma"])[["speedup", "lo", "hi", "t_target_1_ms", "t_verify_ms",
                                                  "t_draft_ms"]], index=True, digits=2)

# %% [markdown]
# *Figure 4.2 and Table 4.3. On the H100 a 0.5B decode step costs over half of a 1.5B step
# (small models are launch-bound, not bandwidth-bound), so that pair gains little; an 8B target
# with a 0.5B draft gains more, and the verdict table judges that row against 2.3–2.7x.*

# %% [markdown]
# ## "Both": the draft drafting for an int8 target, on the H200
# Tables 5 and 7 price int8 + speculative decoding together at 2.7–3.3x. The same formula, with
# the acceptance measured on the CPU *for the int8 target* (the 0.5B drafting for the quanto-int8
# 1.5B) and, from one GPU, the int8 8B target's measured verification steps of γ+1 tokens, the
# dense 8B step (the baseline) and the 0.5B draft's step. The H100 campaign did not time int8
# verification steps; the H200 did. Because the Triton int8 kernel reads below dense's share of
# the copy bandwidth (chapter 2), the second curve replaces each int8 step by the time it would
# take at dense's achieved bandwidth: the most a better int8 kernel could add.

# %% tags=["hide-input"]
gpu_both, both = int8_plus_draft(sd_all, sd, timing, G.JUDGING_GPUS) if not sd.empty else (None, pd.DataFrame())
if not sd.empty and gpu_both is None:
    book.md("*No GPU verification steps of an int8 target in `data/` yet (`make gpu PROFILE=h200`).*")
elif gpu_both is not None:
    curves_figure(both, "what", PAPER_BOTH_BAND, "paper 'both'", "predicted speedup over the dense 8B",
                  f"int8 + speculative decoding, {gpu_both.upper()} step times (formula)")
    plt.show()
    book.table(best_gamma(both), index=True, digits=2,
               caption="Table 4.3b. Best γ of each curve (95% CI from the prompt bootstrap of α).")

# %% [markdown]
# *Figure 4.2b and Table 4.3b. The stack's expected speedup per draft length. α for the int8 target comes from
# ten CPU prompts, so the curves carry α's interval; the step times are single medians of 100
# graph replays each. The verdict table judges the measured curve's best γ against 2.7–3.3x and
# says when only the kernel stands between it and the band.*

# %% [markdown]
# ## H3 and Phase 2: return on engineering hours
# Eq. 33 divides hours by speedup. The hours are the paper's own ranges (Table 5) — nothing here
# measures them — and the speedups are the measured ones (whole 8B-shaped model on the H100).
# 20,000 Monte Carlo draws: hours uniform over each range, speedups normal with the measured 95%
# interval (`studylib/estimates/roi.py`). With the paper's 700–1200 h, sparse routing's hours per 1x stays
# above 300 for any speedup below {glue:text}`break_even`: **H3 is decided by the paper's hour
# estimates, not by a measurement.**

# %% tags=["hide-input"]
glue("break_even", f"{roi.break_even_speedup():.2f}x", display=False)
sp = roi_inputs(data)
if {"sparse_routing", "int8"} <= set(sp):
    draws = roi.simulate(sp)
    book.table(pd.DataFrame([{"technique": k, "measured speedup": book.est(e, "x", max_digits=2),
                              "paper hours": "{}-{}".format(*TABLE5[k]["hours"]),
                              "hours per 1x (median of draws)": draws[f"{k}_hpx"].median()} for k, e in sp.items()])
               .set_index("technique"), index=True, digits=0)
    book.table(pd.Series(roi.h3_probabilities(draws), name="probability").to_frame(), index=True, digits=3)
    book.table(roi.ranking_probabilities(draws).rename("probability of this ranking").to_frame(), index=True, digits=3)
    roi_sensitivity_figure(roi.sensitivity(sp))
    plt.show()

# %% [markdown]
# What can be measured instead of hours: the size of this project's own implementation of each
# technique (`studylib/book/project_size.yaml`), beside the paper's hour ranges.

# %% tags=["hide-input"]
from studylib.book.project_size import sizes

size = sizes()
size["paper hours (Table 5)"] = ["{}-{}".format(*TABLE5[t]["hours"]) for t in size.index]
book.table(size, index=True)

# %% [markdown]
# *Table 4.4. Non-blank, non-comment lines of this study's code per technique (pruning and MoE
# conversion, routing and the expert GEMV for sparse routing; quantizers, the quantized FFN and the
# weight-only matmul for int8; the draft-and-verify loop for speculative decoding, which leans on
# transformers). Lines are not hours, but the ordering agrees with the paper's.*
#
# *Figure 4.3. Probability that H3 holds as a function of the sparse-routing hours (the other
# techniques keep the paper's ranges), for both readings of its wording and the pre-registered
# conjunction. Reading B compares with int8's 50–100 h and cannot hold at any plausible hours.*
#
# ## Weight-only quantization: what it costs in quality (CPU, real models)
# int8 (per output channel) and int4 (groups of 128 input columns) of the decoder layers through
# optimum-quanto — round-to-nearest with scales, the *weaker* quantizers, named as such — beside
# GPTQ int4 (the same groups, second-order error compensation; `studylib/quality/transforms/gptq.py`, written here
# because the maintained GPTQ libraries need CUDA or pin their own torch; fake-quantized, so its
# row is quality only: its decode speed is the int4 kernel's), and 30% SparseGPT followed by int8
# (the stack whose η Eq. 34 predicts). Losses against dense on the same items, paired (Tango's score
# interval for accuracy, a t interval over documents for perplexity); declared in
# `studylib/quality/variants.yaml`, measured by the quality sweep.
#
# "Groups of 128" holds where 128 divides a layer's input width: on every Qwen2.5-Coder-1.5B
# projection (inputs 1,536 and 8,960 wide) and on SmolLM2-135M's down-projection (1,536). SmolLM2's
# other six projections read 576-wide inputs, which 128 does not divide; optimum-quanto then uses
# groups of 96 and so does our GPTQ (`gptq.group_for`), so the two int4 variants share their groups.
#
# Tables 8 and 9 price each technique's quality: sparse routing 0.8–3.0%, int8 0.5–1.5%, speculative
# decoding 0.3–0.5%. The verdict row "Quality loss" at the top of this chapter reads each range as a
# ceiling in accuracy points (`criteria.quality_cost_verdict`, written 2026-11-25 before any Qwen
# quantized unit ran): int8 and the paper's combination on the H2 model's MMLU items, speculative
# decoding on GSM8K with and without the draft.

# %% tags=["hide-input"]
from studylib.estimates.quantization import quality_table

from studylib.quality.transforms import declared_variants, with_role

# every declared quantizer, then the pruning the stacks sit on, then the stacks
family = {v: s["family"] for v, s in declared_variants().items()}
QUANT = ([v for v, f in family.items() if f == "quantization"] + list(with_role("pruning_alone"))
         + [v for v, f in family.items() if f == "pruning + quantization"])
book.table(quality_table(data.items, data.deltas, QUANT),
           caption="Table 4.5. Loss against dense with 95% interval and the number of paired items (a sweep "
           "still landing shows fewer than its pre-registered count); '—': not measured on that profile. "
           "Data: data/quality_items/; studylib.estimates.quantization.quality_table.",
           empty="*Quantized variants not measured yet: `make phase1-quality PROFILE=cpu-real` (or cpu-qwen).*")
from studylib.estimates.analysis import versus

stack, pruned, int8 = with_role("pruning_int8")[0], with_role("pruning_alone")[0], with_role("int8")[0]
added = versus(data.items, stack, pruned)
if not added.empty:
    alone = data.deltas[data.deltas["variant"] == int8].set_index(["profile", "task"])
    book.md("**What int8 adds on top of pruning.** The stack against 30% SparseGPT alone, the same items, "
            "paired (positive: the stack is worse), beside int8's own loss against dense: " + "; ".join(
                f"{r.profile} {r.task} (n={int(r.n_items)}): {r.acc_loss_pp:+.1f} pp "
                f"[{r.acc_loss_lo:+.1f}, {r.acc_loss_hi:+.1f}], McNemar p = {r.mcnemar_p:.2f}"
                + (f" — int8 alone {alone.loc[(r.profile, r.task), 'acc_loss_pp']:+.1f} pp"
                   if (r.profile, r.task) in alone.index else "")
                for r in added.itertuples())
            + ". An interval that covers zero and int8's own loss says the two losses do not compound beyond "
            "their sum at this n; it cannot rule out a small interaction. studylib.estimates.analysis.versus.")
qe = data.table("quant_eval")
for (prof, v, task), g in qe.groupby(["profile", "variant", "task"]) if not qe.empty else []:
    s = quant_eval.summary(g)
    book.md(f"*How {v} was evaluated on {prof}:* through its dequantized weights in bf16 (quanto's int8 CPU "
            f"kernel is built for decode and made an MMLU chunk several times slower; `studylib/quality/quant_eval.py`). "
            f"On the first {s['items']} {task} items, quanto's own kernel and the dequantized weights give a "
            f"different outcome on {s['differ']} of {s['items']} (largest gap in the gold answer's log-probability "
            f"{s['max_gold_logprob_gap']:.3f} nats). The two kernels differ by one bf16 rounding of each "
            "weight, which moves the logits about as much as evaluating dense in bf16 instead of fp32 does "
            "(tests/test_conversions.py); int8's own effect is of the same order, so it is the items, not "
            "the logits, that say whether the choice matters. Data: data/quant_eval/.")

# %% [markdown]
# ### Is this GPTQ at its best?
# GPTQ should beat round-to-nearest on the same grid: that is its whole point. Two checks say whether
# ours does. End to end, the same items paired, GPTQ against quanto's round-to-nearest int4 (the two
# share their groups). Layer by layer (`studylib/quality/gptq_holdout.py`, `make gptq-holdout`): on a few real
# projections, the output error of each quantizer on the calibration tokens GPTQ was fitted to and on
# held-out WikiText-2 test text it never saw, for the sweep's calibration budget (16,384 tokens, a
# prefix of the same draw) and larger ones, at the usual damping (1% of the mean Hessian diagonal)
# and at 10%.

# %% tags=["hide-input"]
from studylib.book import quantization as BQ
from studylib.quality import gptq_holdout as GH

vr = analysis.versus(data.items, with_role("int4_gptq")[0], with_role("int4")[0])
if not vr.empty:
    book.table(vr[["profile", "task", "n_items", "acc_dense", "acc_variant", "acc_loss_pp", "acc_loss_lo",
                   "acc_loss_hi", "mcnemar_p"]].rename(columns={"acc_dense": "acc RTN %", "acc_variant": "acc GPTQ %",
                                                              "acc_loss_pp": "GPTQ worse by pp"}),
               digits=2, caption="Table 4.5b. gptq_int4 against int4_quanto (round-to-nearest, same groups) on the "
               "same items, paired: a positive difference means GPTQ is worse. studylib.estimates.analysis.versus.")
gh = data.table("gptq_holdout")
if gh.empty:
    book.md("*Layer-level check not run yet: `make gptq-holdout PROFILE=cpu-qwen` (~15 min).*")
else:
    rel = GH.relative_to_rtn(gh)
    BQ.gptq_holdout_figure(rel, gh["model"].iloc[0])
    plt.show()
    book.md(BQ.gptq_holdout_reading(rel, vr[vr["profile"] == gh["profile"].iloc[0]] if not vr.empty else vr))

# %% [markdown]
# ## Decode speed on this CPU (Table 6's CPU row)
# Whole greedy generations (KV cache; prefill subtracted) of each variant, built as the quality
# sweep builds it; a converted FFN *executes* only its routed expert's contiguous weights
# (`studylib/decoding/expert_exec.py`), so top-1 of 4 reads a quarter of the FFN's bytes. Achieved
# bytes/s = weight bytes one step reads ÷ step time, against the measured copy bandwidth. Only the
# Table 6 CPU row (0.8–1.0x) is judged from these; the other speeds are CPU evidence, not tests of
# A100/H100 claims.

# %% tags=["hide-input"]
from studylib.estimates.cpu_decode import best_kernel_table, decode_table, with_kernel

cd = with_kernel(data.table("cpu_decode"))
if cd.empty:
    book.md("*Not measured yet: `make phase2 PROFILE=cpu-qwen` (or cpu-real) on an idle machine.*")
else:
    book.table(decode_table(cd), caption="Table 4.6. Median over repeats; speedup against dense on the same "
               "kernel, 95% bootstrap CI. Data: data/cpu_decode/; studylib.estimates.cpu_decode.decode_table.")
    if cd["kernel"].nunique() > 1:
        g = sns.catplot(data=cd, x="decode_tokens_per_s", y="variant", hue="kernel", col="batch", row="profile",
                        kind="bar", estimator="median", errorbar=("pi", 100), height=3, aspect=1.4, sharex=False)
        g.set_axis_labels("decode tokens/s (median; bar: range over repeats)", "")
        plt.show()
        book.md("*Figure 4.4. Decode speed by kernel: `eager` is transformers' model as built; `onednn_packed` "
                "holds every bf16 linear and expert weight pre-packed for oneDNN (`studylib/kernels/cpu_linear.py`). "
                "Quantized layers keep optimum-quanto's kernels under both.*")
    book.table(best_kernel_table(cd), caption="Table 4.6b. Each variant on its fastest measured kernel of ours "
               "(studylib.estimates.cpu_decode.best_kernel_table). Table 6's CPU row is judged on the fastest of these "
               "and vLLM's decode of the same checkpoint (Table 4.6f), and names which.")

# %% [markdown]
# ### The same row on a second kind of CPU
# The cpu-qwen units were timed on AVX-512 BF16 EPYCs (their `onednn_packed` units cannot run on
# anything else: `studylib/kernels/cpu_linear.py`). Later sessions drew AVX2-only EPYCs, where
# bf16 has no hardware support and oneDNN converts it to fp32 on every product. Profile
# `cpu-qwen-avx2` re-times dense, the paper's conversion and int8/int4 there with the same harness
# and the same prompts, each variant in bf16 and upcast to fp32, read on its fastest. The
# conversion runs without its 30% SparseGPT step: a decode step of either reads the same bytes
# (unstructured zeros are stored and read), and on cpu-qwen their speedups agree within CI (Table
# 4.6b). Table 6's verdict stays with cpu-qwen; this is a replication on a different
# machine, not a second verdict.

# %% tags=["hide-input"]
from studylib.book.cpu_speed import precision_reading, table6_by_cpu
from studylib.paper.tables import TABLE6

rep = table6_by_cpu(data, cd)
if not rep.empty and (rep["profile"] == "cpu-qwen-avx2").any():
    book.table(rep, caption="Table 4.6e. Table 6's CPU row (paper: {:.1f}–{:.1f}x) on each CPU the "
               "study measured; each variant and dense on their fastest measured kernel, 95% bootstrap CI over "
               "repeats. Data: data/cpu_decode/.".format(*TABLE6["CPU"]))
    # bf16 or fp32 on the CPU without hardware bf16: which one a memory-bound step prefers
    if text := precision_reading(cd, "cpu-qwen-avx2"):
        book.md(text)
else:
    book.md("*Not measured yet on an AVX2-only CPU: `make phase2 PROFILE=cpu-qwen-avx2` (refused on any other).*")

# %% [markdown]
# Eager PyTorch re-packs a bf16 weight into oneDNN's blocked layout on every matrix product; at
# decode, with one token per sequence, that reorder costs about as much as the product. Packing
# each weight once (the operation inductor's weight freezing performs inside `torch.compile`,
# done here eagerly because freezing failed with a static KV cache) gives bit-identical outputs
# and removes the reorder for every variant with bf16 weights. Speedups are read on each
# variant's fastest kernel, so no variant is held back by a path another one avoids.

# %% [markdown]
# ### The engine a practitioner deploys: vLLM beside our decode
# The same variants exported as standard checkpoints (dense and pruned as themselves, the literal
# conversion as a Qwen2-MoE checkpoint whose gate keeps its bias; `studylib/serving/`) and served by
# vLLM's CPU build (its own venv: `make setup-vllm`), started, health-checked and stopped by the
# harness. In one invocation per variant (`make served`): the exactness of the served model against
# ours on WikiText-2 token ids (the real token's log-probability and each side's top-1), then decode
# speed at each batch by the same method as above (t_N − t_1 over N − 1 steps), then ours on the same
# prompts with the engine stopped. "vs its dense" is each engine's speedup over its own dense at that
# batch; the engines' kernels differ (vLLM's fused CPU MoE op and its own attention; our oneDNN-packed
# linears and transformers' attention).
#
# Quantized weights meet the engine in two ways. GPTQ int4 is served *as int4*: its integer codes
# packed in AWQ's format (`serving/awq.py`), which vLLM's CPU int4 kernel runs; our decode cannot execute
# its fake-quantized weights as int4, so its row has the engine's side only (our own int4 kernel is
# the int4 weight-only variant's row above). The checkpoint asks the engine for its *weight-only* int4
# kernel (`engine_env.json`, recorded in each row's provenance): on a CPU with AMX and bf16 activations
# vLLM runs int4 checkpoints as W4A8 by default, quantizing each token's activations to int8 — another
# technique, which scored a small int4 test model's text several times further from ours than the
# weight-only kernel does (`tests/test_served_smoke.py`). Weight-only int8 has no CPU kernel in vLLM 0.32: its int8
# path is W8A8, which quantizes each token's activations to int8 too — another technique, so it is a variant
# of its own, `int8_w8a8` (int8 weights per output channel, int8 activations per token, no calibration;
# `quality/transforms/w8a8.py`), exported in compressed-tensors' int8 form and run by the engine's int8
# kernel; ours computes the same integer products exactly (PyTorch's int8 GEMM), so both engines time and
# score the same model — layer by layer, where `tests/test_served_smoke.py` feeds the engine's own int8 kernel
# the exported tensors. Over whole text the two agree less than on dense: int8 activations amplify every
# other rounding difference between the engines (their attention and norms), since a value pushed across a
# quantization step moves by the whole step. For *quality* only, the engine may
# also evaluate weight-only int8's dequantized weights — exactly the weights our sweep evaluates
# (`quality.quant_eval: dequantized`) — licensed by its own served check (the table of served checks below).

# %% tags=["hide-input"]
from studylib.book.cpu_speed import (engine_bars, engine_choice_reading, engine_gap_reading, rerun_reading,
                                     served_beside_ours, served_check_table, stream_table)

sv = served_beside_ours(data.table("served_decode"), data.table("served_exactness"))
if sv.empty:
    book.md("*Not measured yet: `make served PROFILE=cpu-qwen` on an idle machine (never beside a sweep).*")
else:
    book.table(sv, digits=2, caption="Table 4.6f. vLLM (CPU) and our decode of the same checkpoints, measured "
               "in one invocation: median decode tokens/s, share of the measured copy bandwidth, speedup over "
               "the same engine's dense, and the served model's top-1 agreement and largest log-probability gap "
               "against ours over WikiText-2; 'same run as dense' says whether vLLM timed the variant in its dense's "
               "invocation (where not, its ratio to dense also carries the machine's drift between the two runs). "
               "Data: data/served_decode/, data/served_exactness/.")
    if text := engine_gap_reading(sv):
        book.md(text)
stt = stream_table(data.table("served_stream"))
if not stt.empty:
    book.table(stt, digits=2, caption="Table 4.6g. The same checkpoints under a served load: GSM8K prompts arriving "
               "as a Poisson stream, each streamed by its own client; time to first token and time per output token "
               "(seed 001's metrics), and the converted model's expert loads on that text. Data: data/served_stream/.")
sct = served_check_table(data.table("served_check"))
if not sct.empty:
    book.table(sct, digits=3, caption="Table 4.6h. Committed quality units re-measured through vLLM, item by item "
               "(`make served-check`): outcomes that changed, the paired difference served − ours with Tango's "
               "interval, and items per hour through each engine on the same items in one invocation (vLLM with "
               "the sweep's requests in flight, ours at the sweep's batch sizes): where `make sweep BACKEND=vllm` "
               "pays. Data: data/served_check/.")
    for text in (engine_choice_reading(sct, data.items), rerun_reading(sct)):
        if text:
            book.md(text)
if not sv.empty or not sct.empty:
    book.table(engine_bars(sv, data.table("served_check")), caption="Table 4.6i. The serving issue's bars (a "
               "benchmark, not a test) against Tables 4.6f and 4.6h, per profile: the literal conversion at B = 1 "
               "against the engine's own dense, our decode against vLLM's on every variant and batch, vLLM's top-1 "
               "agreement with ours on dense, and every served check's paired difference. A bar missed is a finding "
               "(Table 4.6f's reading names the kernel that loses), not a failure of the study.")

# %% [markdown]
# ### Every weight kernel this CPU has, on one layer
# The decode harness uses optimum-quanto's int8/int4 kernels. To show that this is the fastest
# correct choice rather than an assumption, one layer of Qwen2.5-1.5B's shape runs under every
# weight kernel available here from maintained libraries (PyTorch, optimum-quanto, torchao), with
# each kernel's error against the fp32 product of the unquantized weight.

# %% tags=["hide-input"]
ck = data.table("cpu_kernels")
if ck.empty:
    book.md("*Not measured yet: `make phase2 PROFILE=cpu-qwen` on an idle machine (`cpu_kernels` section).*")
else:
    ck = with_layer(ck)
    kernel_figure(ck)
    plt.show()
    book.table(kernel_table(ck),
               digits={"median µs": 0, "weight MB": 2, "bw_fraction": 2, "rel_error": 4},
               caption="Table 4.6c. One linear layer under each CPU weight kernel (median of repeats; rel_error: "
               "relative error against the fp32 product of the unquantized weight, i.e. the kernel's rounding "
               "plus its format's). Data: data/cpu_kernels/ (studylib.decoding.weight_kernels).")
    from studylib.book.quantization import kernel_readings

    for prof, cp in ck.groupby("profile"):
        for paragraph in kernel_readings(cp, prof):
            book.md(paragraph)

# %% [markdown]
# *Figure 4.5. Achieved weight bandwidth of each CPU kernel on Qwen2.5-1.5B's FFN projections,
# relative to the measured copy bandwidth (`data/cpu_kernels/`).*

# %% [markdown]
# ## What each technique buys and what it costs, on one model
# The two halves of the study side by side on Qwen2.5-Coder-1.5B-Instruct: each variant's decode
# speedup on this CPU at batch 1 (whole greedy generation, each on its fastest kernel: the rows
# of Table 4.6) against its paired MMLU loss on the same 1,000 items as dense (fewer where the
# sweep has not finished; the table says how many). CPU evidence for the trade-off, not a test of
# an A100/H100 number.

# %% tags=["hide-input"]
from studylib.book import figures

fig, tq = figures.figure1(data)   # the front page's Figure 1
if not tq.empty:
    plt.show()
    book.table(figure1_table(tq),
               caption="Table 4.6d. The points of Figure 4.6. Data: data/cpu_decode/, data/quality_items/; "
               "studylib.book.tradeoff.speed_quality.")
    book.md(family_reading(tq))

# %% [markdown]
# *Figure 4.6 (the front page's Figure 1). Each point is one variant of the same model: up is
# faster, right is worse. Bars: 95% intervals (bootstrap over decode repeats; Tango's paired
# interval over MMLU items). Shaded: the paper's claim (1.7–1.9x at < 1 pp); dotted: dense speed;
# dashed (right axis): the H100's whole-model speedups of the combination and of int8. Hollow
# points are at chance on MMLU, so their loss is a lower bound. Unstructured 30% pruning has no
# CPU kernel that skips zeros, so it can buy no speed here.*

# %% [markdown]
# ## Stacking (Eq. 34): η measured
# The draft drafts for a *variant* of the target, in its executable form, on the same prompts as
# the plain runs: the paper's combination (Eq. 34's stack: sparse routing + speculative decoding)
# and int8 (Tables 5/7's "both"). Per prompt: S_variant = variant alone ÷ target alone, S_spec =
# draft for the target ÷ target alone, S_stack = draft for the variant ÷ target alone (tokens/s);
# η = S_stack / (S_variant · S_spec), bootstrap over prompts (`studylib.estimates.spec_analysis.eta`).
# CPU evidence: on two cores, not an A100/H100 number.

# %% tags=["hide-input"]
stacks = stack_table(sd_all, cd, stack, (pruned, int8))
book.table(stacks, caption="Table 4.7. Stacks on the CPU; the paper's η: 0.75–0.82 (Eq. 34). "
           "Data: data/spec_decoding/cpu-qwen/ (rows with a target_variant), data/cpu_decode/ "
           "(studylib.estimates.cpu_decode.stack_eta: ratio of median step times, bootstrap over repeats).",
           empty="*No stacked run yet: `make phase2 PROFILE=cpu-qwen` runs them after the plain pair.*")

# %% [markdown]
# How to read Table 4.7: η below one means the stack gains less than the product of its parts.
# There is a mechanism to expect it for any weight-byte saving, not only for sparse routing: a
# verification pass presents γ+1 tokens to the target at once, and a pass over several tokens is
# where fewer weight bytes help least — routed tokens reach several experts, and the int8/int4
# kernels lose their edge over bf16 as tokens per pass grow (compare the batch-8 rows of Table 4.6
# with batch 1). Speculative decoding and byte-saving techniques spend the same resource, weight
# bytes per generated token, so their gains need not multiply; Eq. 34's η ≈ 0.8 is tested, not
# assumed.
