import numpy as np
import pytest
import torch

from studylib.shapes import get_shape
from studylib.timing import bench
from studylib.variants import DecoderLayer, MoEFFN, build_ffn, forced_routing


def test_harness_sees_2x_bytes_take_about_2x_at_b1():
    torch.set_num_threads(1)
    x = torch.randn(1, 4096)
    a = torch.randn(4096, 2048)
    b = torch.randn(4096, 4096)
    ta = bench(lambda: x @ a, "cpu", repeats=60, warmup=10).median
    tb = bench(lambda: x @ b, "cpu", repeats=60, warmup=10).median
    torch.set_num_threads(torch.get_num_threads())
    assert 1.5 < tb / ta < 2.8


def test_moe_grouped_mm_matches_reference_loop():
    torch.manual_seed(0)
    m = MoEFFN(64, 256, K=4, k=2)
    x = torch.randn(8, 64)
    y = m(x)
    w, idx = torch.topk(m.router(x).softmax(-1), 2, dim=-1)
    ref = torch.zeros_like(x)
    for t in range(8):
        for j in range(2):
            e = idx[t, j]
            g, u = (x[t] @ m.w_gu[e]).chunk(2)
            ref[t] += w[t, j] * ((torch.nn.functional.silu(g) * u) @ m.w_d[e])
    assert torch.allclose(y, ref, atol=1e-4)


def test_forced_routing_follows_distribution():
    idx = forced_routing("severe", 4000, 4, 1, "cpu")
    frac = torch.bincount(idx.view(-1), minlength=4).float() / 4000
    assert frac[0] == pytest.approx(0.7, abs=0.03)
    assert forced_routing("uniform", 8, 4, 1, "cpu") is None


def test_every_cpu_variant_runs_at_a_real_shape_slice():
    s = get_shape("llama-3-8b-div8")
    for v in ("dense", "unstructured30", "moe4_top1", "moe8_top1", "pruned30_moe4_top1", "int8wo"):
        layer = DecoderLayer(s, build_ffn(v, s, "cpu"), batch=2, context=16)
        assert layer(torch.randn(2, s.hidden)).shape == (2, s.hidden)
    with pytest.raises(ValueError, match="needs a CUDA GPU"):
        build_ffn("semi24", s, "cpu")


@pytest.mark.gpu
def test_gpu_graph_timing_and_semi24():
    s = get_shape("llama-3-8b")
    ffn = build_ffn("semi24", s, "cuda")
    x = torch.randn(8, s.hidden, device="cuda", dtype=torch.bfloat16)
    r = bench(lambda: ffn(x), "cuda", repeats=20, warmup=5)
    assert r.median > 0
