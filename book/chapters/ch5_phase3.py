# %% [markdown]
# # Chapter 5 — Phase 3: failure modes and the decision framework
#
# **Claims.** Load imbalance costs throughput (Table 4: 85/55/35%); > 70% of tokens to one
# expert is an abort condition (§7.3); long-context retrieval loses 5–15%; §7.1 qualifies
# sparse routing only at ≥ 70B, batch ≥ 32, on A100/H100; Phase 3 (§8.2) is to find the
# practical limits and sweet spots, which §9.1 places at 70B+ and batch ≥ 32, "unsuitable for
# single-token chat inference".
#
# Data: `data/timing/*/` (routing column), `data/quality_variants/*/`, `data/quality_items/*/`
# (task `needle`).

# %% tags=["remove-cell"]
import matplotlib.pyplot as plt
import seaborn as sns

from studylib.book import tables as book
from studylib.claims import Data
from studylib.estimates import gpu_claims as G
from studylib.estimates import sweet_spot as S
from studylib.paper.decision import should_consider_sparse_routing
from studylib.estimates.conversion_analysis import at_25_by_technique
from studylib.quality.transforms import declared_variants, with_role
from studylib.book.phase3 import (
    concentration_figure,
    imbalance_figure,
    oracle_reading,
    relative_to_uniform,
    routed_conversions,
    sweet_spot_figure,
    sweet_spot_reading,
)
from studylib.results import BASELINE, read_table
from studylib.timing.modules import with_role as with_role_timed

book.setup()

# %% tags=["remove-input"]
book.chapter_verdicts("ch5_phase3")

# %% [markdown]
# ## Load imbalance (Table 4)

# %% tags=["hide-input"]
timing = read_table("timing")
long = relative_to_uniform(G.gpu_timing(timing))  # the judging GPU only: a pivot over two GPUs would average them
if long.empty:
    book.md("*No GPU timing with forced routing in `data/` yet.*")
else:
    if imbalance_figure(long, with_role_timed("paper_recipe")) is not None:
        plt.show()
    book.table(long.pivot_table(index=["shape", "component", "variant", "batch"], columns="routing",
                                values="relative"), index=True, digits=3,
               caption="Table 5.1. Uniform-routing step time ÷ skewed-routing step time (> 1: imbalance made "
               "the step faster). Data: data/timing/h100/ (routing column).")

# %% [markdown]
# *Figure 5.1. Relative throughput of the paper's combination (FFN, H100) under forced routing
# skews; dotted lines: Table 4's predictions for mild / severe / catastrophic imbalance. In a
# memory-bound decode step a skewed batch touches *fewer* experts, so the physics predicts the
# opposite sign at small batch: values above 1 mean imbalance made the step faster.*

# %% [markdown]
# ## Load concentration in the converted models (§7.3, abort condition 2)
# The abort rule counts the tokens that the router sends to its busiest expert, in the worst
# layer, on the calibration text. The verdict row judges the paper's combination; the figure
# shows every routed conversion measured on real models beside it, so a reader can see whether
# the rule would fire for the conversion without pruning, for the bounds, or for CMoE-style
# routing (shared expert + bias balancing).

# %% tags=["hide-input"]
routed = routed_conversions(read_table("quality_variants"), exclude=with_role("design_point"))
if routed.empty:
    book.md("*No routed conversion of a real model in `data/quality_variants/` yet.*")
else:
    concentration_figure(routed)
    plt.show()
    book.table(routed[["model", "variant", "experts", "top_k", "balance", "max_expert_fraction",
                       "router_oracle_agreement"]], digits=3,
               caption="Table 5.2. Routing statistics of the routed conversions (calibration tokens; balance "
               "is Eq. 32, 1 = uniform). Data: data/quality_variants/{cpu-real,cpu-qwen}/.")
    by_tech = at_25_by_technique()  # the declared role ``at_25``, by the transform that makes each
    if text := oracle_reading(routed, by_tech["moe_oracle"], by_tech["moe_literal"]):
        book.md(text)

