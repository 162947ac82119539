"""ROI Monte Carlo and the speculative-decoding estimates recover known answers on synthetic inputs."""
import numpy as np
import pandas as pd
import pytest

from studylib.estimates import gpu_claims as G
from studylib.estimates import roi
from studylib.estimates import spec_analysis as S
from studylib.stats import Estimate


def test_monte_carlo_recovers_a_known_probability():
    exact = Estimate(3.0, 3.0, 3.0)
    d = roi.simulate({"sparse_routing": exact, "int8": Estimate(2.0, 2.0, 2.0)},
                     hours={"sparse_routing": (600, 1200), "int8": (100, 100)})
    # hours per 1x of sparse routing ~ U(200, 400): P(< 300) = 0.5; int8's is 50, so reading B never holds
    p = roi.h3_probabilities(d)
    assert p["A: < 300 h per 1x"] == pytest.approx(0.5, abs=0.015)
    assert p["B: within 30% of int8"] == 0.0 and p["A and B (pre-registered)"] == 0.0
    assert roi.break_even_speedup(700) == pytest.approx(700 / 300)


def test_ranking_and_phase2_follow_the_draws():
    sp = {"sparse_routing": Estimate(1.8, 1.7, 1.9), "int8": Estimate(1.3, 1.25, 1.35),
          "spec_decode": Estimate(2.0, 1.9, 2.1)}
    d = roi.simulate(sp, hours={"sparse_routing": (900, 900), "int8": (60, 60), "spec_decode": (150, 150)})
    assert roi.phase2_probability(d) == 1.0
    r = roi.ranking_probabilities(d)
    assert r.index[0] == "int8 < spec_decode < sparse_routing" and r.iloc[0] == 1.0
    sens = roi.sensitivity(sp, sparse_hours=np.array([100, 2000]), n=2000)
    a = sens[sens["reading"].str.startswith("A:")].set_index("sparse_routing_hours")["probability"]
    assert a[100.0] == 1.0 and a[2000.0] == 0.0


def _rows():
    rows = []
    for pid, speed in (("p1", 2.0), ("p2", 3.0)):
        rows.append({"prompt_id": pid, "prompt_kind": "gsm8k", "dtype": "bfloat16", "method": "alone", "gamma": 0,
                     "tokens_per_s": 5.0, "new_tokens": 40, "cycles": 40, "accepted": "", "reached": "",
                     "identical_to_alone": True, "first_divergence": -1, "correct": 1.0})
        # γ=2: position 1 reached 10x accepted 8x; position 2 reached 8x accepted 4x
        rows.append({"prompt_id": pid, "prompt_kind": "gsm8k", "dtype": "bfloat16", "method": "own_loop", "gamma": 2,
                     "tokens_per_s": 5.0 * speed, "new_tokens": 22, "cycles": 10, "accepted": "8 4", "reached": "10 8",
                     "identical_to_alone": pid == "p1", "first_divergence": -1 if pid == "p1" else 7,
                     "correct": 1.0 if pid == "p1" else 0.0})
    return pd.DataFrame(rows)


def test_spec_estimates_from_known_counts():
    df = _rows()
    acc = S.acceptance_by_position(df)
    assert list(acc["acceptance"]) == pytest.approx([0.8, 0.5])
    assert S.alpha(df).value == pytest.approx(24 / 36)
    pg = S.per_gamma(df)
    assert pg["cpu_speedup"].iloc[0] == pytest.approx(2.5) and pg["tokens_per_step"].iloc[0] == pytest.approx(2.2)
    ident = S.identity(df, "bfloat16")
    assert ident["identical"] == 1 and ident["rate"].lo < 0.5 < ident["rate"].hi < 1   # Wilson: never a point
    g = S.gsm8k_paired(df, 2)
    assert g["alone"] == 1.0 and g["assisted"] == 0.5 and g["delta_pp"].value == pytest.approx(50.0)


def test_gpu_prediction_is_the_formula_at_measured_step_times(monkeypatch):
    times = {("llama-3-8b", 1): 6e-3, ("llama-3-8b", 3): 7e-3, ("qwen2.5-0.5b", 1): 1e-3}
    monkeypatch.setattr(G, "step_time_s", lambda timing, shape, tokens, batch=1, variant="dense", profile=None:
                        times.get((shape, tokens)) if variant == "dense" else None)
    p = S.gpu_prediction(_rows(), pd.DataFrame(), "llama-3-8b with a 0.5B draft", gammas=[2])
    a = 24 / 36
    assert p["speedup"].iloc[0] == pytest.approx((1 - a ** 3) / (1 - a) * 6e-3 / (2 * 1e-3 + 7e-3))
    assert p["lo"].iloc[0] <= p["speedup"].iloc[0] <= p["hi"].iloc[0]
    # the stack: the int8 target's verification step replaces the dense one, the baseline stays dense
    times_int8 = {**times, ("llama-3-8b", 3, "int8wo"): 4e-3}
    monkeypatch.setattr(G, "step_time_s", lambda timing, shape, tokens, batch=1, variant="dense", profile=None:
                        times_int8.get((shape, tokens) if variant == "dense" else (shape, tokens, variant)))
    q = S.gpu_prediction(_rows(), pd.DataFrame(), "llama-3-8b with a 0.5B draft", gammas=[2], target_variant="int8wo")
    assert q["speedup"].iloc[0] == pytest.approx((1 - a ** 3) / (1 - a) * 6e-3 / (2 * 1e-3 + 4e-3))


def test_project_size_counts_code_lines_of_named_objects(tmp_path, monkeypatch):
    from studylib.book import project_size as P

    # a synthetic module with a known count, so editing the study's own code cannot move it
    (tmp_path / "m.py").write_text(
        "import os\n\n"
        "@staticmethod\n"                # decorator: counted (1)
        "def f(a):\n"                    # 2
        "    \"\"\"Two-line\n"          # 3
        "    docstring.\"\"\"\n"        # 4
        "    # a comment: not counted\n\n"
        "    return a\n"                 # 5
        "\nclass K:\n    x = 1\n")
    with monkeypatch.context() as m:
        m.setattr(P, "REPO", tmp_path)
        assert P.entry_lines("m.py:f") == 5
        assert P.entry_lines("m.py:K") == 2
        assert P.entry_lines("m.py") == 8          # whole file: every code line
    s = P.sizes()                                 # every entry of the YAML resolves
    assert set(s.index) == {"sparse_routing", "int8", "spec_decode"} and (s["lines of code"] > 0).all()
    with pytest.raises(KeyError):
        P.entry_lines("studylib/estimates/roi.py:no_such_function")


def test_kernel_comparison_shows_each_kernel_and_claims_read_the_fastest():
    eager = _rows()
    packed = _rows().assign(kernel="onednn_packed", tokens_per_s=lambda d: 1.5 * d["tokens_per_s"])
    both = pd.concat([eager, packed], ignore_index=True)
    kc = S.kernel_comparison(both).set_index("kernel")
    assert kc.loc["onednn_packed", "target alone, tokens/s"] == pytest.approx(1.5 * kc.loc["eager", "target alone, tokens/s"])
    assert kc.loc["eager", "speedup"] == kc.loc["onednn_packed", "speedup"]   # ratios paired within a kernel
    assert S.alpha(S.main_pair(both)).value == pytest.approx(24 / 36)       # no prompt counted twice
