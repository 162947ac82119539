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

from studylib.config import validate_ratio
from studylib.models import decoder_layers, linear_modules
from studylib.quality import PRUNING_METHODS as METHODS  # noqa: E402


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


def obs_setup(W: torch.Tensor, H: torch.Tensor, percdamp: float = 0.01) -> tuple[torch.Tensor, torch.Tensor]:
    """The start SparseGPT and GPTQ share: fp32 copies, inputs never seen zeroed, H damped by
    ``percdamp`` of its mean diagonal, and the upper Cholesky factor of H⁻¹ (the OBS update rows)."""
    W = W.clone().float()
    H = H.clone().float()
    cols = W.shape[1]
    dead = torch.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    H += percdamp * torch.mean(torch.diag(H)) * torch.eye(cols, dtype=H.dtype, device=H.device)
    return W, torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(H)), upper=True)


def prune_sparsegpt(W: torch.Tensor, H: torch.Tensor, p: float, nm: tuple[int, int] | None = None,
                    blocksize: int = 128, percdamp: float = 0.01) -> torch.Tensor:
    """SparseGPT (fasterprune): OBS-style pruning with error compensation on the
    not-yet-pruned columns, adaptive mask selection per block of ``blocksize`` columns.
    H = 2·XᵀX/n is the Hessian of the layer's reconstruction loss."""
    W, Hinv = obs_setup(W, H, percdamp)
    cols = W.shape[1]
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


def capture_first_layer_inputs(model, input_ids: torch.Tensor):
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


def layer_output(out):
    return out[0] if isinstance(out, tuple) else out


@torch.no_grad()
def sequential_layers(model, calib_ids: torch.Tensor, desc: str = "", progress: bool = True):
    """The sequential calibration walk every layer-by-layer method shares (pruning, GPTQ, SmoothQuant,
    the FFN conversions): yields ``(index, layer, run)`` per decoder layer, where ``run()`` feeds the
    layer the calibration batch as the already-updated layers before it produce it; once the caller
    has updated the layer, its output feeds the next."""
    args, kwargs = capture_first_layer_inputs(model, calib_ids)
    hidden = args[0] if args else kwargs.pop("hidden_states")
    args = args[1:] if args else ()
    for i, layer in enumerate(tqdm(decoder_layers(model), desc=desc, disable=not progress)):
        yield i, layer, lambda: layer(hidden, *args, **kwargs)
        hidden = layer_output(layer(hidden, *args, **kwargs))


@torch.no_grad()
def layerwise(model, calib_ids: torch.Tensor, update, need_h: bool, targets: str = "all", desc: str = "",
              progress: bool = True, run_layer: bool = True) -> tuple[int, int]:
    """The loop SparseGPT, Wanda and GPTQ share (``sequential_layers``): each Linear of a layer is
    replaced by ``update(W, stats)`` from the statistics of its inputs as produced by the
    already-updated layers before it. Returns (zeros, weights)."""
    zeros = total = 0
    for _, layer, run in sequential_layers(model, calib_ids, desc, progress):
        lins = {n: m for n, m in linear_modules(layer).items() if targets == "all" or "mlp" in n}
        stats = {n: _Stats(m.in_features, need_h) for n, m in lins.items()}
        hooks = [m.register_forward_hook(lambda mod, inp, out, n=n: stats[n].add(inp[0]))
                 for n, m in lins.items()]
        if run_layer:
            run()
        for h in hooks:
            h.remove()
        for n, m in lins.items():
            W = m.weight.data
            m.weight.data = update(W, stats[n]).to(W.dtype)
            zeros += int((m.weight == 0).sum())
            total += m.weight.numel()
    return zeros, total


def hessian(stats: _Stats) -> torch.Tensor:
    """H = 2·XᵀX/n of one Linear's calibration inputs."""
    return (2 * stats.H / max(stats.n, 1)).float()


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

    def update(W, st):
        if method == "magnitude":
            return prune_magnitude(W, p, nm)
        if method == "wanda":
            return prune_wanda(W, st.sq / max(st.n, 1), p, nm)
        return prune_sparsegpt(W, hessian(st), p, nm)

    zeros, total = layerwise(model, calib_ids, update, method == "sparsegpt", targets,
                             f"prune {method} {('%d:%d' % nm) if nm else p}", progress, run_layer=method != "magnitude")
    return {"weight_sparsity": zeros / max(total, 1)}


# ----------------------------------------------------------------------------- registered steps
# A variant's ``{sparsegpt: {ratio: 0.3}}`` in studylib/quality/variants.yaml runs this.
from studylib.quality.transforms.registry import register  # noqa: E402  (the registry imports this module last)


def _prune(method):
    def step(model, calib, ratio: float = 0.0, nm: list[int] | None = None, targets: str = "all"):
        out = prune_model(model, calib, method, ratio, tuple(nm) if nm else None, targets, progress=True)
        return {"method": method, "ratio": ratio if not nm else 0.5, **out}
    return step


for _m in METHODS:
    register(_m, weights_only=True)(_prune(_m))
