"""The embedded real model: loads, is a trained LM, and the quality pipeline runs end to end."""
import os

import pytest

from studylib.models import UnknownModelError, resolve_model


def test_unknown_model_fails_fast():
    with pytest.raises(UnknownModelError, match="not a real model"):
        resolve_model("not a real model")


def test_probe_items_are_stable_and_well_formed():
    from studylib.quality.taskdata import arith_items, facts_items, needle_items
    a = arith_items(10, 0)
    assert a == arith_items(10, 0)
    for it in a + facts_items(10, 0):
        assert len(it["choices"]) == 4 and 0 <= it["gold"] < 4 and len(set(it["choices"])) == 4
    n = needle_items([128], 3, 0)
    assert all(f"The secret passphrase is {it['answer']}." in it["context"] for it in n)


@pytest.mark.slow
def test_embedded_model_is_a_real_trained_model():
    import torch

    from studylib.models import load_model
    from studylib.quality.taskdata import essays_ppl_items
    model, tok = load_model("smollm2-135m")
    text = essays_ppl_items(1, 0, 300)[0]["text"]
    ids = tok(text, return_tensors="pt").input_ids[:, :256]
    with torch.no_grad():
        ppl = model(ids, labels=ids).loss.exp().item()
    assert ppl < 60          # a random-weight model of this vocabulary would be ~49,000
    out = model.generate(tok("The capital of France is", return_tensors="pt").input_ids, max_new_tokens=3, do_sample=False)
    assert "Paris" in tok.decode(out[0])


@pytest.mark.slow
def test_a_conversion_cut_off_between_its_saves_is_redone(tmp_path, monkeypatch):
    """A cache directory with the config but no tokenizer (a conversion that died between its two
    saves) is converted again, and a finished conversion leaves no scratch directory beside it."""
    import studylib.models as models

    monkeypatch.setattr(models, "CACHE", tmp_path)
    half = tmp_path / "models" / "smollm2-135m"
    half.mkdir(parents=True)
    (half / "config.json").write_text("{}")
    model, tok = models.load_model("smollm2-135m")
    assert tok("hello world").input_ids and model.config.hidden_size == 576
    assert sorted(p.name for p in half.parent.iterdir()) == ["smollm2-135m"]
    assert (half / "tokenizer.json").exists()


@pytest.mark.slow
def test_real_benchmark_items_from_shared_data():
    from pathlib import Path

    from studylib.quality.taskdata import gsm8k_items, hellaswag_items, mmlu_items, truthfulqa_items
    bench = Path(__file__).resolve().parents[2] / "shared" / "data"
    if not bench.is_dir():
        pytest.skip("../shared/data not present")
    assert len(mmlu_items(bench, None, 0)) > 14000
    assert len(gsm8k_items(bench, None, 0)) == 1319
    h = hellaswag_items(bench, 5, 0)
    assert all(len(i["choices"]) == 4 for i in h)
    assert len(truthfulqa_items(bench, None, 0)) == 817
    # a smaller limit takes the first items of the same fixed-seed sample, so variants run with
    # smaller limits still pair with dense on the common items
    for fn, small, big in ((mmlu_items, 60, 100), (gsm8k_items, 30, 50), (hellaswag_items, 30, 40),
                           (truthfulqa_items, 30, 40)):
        assert fn(bench, small, 0) == fn(bench, big, 0)[:small], fn.__name__


def test_packaged_qwen_model_resolves_or_names_its_setup_command():
    import importlib.util

    from studylib.models import EMBEDDED_MODELS

    spec = EMBEDDED_MODELS["qwen2.5-coder-1.5b"]
    if all(importlib.util.find_spec(p) for p in spec["parts"]):
        src = resolve_model("qwen2.5-coder-1.5b")
        assert src["kind"] == "gguf-parts" and len(src["parts"]) == 22
        assert [p.name for p in src["parts"]] == [f"part{i:02d}.bin" for i in range(1, 23)]
    else:
        with pytest.raises(UnknownModelError, match="setup-qwen"):
            resolve_model("qwen2.5-coder-1.5b")


@pytest.mark.slow
def test_evaluate_pairs_items_and_survives_a_broken_variant(tmp_path):
    """lm-eval end to end on the real model: one row per item with a finite gold log-prob, the
    trained model beats a broken copy on every task, and a copy whose logits are scaled up
    1000x (astronomical perplexity, as a badly pruned variant gives) neither raises nor
    overflows — lm-eval's own aggregates once raised OverflowError here."""
    import copy

    import numpy as np
    import torch

    from studylib.models import load_model
    from studylib.quality.evaluation import evaluate, task_summary
    from studylib.quality.taskdata import build_task_files

    model, tok = load_model("smollm2-135m")
    files = build_task_files(tmp_path, limit=6, seed=0, needle_lengths=[128], essay_words=150,
                             tasks=["probe_facts", "needle", "essays_ppl"], needle_per_length=2)
    broken = copy.deepcopy(model)
    with torch.no_grad():
        broken.lm_head.weight.mul_(1000.0)
    dense = evaluate(model, tok, files)
    bad = evaluate(broken, tok, files)
    assert dense.groupby("task").size().to_dict() == {"probe_facts": 6, "needle": 2, "essays_ppl": 6}
    assert list(bad["item_id"]) == list(dense["item_id"])
    assert np.isfinite(dense["gold_logprob"]).all() and (dense["gold_logprob"] < 0).all()
    lp = lambda d: d.groupby("task")["gold_logprob"].sum() / d.groupby("task")["n_tokens"].sum()
    assert (lp(bad) < lp(dense) - 5).all()
    ppl = task_summary(bad.assign(variant="broken"))["perplexity"]
    assert (ppl > 1e3).all()


def test_a_bf16_model_scored_with_an_fp32_log_softmax_keeps_its_document_sums_unrounded(tmp_path):
    """With a bf16 model lm-eval returns each document's log-likelihood rounded to bf16 (steps of
    8 nats around -1,700: two variants a few nats apart print one perplexity); ``softmax_dtype``
    float32 keeps the sum in fp32 precision."""
    import torch

    from studylib.models import load_model
    from studylib.quality.evaluation import evaluate
    from studylib.quality.taskdata import build_task_files

    model, tok = load_model("smollm2-135m")
    model = model.to(torch.bfloat16)
    files = build_task_files(tmp_path, limit=2, seed=0, needle_lengths=[], essay_words=300, tasks=["essays_ppl"])
    as_bf16 = lambda x: float(torch.tensor(x).to(torch.bfloat16))  # noqa: E731
    rounded = evaluate(model, tok, files)["gold_logprob"]
    fp32 = evaluate(model, tok, files, softmax_dtype="float32")["gold_logprob"]
    assert all(as_bf16(x) == x for x in rounded)
    assert any(as_bf16(x) != x for x in fp32)
    assert (abs(fp32 - rounded) < 0.02 * abs(rounded)).all()
