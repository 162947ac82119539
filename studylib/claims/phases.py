"""The §8.2 phases and the Phase 2 / H3 claims, which combine other claims' measurements."""
from __future__ import annotations

from studylib.claims.base import GROUP_H3, GROUP_PHASES, PENDING_GPU, Claim, Data, Measured, band, ci_text
from studylib.claims.quality import judged_loss, loss, scale
from studylib.estimates import analysis
from studylib.estimates import gpu_claims as G
from studylib.paper import criteria as C
from studylib.quality.transforms import with_role
from studylib.stats import Estimate, interval_verdict

#: the measured pair whose acceptance feeds the GPU formula, and the GPU target it stands for
SPEC_PAIR = "llama-3-8b with a 0.5B draft"


def spec_estimates(d: Data) -> dict:
    """CPU wall-clock speedup (best γ) and the H100 prediction from the CPU acceptance
    (computed once per verdict table: the spec. decoding, H3 and Phase 2 rows all use it)."""
    from studylib.estimates import spec_analysis as S

    def compute() -> dict:
        sd = S.main_pair(d.table("spec_decoding"))
        if sd.empty:
            return {}
        cpu, g_cpu, method = S.best_cpu_speedup(sd)
        gpu, g_gpu = S.best_gpu_prediction(sd, d.timing, SPEC_PAIR)
        return {"cpu": cpu, "cpu_gamma": g_cpu, "cpu_method": method, "gpu": gpu, "gpu_gamma": g_gpu,
                "alpha": S.alpha(sd), "model": str(sd["target"].iloc[0])}
    return d.once("spec_estimates", compute)


def _spec(d: Data) -> Measured:
    e = spec_estimates(d)
    if not e or e["cpu"] is None:
        return Measured()
    text = (f"CPU {e['cpu'].value:.2f}x (γ={e['cpu_gamma']}, {e['cpu_method']}); α={e['alpha'].value:.2f}")
    ci = f"CPU {ci_text(e['cpu'])}"
    if e["gpu"] is not None:
        text += f"; H100 formula {e['gpu'].value:.2f}x (γ={e['gpu_gamma']}, 8B target)"
        ci += f"; H100 {ci_text(e['gpu'])}"
    both, both_gpu = _both(d), _both_gpu(d)
    if both_gpu is not None:
        gpu = both_gpu["profile"].upper()
        text += f"; both (int8 + draft) {gpu} formula {both_gpu['both'].value:.2f}x (γ={both_gpu['gamma']})"
        if both_gpu.get("at_dense_efficiency") is not None:
            text += f", {both_gpu['at_dense_efficiency'].value:.2f}x with int8 verifying at dense's efficiency"
        ci += f"; both {gpu} {ci_text(both_gpu['both'])}"
    if both is not None:
        text += f"; both CPU {both['s_stack'].value:.2f}x"
        ci += f"; both CPU {ci_text(both['s_stack'])}"
    return Measured(e["gpu"] or e["cpu"], text, ci,
                    f"{e['model']} + 0.5B draft on 2 CPU cores; H100 step times × CPU acceptance"
                    + (f"; both: {both_gpu['profile'].upper()} int8 step times × CPU acceptance of the int8 target"
                       if both_gpu else ""),
                    inputs={"gpu": e["gpu"], "both": both, "both_gpu": both_gpu})


def _both(d: Data) -> dict | None:
    """Tables 5/7's "both" (int8 + speculative decoding), measured on the CPU as a stack."""
    from studylib.estimates import spec_analysis as S

    sd = d.table("spec_decoding")
    return S.eta(sd, with_role("int8")[0]) if not sd.empty else None


def _both_gpu(d: Data) -> dict | None:
    """Tables 5/7's "both" on a GPU: the expected speedup over the dense target alone of the 0.5B
    draft drafting for an int8 weight-only target — the int8 target's measured verification step
    times (γ+1 tokens) and the dense target's and the draft's single-token steps, all from one GPU
    profile, with the acceptance measured on the CPU for the int8 target (the int8_quanto stack).
    Where the plain pair is measured on the same GPU it is returned beside it."""
    from studylib.estimates import spec_analysis as S

    def compute():
        sd = d.table("spec_decoding")
        if sd.empty:
            return None
        rows = S.stack_rows(sd, S.BOTH[0])
        for p in G.JUDGING_GPUS:
            e, g = S.best_gpu_prediction(rows, d.timing, SPEC_PAIR, target_variant=S.BOTH[1], profile=p)
            if e is not None:
                plain, gp = S.best_gpu_prediction(S.main_pair(sd), d.timing, SPEC_PAIR, profile=p)
                bound, gb = S.best_gpu_prediction(rows, d.timing, SPEC_PAIR, target_variant=S.BOTH[1], profile=p,
                                                  at_dense_efficiency=True)
                return {"profile": p, "both": e, "gamma": g, "plain": plain, "plain_gamma": gp,
                        "at_dense_efficiency": bound, "bound_gamma": gb}
        return None
    return d.once("both_gpu", compute)


