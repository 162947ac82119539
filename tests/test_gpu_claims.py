"""The GPU verdict rows, judged by code on small synthetic h100 data sets (never committed)."""
import numpy as np
import pytest

from studylib import gpu_claims as G
from studylib import provenance
from studylib.results import ResultStore, read_table
from studylib.verdicts import verdict_table


def _write(rows):
    store = ResultStore("timing", "h100")
    for i, r in enumerate(rows):
        s = r.pop("samples")
        row = {"context": 2048, "tokens": 1, "routing": "none", "median_s": float(np.median(s)),
               "p95_s": float(np.quantile(s, 0.95)), "ci_lo_s": 0.0, "ci_hi_s": 0.0, "n": len(s), "bytes_moved": 1,
               "achieved_Bps": 1.0, "samples_s": " ".join(f"{x:.6e}" for x in s), "gpu_name": "fixture", **r}
        store.write(f"u{i}", [row], provenance.collect("h100", {"fixture": True}))


def _model(variant, s, batch=1):
    return {"shape": "llama-3-8b", "variant": variant, "component": "model", "batch": batch,
            "routing": "uniform" if "moe" in variant else "none", "samples": s}


def _noise(center, spread, n=100, seed=0):
    return center * (1 + spread * np.random.default_rng(seed).standard_normal(n))


def _row(claim_start):
    vt = verdict_table()
    return vt[vt["claim"].str.startswith(claim_start)].iloc[0]


@pytest.mark.parametrize("combo_ms,spread,expected", [(1.0, 0.002, "supported"),   # 1.8x, tight
                                                      (1.6, 0.002, "refuted"),     # 1.125x
                                                      (1.0, 0.6, "inconclusive")])  # CI wider than the band
def test_headline_row_judges_a_synthetic_h100_fixture(data_dir, combo_ms, spread, expected):
    _write([_model("dense", _noise(1.8e-3, 0.002)), _model("pruned30_moe4_top1", _noise(combo_ms * 1e-3, spread, seed=1))])
    e, how = G.headline_speedup(read_table("timing"))
    assert how == "whole model"
    assert _row("Headline: 1.7-1.9x")["verdict"] == expected


def test_table4_is_judged_at_p50_and_p95(data_dir):
    layer = dict(shape="llama-3-8b", variant="moe4_top1", component="layer", batch=32)
    # uniform 100 µs; 'mild' 85% throughput at the median, but a heavy tail at p95
    tail = np.concatenate([_noise(100e-6 / 0.85, 0.001, 80), np.full(20, 400e-6)])
    _write([{**layer, "routing": "uniform", "samples": _noise(100e-6, 0.001)},
            {**layer, "routing": "mild", "samples": tail},
            {**layer, "routing": "severe", "samples": _noise(100e-6 / 0.55, 0.001, seed=2)},
            {**layer, "routing": "catastrophic", "samples": _noise(100e-6 / 0.35, 0.001, seed=3)}])
    t = read_table("timing")
    assert G.imbalance_throughput(t, "mild", 32).value == pytest.approx(0.85, abs=0.01)
    assert G.imbalance_throughput(t, "mild", 32, quantile=0.95).value < 0.5
    assert _row("Table 4")["verdict"] == "p50 supported, p95 refuted"


def test_gate_share_in_place_and_int8_rows(data_dir):
    layer = dict(shape="llama-3-8b", component="layer", batch=1)
    _write([{**layer, "variant": "expert_alone", "samples": _noise(71e-6, 0.001)},
            {**layer, "variant": "moe4_top1", "routing": "uniform", "samples": _noise(100e-6, 0.001, seed=1)},
            _model("dense", _noise(2e-3, 0.001)), _model("int8wo", _noise(1e-3, 0.001, seed=2))])
    assert G.gate_overhead_fraction(read_table("timing")).value == pytest.approx(0.29, abs=0.01)
    assert _row("Gate overhead")["verdict"] == "supported"
    assert _row("int8 weight-only")["verdict"] == "supported"  # 2.0x inside 1.8-2.2x


def test_spec_decode_formula_known_cases():
    # perfect acceptance, free draft and verification as cheap as one step: γ+1 tokens per step
    assert G.spec_decode_speedup(1.0, 4, 1.0, 1.0, 0.0) == pytest.approx(5.0)
    # zero acceptance: one token per cycle, and the cycle costs the draft steps too
    assert G.spec_decode_speedup(0.0, 4, 1.0, 1.0, 0.1) == pytest.approx(1 / 1.4)
    # Leviathan et al.'s expected tokens (1 - α^(γ+1)) / (1 - α) at α = 0.5, γ = 2: 1.75
    assert G.spec_decode_speedup(0.5, 2, 1.0, 1.0, 0.0) == pytest.approx(1.75)


def _layer(shape, variant, batch, ms, seed=0):
    return {"shape": shape, "variant": variant, "component": "layer", "batch": batch,
            "routing": "uniform" if "moe" in variant else "none", "samples": _noise(ms * 1e-3, 0.002, seed=seed)}


@pytest.mark.parametrize("combo_ms,expected", [
    # B=1 twice as fast, B=32 slower: the batch dependency runs against the paper's sweet spot
    ({1: 0.5, 32: 1.2}, "refuted"),
    # B=1 no faster, B=32 1.5x: the paper's ordering, but no quality measured -> cannot support
    ({1: 1.0, 32: 1 / 1.5}, "inconclusive")])
def test_phase3_row_judges_the_papers_stated_sweet_spot(data_dir, combo_ms, expected):
    rows = []
    for shape in ("llama-2-7b", "llama-2-70b"):
        for b, ms in combo_ms.items():
            rows += [_layer(shape, "dense", b, 1.0, seed=b), _layer(shape, "pruned30_moe4_top1", b, ms, seed=b + 1)]
    _write(rows)
    from studylib import sweet_spot as S

    sm = S.speed_map(read_table("timing"))
    assert set(sm["shape"]) == {"llama-2-7b", "llama-2-70b"}
    assert sm.loc[sm["paper_sweet_spot"], ["shape", "batch"]].values.tolist() == [["llama-2-70b", 32]]
    lim = S.batch_limits(sm).set_index("shape")
    assert lim.loc["llama-2-70b", "best_batch"] == (1 if combo_ms[1] < 1 else 32)
    assert _row("Phase 3")["verdict"] == expected
