"""GPTQ: on the same grid, its error compensation must beat round-to-nearest on the layer's
outputs, every group must hold at most 2^bits levels per row, and zero stays exact."""
import torch

from studylib.gptq import group_for, grid, quantize_gptq, quantize_rtn


def _layer(seed=0, rows=32, cols=64, n=512):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, cols, generator=g) @ torch.randn(cols, cols, generator=g) * 0.3  # correlated inputs
    W = torch.randn(rows, cols, generator=g)
    return X, W, 2 * X.T @ X / n


def test_gptq_beats_round_to_nearest_on_the_outputs():
    X, W, H = _layer()
    err = lambda Q: float(((X @ W.T - X @ Q.T) ** 2).mean())
    rtn, gptq = quantize_rtn(W, 4, 16), quantize_gptq(W, H, 4, 16)
    assert err(gptq) < 0.8 * err(rtn)


def test_each_group_holds_at_most_2_to_the_bits_levels():
    X, W, H = _layer(1)
    Q = quantize_gptq(W, H, 3, 16)
    for c in range(0, W.shape[1], 16):
        for r in range(W.shape[0]):
            assert torch.unique(Q[r, c:c + 16]).numel() <= 8


def test_zero_is_exact_on_the_grid():
    w = torch.tensor([[-1.0, 0.0, 0.37, 2.0]])
    scale, zero = grid(w, 4)
    q = torch.clamp(torch.round(w / scale) + zero, 0, 15)
    assert float(scale[0, 0] * (q[0, 1] - zero[0, 0])) == 0.0


def test_groups_match_the_library_int4_where_128_does_not_divide_the_row():
    assert group_for(1536, 128) == 128 and group_for(576, 128) == 96 and group_for(4096, 128) == 128
