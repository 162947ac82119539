import pytest

from studylib.book import tables as book


@pytest.fixture(scope="module")
def committed():
    """The committed data/ read once for this file's tests that read it (several seconds a read)."""
    from studylib.claims import Data

    return Data()


def test_ci_rounds_to_what_the_interval_supports():
    assert book.ci(1.8349, 1.80, 1.87, "x") == "1.83x [1.80, 1.87]"
    assert book.ci(12.34, 2.0, 25.0) == "12 [2, 25]"
    assert book.ci(0.51234, 0.5120, 0.5127) == "0.5123 [0.5120, 0.5127]"
    assert book.ci(0.9, -0.4, 2.2, " pp", digits=0) == "1 pp [0, 2]"        # never "-0"
    assert book.ci(-1.2, -2.0, -0.5, digits=1) == "-1.2 [-2.0, -0.5]"


def test_ci_never_prints_nan():
    assert book.ci(float("nan")) == book.MISSING
    assert book.ci(2.0, float("nan"), 3.0) == "2.00"


def test_local_link_check(tmp_path):
    (tmp_path / "a.html").write_text("x")
    page = tmp_path / "index.html"
    from studylib.book.check import _broken_link
    assert not _broken_link(page, "a.html#x", tmp_path)
    assert _broken_link(page, "missing.html", tmp_path)
    assert not _broken_link(page, "https://example.org/x", tmp_path)


def test_capacity_reading_names_the_failing_part_from_the_ratios():
    import pandas as pd

    from studylib.estimates.conversion_analysis import capacity_reading

    def rows(lit, eo, no, teal):
        return pd.DataFrame({"variant": ["literal_moe4_top1", "oracle_moe4_top1", "neuron_oracle_a25", "teal_a25"],
                             "ppl_ratio": [lit, eo, no, teal], "mmlu_loss_pp": [20.0, 15.0, 2.0, None]})

    assert capacity_reading(rows(1e4, 1e4, 1.2, 5.0).iloc[:2], "m") is None  # a bound missing: no reading
    capacity = capacity_reading(rows(900.0, 600.0, 1.3, 40.0), "m")
    assert "routing is not what fails" in capacity and "`teal_a25` (40x" in capacity
    assert "still more than 2x the neuron oracle" in capacity and "MMLU loss 2.0 pp" in capacity
    better = capacity_reading(rows(445.0, 1401.0, 1.14, 82.0), "m")
    assert "does better than the expert oracle" in better and "routing is not what fails" in better
    routing = capacity_reading(rows(50.0, 1.5, 1.2, 1.4), "m")
    assert "routing is part of the failure" in routing and "within 2x of the neuron oracle's" in routing


def test_the_perplexity_ratio_interval_is_a_t_interval_over_documents():
    """Four documents: the interval is the t interval (3 df) of the per-document log-ppl increase,
    wider than a percentile bootstrap would give, and the point is exp(mean increase)."""
    import numpy as np
    import pandas as pd
    from scipy import stats as st

    from studylib.estimates.conversion_analysis import perplexity_vs_dense

    inc = np.array([0.10, 0.30, 0.20, 0.60])  # nats per token lost, per document
    rows = [{"task": "wikitext", "variant": v, "item_id": i, "n_tokens": 100,
             "gold_logprob": -100 * (2.0 + (inc[i] if v == "x" else 0.0))} for v in ("dense", "x") for i in range(4)]
    r = perplexity_vs_dense(pd.DataFrame(rows), "x")
    half = st.t.ppf(0.975, 3) * inc.std(ddof=1) / 2
    assert r["docs"] == 4 and np.isclose(r["ppl_ratio"], np.exp(inc.mean()))
    assert np.isclose(r["ppl_ratio_lo"], np.exp(inc.mean() - half)) and np.isclose(r["ppl_ratio_hi"], np.exp(inc.mean() + half))


def test_front_page_abstract_is_at_most_250_words_with_its_glued_values():
    """Issue 37: the abstract answers three questions in <= 250 words (values filled in as glued)."""
    from studylib.book import abstract

    text = abstract.rendered_abstract()
    assert "{glue" not in text and abstract.MISSING not in text.split("Speculative")[0]
    assert abstract.word_count(text) <= abstract.MAX_WORDS, abstract.word_count(text)
    for question in ("Does it speed decoding?", "What does it cost?", "What should a practitioner do instead?"):
        assert question in text


