"""The served units' arithmetic and parsing, without an engine: vLLM's prompt log-probabilities read
by token id, the exactness summary, WikiText windows that cover the asked tokens, and a served
section refused before any work when it names what no checkpoint expresses."""
import pytest

from studylib.config import StudyConfigError, load_profile
from studylib.serving import served as S
from studylib.serving.engine import EngineError


class FakeServer:
    log = "fake.log"

    def __init__(self, top_of):
        self.top_of = top_of              # fn(position, real token) -> the engine's top-1

    def post(self, path, body):
        w = body["prompt"]
        plp = [None] + [{str(t): {"logprob": -0.5 * pos, "rank": 1 if self.top_of(pos, t) == t else 7,
                                  "decoded_token": "x"},
                         **({} if self.top_of(pos, t) == t else
                            {str(self.top_of(pos, t)): {"logprob": -0.1, "rank": 1, "decoded_token": "y"}})}
                        for pos, t in enumerate(w) if pos > 0]
        return {"choices": [{"index": 0, "text": "", "prompt_logprobs": plp}]}


def test_served_scores_read_the_real_token_and_the_top1_by_id():
    w = [11, 12, 13, 14]
    (lps, top), = S.served_scores(FakeServer(lambda pos, t: t if pos != 2 else 99), [w])
    assert lps == [-0.5, -1.0, -1.5] and top == [12, 99, 14]


def test_a_short_answer_from_the_engine_is_an_error():
    class Short(FakeServer):
        def post(self, path, body):
            return {"choices": [{"index": 0, "prompt_logprobs": [None]}]}
    with pytest.raises(EngineError, match="prompt log-probabilities"):
        S.served_scores(Short(None), [[1, 2, 3]])


def test_exactness_row_counts_agreement_and_the_largest_gap():
    ours = [([-1.0, -2.0], [5, 6]), ([-3.0], [7])]
    served = [([-1.0, -2.5], [5, 9]), ([-2.0], [7])]
    r = S.exactness_row(ours, served)
    assert r["tokens"] == 3 and r["top1_agreement"] == pytest.approx(2 / 3)
    assert r["max_abs_dlogprob"] == pytest.approx(1.0) and r["mean_abs_dlogprob"] == pytest.approx(0.5)
    assert r["ours_nll"] == pytest.approx(2.0) and r["served_nll"] == pytest.approx(5.5 / 3)
    with pytest.raises(ValueError):
        S.exactness_row(ours, served[:1])


def test_wikitext_windows_cover_the_asked_scored_tokens(monkeypatch):
    import studylib.quality.taskdata as T

    monkeypatch.setattr(T, "wikitext_test_text", lambda bench: " ".join(str(i) for i in range(5000)))

    class Tok:
        def __call__(self, text):
            return {"input_ids": [int(x) for x in text.split()]}
    ws = S.wikitext_windows(Tok(), "bench", n_tokens=1000, window=300)
    assert sum(len(w) - 1 for w in ws) == 1000 and max(len(w) for w in ws) == 300
    flat = [t for w in ws for t in w]
    assert flat == list(range(len(flat)))                  # consecutive text, nothing skipped or repeated
    with pytest.raises(StudyConfigError, match="bench_dir"):
        S.wikitext_windows(Tok(), None, 10, 5)


def test_a_served_section_is_checked_before_any_work():
    base = load_profile("cpu-real")["served"]
    S.check_config(base)
    with pytest.raises(StudyConfigError, match="teal"):
        S.check_config({**base, "variants": ["teal_a25"]})
    with pytest.raises(StudyConfigError, match="unknown key"):
        S.check_config({**base, "batch": [1]})
    with pytest.raises(StudyConfigError, match="ours_kernel"):
        S.check_config({**base, "ours_kernel": "fastest"})
    # quanto int8 is exported for quality only: its exactness may be measured, its speed may not
    S.check_config({**base, "exactness_only": ["int8_quanto"]})
    with pytest.raises(StudyConfigError, match="for speed"):
        S.check_config({**base, "variants": [*base["variants"], "int8_quanto"]})
    with pytest.raises(StudyConfigError, match="both"):
        S.check_config({**base, "exactness_only": [base["variants"][0]]})
    with pytest.raises(StudyConfigError, match="teal"):
        S.check_config({**base, "exactness_only": ["teal_a25"]})


