"""CPU decode-speed harness: refuses variants it cannot execute honestly, writes resumable units
whose byte counts follow the weights (no timing assertion: a busy machine must not fail it)."""
import pytest

from studylib.config import StudyConfigError, load_profile


def test_bounds_and_thresholding_have_no_speed_to_measure():
    with pytest.raises(StudyConfigError, match="no executable form"):
        load_profile("embedded", {"cpu_decode": {"variants": ["dense", "neuron_oracle_a25"], "batches": [1],
                                                 "new_tokens": 4, "repeats": 1}})
    with pytest.raises(StudyConfigError, match="unknown quality variant"):
        load_profile("embedded", {"cpu_decode": {"variants": ["warp"], "batches": [1], "new_tokens": 4, "repeats": 1}})


@pytest.mark.slow
def test_units_are_written_once_and_int8_reads_fewer_bytes(data_dir):
    from studylib.decoding.cpu_speed import run_cpu_decode
    from studylib.results import read_table

    prof = load_profile("embedded", {"cpu_decode": {"variants": ["dense", "int8_quanto"], "batches": [1],
                                                    "new_tokens": 3, "repeats": 2}})
    assert run_cpu_decode(prof, progress=False) == {"measured": 2}
    assert run_cpu_decode(prof, progress=False) == {"measured": 0}      # resumed: nothing redone
    d = read_table("cpu_decode", ["embedded"])
    assert len(d) == 4 and (d["step_s"] > 0).all()
    by = d.groupby("variant")["bytes_per_step"].first()
    assert 0.2 < by["int8_quanto"] / by["dense"] < 0.5                  # int8 layers vs fp32, fp32 head kept


@pytest.mark.slow
def test_the_fp32_kernel_reads_twice_a_bf16_models_bytes_and_skips_quantized_variants(data_dir):
    from studylib.decoding.cpu_speed import run_cpu_decode, runs_under
    from studylib.results import read_table

    prof = load_profile("embedded", {"quality": {"dtype": "bfloat16"},
                                     "cpu_decode": {"variants": ["dense", "int8_quanto"], "batches": [1],
                                                    "kernels": ["eager", "fp32"], "new_tokens": 3, "repeats": 2}})
    assert not runs_under("int8_quanto", "fp32") and runs_under("dense", "fp32") and runs_under("int8_quanto", "eager")
    assert run_cpu_decode(prof, progress=False) == {"measured": 3}      # int8 has no fp32 unit
    d = read_table("cpu_decode", ["embedded"]).groupby(["variant", "kernel"])
    assert set(d.groups) == {("dense", "eager"), ("dense", "fp32"), ("int8_quanto", "eager")}
    assert d["dtype"].first()[("dense", "fp32")] == "float32" and d["dtype"].first()[("dense", "eager")] == "bfloat16"
    by = d["bytes_per_step"].first()
    assert by[("dense", "fp32")] / by[("dense", "eager")] == pytest.approx(2.0, rel=1e-3)


def test_stack_eta_recovers_a_known_interaction():
    import numpy as np
    import pandas as pd

    from studylib.estimates.cpu_decode import stack_eta

    rng = np.random.default_rng(0)
    rows = []
    for v, step in (("dense", 1.0), ("a", 1 / 1.2), ("b", 1 / 1.5), ("a+b", 1 / (1.2 * 1.5 * 0.9))):
        rows += [{"variant": v, "batch": 1, "step_s": step * (1 + 0.01 * rng.standard_normal())} for _ in range(9)]
    e = stack_eta(pd.DataFrame(rows), "a+b", ("a", "b"))
    assert abs(e.value - 0.9) < 0.03 and e.lo < e.value < e.hi
    assert stack_eta(pd.DataFrame(rows), "missing", ("a",)) is None


