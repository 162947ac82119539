"""Speed claims. Hardware claims about A100/H100 are judged only on GPU-profile data
(h100/h200, ``gpu_claims``); CPU timings never count as a test of them."""
from __future__ import annotations

from studylib.claims.base import (
    GROUP_AUDIT,
    GROUP_H1,
    GROUP_H3,
    GROUP_PHASES,
    PENDING_GPU,
    Claim,
    Data,
    Measured,
    band,
    ci_text,
)
from studylib.estimates import gpu_claims as G
from studylib.paper import criteria as C
from studylib.paper import equations as eq
from studylib.paper.tables import TABLE1, TABLE4, TABLE6
from studylib.quality.transforms import with_role
from studylib.stats import Estimate
from studylib.results import BASELINE


def gpu_scale(d: Data) -> str:
    t = G.gpu_timing(d.timing)
    return "GPU" if t.empty else f"{t['gpu_name'].iloc[0]} ({t['profile'].iloc[0]}), random weights, real shapes"


def _section31(d: Data) -> Measured:
    sec = eq.paper_section31()
    return Measured(text=f"Eq. 6 gives {sec['t_ffn_us']:.1f} not 56.0; Eq. 16 is "
                         f"{eq.eq10_t_gate(4096, 4) * 1e3:.0f} ns not 16 µs", ci="exact arithmetic",
                    scale="arithmetic", inputs={"consistent": False})


def _speed(d: Data, e, label: str) -> Measured:
    """A GPU speedup estimate as a measurement (nothing when the unit is not in data/)."""
    return Measured() if e is None else Measured(e, f"{e.value:.2f}x ({label})", ci_text(e), gpu_scale(d))


def _table1(size: str):
    return lambda d: _speed(d, G.h1_speedups(d.timing).get(size), f"one layer, {G.SIZE_SHAPES[size]}")


def _h1(d: Data) -> Measured:
    per = G.h1_speedups(d.timing)
    return Measured(text="; ".join(f"{k} {v.value:.2f}x" for k, v in per.items()) or "—", scale=gpu_scale(d),
                    inputs=per)


def _headline(batch: int):
    def measure(d: Data) -> Measured:
        e, how = G.headline_speedup(d.timing, batch=batch)
        return _speed(d, e, f"Llama-3-8B shape, {how}, B={batch}")
    return measure


def _gate(d: Data) -> Measured:
    g = G.gate_overhead_fraction(d.timing)
    if g is None:
        return Measured()
    iso = G.gate_isolated_us(d.timing)
    extra = "" if iso is None else f" (router alone {iso:.0f} µs incl. graph launch)"
    return Measured(g, f"{100 * g.value:.1f}% in place{extra}", f"[{100 * g.lo:.1f}, {100 * g.hi:.1f}]%", gpu_scale(d))


def _table4(d: Data) -> Measured:
    t4 = {r: e for r in ("mild", "severe", "catastrophic")
          if (e := G.imbalance_throughput(d.timing, r, C.TABLE4_BATCH)) is not None}
    if not t4:
        return Measured()
    t95 = {r: e for r in t4 if (e := G.imbalance_throughput(d.timing, r, C.TABLE4_BATCH, quantile=0.95)) is not None}
    return Measured(text="/".join(f"{100 * e.value:.0f}" for e in t4.values()) + f"% (p50, B={C.TABLE4_BATCH})",
                    ci="; ".join(ci_text(Estimate(100 * e.value, 100 * e.lo, 100 * e.hi), "{:.0f}") for e in t4.values()),
                    scale=gpu_scale(d), inputs={"p50": t4, "p95": t95})


def _table4_verdict(m: Measured) -> str:
    pred = {r: TABLE4[r]["throughput"] for r in TABLE4}
    v50, v95 = C.table4_verdict(m.inputs["p50"], pred), C.table4_verdict(m.inputs["p95"], pred)
    return v50 if v50 == v95 else f"p50 {v50}, p95 {v95}"


