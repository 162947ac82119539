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


def test_stack_eta_recovers_a_known_interaction():
    import numpy as np
    import pandas as pd

    from studylib.decoding.cpu_speed import stack_eta

    rng = np.random.default_rng(0)
    rows = []
    for v, step in (("dense", 1.0), ("a", 1 / 1.2), ("b", 1 / 1.5), ("a+b", 1 / (1.2 * 1.5 * 0.9))):
        rows += [{"variant": v, "batch": 1, "step_s": step * (1 + 0.01 * rng.standard_normal())} for _ in range(9)]
    e = stack_eta(pd.DataFrame(rows), "a+b", ("a", "b"))
    assert abs(e.value - 0.9) < 0.03 and e.lo < e.value < e.hi
    assert stack_eta(pd.DataFrame(rows), "missing", ("a",)) is None