def test_cpu_speed_is_evidence_beside_the_gpu_int8_row_never_its_verdict(data_dir):
    import re

    import numpy as np

    from studylib import provenance
    from studylib.claims.verdicts import verdict_table
    from studylib.results import ResultStore

    store = ResultStore("cpu_decode", "cpu-qwen")
    rng = np.random.default_rng(0)
    for v, step in (("dense", 0.14), ("int8_quanto", 0.07), ("sparsegpt30_literal_moe4_top1", 0.10)):
        rows = [{"model": "qwen2.5-coder-1.5b", "variant": v, "batch": 1, "kernel": "onednn_packed", "dtype": "bfloat16",
                 "step_s": step * (1 + 0.01 * rng.standard_normal()), "new_tokens": 8, "repeat": i, "t_full_s": 1.0,
                 "t_prefill_s": 0.1, "decode_tokens_per_s": 1 / step, "bytes_per_step": 1, "achieved_Bps": 1.0,
                 "copy_bandwidth_Bps": 1.0} for i in range(5)]
        store.write(f"{v}_b1", rows, provenance.collect("cpu-qwen", {"fixture": True}))
    vt = verdict_table().set_index("id")
    assert vt.loc["int8_speed", "verdict"].endswith("(CPU evidence only)")       # no H100 data: not judged
    assert re.search(r"CPU evidence: int8_quanto (1\.9\d|2\.0\d)x", vt.loc["int8_speed", "measured"])   # 0.14 / 0.07
    assert vt.loc["table6_cpu", "verdict"] == "refuted"                          # 1.4x against 0.8-1.0x


def test_cpu_weight_kernels_are_resumable_and_each_computes_the_layer(data_dir):
    """Every kernel of the comparison computes the same layer (error vs the fp32 product of the
    unquantized weight within its format's rounding) and reads the bytes its format stores."""
    from studylib.decoding.weight_kernels import run_cpu_kernels, weight_bytes
    from studylib.kernels import cpu_linear
    from studylib.results import read_table

    kernels = [k for k in load_profile("cpu-qwen")["cpu_kernels"]["kernels"]
               if cpu_linear.available() or k != "bf16_onednn_packed"] + ["fp32_eager"]   # AVX2-only: no packing
    prof = load_profile("cpu-qwen", {"cpu_kernels": {"shapes": [[256, 512]], "batches": [1, 3], "repeats": 3,
                                                     "stream_bytes": 2**20, "kernels": kernels}})
    n = len(kernels) * 2
    assert run_cpu_kernels(prof, progress=False) == {"measured": n}
    assert run_cpu_kernels(prof, progress=False) == {"measured": 0}       # resumed: nothing redone
    d = read_table("cpu_kernels").set_index(["kernel", "batch"])
    err = d["rel_error"]
    if "bf16_onednn_packed" in kernels:
        assert err["bf16_onednn_packed"].tolist() == err["bf16_eager"].tolist()
    assert err["bf16_eager"].max() < 0.005
    assert err["fp32_eager"].max() < 1e-5                                # the same weights, upcast exactly
    assert weight_bytes(512, 256, 32) == 2 * weight_bytes(512, 256, 16)
    assert err.filter(like="int8").max() < 0.02 and 0.02 < err.filter(like="int4").min() < 0.15
    assert weight_bytes(512, 256, 4) < weight_bytes(512, 256, 8) < weight_bytes(512, 256, 16) == 2 * 256 * 512
    assert d.loc[("bf16_eager", 1), "copies"] == 4                       # 1 MiB streamed through 256 KiB copies
    with pytest.raises(StudyConfigError, match="unknown kernel"):
        load_profile("cpu-qwen", {"cpu_kernels": {"kernels": ["warp"]}})


def test_a_packed_kernel_this_cpu_cannot_run_is_refused_before_any_timing(data_dir, monkeypatch):
    from studylib.decoding.weight_kernels import run_cpu_kernels
    from studylib.kernels import cpu_linear
    from studylib.results import read_table

    monkeypatch.setattr(cpu_linear, "available", lambda: False)
    prof = load_profile("cpu-qwen", {"cpu_kernels": {"shapes": [[256, 512]], "batches": [1], "repeats": 3,
                                                     "kernels": ["bf16_eager", "bf16_onednn_packed"]}})
    with pytest.raises(StudyConfigError, match="AVX-512"):
        run_cpu_kernels(prof, progress=False)
    assert read_table("cpu_kernels").empty


