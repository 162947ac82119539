"""Shared machinery of every FFN conversion: a masked SwiGLU FFN, layer-by-layer (sequential)
construction from calibration activations, and routing statistics counted on real tokens.

* ``MaskedFFN`` runs the dense FFN and zeroes, per token, the intermediate neurons its selector
  leaves out: numerically what running only the selected experts/neurons computes (speed is
  measured elsewhere, with kernels that read only the selected weights). With every neuron
  selected it *is* the dense FFN: the conversions' exactness tests rest on that.
* ``convert_sequentially`` builds layer l's selector from the FFN inputs produced by layers
  0..l-1 *already converted* (as SparseGPT prunes), so a router is fitted on the inputs it will
  see, not on the dense model's.
* Routing statistics (expert loads, active fraction) are counted only while ``recording`` and
  only by ``routing_pass``, which feeds held-out token windows one sequence at a time: no padding
  token is ever counted and no statistic depends on an item's position in a batch.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from studylib.models import decoder_layers
from studylib.quality.transforms.prune import sequential_layers


def ffn_hidden(mlp, x: torch.Tensor) -> torch.Tensor:
    """SwiGLU intermediate activations act(gate·x) * (up·x)."""
    return mlp.act_fn(mlp.gate_proj(x)) * mlp.up_proj(x)


class MaskedFFN(nn.Module):
    """A SwiGLU FFN whose intermediate neurons are chosen per token by ``selector``.

    ``selector(x2, h) -> (mask (T, D_ff) bool, expert_onehot (T, E) bool or None)``.
    ``input_threshold`` (TEAL) zeroes small FFN inputs before gate/up as well.
    ``capacity_factor`` c: within each block of ``CAPACITY_WINDOW`` consecutive positions of a
    sequence, an expert takes at most ceil(c·W·k/E) tokens, in order; later ones lose that expert
    (dropped; shared neurons stay). Blocks are per sequence and start at position 0, so a real
    token's fate never depends on right-padding or on its row in the batch.
    """

    CAPACITY_WINDOW = 64

    def __init__(self, mlp: nn.Module, selector, n_experts: int = 0, input_threshold: float | None = None,
                 capacity_factor: float | None = None):
        super().__init__()
        self.mlp, self.selector, self.n_experts = mlp, selector, n_experts
        self.input_threshold = input_threshold
        self.capacity_factor = capacity_factor
        self.recording = False
        self.reset_stats()

    def reset_stats(self):
        self.tokens = 0
        self.active = 0.0        # Σ over tokens of the fraction of intermediate neurons kept
        self.bytes_read = 0.0    # Σ over tokens of the fraction of FFN weight bytes read
        self.counts = torch.zeros(max(self.n_experts, 1), dtype=torch.float64)
        self.assigned = 0.0
        self.dropped = 0.0
        self.agree = 0.0         # tokens whose chosen experts include the mass oracle's expert

    def _apply_capacity(self, onehot: torch.Tensor, shape) -> torch.Tensor:
        B, L = (shape[0], shape[1]) if len(shape) == 3 else (1, shape[0])
        W = self.CAPACITY_WINDOW
        k = int(onehot[0].sum()) if onehot.shape[0] else 1
        cap = math.ceil(self.capacity_factor * W * k / self.n_experts)
        oh = onehot.reshape(B, L, -1)
        pad = (-L) % W
        blocks = F.pad(oh.int(), (0, 0, 0, pad)).reshape(B, -1, W, oh.shape[-1])
        keep = (blocks.cumsum(2) <= cap).reshape(B, L + pad, -1)[:, :L].reshape(onehot.shape) & onehot
        return keep

    def forward(self, x):
        shape = x.shape
        x2 = x.reshape(-1, shape[-1])
        in_frac = 1.0
        if self.input_threshold is not None:
            keep_in = x2.abs() > self.input_threshold
            x2 = x2 * keep_in.to(x2.dtype)
            in_frac = keep_in.float().mean(1)
        h = ffn_hidden(self.mlp, x2)
        mask, onehot = self.selector(x2, h)  # expert loads count the router's choices, before capacity
        if self.capacity_factor is not None:
            kept = self._apply_capacity(onehot, shape)
            if self.recording:
                self.assigned += float(onehot.sum())
                self.dropped += float(onehot.sum() - kept.sum())
            routed = self.selector.assign >= 0
            mask = kept[:, self.selector.assign.clamp(min=0)] & routed | ~routed
        if self.recording:
            out_frac = mask.float().mean(1)
            self.active += float(out_frac.sum())
            # weight bytes the method must read: a selector that needs the dense activations reads
            # all of gate/up (TEAL: only the columns of kept inputs), then down's kept columns;
            # an expert router reads its experts' rows of gate/up and columns of down
            gu = in_frac if self.input_threshold is not None else \
                (1.0 if getattr(self.selector, "needs_dense_h", False) else out_frac)
            self.bytes_read += float(((2 * gu + out_frac) / 3).sum())
            self.tokens += x2.shape[0]
            if onehot is not None:
                self.counts += onehot.sum(0).double()
                if getattr(self.selector, "kind", None) in ("linear", "representative"):
                    # does the router pick the expert with the largest true activation mass?
                    best = expert_mass(h.float(), self.selector.assign, self.n_experts).argmax(1)
                    self.agree += float(onehot.gather(1, best[:, None]).sum())
        return self.mlp.down_proj(h * mask.to(h.dtype)).reshape(shape)


@torch.no_grad()
def convert_sequentially(model, calib_ids: torch.Tensor, build, desc: str = "convert", progress: bool = True):
    """Replace each decoder layer's FFN by ``build(mlp, x, h, layer_index)`` in order, where
    x (T, D) and h (T, D_ff) are that FFN's inputs and dense activations on the calibration
    tokens *as produced by the already-converted earlier layers*. Returns the new modules."""
    new = []
    for i, layer, run in sequential_layers(model, calib_ids, desc, progress):  # the converted layer feeds the next
        seen = {}
        hook = layer.mlp.register_forward_hook(lambda m, inp, out: seen.setdefault("x", inp[0]))
        run()
        hook.remove()
        x = seen["x"].reshape(-1, seen["x"].shape[-1])
        h = ffn_hidden(layer.mlp, x)
        mod = build(layer.mlp, x.float(), h.float(), i)
        layer.mlp = mod
        new.append(mod)
    return new


def masked_ffns(model) -> list[MaskedFFN]:
    return [layer.mlp for layer in decoder_layers(model) if isinstance(layer.mlp, MaskedFFN)]


@torch.no_grad()
def routing_pass(model, windows: torch.Tensor) -> dict:
    """Routing statistics over held-out windows fed one sequence at a time (no padding)."""
    mods = masked_ffns(model)
    for m in mods:
        m.reset_stats()
        m.recording = True
    try:
        for w in windows:
            model(w.unsqueeze(0))
    finally:
        for m in mods:
            m.recording = False
    return routing_summary(mods)


def routing_summary(mods: list[MaskedFFN]) -> dict:
    """Balance (Eq. 32, mean over layers), the largest share of tokens any expert of any layer
    receives, and the active fraction of FFN weights per token, from what was recorded."""
    from studylib.paper.equations import eq32_routing_efficiency

    routed = [m for m in mods if m.n_experts > 1 and m.counts.sum() > 0]
    bal = [eq32_routing_efficiency(m.counts.tolist()) for m in routed]
    mx = [float(m.counts.max() / m.counts.sum()) for m in routed]
    toks = sum(m.tokens for m in mods)
    assigned = sum(m.assigned for m in mods)
    return {"balance": float(sum(bal) / len(bal)) if bal else 1.0,
            "max_expert_fraction": max(mx) if mx else float("nan"),
            "c_drop": sum(m.dropped for m in mods) / assigned if assigned else 0.0,
            "active_fraction": sum(m.active for m in mods) / toks if toks else float("nan"),
            "bytes_fraction": sum(m.bytes_read for m in mods) / toks if toks else float("nan"),
            "router_oracle_agreement": (sum(m.agree for m in routed) / sum(m.tokens for m in routed)
                                        if routed and any(m.agree for m in routed) else float("nan")),
            "agreement_per_layer": ";".join(f"{m.agree / m.tokens:.3f}" for m in routed if m.tokens) if routed else "",
            "routing_tokens": toks // max(len(mods), 1)}


def balanced_kmeans(X: torch.Tensor, K: int, iters: int = 15, seed: int = 0) -> torch.Tensor:
    """Cluster rows of X into K groups of exactly len(X)/K (greedy balanced assignment on cosine
    similarity). Written here: scikit-learn's k-means has no equal-size constraint, and
    MoEfication's experts must be equal slices of the FFN."""
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


