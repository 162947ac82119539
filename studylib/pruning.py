"""One-shot pruning of a real model: magnitude, Wanda (Sun et al. 2023) and SparseGPT
(Frantar & Alistarh 2023), unstructured at ratio p or semi-structured 2:4.

Why written here rather than taken from llmcompressor: llmcompressor's ``oneshot`` pins its
own torch/transformers versions (it would replace the CPU torch this project must use) and
drives calibration through ``datasets`` pipelines; the two algorithms are ~60 lines each.
The code follows the reference implementations (IST-DASLab/sparsegpt ``fasterprune``,
locuslab/wanda ``prune_wanda``) and the tests check them on small exact cases. Swap in
llmcompressor on a machine where it installs alongside the project's torch.

Calibration is sequential, as in both papers: the calibration batch flows through the model
one decoder layer at a time, each layer is pruned from the statistics of its *inputs as
produced by the already-pruned layers before it*, and its pruned outputs feed the next.
"""
from __future__ import annotations

import torch
from tqdm.auto import tqdm

from .config import validate_ratio
from .models import decoder_layers, linear_modules

METHODS = ("magnitude", "wanda", "sparsegpt")


# ----------------------------------------------------------------------------- masks
def nm_mask_from_scores(scores: torch.Tensor, n: int = 2, m: int = 4) -> torch.Tensor:
    """Keep the n largest scores in every group of m consecutive inputs of each row; True = prune."""
    rows, cols = scores.shape
    if cols % m:
        raise ValueError(f"{cols} input columns are not a multiple of {m}")
    g = scores.reshape(rows, cols // m, m)
    idx = torch.topk(g, m - n, dim=-1, largest=False).indices
    mask = torch.zeros_like(g, dtype=torch.bool).scatter_(-1, idx, True)
    return mask.reshape(rows, cols)


def row_mask_from_scores(scores: torch.Tensor, p: float) -> torch.Tensor:
    """Prune the fraction p of lowest scores in every output row (Wanda's comparison group)."""
    k = int(scores.shape[1] * p)
    mask = torch.zeros_like(scores, dtype=torch.bool)
    if k:
        mask.scatter_(1, torch.topk(scores, k, dim=1, largest=False).indices, True)
    return mask


def is_n_m_sparse(w: torch.Tensor, n: int = 2, m: int = 4) -> bool:
    """True when every group of m consecutive inputs of every row has at most n non-zeros."""
    g = (w.reshape(w.shape[0], -1, m) != 0).sum(-1)
    return bool((g <= n).all())


# ----------------------------------------------------------------------------- per-matrix
def prune_magnitude(W: torch.Tensor, p: float, nm: tuple[int, int] | None = None) -> torch.Tensor:
    """Layer-wise magnitude pruning: zero the p smallest |w| of the matrix (or n:m per group)."""
    s = W.abs().float()
    if nm:
        mask = nm_mask_from_scores(s, *nm)
    else:
        k = int(s.numel() * p)
        mask = torch.zeros_like(s, dtype=torch.bool)
        if k:
            mask.view(-1)[torch.topk(s.view(-1), k, largest=False).indices] = True
    return W.masked_fill(mask, 0)


def prune_wanda(W: torch.Tensor, x_norm_sq: torch.Tensor, p: float, nm: tuple[int, int] | None = None) -> torch.Tensor:
    """Wanda: score |W_ij|·||X_j||_2, pruned per output row (or n:m per group)."""
    s = W.abs().float() * torch.sqrt(x_norm_sq.float()).reshape(1, -1)
    mask = nm_mask_from_scores(s, *nm) if nm else row_mask_from_scores(s, p)
    return W.masked_fill(mask, 0)


def prune_sparsegpt(W: torch.Tensor, H: torch.Tensor, p: float, nm: tuple[int, int] | None = None,
                    blocksize: int = 128, percdamp: float = 0.01) -> torch.Tensor:
    """SparseGPT (fasterprune): OBS-style pruning with error compensation on the
    not-yet-pruned columns, adaptive mask selection per block of ``blocksize`` columns.
    H = 2·XᵀX/n is the Hessian of the layer's reconstruction loss."""
    W = W.clone().float()
    H = H.clone().float()
    cols = W.shape[1]
    dead = torch.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    H += percdamp * torch.mean(torch.diag(H)) * torch.eye(cols, dtype=H.dtype, device=H.device)
    Hinv = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(H)), upper=True)
    prunen, prunem = nm if nm else (0, 0)
    for i1 in range(0, cols, blocksize):
        i2 = min(i1 + blocksize, cols)
        W1 = W[:, i1:i2].clone()
        Q1 = torch.zeros_like(W1)
        Err1 = torch.zeros_like(W1)
        Hinv1 = Hinv[i1:i2, i1:i2]
        if prunen == 0:
            tmp = W1 ** 2 / torch.diag(Hinv1).reshape(1, -1) ** 2
            k = int(tmp.numel() * p)
            mask1 = torch.zeros_like(W1, dtype=torch.bool)
            if k:
                mask1.view(-1)[torch.topk(tmp.view(-1), k, largest=False).indices] = True
        else:
            mask1 = torch.zeros_like(W1, dtype=torch.bool)
        for i in range(i2 - i1):
            w = W1[:, i]
            d = Hinv1[i, i]
            if prunen and i % prunem == 0:
                tmp = W1[:, i:i + prunem] ** 2 / torch.diag(Hinv1)[i:i + prunem].reshape(1, -1) ** 2
                mask1.scatter_(1, i + torch.topk(tmp, prunen, dim=1, largest=False).indices, True)
            q = w.clone()
            q[mask1[:, i]] = 0
            Q1[:, i] = q
            err1 = (w - q) / d
            W1[:, i:] -= err1.unsqueeze(1).matmul(Hinv1[i, i:].unsqueeze(0))
            Err1[:, i] = err1
        W[:, i1:i2] = Q1
        W[:, i2:] -= Err1.matmul(Hinv[i1:i2, i2:])
    return W


