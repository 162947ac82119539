"""SmoothQuant before W8A8: the smoothing leaves the model's function as it was, moves an activation
outlier into the weights (so per-token int8 activations lose less), and the variant exports as W8A8."""
import copy

import pytest
import torch


def _tiny_qwen(seed=0):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    cfg = Qwen2Config(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, vocab_size=256, tie_word_embeddings=True)
    return Qwen2ForCausalLM(cfg).float().eval()


def _with_outliers(model):
    """The same function with outlier activation channels: a norm weight channel x40 and its columns /40
    (as trained LLMs have them), and one up_proj row x40 with its down_proj column /40."""
    with torch.no_grad():
        for layer in model.model.layers:
            layer.post_attention_layernorm.weight[7] *= 40
            layer.input_layernorm.weight[3] *= 40
            for lin in (layer.mlp.gate_proj, layer.mlp.up_proj):
                lin.weight[:, 7] /= 40
            for lin in (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj):
                lin.weight[:, 3] /= 40
            layer.mlp.up_proj.weight[11] *= 40
            layer.mlp.down_proj.weight[:, 11] /= 40
    return model


def test_smoothing_keeps_the_function():
    from studylib.quality.transforms.smooth import smooth_model

    model = _with_outliers(_tiny_qwen())
    ids = torch.randint(0, 256, (4, 24), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        before = model(ids).logits
        smoothed = copy.deepcopy(model)
        info = smooth_model(smoothed, ids, alpha=0.5, progress=False)
        after = smoothed(ids).logits
    assert info == {"smoothquant_alpha": 0.5, "smoothed_linears": 2 * 6}
    assert torch.allclose(after, before, rtol=1e-4, atol=1e-4)
    # and it did change the weights: the outlier channel's norm weight came down
    assert smoothed.model.layers[0].post_attention_layernorm.weight[7] < model.model.layers[0].post_attention_layernorm.weight[7] / 4


def test_smoothing_lowers_the_w8a8_error_on_outlier_activations():
    from studylib.quality.transforms.smooth import smooth_model
    from studylib.quality.transforms.w8a8 import w8a8

    model = _with_outliers(_tiny_qwen())
    calib = torch.randint(0, 256, (4, 32), generator=torch.Generator().manual_seed(2))
    ids = torch.randint(0, 256, (4, 32), generator=torch.Generator().manual_seed(3))   # held out
    with torch.no_grad():
        ref = model(ids).logits
        plain, smoothed = copy.deepcopy(model), copy.deepcopy(model)
        w8a8(plain, None)
        smooth_model(smoothed, calib, alpha=0.5, progress=False)
        w8a8(smoothed, None)
        e_plain = (plain(ids).logits - ref).pow(2).mean()
        e_smooth = (smoothed(ids).logits - ref).pow(2).mean()
    assert e_smooth < 0.5 * e_plain


def test_scales_follow_the_formula_and_leave_dead_channels_alone():
    from studylib.quality.transforms.smooth import smoothing_scales

    act = torch.tensor([4.0, 0.0, 1.0])
    w1 = torch.tensor([[1.0, 2.0, 0.0], [0.5, 1.0, 0.0]])
    w2 = torch.tensor([[0.25, 3.0, 0.0]])
    s = smoothing_scales(act, [w1, w2], alpha=0.5)
    assert torch.allclose(s, torch.tensor([4.0 ** 0.5 / 1.0 ** 0.5, 1.0, 1.0]))
    with pytest.raises(ValueError, match="alpha"):
        from studylib.quality.transforms.smooth import smooth_model
        smooth_model(_tiny_qwen(), torch.zeros(1, 4, dtype=torch.long), alpha=1.5, progress=False)


def test_the_smoothed_variant_is_declared_and_exports_as_w8a8():
    from studylib.config import load_profile
    from studylib.quality.transforms import variant
    from studylib.serving.export import check_exportable, writer

    spec = variant("int8_w8a8_smooth")
    assert [t for t, _ in spec["steps"]] == ["smoothquant", "w8a8"]
    for purpose in ("speed", "quality"):
        check_exportable("int8_w8a8_smooth", spec, purpose, load_profile("cpu-qwen"))
        assert writer(spec, purpose)[0].format == "w8a8"