# %% [markdown]
# *Figure 5.2. Fraction of tokens routed to the busiest expert in the worst layer; dashed: §7.3's
# abort threshold (70%). `oracle_moe4_top1` routes each token to the expert with the largest true
# activation mass (no router can do better on that partition); `cmoe_*` balance their routers
# with bias offsets, which is why they sit far below the line.*

# %% [markdown]
# ## Long-context retrieval vs context length

# %% tags=["hide-input"]
items = read_table("quality_items")
needle = items[items["task"] == "needle"]
acc = needle.groupby(["profile", "variant", "length"])["correct"].mean().reset_index()
sel = acc[acc["variant"].isin([BASELINE, *with_role("pruning_alone"), *with_role("paper_conversion"), *with_role("paper_recipe")])]
if not sel.empty:
    ax = sns.lineplot(data=sel, x="length", y="correct", hue="variant", style="profile", marker="o")
    ax.set_ylabel("passphrase recalled exactly (greedy)"); ax.set_xlabel("context length (≈ tokens)")
    plt.show()

# %% [markdown]
# *Figure 5.3. Passphrase recalled exactly, by context length (`data/quality_items/*/`, task `needle`;
# `notebooks/phase1_quality.py`).*
#
# ## The §7.1 qualification function, evaluated
# The paper's own function rejects every deployment below 70B regardless of measurements;
# e.g. Llama-8B at batch 32 on an H100 with a capable team:

# %% tags=["hide-input"]
decision = should_consider_sparse_routing(8, "H100", {"batch_size": 32, "throughput_priority": 1, "latency_priority": 0,
                                           "long_context_critical": False, "inference_scale_tokens_per_day": 1e9,
                                           "cost_reduction": 0.3, "research_exploration": False},
                               {"engineering_budget": 800, "ml_infra_expertise": 0.8,
                                "implemented_optimizations": ["quantization", "speculative_decoding"]})
book.md(f"`should_consider_sparse_routing(8, 'H100', …)` returns: **{decision}**")

# %% [markdown]
# ## Limits and sweet spots (Phase 3)
# Phase 3's own success criterion ("identify practical limits and sweet spots") is not a test,
# but the paper says where the sweet spot is: 70B and up, batch 32 and up, not batch 1. The
# verdict row judges that statement by the rule in `criteria.phase3_verdict` (written on
# 2026-11-25, after the H100 timings had been seen: see the audit appendix's criteria log). The
# figure puts both axes the study measured side by side: where the paper's combination is faster
# (one decoder layer on the H100, every shape and batch of the H1 campaign), and what a quarter of
# the FFN per token costs in quality on the largest model whose quality we measured, for every
# usable conversion and for the per-token oracles that bound them.

# %% tags=["hide-input"]
data = Data()
speed = S.speed_map(data.timing)
quality = S.quality_at_fraction(data.deltas, data.variants)
if speed.empty:
    book.md("*No H1 layer timing in `data/timing/` yet (`make gpu PROFILE=h100`).*")
else:
    sweet_spot_figure(speed, quality, S.SHAPES)
    plt.show()

# %% [markdown]
# *Figure 5.4. (a) One-layer speedup of 30% pruning + 4 experts, top-1, over dense, per model
# shape and batch (`data/timing/h100/`, random weights of real shapes; `studylib.estimates.sweet_spot.speed_map`);
# boxed cells are the paper's sweet spot (70B, batch ≥ 32). (b) Paired MMLU loss of every
# conversion measured at a quarter of the FFN per token, usable methods in blue, per-token
# oracles (which need the dense activations they would save) in grey
# (`studylib.estimates.sweet_spot.quality_at_fraction`).*

# %% tags=["hide-input"]
if not speed.empty:
    lim = S.batch_limits(speed)
    book.table(lim, digits={"params_b": 1, "best_speedup": 2},
               caption="Table 5.4. Per model shape: the largest batch at which the paper's combination is still "
               "faster than dense (CI above 1; '—' where none), and the batch of its largest speedup.")
    book.md(sweet_spot_reading(speed, lim, quality, data.items, declared_variants()))
