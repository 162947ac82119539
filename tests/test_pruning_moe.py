import copy
import pytest
import torch
import torch.nn as nn

from studylib.quality.transforms.ffn import balanced_kmeans, fit_router
from studylib.quality.transforms.prune import (
    is_n_m_sparse,
    nm_mask_from_scores,
    prune_magnitude,
    prune_sparsegpt,
    prune_wanda,
)


def test_2_of_4_masks_are_really_2_of_4():
    torch.manual_seed(0)
    W = torch.randn(16, 64)
    X = torch.randn(256, 64)
    H = 2 * X.T @ X / 256
    for new in (prune_magnitude(W, 0, (2, 4)), prune_wanda(W, (X ** 2).mean(0), 0, (2, 4)),
                prune_sparsegpt(W, H, 0, (2, 4))):
        assert is_n_m_sparse(new, 2, 4)
        assert (new == 0).float().mean() == pytest.approx(0.5)
    assert not is_n_m_sparse(W, 2, 4)


def test_unstructured_ratio_is_met():
    torch.manual_seed(0)
    W = torch.randn(32, 128)
    X = torch.randn(512, 128)
    assert (prune_magnitude(W, 0.3) == 0).float().mean() == pytest.approx(0.3, abs=0.01)
    assert (prune_wanda(W, (X ** 2).mean(0), 0.3) == 0).float().mean() == pytest.approx(0.3, abs=0.01)
    assert (prune_sparsegpt(W, 2 * X.T @ X / 512, 0.3) == 0).float().mean() == pytest.approx(0.3, abs=0.02)


def test_sparsegpt_p0_is_identity_and_beats_magnitude_on_correlated_inputs():
    torch.manual_seed(0)
    W = torch.randn(8, 32)
    base = torch.randn(1024, 4)
    X = base @ torch.randn(4, 32) + 0.05 * torch.randn(1024, 32)   # strongly correlated inputs
    H = 2 * X.T @ X / 1024
    assert torch.allclose(prune_sparsegpt(W, H, 0.0), W, atol=1e-4)
    err = lambda Wp: ((X @ W.T - X @ Wp.T) ** 2).mean().item()
    assert err(prune_sparsegpt(W, H, 0.5)) < 0.5 * err(prune_magnitude(W, 0.5))


def test_sparsegpt_matches_exact_obs_solution_when_one_weight_goes():
    """Small exact case: removing one weight, SparseGPT's compensation must equal the
    least-squares optimum of the layer output over the remaining weights (OBS)."""
    torch.manual_seed(1)
    n = 8
    X = torch.randn(4096, n, dtype=torch.float64) @ torch.randn(n, n, dtype=torch.float64)
    W = torch.tensor([[0.001, 1.0, -2.0, 0.5, 1.5, -1.0, 0.7, 2.0]], dtype=torch.float64)
    H = 2 * X.T @ X / len(X)
    got = prune_sparsegpt(W, H, 1 / n, percdamp=1e-9).double()
    assert got[0, 0] == 0 and (got[0, 1:] != 0).all()
    exact = torch.linalg.lstsq(X[:, 1:], X @ W[0]).solution
    assert torch.allclose(got[0, 1:], exact, atol=1e-4)
    assert not torch.allclose(W[0, 1:], exact, atol=1e-4)  # compensation really moved the weights


def test_wanda_uses_activation_norms():
    W = torch.ones(1, 4)
    norms = torch.tensor([100.0, 1.0, 100.0, 1.0])
    out = prune_wanda(W, norms, 0.5)
    assert out.tolist() == [[1.0, 0.0, 1.0, 0.0]]


def test_nm_mask_keeps_largest():
    s = torch.tensor([[1.0, 4.0, 3.0, 2.0]])
    assert nm_mask_from_scores(s).tolist() == [[True, False, False, True]]


def test_balanced_kmeans_is_balanced_and_finds_clusters():
    torch.manual_seed(0)
    centers = torch.randn(4, 16) * 5
    X = torch.cat([c + 0.1 * torch.randn(10, 16) for c in centers])
    a = balanced_kmeans(X, 4)
    assert torch.bincount(a, minlength=4).tolist() == [10] * 4
    for i in range(4):
        assert a[i * 10:(i + 1) * 10].unique().numel() == 1


class _MLP(nn.Module):
    def __init__(self, D=16, F=32):
        super().__init__()
        self.gate_proj, self.up_proj = nn.Linear(D, F, bias=False), nn.Linear(D, F, bias=False)
        self.down_proj = nn.Linear(F, D, bias=False)
        self.act_fn = nn.SiLU()

    def forward(self, x):
        return self.down_proj(self.act_fn(self.gate_proj(x)) * self.up_proj(x))


class _Model(nn.Module):
    """Two residual SwiGLU blocks under the attribute path ``decoder_layers`` knows (model.layers)."""

    def __init__(self):
        super().__init__()
        self.model = nn.Module()
        self.model.layers = nn.ModuleList([nn.Module() for _ in range(2)])
        for layer in self.model.layers:
            layer.mlp = _MLP()

    def forward(self, x):
        for layer in self.model.layers:
            x = x + layer.mlp(x)
        return x


def test_moefy_with_all_experts_equals_dense_and_top1_differs():
    from studylib.quality.transforms.ffn import routing_pass
    from studylib.quality.transforms.moefy import moefy

    torch.manual_seed(0)
    model, x, calib = _Model(), torch.randn(2, 5, 16), torch.randn(1, 64, 16)
    dense = model(x)
    full = copy.deepcopy(model)
    moefy(full, calib, experts=4, top_k=4)
    assert torch.allclose(full(x), dense, atol=1e-5)
    moefy(model, calib, experts=4, top_k=1)
    assert not torch.allclose(model(x), dense, atol=1e-3)
    stats = routing_pass(model, x)
    assert stats["active_fraction"] == pytest.approx(0.25) and stats["c_drop"] == 0.0


def test_moefy_bias_and_capacity_drop_tokens():
    from studylib.quality.transforms.ffn import routing_pass
    from studylib.quality.transforms.moefy import moefy

    torch.manual_seed(0)
    model, calib = _Model(), torch.randn(1, 64, 16)
    moefy(model, calib, experts=4, top_k=1, bias=100.0, capacity_factor=1.0)  # expert 0 takes every token
    stats = routing_pass(model, torch.randn(1, 64, 16))
    # one window of 64 positions: expert 0 keeps ceil(1.0 * 64 * 1 / 4) = 16 of its 64 tokens
    assert stats["max_expert_fraction"] == 1.0 and stats["c_drop"] == pytest.approx(48 / 64)


def test_router_regression_recovers_linear_map():
    torch.manual_seed(0)
    x = torch.randn(500, 8)
    Wt = torch.randn(8, 3)
    r = fit_router(x, x @ Wt + 0.5, ridge=1e-6)
    assert torch.allclose(r[:-1], Wt, atol=1e-3) and torch.allclose(r[-1], torch.full((3,), 0.5), atol=1e-3)