# ----------------------------------------------------------------------------- whole model
class _Stats:
    """Running XᵀX (SparseGPT) and Σx² per input column (Wanda) of one Linear's inputs."""

    def __init__(self, cols: int, need_h: bool):
        self.n = 0
        self.sq = torch.zeros(cols, dtype=torch.float64)
        self.H = torch.zeros(cols, cols, dtype=torch.float64) if need_h else None

    def add(self, x: torch.Tensor):
        x = x.reshape(-1, x.shape[-1]).double()
        self.n += x.shape[0]
        self.sq += (x ** 2).sum(0)
        if self.H is not None:
            self.H += x.T @ x


def _capture_first_layer_inputs(model, input_ids: torch.Tensor):
    layers = decoder_layers(model)
    store = {}

    class _Stop(Exception):
        pass

    def pre_hook(mod, args, kwargs):
        store["args"], store["kwargs"] = args, kwargs
        raise _Stop

    h = layers[0].register_forward_pre_hook(pre_hook, with_kwargs=True)
    try:
        model(input_ids)
    except _Stop:
        pass
    finally:
        h.remove()
    return store["args"], store["kwargs"]


def _first(out):
    return out[0] if isinstance(out, tuple) else out


@torch.no_grad()
def prune_model(model, calib_ids: torch.Tensor, method: str, p: float = 0.0,
                nm: tuple[int, int] | None = None, targets: str = "all", progress: bool = True) -> dict:
    """Prune every Linear inside every decoder layer in place; returns achieved sparsity.

    ``calib_ids``: (n_seq, seq_len) token ids of real calibration text.
    ``targets``: 'all' linear layers (the papers' setting) or 'ffn' (gate/up/down only).
    """
    if method not in METHODS:
        raise ValueError(f"unknown pruning method {method!r}; choose from {METHODS}")
    if nm is None:
        validate_ratio(p)
    args, kwargs = _capture_first_layer_inputs(model, calib_ids)
    hidden = args[0] if args else kwargs.pop("hidden_states")
    args = args[1:] if args else ()
    zeros = total = 0
    layers = decoder_layers(model)
    for layer in tqdm(layers, desc=f"prune {method} {('%d:%d' % nm) if nm else p}", disable=not progress):
        lins = {n: m for n, m in linear_modules(layer).items() if targets == "all" or "mlp" in n}
        stats = {n: _Stats(m.in_features, method == "sparsegpt") for n, m in lins.items()}
        hooks = [m.register_forward_hook(lambda mod, inp, out, n=n: stats[n].add(inp[0]))
                 for n, m in lins.items()]
        if method != "magnitude":
            layer(hidden, *args, **kwargs)
        for h in hooks:
            h.remove()
        for n, m in lins.items():
            W = m.weight.data
            if method == "magnitude":
                new = prune_magnitude(W, p, nm)
            elif method == "wanda":
                new = prune_wanda(W, stats[n].sq / max(stats[n].n, 1), p, nm)
            else:
                H = 2 * stats[n].H / max(stats[n].n, 1)
                new = prune_sparsegpt(W, H.float(), p, nm)
            m.weight.data = new.to(W.dtype)
            zeros += int((m.weight == 0).sum())
            total += m.weight.numel()
        hidden = _first(layer(hidden, *args, **kwargs))
    return {"weight_sparsity": zeros / max(total, 1)}
