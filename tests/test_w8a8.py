"""The W8A8 int8 variant: ours computes int8 x int8 products with per-channel and per-token scales,
and its compressed-tensors export holds exactly the codes and scales ours evaluates."""
import json

import pytest
import torch


def _tiny_qwen(seed=0):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    cfg = Qwen2Config(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, vocab_size=256, tie_word_embeddings=True)
    return Qwen2ForCausalLM(cfg).to(torch.bfloat16).eval()


class _Tok:
    def save_pretrained(self, where):
        (where / "tokenizer_config.json").write_text("{}")


def test_a_w8a8_layer_is_the_int8_product_of_its_codes_and_scales():
    from studylib.quality.transforms.w8a8 import W8A8Linear, quantize_rows

    g = torch.Generator().manual_seed(0)
    lin = torch.nn.Linear(96, 40, bias=True)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(40, 96, generator=g))
        lin.bias.copy_(torch.randn(40, generator=g))
    q = W8A8Linear(lin)
    x = torch.randn(5, 96, generator=g)
    x[3] = 0.0                                                     # an all-zero token
    codes = q.int8_weight()
    assert codes.dtype == torch.int8 and int(codes.abs().max()) == 127
    assert torch.equal(codes.abs().amax(1), torch.full((40,), 127, dtype=torch.int8))   # each row's max is ±127
    x_q, s_x = quantize_rows(x)
    assert torch.equal(x_q[3], torch.zeros(96)) and bool(torch.isfinite(s_x).all())
    ref = (x_q.double() @ codes.double().T) * s_x.double() * q.weight_scale.double().T + lin.bias.double()
    assert torch.allclose(q(x).double(), ref, rtol=1e-5, atol=1e-5)
    # int8 of both sides is close to the float layer, and not equal to it (it is quantized)
    err = (q(x) - lin(x)).abs().max() / lin(x).abs().max()
    assert 0 < err < 0.03


def test_the_transform_quantizes_every_decoder_linear_and_keeps_the_head():
    from studylib.quality.transforms.w8a8 import W8A8Linear, w8a8
    from studylib.serving.checkpoint import decoder_linears

    model = _tiny_qwen()
    ids = torch.randint(0, 256, (1, 12))
    with torch.no_grad():
        before = model(ids).logits.float()
        info = w8a8(model, None)
        after = model(ids).logits.float()
    assert info["quantized_linears"] == 2 * 7 == len(decoder_linears(model, W8A8Linear))
    assert type(model.lm_head) is torch.nn.Linear
    assert (after - before).abs().max() < 0.1 * before.abs().max() and not torch.equal(after, before)


def test_the_export_holds_the_codes_and_scales_ours_evaluates(tmp_path):
    from safetensors.torch import load_file

    from studylib.quality.transforms.w8a8 import W8A8Linear, w8a8
    from studylib.serving.checkpoint import decoder_linears
    from studylib.serving.w8a8_checkpoint import SCHEME, write_w8a8

    model = _tiny_qwen()
    w8a8(model, None)
    info = write_w8a8(model, _Tok(), tmp_path)
    sd = load_file(str(tmp_path / "model.safetensors"))
    layers = decoder_linears(model, W8A8Linear)
    assert info["quantized_linears"] == len(layers) == 14
    for name, mod in layers.items():
        assert sd[f"{name}.weight"].dtype == torch.int8 and torch.equal(sd[f"{name}.weight"], mod.int8_weight())
        assert sd[f"{name}.weight_scale"].shape == (mod.out_features, 1)
        assert torch.equal(sd[f"{name}.weight_scale"], mod.weight_scale.float())
        assert (f"{name}.bias" in sd) == (mod.bias is not None)
    assert not any(k.endswith(".qweight") for k in sd) and "lm_head.weight" not in sd          # tied head: written once
    assert torch.equal(sd["model.embed_tokens.weight"], model.model.embed_tokens.weight)
    qc = json.loads((tmp_path / "config.json").read_text())["quantization_config"]
    assert qc["quant_method"] == "compressed-tensors" and qc["format"] == "int-quantized" and qc["ignore"] == ["lm_head"]
    assert qc["config_groups"]["group_0"] == SCHEME
    assert not hasattr(model.config, "quantization_config")                             # the model is left as it was


def test_a_partly_quantized_model_is_refused():
    from studylib.quality.transforms.w8a8 import W8A8Linear
    from studylib.serving.w8a8_checkpoint import w8a8_tensors

    model = _tiny_qwen()
    model.model.layers[0].mlp.up_proj = W8A8Linear(model.model.layers[0].mlp.up_proj)
    with pytest.raises(ValueError, match="not every decoder linear is W8A8"):
        w8a8_tensors(model)


def test_the_declared_variant_is_exportable_for_speed_in_its_own_form():
    from studylib.config import load_profile
    from studylib.quality.transforms import variant
    from studylib.serving.export import check_exportable, served_dir, writer

    spec = variant("int8_w8a8")
    for purpose in ("speed", "quality"):
        check_exportable("int8_w8a8", spec, purpose, load_profile("cpu-qwen"))
    assert served_dir(load_profile("cpu-qwen"), "int8_w8a8", spec, writer(spec, "speed")[0].format).name.endswith("-w8a8")


def test_ours_reads_the_int8_bytes_the_engine_reads(tmp_path):
    """A decode step of ours reads each quantized weight as one int8 byte, as the served checkpoint holds it."""
    from studylib.decoding.cpu_speed import weight_bytes_per_step
    from studylib.quality.transforms.w8a8 import w8a8

    model = _tiny_qwen()
    before = weight_bytes_per_step(model)
    w8a8(model, None)
    n = 2 * (64 * 64 + 2 * 64 * 32 + 64 * 64 + 3 * 64 * 128)   # 2 layers: q, k and v (32 wide: GQA), o, gate, up, down
    scales = 2 * (64 + 32 + 32 + 64 + 128 + 128 + 64) * 4       # one fp32 scale per output channel
    assert before - weight_bytes_per_step(model) == n - scales