def _spec_verdict(m: Measured) -> str:
    if m.inputs["gpu"] is None:
        return C.NOT_MEASURED + " (CPU evidence only; needs the H100 step times)"
    out = interval_verdict(m.inputs["gpu"], 2.3, 2.7) + " (spec. decoding alone)"
    bg = m.inputs.get("both_gpu")
    if bg is not None:
        b = bg.get("at_dense_efficiency")
        v = C.bound_limited_verdict(bg["both"], 2.7, 3.3, float("nan") if b is None else b.value, "int8 verification ")
        return out + f"; both {v} ({bg['profile'].upper()} formula)"
    both = ("'both' on the CPU only: no GPU step time of an int8 target with a draft" if m.inputs.get("both")
            else "'both' not measured")
    return out + f"; {both}"


def roi_inputs(d: Data) -> dict[str, Estimate]:
    """Measured speedups that enter the ROI Monte Carlo (whole 8B-shaped model on the H100)."""
    out = {}
    e8, _ = G.headline_speedup(d.timing)
    q8, _ = G.quant_speedup(d.timing)
    spec = spec_estimates(d).get("gpu")
    for k, e in (("sparse_routing", e8), ("int8", q8), ("spec_decode", spec)):
        if e is not None:
            out[k] = e
    return out


def _h3(d: Data) -> Measured:
    from studylib.estimates import roi

    sp = roi_inputs(d)
    if not {"sparse_routing", "int8"} <= set(sp):
        return Measured()
    p = roi.h3_probabilities(roi.simulate(sp))
    return Measured(text="; ".join(f"P({k}) = {v:.2f}" for k, v in p.items()),
                    ci=f"hours: Table 5 ranges; speedups measured (sparse {sp['sparse_routing'].value:.2f}x, "
                       f"int8 {sp['int8'].value:.2f}x)",
                    scale="hours from the paper; speedups from the H100", inputs={"p": p})


def _phase2(d: Data) -> Measured:
    from studylib.estimates import roi

    sp = roi_inputs(d)
    if len(sp) < 3:
        return Measured()
    p = roi.phase2_probability(roi.simulate(sp))
    return Measured(text=f"P(int8 and spec. decoding each fewer hours per 1x than sparse routing) = {p:.2f}",
                    scale="hours from the paper; speedups from the H100 (spec.: formula)", inputs={"p": p})


def _phase1(d: Data) -> Measured:
    e8, _ = G.headline_speedup(d.timing)
    mmlu, rows = loss(d, "mmlu")
    if e8 is None and mmlu is None:
        return Measured()
    text = "—" if mmlu is None else (f"MMLU loss {mmlu.value:.1f} pp; speedup "
                                     + ("—" if e8 is None else f"{e8.value:.2f}x"))
    return Measured(text=text, ci=ci_text(mmlu, "{:.1f}"), scale=scale(rows, "quality part only" if e8 is None else ""),
                    inputs={"speedup": e8, "mmlu": judged_loss(d, "mmlu", C.PHASE1_MMLU_MAX_LOSS_PP)})


def _phase1_verdict(m: Measured) -> str:
    """The speedup and the MMLU loss; an MMLU loss the floor rule sets aside leaves the row open."""
    mmlu, decides = m.inputs["mmlu"]
    v = C.phase1_verdict(m.inputs["speedup"], mmlu if decides else None)
    if mmlu is not None and not decides:
        return C.with_floored_parts(v, ["mmlu"])
    return PENDING_GPU if v == C.NOT_MEASURED else v