def test_grouped_verdict_table_has_every_claim_once_under_its_group():
    from studylib import claims

    vt = claims.verdict_table()
    assert set(vt["group"]) <= set(claims.GROUPS) and vt["id"].is_unique
    assert {"h1", "h2", "h3", "phase1", "s31_arithmetic"} <= set(vt["id"])
    assert vt.set_index("id").loc["eq25", "group"] == claims.GROUP_H2


def test_chapter_three_figure_and_table_functions_read_what_they_are_given():
    import pandas as pd

    from studylib.book import figures

    deltas = pd.DataFrame({"profile": ["cpu-qwen"] * 3, "task": ["mmlu", "mmlu", "gsm8k_cot"],
                           "variant": ["a", "b", "a"], "acc_loss_pp": [1.0, 5.0, 2.0], "acc_loss_lo": [0.0, 3.0, -1.0],
                           "acc_loss_hi": [2.0, 7.0, 5.0], "n_items": [100, 100, 50]})
    fig = figures.loss_forest(deltas, ["b", "a"])
    assert len(fig.axes) == 2 and [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["b", "a"]
    assert figures.loss_forest(deltas, ["zzz"]) is None
    items = pd.DataFrame({"variant": ["dense"] * 4 + ["v"] * 4, "task": ["gsm8k_cot"] * 8,
                          "correct": [1, 1, 0, 1, 1, 0, 0, 0], "correct_flexible": [1, 1, 1, 1, 1, 0, 0, 0],
                          "truncated": [False, False, False, True, False, True, True, False]})
    t = figures.accuracy_table(items).set_index("variant")
    assert t.loc["dense", "accuracy %"] == 75 and t.loc["v", "truncated %"] == 50
    note = figures.truncation_notes(items)
    assert "v used the whole budget on 50% of 4 items and got 1 of the 2 it finished right" in note
    assert "(dense: 2 of 3)" in note and "dense used" not in note and note.startswith("**Truncation (gsm8k_cot).**")
    assert figures.truncation_notes(items[items["variant"] == "dense"], share=0.5) is None


def test_gptq_holdout_figure_and_reading_read_the_budgets_they_are_given():
    import pandas as pd

    from studylib.book import quantization as BQ

    rows = []
    for site in ("q_proj", "down_proj"):
        for tokens, held, cal in ((1024, 0.9, 0.5), (8192, 0.7, 0.6)):
            for damp in (0.01, 0.1):
                rows.append({"site": site, "calib_tokens": tokens, "percdamp": damp, "heldout_vs_rtn": held + damp,
                             "calib_vs_rtn": cal})
    rel = pd.DataFrame(rows)
    fig = BQ.gptq_holdout_figure(rel, "m")
    assert [ax.get_title() for ax in fig.axes] == ["q_proj", "down_proj"]
    versus = pd.DataFrame({"task": ["mmlu"], "n_items": [250], "acc_loss_pp": [-1.2], "mcnemar_p": [0.4]})
    text = BQ.gptq_holdout_reading(rel, versus)
    assert "1,024 calibration tokens and 1% damping" in text and "is 0.50 of round-to-nearest's" in text
    assert "on held-out text 0.91" in text and "0.71 at damping 0.01, 0.80 at damping 0.1" in text
    assert "mmlu, n=250: GPTQ better than round-to-nearest by 1.2 pp" in text
    assert BQ.gptq_holdout_reading(rel, versus.iloc[:0]).count("The end-to-end result above is") == 1


def test_kernel_readings_name_ties_and_the_decode_kernels_gap():
    import pandas as pd

    from studylib.book.quantization import kernel_readings

    rows = [("up", 16, 1, "bf16_eager", 2.0, 1.9, 2.1), ("up", 16, 1, "bf16_onednn_packed", 1.0, 0.95, 1.05),
            ("up", 8, 1, "int8_quanto", 1.5, 1.4, 1.6), ("up", 8, 1, "int8_torchao", 1.0, 0.9, 1.45)]
    cp = pd.DataFrame(rows, columns=["layer", "bits", "batch", "kernel", "median_s", "ci_lo_s", "ci_hi_s"])
    fastest, decode = kernel_readings(cp, "p")
    assert "up, 8-bit, B=1: int8_torchao ≈ int8_quanto" in fastest and "up, 16-bit, B=1: bf16_onednn_packed." in fastest
    assert "uses bf16_onednn_packed, int8_quanto." in decode
    assert "up 8-bit: int8_quanto takes 1.500x the time of int8_torchao" in decode


def test_precision_reading_compares_bf16_and_fp32_per_batch_measured_both_ways():
    import pandas as pd

    from studylib.book.cpu_speed import precision_reading, table6_by_cpu

    rows = [("p", "dense", 1, "eager", 6.0, 40e9), ("p", "dense", 1, "fp32", 4.0, 50e9),
            ("p", "dense", 8, "eager", 30.0, 30e9), ("p", "other", 8, "fp32", 99.0, 99e9)]
    cd = pd.DataFrame(rows, columns=["profile", "variant", "batch", "kernel", "decode_tokens_per_s", "achieved_Bps"])
    cd["copy_bandwidth_Bps"] = 100e9
    text = precision_reading(cd, "p")
    assert "at B=1 decodes 6.00 tokens/s in bf16 and 4.00 upcast to fp32 (0.40 and 0.50 of the copy bandwidth)" in text
    assert "At B=1 bf16, half the bytes, is faster" in text and "B=8" not in text
    assert precision_reading(cd, "q") is None
    assert table6_by_cpu(None, cd.iloc[:0]).empty


def test_served_beside_ours_pairs_engines_and_reads_each_against_its_own_dense():
    import pandas as pd

    from studylib.book.cpu_speed import served_beside_ours

    rows = []
    for v, speed in (("dense", {"vllm": 40.0, "ours": 20.0}), ("literal_moe4_top1", {"vllm": 80.0, "ours": 30.0})):
        for e, tps in speed.items():
            for r in range(3):
                rows.append({"profile": "p", "variant": v, "batch": 1, "engine": e, "decode_tokens_per_s": tps + r - 1,
                             "achieved_Bps": 5.0 * (tps + r - 1), "copy_bandwidth_Bps": 1000.0})
    rows.append({"profile": "p", "variant": "sparsegpt30", "batch": 1, "engine": "vllm", "decode_tokens_per_s": 1.0,
                 "achieved_Bps": 1.0, "copy_bandwidth_Bps": 1000.0})                     # no pair: left out
    rows.append({"profile": "p", "variant": "gptq_int4", "batch": 1, "engine": "vllm", "decode_tokens_per_s": 60.0,
                 "achieved_Bps": 1.0, "copy_bandwidth_Bps": 1000.0})   # ours cannot execute it: the engine alone
    for r in rows:  # the int4 engine row came from a later invocation than the rest
        r["run_id"] = "later" if r["variant"] == "gptq_int4" else "first"
    ex = pd.DataFrame([{"profile": "p", "variant": "dense", "top1_agreement": 0.99, "max_abs_dlogprob": 0.2}])
    t = served_beside_ours(pd.DataFrame(rows), ex).set_index("variant")
    assert t["same run as dense"].to_dict() == {"dense": True, "gptq_int4": False, "literal_moe4_top1": True}
    assert list(t.index) == ["dense", "gptq_int4", "literal_moe4_top1"]
    assert t.loc["gptq_int4", "vllm vs its dense"] == pytest.approx(1.5) and pd.isna(t.loc["gptq_int4", "vllm / ours"])
    assert t.loc["literal_moe4_top1", "vllm vs its dense"] == pytest.approx(2.0)
    assert t.loc["literal_moe4_top1", "ours vs its dense"] == pytest.approx(1.5)
    assert t.loc["dense", "vllm / ours"] == pytest.approx(2.0) and t.loc["dense", "vllm of copy BW"] == pytest.approx(0.2)
    assert t.loc["dense", "top-1 agreement"] == 0.99 and pd.isna(t.loc["literal_moe4_top1", "top-1 agreement"])


def test_op_sweep_table_pivots_one_profile_and_batch():
    import pandas as pd

    from studylib.book.cpu_speed import op_sweep_table

    es = pd.DataFrame([{"profile": p, "batch": b, "expert_width": w, "active_experts": a, "median_s": 1e-3 * w / 512 * a,
                        "achieved_Bps": 1e9 * a} for p in ("cpu-qwen", "h100") for b in (8, 128)
                       for w in (512, 1024) for a in (1, 8)])
    t = op_sweep_table(es, "cpu-qwen", 128)
    assert list(t.index) == [512, 1024] and t.loc[1024, "8 active (ms)"] == pytest.approx(16.0)
    assert t.loc[512, "GB/s at 8 active"] == pytest.approx(8.0)
    assert op_sweep_table(es, "h200", 128).empty


def test_phase3_views_on_fixtures():
    import pandas as pd

    from studylib.book import phase3 as P

    rows = [{"shape": "s", "component": "ffn", "variant": v, "batch": b, "routing": r, "median_s": t}
            for v in ("pruned30_moe4_top1", "dense") for b in (1, 8)
            for r, t in (("uniform", 2.0), ("severe", 1.0 if b == 1 else 4.0), ("none", 3.0))]
    long = P.relative_to_uniform(pd.DataFrame(rows))
    assert set(long["variant"]) == {"pruned30_moe4_top1"}               # dense has no router
    got = long.set_index(["batch", "routing"])["relative"]
    assert got[(1, "severe")] == 2.0 and got[(8, "severe")] == 0.5
    assert P.imbalance_figure(long, "pruned30_moe4_top1") is not None
    assert P.imbalance_figure(long, "moe8_top1") is None
    assert P.relative_to_uniform(pd.DataFrame(rows).query("routing != 'uniform'")).empty

    qv = pd.DataFrame([{"profile": "cpu-qwen", "model": "org/q", "variant": v, "conversion": c, "max_expert_fraction": f}
                       for v, c, f in (("oracle", "moe_oracle", 0.9), ("literal", "moe_linear", 0.8),
                                       ("eq25_x", "moe_linear", 0.5), ("teal", "teal", 0.0))])
    r = P.routed_conversions(qv, exclude=("eq25_x",))
    assert list(r["variant"]) == ["literal", "oracle"] and set(r["model"]) == {"q"}
    assert "comes from the partition" in P.oracle_reading(r, "oracle", "literal")
    assert P.oracle_reading(r, "oracle", "missing") is None


def test_audit_views_on_fixtures():
    import pandas as pd

    from studylib.book.audit import coverage_grid, machine_check_readings

    c = pd.DataFrame([{"variant": v, "task": t, "measured": m, "planned": p}
                      for v, t, m, p in (("dense", "mmlu", 1000, 1000), ("dense", "gsm8k", 50, 300),
                                         ("int8", "mmlu", 250, 1000), ("int8", "gsm8k", 0, 300))])
    g = coverage_grid(c).set_index("variant")
    assert list(g.columns) == ["mmlu", "gsm8k"] and list(g.index) == ["dense", "int8"]
    assert g.loc["dense", "mmlu"] == "1,000 / 1,000" and g.loc["int8", "gsm8k"] == "0 / 300 ⏳"

    mct = pd.DataFrame([{"variant": "dense", "task": "gsm8k_cot", "here": "cpuA", "items": 16, "outcome_differs": 2,
                         "same_response": 10.0, "median_first_difference": 120.0, "unit_items": 50},
                        {"variant": "dense", "task": "mmlu", "here": "cpuA", "items": 16, "outcome_differs": 0,
                         "same_response": float("nan"), "median_first_difference": float("nan"), "unit_items": 250}])
    qi = pd.DataFrame({"cpu": ["cpuA", "cpuA", "cpuB"], "unit": ["u1", "u2", "u3"]})
    texts = machine_check_readings(mct, qi)
    assert len(texts) == 1                                   # the log-likelihood unit has no responses
    assert "14 of 16" in texts[0] and "10 of 16" in texts[0] and "first 120 characters" in texts[0]
    assert "batch differently" in texts[0] and "2 units in data/quality_items/ come from cpuA" in texts[0]


def test_speculative_views_on_the_committed_runs():
    from studylib.book import speculative as V
    from studylib.estimates import spec_analysis as S
    from studylib.results import read_table

    sd = S.main_pair(read_table("spec_decoding"))
    if sd.empty:
        pytest.skip("no committed speculative-decoding runs")
    fig = V.acceptance_figure(sd)
    assert len(fig.axes) == 2 and fig.axes[0].get_ylim() == (0, 1)
    t = V.identity_table(sd)
    assert set(t.index) <= {"float32", "bfloat16"} and not t.empty
    assert ((t["rate"] >= 0) & (t["rate"] <= 1)).all()
    text = V.gsm8k_reading(sd, 4)
    assert text is None or "paired difference" in text


def test_stream_and_served_check_tables():
    import pandas as pd

    from studylib.book.cpu_speed import served_check_table, stream_table

    st = pd.DataFrame([{"profile": "p", "variant": v, "rate_per_s": 0.5, "ttft_s": 0.1 * (i + 1), "tpot_s": 0.05,
                        **({"expert_max_fraction": 0.6, "expert_balance": 0.8} if v == "moe" else {})}
                       for v in ("dense", "moe") for i in range(10)])
    t = stream_table(st).set_index("variant")
    assert t.loc["dense", "requests"] == 10 and t.loc["dense", "TTFT p50 (ms)"] == pytest.approx(550)
    assert t.loc["moe", "busiest expert (worst layer)"] == 0.6 and pd.isna(t.loc["dense", "busiest expert (worst layer)"])
    sc = pd.DataFrame({"profile": "p", "variant": "dense", "task": "mmlu", "item_id": range(4),
                       "correct_here": [1, 1, 0, 0], "correct_reference": [1, 1, 0, 1]})
    r = served_check_table(sc).iloc[0]
    assert r["changed"] == 1 and r["served acc"] == 0.5 and r["ours acc"] == 0.75
    assert pd.isna(r["items/h served"]) and pd.isna(r["changed, ours rerun"])   # a run before the engines were timed
    rerun = served_check_table(sc.assign(correct_ours_now=[1, 1, 0, 0])).iloc[0]
    assert rerun["changed, ours rerun"] == 1 and rerun["served vs ours rerun"] == 0
    timed = served_check_table(sc.assign(params='{"wall_s_served": 36.0, "wall_s_ours": 144.0}')).iloc[0]
    assert timed["items/h served"] == pytest.approx(400) and timed["served / ours (items/h)"] == pytest.approx(4)
    assert stream_table(st.iloc[:0]).empty and served_check_table(sc.iloc[:0]).empty


def test_engine_gap_reading_names_only_the_variants_past_the_bar():
    import pandas as pd

    from studylib.book.cpu_speed import engine_gap_reading

    sv = pd.DataFrame([{"variant": "dense", "batch": 1, "vllm / ours": 1.19, "vllm of copy BW": 0.62, "ours of copy BW": 0.52},
                       {"variant": "moe", "batch": 1, "vllm / ours": 1.05, "vllm of copy BW": 0.4, "ours of copy BW": 0.38}])
    text = engine_gap_reading(sv)
    assert "dense at B=1 (1.19x; 0.62 vs 0.52" in text and "moe" not in text
    assert "within 1.1x" in engine_gap_reading(sv.iloc[1:]) and engine_gap_reading(sv.iloc[:0]) is None
    # a variant on the engine's own int8 kernel is named with that kernel, not with attention and MoE
    sv["vllm kernel"] = ["vllm", "vllm"]
    q = pd.concat([sv, pd.DataFrame([{"variant": "int8_w8a8", "batch": 1, "vllm / ours": 2.6, "vllm of copy BW": 0.59,
                                      "ours of copy BW": 0.23, "vllm kernel": "vllm w8a8"}])], ignore_index=True)
    text = engine_gap_reading(q)
    assert text.index("dense at B=1") < text.index("attention") < text.index("int8_w8a8 at B=1 (2.60x") \
        < text.index("torch._int_mm")


def test_pruning_levels_read_method_ratio_and_pattern_from_declarations():
    import pandas as pd

    from studylib.book.figures import pruning_levels, pruning_levels_figure

    declared = {"p30": {"family": "pruning", "steps": [("sparsegpt", {"ratio": 0.3})]},
                "odd_name": {"family": "pruning", "steps": [("wanda", {"nm": [2, 4]})]},
                "stack": {"family": "pruning", "steps": [("sparsegpt", {"ratio": 0.3}), ("quanto_int8", {})]},
                "conv": {"family": "sparse routing", "steps": [("moe_literal", {"experts": 4})]}}
    deltas = pd.DataFrame([{"profile": "p", "task": "t", "variant": v, "lp_loss": 0.1, "lp_loss_lo": 0.0,
                            "lp_loss_hi": 0.2} for v in ("p30", "odd_name", "stack", "conv", "dense")])
    pr = pruning_levels(deltas, declared).set_index("variant")
    assert sorted(pr.index) == ["odd_name", "p30"]            # a stack and a conversion are not pruning alone
    assert pr.loc["p30", "p"] == 0.3 and pr.loc["p30", "method"] == "sparsegpt"
    assert pr.loc["odd_name", "p"] == 0.5 and pr.loc["odd_name", "pattern"] == "2:4"
    assert pruning_levels_figure(pr.reset_index()) is not None
    assert pruning_levels(deltas.iloc[:0], declared).empty


def test_accuracy_table_names_the_engine_of_each_unit():
    import pandas as pd

    from studylib.book.figures import accuracy_table

    it = pd.DataFrame({"variant": "v", "task": ["a"] * 3 + ["b"] * 2, "correct": [1, 0, 1, 1, 1],
                       "params": ['{"engine": "vllm", "vllm": "0.32.0"}'] * 2 + ['{"linear_kernel": "x"}'] * 3})
    t = accuracy_table(it).set_index("task")
    assert t.loc["a", "engine"] == "vllm 0.32.0 (2), ours (1)" and t.loc["b", "engine"] == "ours"
    assert accuracy_table(it.drop(columns="params")).iloc[0]["engine"] == "ours"


def test_speculative_curves_best_gamma_and_roi_sensitivity_figures():
    import pandas as pd

    from studylib.book.speculative import PAPER_BOTH_BAND, best_gamma, curves_figure
    from studylib.book.tradeoff import roi_sensitivity_figure

    curves = pd.DataFrame([{"what": w, "gamma": g, "alpha": 0.7, "speedup": s, "lo": s - 0.1, "hi": s + 0.1,
                            "t_target_1_ms": 10.0, "t_verify_ms": 11.0, "t_draft_ms": 2.0}
                           for w, ss in (("a", (1.2, 1.8, 1.5)), ("b", (2.0, 1.9, 1.1))) for g, s in zip((1, 2, 3), ss)])
    best = best_gamma(curves)
    assert best.loc["a", "gamma"] == 2 and best.loc["b", "gamma"] == 1 and best.loc["a", "speedup"] == 1.8
    fig = curves_figure(curves, "what", PAPER_BOTH_BAND, "paper", "speedup", "t")
    assert len(fig.axes[0].get_legend().get_texts()) == 3          # two curves and the paper's band
    sens = pd.DataFrame({"sparse_routing_hours": [100, 500, 1000] * 2, "probability": [0.1, 0.5, 0.9, 0.2, 0.3, 0.4],
                         "reading": ["x"] * 3 + ["y"] * 3})
    assert roi_sensitivity_figure(sens).axes[0].get_xlabel() == "hours spent on sparse routing"


def test_gpu_predictions_from_the_committed_data(committed):
    from studylib.book.speculative import gpu_predictions, int8_plus_draft
    from studylib.estimates import gpu_claims as G
    from studylib.estimates import spec_analysis as S

    data = committed
    sd_all = data.table("spec_decoding")
    if sd_all.empty:
        pytest.skip("no speculative-decoding data committed")
    sd = S.main_pair(sd_all)
    pred = gpu_predictions(sd, data.timing)
    assert not pred.empty and (pred["lo"] <= pred["speedup"]).all() and (pred["speedup"] <= pred["hi"]).all()
    gpu, both = int8_plus_draft(sd_all, sd, data.timing, G.JUDGING_GPUS)
    assert gpu is None or set(both["what"]) == {"int8 + draft (measured int8 steps)", "draft alone (dense target)",
                                                "int8 + draft (int8 at dense's bandwidth efficiency)"}


def test_gpu_speed_views_from_the_committed_timing(committed):
    from studylib.book import gpu_speed as V
    from studylib.estimates import gpu_claims as G
    from studylib.estimates.analysis import speedups

    timing, peaks = committed.timing, committed.table("device_peaks")
    gt = G.gpu_timing(timing)
    if gt.empty:
        pytest.skip("no GPU timing committed")
    assert V.scaling_figure(speedups(gt)).axes[0].get_xscale() == "log"
    rep = G.replication(timing, peaks)
    tab = V.replication_table(rep)
    assert list(tab.index) == list(dict.fromkeys(rep["measure"]))
    assert V.replication_figure(rep) is not None
    text = V.replication_reading(rep)
    assert text is None or ("H100" in text and "x" in text)
    assert V.replication_reading(rep[rep["profile"] == rep["profile"].iloc[0]]) is None   # one GPU: no reading
    gate = V.gate_table(timing)
    assert list(gate.index) == [1, 8, 32, 128]
    comp = V.composed_table(timing, gt)
    assert comp.empty or (comp["whole model (composed)"] > 0).all()


def test_ch3_ratio_conversion_and_forms_views_from_the_committed_data(committed):
    from studylib.book import figures as F
    from studylib.claims.quality import COMBOS
    from studylib.estimates.analysis import pruning_design, quality_deltas, working_ratios
    from studylib.estimates.conversion_analysis import conversion_table
    from studylib.estimates.fits import fit_forms
    from studylib.results import BASELINE

    items, variants = committed.items, committed.variants
    if items.empty:
        pytest.skip("no quality items committed")
    ratios, floored = F.combination_ratio_table(items, COMBOS)
    assert set(ratios["profile"]) <= set(items["profile"]) and all(" scores " in f for f in floored)
    wr = working_ratios(items[items["profile"] == "cpu-qwen"])
    if not wr.empty:
        t = F.working_ratio_table(wr)
        assert list(t.columns) == ["variant", "reasoning loss", "factual loss", "ratio (bootstrap)", "Fieller"]
        assert len(t) == len(wr)
    deltas = quality_deltas(items)
    ct = conversion_table(items, variants, deltas, "cpu-real", [BASELINE, *sorted(set(variants["variant"]))[:6]])
    if not ct.empty and "ppl_ratio" in ct and ct["ppl_ratio"].notna().any():
        assert F.conversion_ppl_figure(ct, "t").axes[0].get_xscale() == "log"
    ps = pruning_design(items, variants, "cpu-qwen")
    ps = ps[ps["task"] == "mmlu"] if not ps.empty else ps
    if not ps.empty and ps.loc[ps["p"] > 0, "p"].nunique() >= 2:
        t = F.pruning_forms_table(fit_forms(ps[ps["variant"] != BASELINE], ("p",)))
        assert t["form"].tolist() == ["paper's (no intercept)", "with intercept"] and t.iloc[0]["intercept (pp)"] == "0 (fixed)"


def test_ch4_kernel_figure1_and_stack_views_from_the_committed_data(committed):
    from studylib.book import figures
    from studylib.book.quantization import kernel_figure, kernel_table, with_layer
    from studylib.book.speculative import stack_table
    from studylib.book.tradeoff import family_reading, figure1_table
    from studylib.quality.transforms import with_role

    data = committed
    ck = data.table("cpu_kernels")
    if not ck.empty:
        ck = with_layer(ck)
        assert ((ck["bw_fraction"] > 0) & (ck["bw_fraction"] < 2)).all()
        t = kernel_table(ck)
        assert len(t) == len(ck) and t.columns[-1] == "rel_error"
        assert kernel_figure(ck) is not None
    _, tq = figures.figure1(data)
    if not tq.empty:
        t = figure1_table(tq)
        assert len(t) == len(tq) and t["speedup (B=1)"].str.endswith("]").all()
        assert family_reading(tq).startswith("Reading: ") and all(f in family_reading(tq) for f in tq["family"].unique())
    stack, pruned, int8 = with_role("pruning_int8")[0], with_role("pruning_alone")[0], with_role("int8")[0]
    st = stack_table(data.table("spec_decoding"), data.table("cpu_decode"), stack, (pruned, int8))
    assert st.empty or set(st.columns) >= {"stack", "η"}


def test_sweet_spot_figure_and_reading_from_the_committed_data(committed):
    from studylib.book.phase3 import sweet_spot_figure, sweet_spot_reading
    from studylib.estimates import sweet_spot as S
    from studylib.quality.transforms import declared_variants

    data = committed
    speed = S.speed_map(data.timing)
    if speed.empty:
        pytest.skip("no H1 layer timing committed")
    quality = S.quality_at_fraction(data.deltas, data.variants)
    assert sweet_spot_figure(speed, quality, S.SHAPES) is not None
    assert sweet_spot_figure(speed, quality.iloc[:0], S.SHAPES).axes[1].axison is False   # no quality yet: said so
    text = sweet_spot_reading(speed, S.batch_limits(speed), quality, data.items, declared_variants())
    assert text.startswith("**Reading.**") and text.endswith(".")
    if S.best_method(quality) is not None:
        assert "On quality, the best usable conversion" in text


def test_the_abstract_names_h2s_other_benchmarks_from_their_claims():
    from studylib.book.abstract import other_tasks_words
    from studylib.claims.base import Measured
    from studylib.paper.criteria import AT_CHANCE
    from studylib.stats import Estimate

    m = {"hellaswag_loss": Measured(Estimate(30.4, 26.7, 34.1)), "truthfulqa_loss": Measured(Estimate(-1, -5, 3)),
         "math_loss": Measured()}
    v = {"hellaswag_loss": "refuted", "truthfulqa_loss": AT_CHANCE + " ...", "math_loss": "not yet measured"}
    words = other_tasks_words(m, v)
    assert words.startswith(", and 30.4 pp [26.7, 34.1] of HellaSwag") and "TruthfulQA dense itself is at chance" in words
    assert "MATH" not in words and other_tasks_words({}, {}) == ""


def test_engine_choice_reading_names_the_served_units():
    import pandas as pd

    from studylib.book.cpu_speed import engine_choice_reading, served_check_table

    sc = pd.DataFrame({"profile": "p", "variant": "dense", "task": "gsm8k_cot", "item_id": range(4),
                       "correct_here": [1, 1, 0, 0], "correct_reference": [1, 1, 0, 1],
                       "params": '{"wall_s_served": 36.0, "wall_s_ours": 144.0}'})
    sct = served_check_table(sc)
    items = pd.DataFrame({"profile": "p", "variant": ["dense"] * 3, "task": ["math500"] * 2 + ["mmlu"],
                          "params": ['{"engine": "vllm"}'] * 2 + ['{}']})
    text = engine_choice_reading(sct, items)
    assert "400 vs 100 items/h (4.0x)" in text and "dense math500 (2 items, p)" in text and "mmlu" not in text
    assert "evaluated by ours" in engine_choice_reading(sct, items.iloc[2:])
    assert engine_choice_reading(served_check_table(sc.drop(columns="params")), items) is None
    assert "vLLM is the faster engine on gsm8k_cot." in text
    slow = served_check_table(pd.concat([sc, sc.assign(task="mmlu", params='{"wall_s_served": 90.0, "wall_s_ours": 30.0}')]))
    assert "vLLM is the faster engine on gsm8k_cot; ours on mmlu." in engine_choice_reading(slow, items)


def test_rerun_reading_names_a_variant_whose_own_answers_move_and_only_it():
    import pandas as pd

    from studylib.book.cpu_speed import rerun_reading, served_check_table

    n = 100
    def rows(v, moved):
        ref = [1, 0] * (n // 2)
        return pd.DataFrame({"profile": "p", "variant": v, "task": "mmlu", "item_id": range(n), "correct_here": ref,
                             "correct_reference": ref, "correct_ours_now": [1 - r if i < moved else r
                                                                            for i, r in enumerate(ref)]})
    sct = served_check_table(pd.concat([rows("dense", 2), rows("steady", 4), rows("moving", 30)]))
    text = rerun_reading(sct)
    assert "moving on mmlu (p): 30% of 100 outcomes (dense 2%)" in text and "steady" not in text
    assert rerun_reading(served_check_table(pd.concat([rows("dense", 2), rows("steady", 4)]))) is None
    assert rerun_reading(served_check_table(rows("moving", 30))) is None       # no dense re-run: nothing to compare


def test_residual_figure_plain_and_relative():
    import numpy as np
    import pandas as pd
    import statsmodels.formula.api as smf

    from studylib.book.audit import residual_figure

    rng = np.random.default_rng(0)
    d = pd.DataFrame({"x": np.arange(1, 41.0)})
    d["y"] = 3 + 2 * d["x"] + rng.normal(0, 1, len(d))
    res = smf.ols("y ~ x", d).fit()
    plain = residual_figure(res, "t")
    assert plain.axes[0].get_ylabel() == "residual" and plain.axes[1].get_title() == "normal Q-Q"
    rel = residual_figure(res, "t", measured=d["y"], xlabel="fitted (µs)")
    assert rel.axes[0].get_xscale() == "log" and "%" in rel.axes[0].get_ylabel()


def test_engine_bars_read_each_bar_per_profile_and_say_what_is_not_measured():
    import numpy as np
    import pandas as pd

    from studylib.book.cpu_speed import engine_bars

    sv = pd.DataFrame([
        {"profile": "p", "variant": "dense", "batch": 1, "vllm vs its dense": 1.0, "vllm / ours": 1.05,
         "top-1 agreement": 0.995},
        {"profile": "p", "variant": "literal_moe4_top1", "batch": 1, "vllm vs its dense": 2.4, "vllm / ours": 1.3,
         "top-1 agreement": np.nan}])
    same = np.r_[np.ones(30), np.zeros(20)]
    checks = pd.DataFrame({"profile": "p", "variant": "dense", "task": "gsm8k_cot", "item_id": range(50),
                           "correct_here": same, "correct_reference": same, "engine": "vllm",
                           "response_here": "a", "response_reference": "a"})
    t = engine_bars(sv, checks).set_index("bar")
    assert t.filter(like="2x vLLM's dense", axis=0)["met"].iloc[0] == "yes"
    assert t.filter(like="within 1.1x", axis=0)["met"].iloc[0] == "**no**"        # the MoE's 1.3x
    assert "literal_moe4_top1 at B=1" in t.filter(like="within 1.1x", axis=0)["measured"].iloc[0]
    assert t.filter(like="top-1 agreement", axis=0)["met"].iloc[0] == "yes"
    assert t.filter(like="served − ours", axis=0)["met"].iloc[0] == "yes"         # identical outcomes: 0 in the interval
    empty = engine_bars(sv[sv["variant"] == "dense"], checks.iloc[:0])
    assert (empty.set_index("bar").filter(like="2x vLLM's dense", axis=0)["met"] == "not measured").all()
