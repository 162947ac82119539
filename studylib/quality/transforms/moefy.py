"""Training-free conversion of a dense SwiGLU FFN into K experts with top-k routing
(MoEfication, Zhang et al. 2022, adapted to SwiGLU), with a capacity factor.

* Experts: the D_ff intermediate neurons are split into K equal groups by *balanced k-means*
  on the neurons' calibration activation patterns (neurons that fire together share an
  expert). Expert e keeps rows of gate/up and columns of down for its neurons, so the sum of
  all K experts equals the dense FFN exactly.
* Router: a linear map x → K scores fitted by ridge regression to each expert's calibration
  importance ‖act_e(x)‖₁ (how much the token needs that expert). Top-k of the scores picks
  the experts; their outputs are summed unweighted (they are slices of one FFN).
* Capacity: with capacity factor c, each expert takes at most ceil(c·T·k/K) of the T tokens
  of a forward pass, in token order; assignments beyond it are dropped (C_drop).
* ``bias`` adds a constant to expert 0's score: the designed-grid knob that makes routing
  imbalanced on purpose, so Eq. 25's balance term can be estimated.

For quality the converted layer computes the dense intermediate and masks unrouted neurons:
numerically the same as running only the routed experts, simpler and fast on CPU. Speed is
measured separately with real grouped kernels (``studylib.timing.modules``).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from studylib.models import decoder_layers


def balanced_kmeans(X: torch.Tensor, K: int, iters: int = 15, seed: int = 0) -> torch.Tensor:
    """Cluster rows of X into K groups of exactly len(X)/K (greedy balanced assignment)."""
    n = X.shape[0]
    if n % K:
        raise ValueError(f"{n} neurons do not split into {K} equal experts")
    cap = n // K
    g = torch.Generator().manual_seed(seed)
    Xn = F.normalize(X.float(), dim=1)
    C = Xn[torch.randperm(n, generator=g)[:K]].clone()
    assign = torch.zeros(n, dtype=torch.long)
    for _ in range(iters):
        sim = Xn @ C.T  # (n, K)
        order = torch.argsort(sim.max(1).values, descending=True)
        counts = [0] * K
        pref = torch.argsort(sim, dim=1, descending=True)
        for i in order.tolist():
            for e in pref[i].tolist():
                if counts[e] < cap:
                    assign[i] = e
                    counts[e] += 1
                    break
        C = torch.stack([F.normalize(Xn[assign == e].mean(0), dim=0) for e in range(K)])
    return assign


class MoEMLP(nn.Module):
    """A Llama MLP split into K experts with a fitted top-k router."""

    def __init__(self, mlp: nn.Module, assign: torch.Tensor, router: torch.Tensor, K: int, top_k: int = 1,
                 capacity_factor: float | None = None, bias: float = 0.0):
        super().__init__()
        self.mlp, self.K, self.top_k = mlp, K, top_k
        self.capacity_factor, self.bias = capacity_factor, bias
        self.register_buffer("assign", assign)
        self.register_buffer("router", router)  # (D+1, K): weights and intercept
        self.score_scale = 1.0  # std of router scores on calibration; `bias` is in these units
        self.reset_stats()

    def reset_stats(self):
        self.counts = torch.zeros(self.K, dtype=torch.float64)
        self.dropped = 0.0
        self.assigned = 0.0

    def route(self, x2: torch.Tensor) -> torch.Tensor:
        """(T, D) tokens → (T, K) boolean mask of experts each token uses after capacity."""
        scores = x2.float() @ self.router[:-1] + self.router[-1]
        scores[:, 0] += self.bias * self.score_scale
        top = torch.topk(scores, self.top_k, dim=1).indices
        sel = torch.zeros_like(scores, dtype=torch.bool).scatter_(1, top, True)
        self.counts += sel.sum(0).double()
        self.assigned += float(sel.sum())
        if self.capacity_factor is not None:
            cap = math.ceil(self.capacity_factor * x2.shape[0] * self.top_k / self.K)
            keep = sel & (torch.cumsum(sel.int(), dim=0) <= cap)
            self.dropped += float(sel.sum() - keep.sum())
            sel = keep
        return sel

    def forward(self, x):
        shape = x.shape
        x2 = x.reshape(-1, shape[-1])
        sel = self.route(x2)                                 # (T, K)
        neuron_on = sel[:, self.assign]                      # (T, D_ff)
        h = self.mlp.act_fn(self.mlp.gate_proj(x2)) * self.mlp.up_proj(x2)
        return self.mlp.down_proj(h * neuron_on.to(h.dtype)).reshape(shape)


@torch.no_grad()
def _calibration_ffn_io(model, calib_ids: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per layer: (FFN inputs x, intermediate activations h) on the calibration tokens."""
    out = []
    hooks = []
    for layer in decoder_layers(model):
        mlp = layer.mlp

        def hook(mod, inp, outp, mlp=mlp):
            x = inp[0].reshape(-1, inp[0].shape[-1])
            h = mlp.act_fn(mlp.gate_proj(x)) * mlp.up_proj(x)
            out.append((x.float(), h.float()))
        hooks.append(mlp.register_forward_hook(hook))
    try:
        model(calib_ids)
    finally:
        for h in hooks:
            h.remove()
    return out