def phase3_measure(d: Data) -> Measured:
    """The paper's stated sweet spot (≥ 70B, batch ≥ 32) beside the measured speed map and the
    best conversion at a quarter of the FFN per token (``studylib.estimates.sweet_spot``)."""
    from studylib.estimates import sweet_spot as S

    sm = S.speed_map(d.timing)
    if sm.empty:
        return Measured()
    speed = {sh: {int(r.batch): Estimate(r.speedup, r.lo, r.hi) for r in g.itertuples()}
             for sh, g in sm.groupby("shape", sort=False)}
    r = S.speed_ranges(sm)
    text = (f"B=1 {r.get('b1', '—')}; B≥{C.PHASE3_MIN_BATCH} {r.get('large', '—')} (paper's sweet spot: "
            + ", ".join(f"{c.speedup:.2f}x at B={c.batch}" for c in sm[sm["paper_sweet_spot"]].itertuples()) + ")")
    ci = "; ".join(f"{sh} " + ", ".join(f"B={b} {ci_text(e)}" for b, e in by_b.items() if b == 1 or b >= C.PHASE3_MIN_BATCH)
                   for sh, by_b in speed.items() if sh in S.PAPER_SHAPES)
    q = S.quality_at_fraction(d.deltas, d.variants)
    best = S.best_method(q)
    bound = q[(q["task"] == "mmlu") & q["bound"]]
    scale_txt = "one layer, H100 (random weights, real shapes)"
    floor = None
    if best is not None:   # the floor rule (criteria, 2026-12-03): a pick between conversions at chance is no pick
        its = d.items[d.items["profile"] == best["profile"]]
        usable = q[(q["task"] == "mmlu") & ~q["bound"]]
        sts = [analysis.floor_status(its, "mmlu", v) for v in usable["variant"]]
        if not any(st and st["above"] for st in sts):
            floor = "; ".join(analysis.floor_text(st) for st in sts if st)
            text += (f"; at {C.PHASE3_ACTIVE_FRACTION:.0%} of the FFN no conversion is above chance on MMLU "
                     f"({floor}): no best conversion to name")
            scale_txt += f"; quality {str(best['model']).split('/')[-1]} ({best['profile']})"
            best = None
    if best is not None:
        text += (f"; at {C.PHASE3_ACTIVE_FRACTION:.0%} of the FFN: best conversion {best['variant']} MMLU "
                 f"loss {best['acc_loss_pp']:.1f} pp (n={int(best['n_items'])})")
        ci += f"; {best['variant']} [{best['acc_loss_lo']:.1f}, {best['acc_loss_hi']:.1f}]"
        vs = S.best_versus_next(q, d.items)
        if vs is not None:
            text += (f" (next {vs['next']} {vs['next_loss_pp']:.1f} pp, n={vs['next_n']}; paired difference on the "
                     f"{vs['n']} common items {vs['diff'].value:+.1f} pp, McNemar p={vs['p']:.2f})")
            ci += f"; best − next [{vs['diff'].lo:+.1f}, {vs['diff'].hi:+.1f}]"
        if not bound.empty:
            o = bound.loc[bound["acc_loss_pp"].idxmin()]
            text += f", per-token oracle {o['variant']} {o['acc_loss_pp']:.1f} pp"
            ci += f"; {o['variant']} [{o['acc_loss_lo']:.1f}, {o['acc_loss_hi']:.1f}]"
        scale_txt += f"; quality {str(best['model']).split('/')[-1]} ({best['profile']}), n={int(best['n_items'])}"
    return Measured(text=text, ci=ci, scale=scale_txt,
                    inputs={"speed": speed, "paper_shapes": S.PAPER_SHAPES, "best": S.as_estimate(best), "floor": floor})


def _eta(d: Data) -> Measured:
    from studylib.estimates import spec_analysis as S

    sd = d.table("spec_decoding")
    e = S.eta(sd, with_role(C.ETA_STACK_ROLE)[0]) if not sd.empty else None
    if e is None:
        return Measured()
    return Measured(e["eta"], f"η = {e['eta'].value:.2f} (S_stack {e['s_stack'].value:.2f}x; S_sparse "
                    f"{e['s_variant'].value:.2f}x × S_spec {e['s_spec'].value:.2f}x; γ={e['gamma']}, {e['prompts']} prompts)",
                    ci_text(e["eta"]), "this CPU: Qwen 1.5B target (executed experts) + 0.5B draft, bf16")


RANK = 2  # the order of its rows in the verdict table
CLAIMS = [
    Claim("spec_decoding", "spec. decoding 2.3-2.7x; both 2.7-3.3x", "Tables 5, 7-9", "2.3-2.7x; 2.7-3.3x",
          "ch4_phase2", _spec, _spec_verdict,
          C.NOT_MEASURED + " (needs the CPU acceptance rate: make phase2 PROFILE=cpu-qwen)", group=GROUP_H3),
    Claim("eta", "η_interaction ≈ 0.8", "Eq. 34", "0.75-0.82", "ch4_phase2", _eta, band(*C.ETA_BAND),
          C.NOT_MEASURED + " (needs the stacked spec. decoding run: make phase2 PROFILE=cpu-qwen)", group=GROUP_H3),
    Claim("h3", "H3: < 300 h per 1x, within 30% of quantization", "§8.1.3", "400-600 h total", "ch4_phase2",
          _h3, lambda m: C.probability_verdict(m.inputs["p"]["A and B (pre-registered)"]) + " (decided by the paper's hours)",
          C.NOT_MEASURED + " (needs the sparse-routing and int8 speedups)", group=GROUP_H3),
    Claim("phase1", "Phase 1: 1.6-1.8x and < 1% MMLU loss (Llama-8B)", "§8.2", "1.6-1.8x, < 1 pp",
          "ch2_phase1_timing", _phase1, _phase1_verdict, PENDING_GPU, group=GROUP_PHASES),
    Claim("phase2", "Phase 2: quant + spec. decoding beat sparse routing on ROI", "§8.2", "yes", "ch4_phase2",
          _phase2, lambda m: C.phase2_verdict(m.inputs["p"]),
          C.NOT_MEASURED + " (needs the speculative-decoding speedup)", group=GROUP_PHASES),
    Claim("phase3", "Phase 3: limits and sweet spots (the paper's: ≥ 70B, batch ≥ 32; not single-token chat)",
          "§8.2, §7.1, §9.1", "sweet spot at 70B+, B ≥ 32", "ch5_phase3", phase3_measure,
          lambda m: C.phase3_verdict(m.inputs["speed"], m.inputs["paper_shapes"], m.inputs["best"]), PENDING_GPU, group=GROUP_PHASES),
]
