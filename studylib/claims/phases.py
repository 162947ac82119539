"""The §8.2 phases and the Phase 2 / H3 claims, which combine other claims' measurements."""
from __future__ import annotations

from .. import gpu_claims as G
from ..paper import criteria as C
from . import PENDING_GPU, Claim, Data, Measured, ci_text
from .quality import judged_loss, loss, scale


def _phase1(d: Data) -> Measured:
    e8, _ = G.headline_speedup(d.timing)
    mmlu, rows = loss(d, "mmlu")
    if e8 is None and mmlu is None:
        return Measured()
    text = "—" if mmlu is None else (f"MMLU loss {mmlu.value:.1f} pp; speedup "
                                     + ("—" if e8 is None else f"{e8.value:.2f}x"))
    return Measured(text=text, ci=ci_text(mmlu, "{:.1f}"), scale=scale(rows, "quality part only" if e8 is None else ""),
                    inputs={"speedup": e8, "mmlu": judged_loss(d, "mmlu"), "mmlu_measured": mmlu is not None})


def _phase1_verdict(m: Measured) -> str:
    v = C.phase1_verdict(m.inputs["speedup"], m.inputs["mmlu"])
    if v == C.NOT_MEASURED and m.inputs["mmlu_measured"]:
        return C.AT_CHANCE
    return PENDING_GPU if v == C.NOT_MEASURED else v


def _nothing(d: Data) -> Measured:
    return Measured()


CLAIMS = [
    Claim("spec_decoding", "spec. decoding 2.3-2.7x; both 2.7-3.3x", "Tables 5, 7-9", "2.3-2.7x; 2.7-3.3x",
          "ch4_phase2", _nothing, lambda m: C.NOT_MEASURED,
          C.NOT_MEASURED + " (needs the CPU acceptance rate; GPU step times are in data/)"),
    Claim("eta", "η_interaction ≈ 0.8", "Eq. 34", "0.75-0.82", "ch4_phase2", _nothing, lambda m: C.NOT_MEASURED,
          C.NOT_MEASURED + " (needs stacked variants)"),
    Claim("h3", "H3: < 300 h per 1x, within 30% of quantization", "§8.1.3", "400-600 h total", "ch4_phase2",
          _nothing, lambda m: C.NOT_MEASURED,
          C.NOT_MEASURED + " (needs the spec.-decoding speedup and the ROI Monte Carlo)"),
    Claim("phase1", "Phase 1: 1.6-1.8x and < 1% MMLU loss (Llama-8B)", "§8.2", "1.6-1.8x, < 1 pp",
          "ch2_phase1_timing", _phase1, _phase1_verdict, PENDING_GPU),
    Claim("phase2", "Phase 2: quant + spec. decoding beat sparse routing on ROI", "§8.2", "yes", "ch4_phase2",
          _nothing, lambda m: C.NOT_MEASURED, C.NOT_MEASURED + " (as H3)"),
    Claim("phase3", "Phase 3: limits and sweet spots identified", "§8.2", "—", "ch5_phase3", _nothing,
          lambda m: C.NOT_MEASURED, C.NOT_MEASURED + " (needs the repaired conversion's expert loads)"),
]