def test_tradeoff_pairs_a_speed_with_a_loss_only_on_the_same_model(monkeypatch):
    import pandas as pd

    from studylib.book import tradeoff as T
    from studylib.stats import Estimate as E

    qwen = "qwen2.5-coder-1.5b (cpu-qwen), bfloat16, this CPU"
    speeds = {"int8_quanto": {"estimate": E(1.1, 1.0, 1.2), "scale": qwen},
              "teal_a25": {"estimate": E(1.3, 1.2, 1.4), "scale": "smollm2-135m (cpu-real), bfloat16, this CPU"},
              "cmoe_a25": {"estimate": E(1.8, 1.7, 1.9), "scale": qwen}}
    rows = pd.DataFrame({"model": ["qwen2.5-coder-1.5b"], "profile": ["cpu-qwen"], "n_items": [250]})
    losses = {"int8_quanto": E(0.5, -1.0, 2.0), "teal_a25": E(20.0, 15.0, 25.0)}   # cmoe: no MMLU yet
    monkeypatch.setattr(T, "cpu_decode_speedup", lambda d, vs, batch: speeds.get(vs[0]))
    monkeypatch.setattr(T, "loss", lambda d, task, vs: (losses.get(vs[0]), rows))
    t = T.speed_quality(object())
    assert list(t["variant"]) == ["int8_quanto"]          # teal: other model; cmoe: no loss
    assert t.iloc[0][["speedup", "loss_lo", "n_items"]].tolist() == [1.1, -1.0, 250]


def test_table6_reads_the_served_engine_where_it_is_the_faster_kernel(data_dir):
    """Issue 38: vLLM's decode (data/served_decode) is one more kernel; where it is faster, the Table 6
    row is judged on it and names it; our own rows of the served run do not enter."""
    import numpy as np

    from studylib import provenance
    from studylib.claims import Data
    from studylib.claims.hardware import cpu_decode_speedup
    from studylib.results import ResultStore

    rng = np.random.default_rng(1)
    combo = "sparsegpt30_literal_moe4_top1"

    def rows(v, step, **kw):
        return [{"model": "qwen2.5-coder-1.5b", "variant": v, "batch": 1, "dtype": "bfloat16",
                 "step_s": step * (1 + 0.01 * rng.standard_normal()), "new_tokens": 8, "repeat": i, "t_full_s": 1.0,
                 "t_prefill_s": 0.1, "decode_tokens_per_s": 1 / step, "bytes_per_step": 1, "achieved_Bps": 1.0,
                 "copy_bandwidth_Bps": 1.0, **kw} for i in range(5)]
    ours = ResultStore("cpu_decode", "cpu-qwen")
    for v, step in (("dense", 0.14), (combo, 0.10)):
        ours.write(f"{v}_b1", rows(v, step, kernel="onednn_packed"), provenance.collect("cpu-qwen", {"fixture": True}))
    assert cpu_decode_speedup(Data(), (combo,))["estimate"].value == pytest.approx(1.4, rel=0.03)
    served = ResultStore("served_decode", "cpu-qwen")
    for v, (mine, vllm) in (("dense", (0.01, 0.13)), (combo, (0.01, 0.05))):   # "ours" rows here are ignored
        served.write(f"{v}_b1", rows(v, mine, engine="ours", kernel="onednn_packed", engine_version="x")
                     + rows(v, vllm, engine="vllm", kernel="vllm", engine_version="0.32.0"),
                     provenance.collect("cpu-qwen", {"fixture": True}))
    c = cpu_decode_speedup(Data(), (combo,))
    assert c["estimate"].value == pytest.approx(0.13 / 0.05, rel=0.03) and c["kernel"] == "vllm"
