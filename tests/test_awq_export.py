"""The AWQ-format export of GPTQ int4 (``serving.awq``): codes read back from fake-quantized bf16
weights, packed the way vLLM's loader unpacks them, equal to our weights up to one bf16 rounding."""
import pytest
import torch

from studylib.quality.transforms.gptq import quantize_gptq, quantize_rtn
from studylib.serving import awq

#: vLLM 0.32's reading of AWQ's words (model_executor/layers/quantization/auto_awq.py), copied here so a
#: change in our packing that vLLM would read differently fails this test
VLLM_REVERSE_ORDER = [0, 4, 1, 5, 2, 6, 3, 7]


def _vllm_unpack(qw: torch.Tensor) -> torch.Tensor:
    shifts = torch.arange(0, 32, 4, dtype=torch.int32)
    u = (qw.unsqueeze(-1) >> shifts) & 0xF
    return u[:, :, VLLM_REVERSE_ORDER].reshape(qw.shape[0], -1)


def test_packing_reads_back_as_vllm_unpacks_it():
    g = torch.Generator().manual_seed(0)
    codes = torch.randint(0, 16, (64, 48), generator=g, dtype=torch.int32)
    words = awq.pack(codes)
    assert words.dtype == torch.int32 and words.shape == (64, 6)
    assert torch.equal(awq.unpack(words), codes)
    assert torch.equal(_vllm_unpack(words), codes)


@pytest.mark.parametrize("make", ["grid", "rtn", "gptq"])
def test_codes_are_recovered_from_bf16_fake_quantized_weights(make):
    g = torch.Generator().manual_seed(1)
    out, cols, gs = 96, 256, 128
    if make == "grid":        # a known grid: every code and zero recovered up to a common shift
        q = torch.randint(0, 16, (out, cols), generator=g).float()
        z = torch.randint(0, 16, (out, cols // gs), generator=g).float()
        s = torch.rand(out, cols // gs, generator=g) * 0.02 + 1e-3
        w = ((q - z.repeat_interleave(gs, 1)) * s.repeat_interleave(gs, 1))
    else:
        w0 = torch.randn(out, cols, generator=g) * 0.05
        if make == "rtn":
            w = quantize_rtn(w0, 4, gs)
        else:
            x = torch.randn(512, cols, generator=g)
            w = quantize_gptq(w0, 2 * x.T @ x / 512, 4, gs)
    wb = w.to(torch.bfloat16)
    t = awq.quantize_linear(wb, 4, gs, torch.bfloat16)
    back = awq.dequantize(t["qweight"], t["qzeros"], t["scales"], gs)
    amax = wb.float().abs().reshape(out, -1, gs).amax(-1).repeat_interleave(gs, 1)
    assert ((back - wb.float()).abs() <= 2 ** -7 * amax + 1e-9).all()      # one bf16 rounding of the scale
    assert (back.to(torch.bfloat16) == wb).float().mean() > 0.75            # most weights identical in bf16 (the
    # rest differ by the product's second rounding: vLLM holds the scales in the model's dtype)
    codes = awq.unpack(t["qweight"])
    assert codes.min() >= 0 and codes.max() <= 15


def test_a_group_with_few_distant_codes_is_recovered():
    """Groups seen in GPTQ int4 of Qwen2.5-1.5B (2026-12-04): after the error updates a row's group holds
    only a few codes far apart ({-4, 0, 11} x s, {-11, -3, 0, 2, 4} x s), so its smallest gap is no step;
    the recovered grid must still give every value back."""
    s = torch.tensor([0.046143, 0.037476, 0.0123])
    n = torch.zeros(3, 128)
    n[0, :3] = torch.tensor([-4.0, 0.0, 11.0])
    n[1, :5] = torch.tensor([-11.0, -3.0, 0.0, 2.0, 4.0])
    n[2] = torch.randint(-7, 9, (128,), generator=torch.Generator().manual_seed(3)).float()   # an ordinary group
    wb = (n * s[:, None]).to(torch.bfloat16)
    codes, zeros, scales = awq.grid_codes(wb, 4, 128)
    back = (codes.float() - zeros.float()) * scales
    assert ((back - wb.float()).abs() <= 2 ** -8 * wb.float().abs().amax(-1, keepdim=True)).all()
    assert codes.min() >= 0 and codes.max() <= 15


def test_weights_off_a_4_bit_grid_are_refused():
    w = torch.randn(32, 128, generator=torch.Generator().manual_seed(2))
    with pytest.raises(ValueError, match="not on a 4-bit grid"):
        awq.grid_codes(w.to(torch.bfloat16), 4, 128)


def test_an_awq_export_loads_as_the_same_weights(tmp_path):
    """A tiny Qwen2 with GPTQ-grid weights written as AWQ: the checkpoint's tensors dequantize to our
    weights, its config is what vLLM's AutoAWQConfig reads, and the bytes count the int4 form."""
    import json

    from safetensors.torch import load_file
    from transformers import Qwen2Config, Qwen2ForCausalLM

    class Tok:          # the tokenizer is only written beside the weights
        def save_pretrained(self, d):
            (d / "tokenizer_config.json").write_text("{}")

    cfg = Qwen2Config(hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, vocab_size=49152, tie_word_embeddings=True)
    torch.manual_seed(0)
    m = Qwen2ForCausalLM(cfg).to(torch.bfloat16)
    for layer in m.model.layers:
        for mod in layer.modules():
            if isinstance(mod, torch.nn.Linear):
                mod.weight.data = quantize_rtn(mod.weight.data.float(), 4, 128).to(torch.bfloat16)
    info = awq.write_awq(m, Tok(), tmp_path, 4, 128)
    assert info["quantized_linears"] == 14 and info["int4_bytes"] < info["replaced_bf16_bytes"] / 3
    qc = json.loads((tmp_path / "config.json").read_text())["quantization_config"]
    assert qc == {"quant_method": "awq", "bits": 4, "group_size": 128, "zero_point": True, "version": "gemm"}
    sd = load_file(str(tmp_path / "model.safetensors"))
    p = "model.layers.1.mlp.down_proj"
    back = awq.dequantize(sd[f"{p}.qweight"], sd[f"{p}.qzeros"], sd[f"{p}.scales"], 128)
    ref = m.model.layers[1].mlp.down_proj.weight.float()
    assert (back - ref).abs().max() <= 2 ** -7 * ref.abs().max()
    assert "model.layers.0.self_attn.q_proj.bias" in sd and "lm_head.weight" not in sd
    # the engine is asked for the weight-only kernel (on an AMX CPU vLLM would run W4A8), and says so
    from studylib.serving.engine import checkpoint_env

    assert checkpoint_env(tmp_path) == {"VLLM_CPU_INT4_W4A8": "0"} == info["engine_env"]