def test_the_vllm_op_sweep_grid_and_its_rows():
    from studylib.serving import moe_op_sweep as M

    s = load_profile("cpu-qwen")["vllm_expert_sweep"]
    us = M.units(s)
    assert len(us) == len(s["widths"]) * len(s["batches"]) * len(s["active"]) and len({M.unit_key(u) for u in us}) == len(us)
    r = M.row({**us[0], "samples": [2e-3, 1e-3, 3e-3], "rel_err": 0.002, "kernel": "vllm cpu_fused_moe (amx)",
               "threads": 2, "engine_version": "0.32.0"})
    assert r["median_s"] == 2e-3 and r["n"] == 3 and r["ci_lo_s"] <= 2e-3 <= r["ci_hi_s"]
    w = us[0]["active_experts"] * 3 * 2048 * us[0]["expert_width"] * 2
    assert w < r["bytes_moved"] < w * 1.05                      # the active experts' weights, and x / out
    with pytest.raises(StudyConfigError, match="active"):
        M.check_config({**s, "active": [9]})


def test_a_stream_arrives_as_seeded_poisson_and_keeps_every_request():
    import time as _t

    class Streamer:
        def __init__(self):
            self.seen = []

        def stream_completion(self, prompt, max_tokens):
            self.seen.append((_t.perf_counter(), prompt))
            return {"ttft_s": 0.01, "tpot_s": 0.002, "e2e_s": 0.05, "output_tokens": max_tokens, "text": prompt[::-1]}
    srv = Streamer()
    prompts = [f"p{i}" for i in range(6)]
    out = S.stream_load(srv, prompts, rate_per_s=50.0, max_tokens=3, seed=1)
    assert [r["request"] for r in out] == list(range(6)) and [r["text"] for r in out] == [p[::-1] for p in prompts]
    arr = [r["arrival_s"] for r in out]
    assert arr[0] == 0 and all(b > a for a, b in zip(arr, arr[1:]))
    assert arr == [r["arrival_s"] for r in S.stream_load(Streamer(), prompts, 50.0, 3, seed=1)]   # seeded
    with pytest.raises(StudyConfigError, match="stream"):
        S.check_config({**load_profile("cpu-real")["served"], "stream": {"requests": 4}})


def test_shape_configs_follow_the_timed_module_declarations():
    from studylib.serving import shapes_served as SS

    dense = SS.shape_config("llama-2-70b", "dense")
    combo = SS.shape_config("llama-2-70b", "pruned30_moe4_top1")
    assert dense["model_type"] == "llama" and dense["intermediate_size"] == 28672
    assert combo["num_experts"] == 4 and combo["num_experts_per_tok"] == 1
    assert combo["moe_intermediate_size"] == int(28672 / 4 * 0.7) - int(28672 / 4 * 0.7) % 8
    assert combo["shared_expert_intermediate_size"] == 0
    base = load_profile("cpu-tp-dryrun")["served_shapes"]
    for bad in ({"modules": ["expert_alone"]}, {"modules": ["moe4_top2"]}, {"shapes": ["llama-9000"]}, {"tp": 2}):
        with pytest.raises(StudyConfigError):
            SS.check_config({**base, **bad})


def test_the_served_check_reads_the_paired_difference_and_refuses_what_cannot_be_served():
    import pandas as pd

    from studylib.serving.served_check import check_served, reading

    t = pd.DataFrame({"task": "mmlu", "item_id": range(6), "correct_here": [1, 1, 0, 1, 0, 1],
                      "correct_reference": [1, 0, 0, 1, 0, 1], "gold_logprob_here": -1.0, "gold_logprob_reference": -1.1})
    r = reading(t)
    assert r["items"] == 6 and r["outcome_differs"] == 1
    assert r["delta_pp"] == pytest.approx(100 / 6) and r["delta_lo_pp"] < 0 < r["delta_hi_pp"]   # one flip: no shift
    with pytest.raises(StudyConfigError, match="teal"):
        check_served(load_profile("cpu-qwen"), "teal_a25", "mmlu")
