# %% [markdown]
# # Chapter 1 — Audit of the latency model (§3.1–3.4)
#
# Everything in this chapter is arithmetic from the paper's own formulas
# (`studylib/paper/equations.py`) and published model configs; no measurement is needed.
# The question: does §3.1 hold together, and is it physically possible?
#
# **Verdict.** §3.1 does not reproduce its own printed numbers (*refuted*, verdict table row
# `s31_arithmetic`), and its dense latency lies below the physical floor of streaming the weights.

# %% tags=["remove-cell"]
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from myst_nb import glue

from studylib.book import tables as book
from studylib.paper import equations as eq
from studylib.paper.tables import TABLE1, TABLE4
from studylib.shapes import SHAPES
from studylib.timing.roofline import DATASHEET, ceiling_speedup, decode_bytes

book.setup()

# %% tags=["remove-input"]
book.chapter_verdicts("ch1_latency_audit")

# %% tags=["hide-input"]
sec = eq.paper_section31()
book.table(pd.DataFrame({"paper prints": eq.PRINTED_SECTION31, "its formula gives": sec}), index=True,
           caption="Table 1.1. §3.1's printed values against its own formulas (studylib.paper.equations).")

# %% [markdown]
# **What holds.** Eq. 5 (8.4), Eq. 8 (67.4 = 8.4 + 56 + 3), the 32-layer totals and Eq. 18
# (2.16 / 1.25 = 1.73x) follow from the numbers printed before them.
#
# **What does not.**
# 1. *Units.* The formulas divide a parameter count by bytes/s: they count one byte per
#    parameter and read the result in µs. Llama-8B is served in bf16 (2 bytes per parameter).
# 2. *Eq. 6*: 2·4096·14336 / 2 TB/s = 58.7, not 56.0.
# 3. *Eq. 16*: 2·4096·4 / 2 TB/s = 16.4 **nanoseconds**, not 16 µs — the gate is overstated
#    1000-fold. With the formula's own value, Eq. 9 gives the speedup below instead of 1.73x.
# 4. *Missing weights.* Eq. 2 counts D² for attention; Llama-3-8B's Q, K, V, O projections are
#    2.5·D² (GQA). Eq. 3 counts two FFN matrices; SwiGLU has three (gate, up, down).
# 5. *Bandwidth.* The prose says the A100 has 640 GB/s and the equations use 2 TB/s.

# %% tags=["remove-cell"]
t_attn, t_ffn = eq.eq2_t_attn(4096), eq.eq3_t_ffn(4096, 14336)
gate_ns = eq.eq10_t_gate(4096, 4)
dense = eq.eq1_t_layer_dense(t_attn, t_ffn)
sparse = eq.eq9_t_layer_sparse(t_attn, t_ffn, gate_ns)
glue("gate_ns", f"{gate_ns * 1e3:.1f} ns", display=False)
glue("eq9_speedup", f"{dense / sparse:.2f}x", display=False)

# %% [markdown]
# With the gate its own formula gives ({glue:text}`gate_ns`), Eq. 9's speedup is
# {glue:text}`eq9_speedup`.

# %% [markdown]
# ## The physical lower bound
# A decode step at batch 1 must stream every weight it uses from HBM once. Bytes ÷ datasheet
# bandwidth is a floor no kernel can beat. The paper's 2.16 ms/token for dense Llama-8B on an
# A100 sits below that floor.

# %% tags=["hide-input"]
rows = []
for dev in ("A100-80GB", "H100-SXM"):
    bw = DATASHEET[dev].hbm_bytes_per_s
    for name in ("llama-3-8b", "llama-2-70b"):
        s = SHAPES[name]
        d = decode_bytes(s, batch=1, context=2048)
        sr = decode_bytes(s, batch=1, context=2048, ffn_fraction=0.7 / 4)
        rows.append({"device": dev, "model": name, "params (B)": s.n_params / 1e9,
                     "dense bf16 floor (ms/token)": d / bw * 1e3,
                     "sparse-routing floor (ms/token)": sr / bw * 1e3,
                     "ceiling speedup B=1": d / sr, "paper's dense (ms)": 2.16 if name == "llama-3-8b" else None})