def fit_router(x: torch.Tensor, importance: torch.Tensor, ridge: float = 1e-2) -> torch.Tensor:
    """Ridge regression of (T, K) importance on (T, D) inputs; returns (D+1, K) incl. intercept."""
    X = torch.cat([x, torch.ones(x.shape[0], 1)], dim=1).double()
    A = X.T @ X
    A += ridge * torch.trace(A) / A.shape[0] * torch.eye(A.shape[0], dtype=A.dtype)
    return torch.linalg.solve(A, X.T @ importance.double()).float()


@torch.no_grad()
def moefy_model(model, calib_ids: torch.Tensor, K: int = 4, top_k: int = 1,
                capacity_factor: float | None = None, bias: float = 0.0, seed: int = 0,
                progress: bool = True) -> list[MoEMLP]:
    """Replace every decoder layer's MLP by a K-expert MoEMLP, in place."""
    if not 1 <= top_k <= K:
        raise ValueError(f"top_k={top_k} must be between 1 and K={K}")
    io = _calibration_ffn_io(model, calib_ids)
    moes = []
    for layer, (x, h) in tqdm(list(zip(decoder_layers(model), io)), desc=f"moefy K={K} top{top_k}",
                              disable=not progress):
        assign = balanced_kmeans(h.abs().T, K, seed=seed)   # neurons described by their activations
        imp = torch.stack([h[:, assign == e].abs().sum(1) for e in range(K)], dim=1)
        router = fit_router(x, imp)
        moe = MoEMLP(layer.mlp, assign, router, K, top_k, capacity_factor, bias)
        moe.score_scale = float((x @ router[:-1] + router[-1]).std())
        layer.mlp = moe
        moes.append(moe)
    return moes


def routing_summary(moes: list[MoEMLP]) -> dict:
    """Balance (Eq. 32), max expert fraction and drop rate over everything routed so far."""
    from studylib.paper.equations import eq32_routing_efficiency

    counts = torch.stack([m.counts for m in moes]).sum(0)
    per_layer_max = [float(m.counts.max() / m.counts.sum()) for m in moes if m.counts.sum() > 0]
    per_layer_bal = [eq32_routing_efficiency(m.counts.tolist()) for m in moes if m.counts.sum() > 0]
    assigned = sum(m.assigned for m in moes)
    return {
        "balance": float(sum(per_layer_bal) / len(per_layer_bal)) if per_layer_bal else float("nan"),
        "balance_pooled": eq32_routing_efficiency(counts.tolist()) if counts.sum() > 0 else float("nan"),
        "max_expert_fraction": max(per_layer_max) if per_layer_max else float("nan"),
        "c_drop": sum(m.dropped for m in moes) / assigned if assigned else 0.0,
    }


def reset_routing_stats(moes: list[MoEMLP]) -> None:
    for m in moes:
        m.reset_stats()