def fit_router(x: torch.Tensor, target: torch.Tensor, ridge: float = 1e-2) -> torch.Tensor:
    """Ridge regression of (T, K) targets on (T, D) inputs; returns (D+1, K) incl. intercept. A
    closed-form solve in float64 (the ridge is scaled by the mean diagonal, so one value fits
    every layer's input scale)."""
    X = torch.cat([x, torch.ones(x.shape[0], 1, dtype=x.dtype, device=x.device)], dim=1).double()
    A = X.T @ X
    A += ridge * torch.trace(A) / A.shape[0] * torch.eye(A.shape[0], dtype=A.dtype, device=A.device)
    return torch.linalg.solve(A, X.T @ target.double()).float()


def split_neurons(h: torch.Tensor, K: int, seed: int = 0) -> torch.Tensor:
    """Assign the D_ff neurons to K equal groups by balanced k-means on their calibration
    activation patterns |h| (MoEfication)."""
    return balanced_kmeans(h.abs().T, K, seed=seed)


def top_fraction_markers(h: torch.Tensor, frac: float) -> torch.Tensor:
    """(T, D_ff) bool: neuron among the token's largest ``frac`` of |h|."""
    k = max(1, int(round(h.shape[1] * frac)))
    idx = torch.topk(h.abs(), k, dim=1).indices
    return torch.zeros_like(h, dtype=torch.bool).scatter_(1, idx, True)


