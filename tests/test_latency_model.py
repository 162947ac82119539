"""The bytes-moved latency model and whole-model composition, on synthetic data with known answers."""
import numpy as np
import pandas as pd
import pytest

from studylib import provenance
from studylib.estimates import composition as K
from studylib.results import ResultStore, read_table
from studylib.shapes import get_shape
from studylib.timing import latency_model as LM
from studylib.timing.modules import routing_of

BW = 3e12
TRUE = {"t_bytes_us": 1.25, "C(component)[ffn]": 6.0, "C(component)[layer]": 15.0, "experts": 4.0, "routed": 9.0}


def _synthetic(noise=0.01, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for shape in ("llama-2-7b", "llama-3-8b", "llama-2-13b", "llama-30b"):
        for variant in ("dense", "moe4_top1", "moe8_top1", "pruned30_moe4_top1", "moe4_top2"):
            for comp in ("ffn", "layer"):
                for batch in (1, 8, 32):
                    nbytes = rng.uniform(50e6, 900e6)
                    K_, k = routing_of(variant)[:2]
                    experts = 0 if K_ == 1 else min(K_, batch * k)
                    us = (TRUE["t_bytes_us"] * nbytes / BW * 1e6 + TRUE[f"C(component)[{comp}]"]
                          + TRUE["experts"] * experts + TRUE["routed"] * (K_ > 1))
                    rows.append({"shape": shape, "variant": variant, "component": comp, "batch": batch,
                                 "routing": "uniform" if K_ > 1 else "none", "tokens": 1, "profile": "h100",
                                 "bytes_moved": nbytes, "median_s": us * 1e-6 * (1 + noise * rng.standard_normal())})
    return pd.DataFrame(rows), pd.DataFrame([{"profile": "h100", "copy_bandwidth_Bps": BW}])


def test_fit_recovers_known_coefficients():
    timing, peaks = _synthetic()
    res = LM.fit(LM.design(timing, peaks))
    for name, value in TRUE.items():
        lo, hi = res.conf_int().loc[name]
        assert lo <= value <= hi, (name, lo, value, hi)
    assert res.params["t_bytes_us"] == pytest.approx(TRUE["t_bytes_us"], rel=0.03)


def test_held_out_scores_favour_the_true_model():
    timing, peaks = _synthetic()
    s = LM.held_out_scores(LM.design(timing, peaks))
    assert set(s["held_out"]) == {"llama-2-7b", "llama-3-8b", "llama-2-13b", "llama-30b"}
    mine = s[s["model"].str.startswith("bytes")]["mape_pct"]
    paper = s[s["model"].str.startswith("paper")]["mape_pct"]
    assert mine.max() < 3 and paper.min() > 10


def test_paper_layer_model_is_eqs_1_to_11():
    D, F = 4096, 14336   # Llama-3-8B: Eq. 5 8.39 µs + Eq. 6 58.7 µs + Eq. 7 3 µs
    assert LM.paper_layer_us("llama-3-8b", "dense") == pytest.approx(D * D / 2e6 + 2 * D * F / 2e6 + 3)
    sparse = D * D / 2e6 + 2 * D * F / 2e6 * 0.7 / 4 + 2 * D * 4 / 2e6 + 5   # Eq. 9-11
    assert LM.paper_layer_us("llama-3-8b", "pruned30_moe4_top1") == pytest.approx(sparse)


def unit_samples(store, key, shape, variant, component, s, achieved=1.0):
    row = {"shape": shape, "variant": variant, "component": component, "batch": 1, "context": 2048, "tokens": 1,
           "routing": "uniform" if "moe" in variant else "none", "median_s": float(np.median(s)),
           "p95_s": float(np.quantile(s, 0.95)), "ci_lo_s": 0.0, "ci_hi_s": 0.0, "n": len(s), "bytes_moved": 1,
           "achieved_Bps": achieved, "samples_s": " ".join(f"{x:.6e}" for x in s), "gpu_name": "fixture"}
    store.write(key, [row], provenance.collect("h100", {"fixture": True}))


def test_composition_adds_layers_and_head(data_dir):
    store = ResultStore("timing", "h100")
    s = get_shape("llama-3-8b")
    unit_samples(store, "l", "llama-3-8b", "dense", "layer", np.full(50, 200e-6))
    unit_samples(store, "c", "llama-3-8b", "pruned30_moe4_top1", "layer", np.full(50, 100e-6))
    unit_samples(store, "f", "llama-3-8b", "dense", "ffn", np.full(50, 150e-6), achieved=2.5e12)
    head = s.vocab * s.hidden * 2 / 2.5e12
    unit_samples(store, "m", "llama-3-8b", "dense", "model", np.full(50, (32 * 200e-6 + head) * 1.1))
    t = read_table("timing")
    assert K.composed_seconds(t, "llama-3-8b", "dense") == pytest.approx(32 * 200e-6 + head)
    e = K.composed_speedup(t, "llama-3-8b", "pruned30_moe4_top1")
    assert e.value == pytest.approx((32 * 200e-6 + head) / (32 * 100e-6 + head)) and e.lo <= e.value <= e.hi
    chk = K.composition_check(t)
    assert list(chk["variant"]) == ["dense"] and chk["error_pct"].iloc[0] == pytest.approx(100 / 1.1 - 100, abs=0.01)


def test_memory_footprint_counts_the_bytes_the_modules_hold():
    import torch

    from studylib.timing import memory
    from studylib.timing.modules import build_ffn, building_on

    s = get_shape("llama-3-8b-div8")
    with building_on("cpu", torch.bfloat16):
        dense = memory.held_bytes(build_ffn("dense", s, "cpu"))
        moe = memory.held_bytes(build_ffn("pruned30_moe4_top1", s, "cpu"))
        int8 = memory.held_bytes(build_ffn("int8wo_torch", s, "cpu"))
    assert dense == 3 * s.hidden * s.intermediate * 2
    assert 0.69 < moe / dense < 0.72          # 70% of the neurons kept, split in 4, plus a tiny router
    assert 0.5 <= int8 / dense < 0.52        # one byte per weight + a bf16 scale per row
