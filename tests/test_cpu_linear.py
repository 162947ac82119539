"""Pre-packed bf16 linear layers (studylib/kernels/cpu_linear.py) and the choice of each variant's
fastest CPU kernel. No timing assertion: which kernel is faster is measured, never tested."""
import pandas as pd
import pytest
import torch
import torch.nn as nn

from studylib.kernels import cpu_linear

needs_packing = pytest.mark.skipif(not cpu_linear.available(),
                                   reason="no oneDNN bf16 weight packing in this build or on this CPU")


@needs_packing
@pytest.mark.parametrize("rows", [1, 5, 64])
@pytest.mark.parametrize("bias", [False, True])
def test_packed_linear_computes_the_same_product(rows, bias):
    torch.manual_seed(0)
    lin = nn.Linear(96, 160, bias=bias).to(torch.bfloat16)
    x = torch.randn(2, rows, 96, dtype=torch.bfloat16)
    ref = lin(x)
    out = cpu_linear.PackedLinear(lin.weight, lin.bias)(x)
    assert out.shape == ref.shape and out.dtype == torch.bfloat16
    torch.testing.assert_close(out, ref, rtol=1.6e-2, atol=1e-2)   # bf16; bit-identical on the study CPU
    assert cpu_linear.PackedLinear(lin.weight, lin.bias).nbytes == 2 * (96 * 160 + (160 if bias else 0))


@needs_packing
def test_pack_linears_replaces_only_plain_bf16_cpu_linears_and_keeps_the_model_output():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True)
    model = LlamaForCausalLM(cfg).to(torch.bfloat16).eval()

    class Quantized(nn.Linear):     # a library's linear subclass keeps its own kernel
        pass

    model.model.layers[1].mlp.down_proj = Quantized(128, 64, bias=False).to(torch.bfloat16)
    ids = torch.randint(0, 128, (2, 9))
    with torch.no_grad():
        ref = model(ids).logits
        n = cpu_linear.pack_linears(model)
        out = model(ids).logits
    assert n == 2 * 7 + 1 - 1                     # q, k, v, o, gate, up, down per layer + head, minus the subclass
    assert type(model.model.layers[1].mlp.down_proj) is Quantized
    assert type(model.model.layers[0].mlp.down_proj) is cpu_linear.PackedLinear
    assert isinstance(model.lm_head, cpu_linear.PackedLinear)
    assert model.model.embed_tokens.weight.dtype == torch.bfloat16          # the tied embedding stays
    torch.testing.assert_close(out, ref, rtol=2e-2, atol=2e-2)
    fp32 = nn.Sequential(nn.Linear(4, 4))                                    # another dtype: left alone
    assert cpu_linear.pack_linears(fp32) == 0 and type(fp32[0]) is nn.Linear


def test_the_fastest_kernel_is_chosen_per_variant_and_batch_and_old_rows_ran_eager():
    from studylib.estimates.cpu_decode import fastest_kernel, speedup_vs_dense, with_kernel

    rows = []
    for v, k, step in (("dense", "eager", 0.20), ("dense", "onednn_packed", 0.10),
                       ("moe", "eager", 0.12), ("moe", "onednn_packed", 0.15)):
        rows += [{"profile": "p", "variant": v, "batch": 1, "kernel": k, "step_s": step * (1 + 0.01 * i)}
                 for i in range(5)]
    df = pd.DataFrame(rows)
    best = fastest_kernel(df)
    assert dict(best.groupby("variant")["kernel"].first()) == {"dense": "onednn_packed", "moe": "eager"}
    assert len(best) == 10
    assert speedup_vs_dense(best, "moe", 1).value == pytest.approx(0.10 / 0.12, rel=1e-6)    # medians, same jitter
    assert (with_kernel(df.drop(columns="kernel"))["kernel"] == "eager").all()
    # the book's two tables read the same estimates
    from studylib.estimates.cpu_decode import best_kernel_table, decode_table

    full = df.assign(decode_tokens_per_s=1 / df["step_s"], bytes_per_step=1e9, achieved_Bps=1e9 / df["step_s"],
                     copy_bandwidth_Bps=2e10)
    t = decode_table(full).set_index(["kernel", "variant"])
    assert len(t) == 4 and t.loc[("eager", "moe"), "speedup vs dense (same kernel)"].startswith("1.67 [")
    assert t.loc[("onednn_packed", "dense"), "achieved / copy BW"] == pytest.approx(0.5, rel=0.02)
    b = best_kernel_table(full).set_index("variant")
    assert b.loc["moe", "kernel"] == "eager" and b.loc["moe", "speedup vs dense"].startswith("0.83 [")
    assert decode_table(full.iloc[:0]).empty and best_kernel_table(full.iloc[:0]).empty


def test_an_unknown_kernel_is_refused_before_any_work():
    from studylib.config import StudyConfigError, load_profile

    with pytest.raises(StudyConfigError, match="unknown kernel"):
        load_profile("embedded", {"cpu_decode": {"variants": ["dense"], "batches": [1], "new_tokens": 4,
                                                 "repeats": 1, "kernels": ["eager", "turbo"]}})


def test_a_cpu_that_refuses_the_bf16_reorder_keeps_the_eager_kernel(monkeypatch):
    """On an AVX2-only CPU oneDNN raises on the bf16 reorder: packing is then reported unavailable
    and not exact, so a quality run stays eager instead of failing after its conversion."""
    def refuse(*a, **k):
        raise RuntimeError("mkldnn_reorder_linear_weight: bf16 path needs the cpu support avx_ne_convert")

    monkeypatch.setattr(torch.ops.mkldnn, "_reorder_linear_weight", refuse, raising=False)
    cpu_linear.available.cache_clear()
    try:
        assert not cpu_linear.available() and not cpu_linear.packing_is_exact()
        with pytest.raises(RuntimeError, match="not available"):
            cpu_linear.pack_linears(nn.Sequential(nn.Linear(4, 4).to(torch.bfloat16)))
    finally:
        monkeypatch.undo()
        cpu_linear.available.cache_clear()