def expert_mass(h: torch.Tensor, assign: torch.Tensor, K: int) -> torch.Tensor:
    """(T, K): each routed expert's activation mass ‖h_e‖₁ per token (shared neurons, -1, excluded)."""
    return torch.stack([h[:, assign == e].abs().sum(1) for e in range(K)], dim=1)


class ExpertSelector(nn.Module):
    """Top-k of K routed experts (+ always-on shared neurons, assign = -1).

    Scores, by ``kind``: ``linear`` (x·W + b, a fitted router), ``representative`` (|h| of one
    representative neuron per expert, CMoE), ``oracle`` (each expert's true mass ‖h_e‖₁),
    ``constant`` (one fixed expert for every token). ``bias`` is added before the top-k.
    """

    def __init__(self, assign: torch.Tensor, K: int, top_k: int, kind: str, router: torch.Tensor | None = None,
                 reps: torch.Tensor | None = None, bias: torch.Tensor | None = None):
        super().__init__()
        self.K, self.top_k, self.kind = K, top_k, kind
        self.register_buffer("assign", assign.long())
        self.register_buffer("router", router if router is not None else torch.zeros(1, K))
        self.register_buffer("reps", reps.long() if reps is not None else torch.zeros(K, dtype=torch.long))
        self.register_buffer("bias", bias if bias is not None else torch.zeros(K))

    @property
    def needs_dense_h(self) -> bool:
        return self.kind == "oracle"

    def scores(self, x2: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        if self.kind == "linear":
            s = x2.float() @ self.router[:-1].float() + self.router[-1].float()
        elif self.kind == "representative":
            s = h[:, self.reps].abs().float()
        elif self.kind == "oracle":
            s = expert_mass(h.float(), self.assign, self.K)
        elif self.kind == "constant":
            s = torch.zeros(h.shape[0], self.K, device=h.device)
        else:
            raise ValueError(f"unknown selector kind {self.kind!r}")
        return s + self.bias.float()

    def forward(self, x2, h):
        top = torch.topk(self.scores(x2, h), self.top_k, dim=1).indices
        onehot = torch.zeros(h.shape[0], self.K, dtype=torch.bool, device=h.device).scatter_(1, top, True)
        routed = self.assign >= 0
        mask = onehot[:, self.assign.clamp(min=0)] & routed | ~routed
        return mask, onehot


class NeuronSelector(nn.Module):
    """Per-token neuron choice with no experts: ``threshold`` keeps |h| > t (TEAL);
    ``top_fraction`` keeps the token's largest fraction of |h| (the neuron oracle)."""

    needs_dense_h = True  # both rules read every neuron's activation before choosing

    def __init__(self, threshold: float | None = None, top_fraction: float | None = None):
        super().__init__()
        self.threshold, self.top_fraction = threshold, top_fraction

    def forward(self, x2, h):
        if self.threshold is not None:
            return h.abs() > self.threshold, None
        return top_fraction_markers(h, self.top_fraction), None
