"""The paper's equations reproduce its printed numbers where it is self-consistent, and the
inconsistencies the book reports are real."""
import math

import pytest

from studylib.paper import equations as eq
from studylib.paper.decision import abort_load_imbalance, should_consider_sparse_routing
from studylib.paper.tables import TABLE1, TABLE4, TABLE5


def test_eq18_gives_1_73x_from_printed_layer_times():
    p = eq.PRINTED_SECTION31
    assert eq.eq18_speedup(p["t_token_dense_ms"], p["t_token_sparse_ms"]) == pytest.approx(1.73, abs=0.005)
    assert eq.eq1_t_layer_dense(8.4, 56.0) == pytest.approx(67.4)
    assert eq.eq9_t_layer_sparse(8.4, 56.0, 16.0) == pytest.approx(39.2)
    assert 32 * 67.4 / 1e3 == pytest.approx(2.16, abs=0.01)


def test_eq5_reproduces_and_eq6_eq16_are_flagged():
    s = eq.paper_section31()
    assert s["t_attn_us"] == pytest.approx(8.4, abs=0.05)
    assert s["t_ffn_us"] == pytest.approx(58.7, abs=0.05)      # printed 56.0
    assert abs(s["t_ffn_us"] - eq.PRINTED_SECTION31["t_ffn_us"]) > 2
    assert s["t_gate_us"] == pytest.approx(0.0164, abs=1e-3)   # printed 16.0: 1000x off
    assert eq.PRINTED_SECTION31["t_gate_us"] / s["t_gate_us"] > 900


def test_eq19_matches_table1_up_to_30b_but_not_70b_175b():
    for size, tol in (("7B", 0.001), ("13B", 0.006), ("30B", 0.013)):   # 30B: 36.8% vs printed 38%
        assert eq.eq19_f_attn(TABLE1[size]["n_params"]) == pytest.approx(TABLE1[size]["attn"], abs=tol)
    assert eq.eq19_f_attn(70e9) == pytest.approx(0.32, abs=1e-3)
    assert abs(eq.eq19_f_attn(70e9) - TABLE1["70B"]["attn"]) > 0.02
    assert abs(eq.eq19_f_attn(175e9) - TABLE1["175B"]["attn"]) > 0.04


def test_eq32_on_table4_distributions_is_not_the_throughput_column():
    eff = {k: eq.eq32_routing_efficiency(v["fractions"]) for k, v in TABLE4.items()}
    assert eff["balanced"] == pytest.approx(1.0)
    assert eff["mild"] == pytest.approx(0.8)
    assert eff["severe"] == pytest.approx(0.4)
    assert eff["catastrophic"] == pytest.approx(1 - 1.3 / 1.5)
    assert abs(eff["severe"] - TABLE4["severe"]["throughput"]) > 0.1


def test_eq32_bounds():
    assert eq.eq32_routing_efficiency([1, 0, 0, 0]) == pytest.approx(0.0)
    with pytest.raises(ValueError):
        eq.eq32_routing_efficiency([1.0])


def test_eq20_23_34_and_table5_flags():
    assert eq.eq20_max_speedup(0.35) == pytest.approx(2.86, abs=0.005)
    assert eq.eq23_critical_ai() == pytest.approx(156)
    assert eq.eq22_ai_gemm(4096, 4096) == 0.5
    assert eq.eq34_combined_speedup(1.7, 2.5, 1.0) == pytest.approx(4.25)
    assert eq.eq34_eta_from_measurement(3.4, 1.7, 2.5) == pytest.approx(0.8)
    spec = TABLE5["spec_decode"]
    assert eq.eq33_hours_per_speedup(sum(spec["hours"]) / 2, sum(spec["speedup"]) / 2) == pytest.approx(60)
    sr = TABLE5["sparse_routing"]
    assert eq.eq33_hours_per_speedup(sum(sr["hours"]) / 2, sum(sr["speedup"]) / 2) == pytest.approx(527.8, abs=0.1)


def test_eq25_at_headline_config():
    assert eq.eq25_quality_loss(0.3, 1.0, 0.0) == pytest.approx(0.24)
    assert eq.eq25_quality_loss(0.3, 0.85, 0.0) == pytest.approx(0.615)


def test_decision_function_and_abort():
    w = {"batch_size": 32, "throughput_priority": 1, "latency_priority": 0, "long_context_critical": False,
         "inference_scale_tokens_per_day": 2e9, "cost_reduction": 0.0, "research_exploration": False}
    t = {"engineering_budget": 600, "ml_infra_expertise": 0.8,
         "implemented_optimizations": ["quantization", "speculative_decoding"]}
    assert should_consider_sparse_routing(70, "H100", w, t)["decision"] is True
    assert should_consider_sparse_routing(8, "H100", w, t)["decision"] is False
    assert abort_load_imbalance(0.71) and not abort_load_imbalance(0.5)


def test_phase3_verdict_needs_speed_in_the_papers_order_and_quality_to_support():
    from studylib.paper import criteria as C
    from studylib.stats import Estimate as E

    fast, slow, mid = E(2.0, 1.9, 2.1), E(0.9, 0.85, 0.95), E(1.5, 1.4, 1.6)
    big = {"llama-2-70b"}
    # B=1 fastest at every shape -> refuted
    assert C.phase3_verdict({"a": {1: fast, 32: slow}, "llama-2-70b": {1: fast, 32: mid}}, big, None) == "refuted"
    # one shape where B=1 does not beat B=32 -> not refuted
    assert C.phase3_verdict({"a": {1: fast, 32: slow}, "llama-2-70b": {1: mid, 32: mid}}, big, None) == "inconclusive"
    # the paper's order at 70B: supported only with an MMLU loss below 1 pp
    order = {"llama-2-70b": {1: slow, 32: fast, 128: fast}}
    assert C.phase3_verdict(order, big, E(0.3, -0.2, 0.8)) == "supported"
    assert C.phase3_verdict(order, big, E(0.3, -0.2, 1.4)) == "inconclusive"
    assert C.phase3_verdict(order, big, None) == "inconclusive"
    assert C.phase3_verdict({}, big, None) == C.NOT_MEASURED


def test_quality_cost_reads_tables_8_9_ranges_as_a_ceiling():
    from studylib.paper import criteria as C
    from studylib.stats import Estimate as E

    ranges = {"sparse_routing": (0.8, 3.0), "int8": (0.5, 1.5), "spec_decode": (0.3, 0.5)}
    v = C.quality_cost_verdict({"sparse_routing": E(23.0, 19.0, 27.0), "int8": E(0.1, -0.3, 0.4),
                                "spec_decode": E(0.0, -5.0, 5.0)}, ranges)
    assert v == ("sparse_routing refuted; int8 supported (below the stated range: better than claimed); "
                 "spec_decode inconclusive")
    assert C.quality_cost_verdict({"int8": E(1.0, 0.6, 1.4)}, ranges) == "int8 supported"
    assert C.quality_cost_verdict({}, ranges) == C.NOT_MEASURED