floor = pd.DataFrame(rows)
book.table(floor, digits=2, caption="Table 1.2. Bytes one decode step must read ÷ datasheet bandwidth "
           "(studylib.timing.roofline.decode_bytes); '—': the paper prints no dense latency for that model.")

# %% [markdown]
# Even with perfect kernels and pruned weights that cost nothing to skip, 30% pruning + top-1 of
# 4 experts can speed a bandwidth-bound Llama-8B decode step by at most the *ceiling* above:
# only the FFN shrinks, and attention, embeddings and the LM head are read in full.
#
# ## Attention fraction (Eq. 19) against the published configs
# Eq. 19 is stated as the share of decode *time* in attention. Its byte-share analogue follows
# from the configs: the share of per-layer projection weights (plus KV cache at 2k context) that
# is attention.

# %% tags=["hide-input"]
rows = []
for name, s in SHAPES.items():
    if s.size_class is None:
        continue
    kv = s.kv_bytes_per_token() * 2048 / s.layers / 2  # per layer, in parameter-equivalents
    rows.append({"model": name, "N (B)": s.n_params / 1e9, "Eq. 19 f_attn": eq.eq19_f_attn(s.n_params),
                 "Table 1 attn%": TABLE1[s.size_class]["attn"],
                 "attn share of layer weights": s.attn_params / (s.attn_params + s.ffn_params),
                 "attn share incl. 2k KV": (s.attn_params + kv) / (s.attn_params + kv + s.ffn_params),
                 "ceiling speedup B=1": ceiling_speedup(s, context=2048)})
fa = pd.DataFrame(rows)
book.table(fa, caption="Table 1.3. Eq. 19 and Table 1 against the attention share of published configs "
           "(studylib/shapes.py).")

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(7, 4))
sns.lineplot(data=fa, x="N (B)", y="Eq. 19 f_attn", marker="o", label="Eq. 19", ax=ax)
sns.scatterplot(data=fa, x="N (B)", y="attn share of layer weights", label="from configs (weights)", ax=ax, s=60)
sns.scatterplot(data=fa, x="N (B)", y="attn share incl. 2k KV", label="from configs (+2k KV)", ax=ax, marker="s", s=60)
ax.set_xscale("log"); ax.set_ylabel("attention fraction"); ax.set_title("Eq. 19 vs published model shapes")
plt.show()

# %% [markdown]
# *Figure: computed from `studylib/shapes.py` and `studylib/paper/equations.py` (no data file).*
#
# Eq. 19 and Table 1 also disagree with each other: Eq. 19 gives 32% at 70B and 27% at 175B,
# Table 1 prints 35% and 32%. GQA models (Llama-3-8B, Llama-2-70B) have a much smaller
# attention share of weights than Eq. 19 assumes, so at batch 1 the ceiling is set by the FFN
# share, not by an "attention wall" of 35–45%.
#
# ## Tables 2 and 4
# Table 2's first row (29% of layer) does not follow from the layer times its other rows imply
# (gate µs ÷ share: {glue:text}`t2_layer_us` µs, so 16 µs would be {glue:text}`t2_share` of a layer). Eq. 32 applied to Table 4's load distributions gives efficiencies that are
# not the throughput column:

# %% tags=["remove-cell"]
from studylib.paper.tables import TABLE2

layer_us = sum(r["gate_us"] / r["pct_of_layer"] for b, r in TABLE2.items() if b != 1) / (len(TABLE2) - 1)
glue("t2_layer_us", f"{layer_us:.1f}", display=False)
glue("t2_share", f"{TABLE2[1]['gate_us'] / layer_us:.0%}", display=False)

# %% tags=["hide-input"]
book.table(pd.DataFrame([{"distribution": k, "fractions": v["fractions"],
                          "Eq. 32 efficiency": eq.eq32_routing_efficiency(v["fractions"]),
                          "Table 4 throughput": v["throughput"]} for k, v in TABLE4.items()]),
           caption="Table 1.4. Eq. 32 applied to Table 4's own load distributions.")