def _memory(d: Data) -> Measured:
    from studylib.timing import memory

    r = memory.relative_footprints()
    return Measured(text=", ".join(f"{k} {v:.2f}x" for k, v in r.items()) + " of dense",
                    ci="exact byte counts", scale="Llama-3-8B shape, this study's modules (int8: every linear; "
                    "spec.: + a 0.5B draft)", inputs=r)


def _memory_verdict(m: Measured) -> str:
    from studylib.paper.tables import TABLE7

    per = {k: TABLE7[k]["vram"] for k in m.inputs}
    return "; ".join(f"{k} {'supported' if lo <= m.inputs[k] <= hi else 'refuted'}" for k, (lo, hi) in per.items())



CPU_DECODE_RANK = ("cpu-qwen", "cpu-real", "embedded")


def table6_variants() -> tuple[str, ...]:
    """Table 6's CPU row: the paper's combination, else its conversion alone (declared roles)."""
    return with_role("paper_recipe") + with_role("paper_conversion")


def cpu_decode_speedup(d: Data, variants, batch: int = 1, profiles=CPU_DECODE_RANK) -> dict | None:
    """The first of ``variants`` measured in whole greedy decode on this CPU, over dense, on the
    first of ``profiles`` measured (by default the largest model), each on its fastest measured
    kernel: {estimate, variant, kernel, scale}; None when none is in data/. Since 2026-12-04 (issue 38)
    the served engine (vLLM, ``data/served_decode``) is one of the kernels: where it is faster for a
    variant (or for dense), that is the figure judged, and the kernel text names it."""
    from studylib.estimates.cpu_decode import fastest_kernel, speedup_vs_dense, with_served

    t = fastest_kernel(with_served(d.table("cpu_decode"), d.table("served_decode")))
    for prof in [p for p in profiles if not t.empty and p in set(t["profile"])]:
        tp = t[t["profile"] == prof]
        for v in variants:
            e = speedup_vs_dense(tp, v, batch)
            if e is not None:
                k = {x: tp[(tp["variant"] == x) & (tp["batch"] == batch)]["kernel"].iloc[0] for x in (BASELINE, v)}
                kern = k[BASELINE] if k[BASELINE] == k[v] else f"{BASELINE} {k[BASELINE]}, {v} {k[v]}"
                return {"estimate": e, "variant": v, "kernel": kern,
                        "scale": f"{tp['model'].iloc[0]} ({prof}), {tp['dtype'].iloc[0]}, this CPU"}
    return None


def _table6_cpu(d: Data) -> Measured:
    """The paper's combination, executed (only the routed expert's weights read), against dense:
    whole greedy decode on this CPU at batch 1."""
    c = cpu_decode_speedup(d, table6_variants())
    if c is None:
        return Measured()
    e = c["estimate"]
    return Measured(e, f"{e.value:.2f}x ({c['variant']}, executed experts, B=1, {c['kernel']})", ci_text(e), c["scale"])


def _int8(d: Data) -> Measured:
    """Judged on the first GPU whose int8 model quantized every linear (``gpu_claims.int8_at_best``;
    the H100's FFN-only reading beside it); the CPU decode of the same technique is shown as CPU
    evidence, never as its verdict."""
    best = G.int8_at_best(d.timing, d.table("device_peaks"))
    m = Measured()
    if best is not None:
        e = best["estimate"]
        text = (f"{e.value:.2f}x (Llama-3-8B decode, B=1, {best['variant']}, {best['quantized']} quantized; "
                f"{best['bw_fraction']:.2f} of copy BW, dense {best['dense_bw_fraction']:.2f})")
        ci = ci_text(e)
        if best["profile"] != G.JUDGING_GPUS[0]:
            h, _ = G.quant_speedup(d.timing, profile=G.JUDGING_GPUS[0])
            if h is not None:
                text += f"; {G.JUDGING_GPUS[0].upper()} (FFN only) {h.value:.2f}x"
                ci += f"; {G.JUDGING_GPUS[0].upper()} {ci_text(h)}"
        m = Measured(e, text, ci, f"{best['gpu']} ({best['profile']}), random weights, real shapes",
                     inputs={"best": best})
    c = cpu_decode_speedup(d, with_role("int8"))
    if c is None:
        return m
    cpu = f"CPU evidence: {c['variant']} {c['estimate'].value:.2f}x (B=1, {c['kernel']}; {c['scale']})"
    if m.empty:
        return Measured(text=cpu, ci=ci_text(c["estimate"]), inputs={"cpu_only": True})
    return Measured(m.estimate, f"{m.text}; {cpu}", f"{m.ci}; CPU {ci_text(c['estimate'])}", m.scale, inputs=m.inputs)


def _int8_verdict(m: Measured) -> str:
    b = m.inputs.get("best")
    if b is None:
        return C.NOT_MEASURED
    return C.kernel_limited_verdict(m.estimate, *C.INT8_BAND, b["bw_fraction"], b["dense_bw_fraction"])


RANK = 0  # the order of its rows in the verdict table
CLAIMS = [
    Claim("s31_arithmetic", "§3.1 arithmetic reproduces its printed numbers", "Eqs. 5-18", "1.73x, 2.16 ms/token",
          "ch1_latency_audit", _section31, lambda m: "supported" if m.inputs["consistent"] else "refuted", group=GROUP_AUDIT),
    *[Claim(f"table1_{size}", f"Speedup at {size} (30% pruning + 4-expert top-1, B=1)", "Table 1, Eq. 19",
            "{}-{}x".format(*TABLE1[size]["realistic"]), "ch2_phase1_timing", _table1(size),
            lambda m, size=size: C.h1_size_verdict(size, m.estimate), PENDING_GPU, group=GROUP_H1)
      for size in C.H1_SIZES],
    Claim("h1", "H1: speedup within 10% of Table 1 at every size", "§8.1.1", "1.3x (7B) → 1.7x (70B)",
          "ch2_phase1_timing", _h1, lambda m: C.h1_verdict(m.inputs), PENDING_GPU, group=GROUP_H1),
    Claim("headline_b1", "Headline: 1.7-1.9x decode speedup on A100/H100", "Abstract, Eq. 18", "1.7-1.9x",
          "ch2_phase1_timing", _headline(1), band(1.7, 1.9), PENDING_GPU, group=GROUP_H1),
    Claim("headline_b8", "Headline at batch 8 (the paper's model assumes B=1, §10)", "Abstract, §10", "1.7-1.9x",
          "ch2_phase1_timing", _headline(8), band(1.7, 1.9), PENDING_GPU, group=GROUP_H1),
    Claim("gate_overhead", "Gate overhead 29% of layer at B=1, amortised by batch", "Eq. 24, Table 2",
          "29% at B=1 (16 µs)", "ch2_phase1_timing", _gate, band(*C.GATE_BAND), PENDING_GPU, group=GROUP_H1),
    Claim("table4", "Table 4 throughput under imbalance (85/55/35%)", "Table 4", "85/55/35% of balanced",
          "ch5_phase3", _table4, _table4_verdict, PENDING_GPU, group=GROUP_PHASES),
    Claim("table7_vram", "VRAM vs dense: sparse routing +25-50%, int8 +5%, spec. decoding +15%", "Table 7",
          "1.25-1.50x, 1.05x, 1.15x", "ch4_phase2", _memory, _memory_verdict, group=GROUP_H3),
    Claim("int8_speed", "int8 weight-only 1.8-2.2x", "§2.4, Tables 5, 7-9", "1.8-2.2x", "ch4_phase2", _int8,
          lambda m: PENDING_GPU + " (CPU evidence only)" if m.inputs.get("cpu_only") else _int8_verdict(m),
          PENDING_GPU, group=GROUP_H3),
    Claim("table6_cpu", "Sparse routing on a CPU: 0.8-1.0x", "Table 6", "{:.1f}-{:.1f}x".format(*TABLE6["CPU"]),
          "ch4_phase2", _table6_cpu, band(*TABLE6["CPU"]),
          "not yet measured (make phase2 PROFILE=cpu-qwen on an idle CPU: studylib/decoding/cpu_speed.py)", group=GROUP_H1),
]
