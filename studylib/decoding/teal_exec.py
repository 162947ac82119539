"""TEAL-style activation sparsity *executed*: the speed counterpart of the ``teal`` transform's
``MaskedFFN`` (which zeroes small activations and still multiplies by every weight).

A thresholded input vector with three quarters of its entries at zero needs only the weight
rows of the kept entries: y = Σ_{i kept} x_i · Wᵀ[i]. ``torch.nn.functional.embedding_bag``
with ``per_sample_weights`` and ``mode="sum"`` is exactly that product, reading only the kept
rows of a row-major Wᵀ, with one bag per token (so a batch reads each token's own rows). It is
PyTorch's maintained CPU kernel for a sparse-input product; TEAL's own kernels are GPU (Triton)
kernels, and no maintained CPU library runs thresholded-input GEMVs, hence this module.

Per layer: gate and up share one Wᵀ (d_model × 2·d_ff), read at the FFN input's kept entries
(TEAL's input threshold); the intermediate activations are thresholded again (TEAL's
threshold on down's input) and down's Wᵀ (d_ff × d_model) is read at those. The kept
fractions are counted on every token that passes, so the bytes a step reads are measured, not
assumed (``bytes_per_token``). At batch 1 this reads about a quarter of the FFN's weights; at
larger batches each token reads its own rows, so the advantage shrinks and then turns.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from studylib.quality.transforms.ffn import MaskedFFN, NeuronSelector


def sparse_input_product(v: torch.Tensor, keep: torch.Tensor, wt: torch.Tensor) -> torch.Tensor:
    """Rows of ``v`` (T, n) times ``wt`` (n, m) using only the entries where ``keep`` (T, n) is
    true: one embedding bag per row; a row with nothing kept gives zeros."""
    nz = keep.nonzero()
    offsets = torch.zeros(v.shape[0], dtype=torch.long)
    offsets[1:] = keep.sum(1).cumsum(0)[:-1]
    return F.embedding_bag(nz[:, 1], wt, offsets=offsets, per_sample_weights=v[nz[:, 0], nz[:, 1]], mode="sum")


class TealExecFFN(nn.Module):
    def __init__(self, masked: MaskedFFN):
        super().__init__()
        sel = masked.selector
        if not isinstance(sel, NeuronSelector) or sel.threshold is None:
            raise ValueError("TealExecFFN runs a threshold selector (TEAL); oracles need the dense activations")
        if masked.input_threshold is None:
            raise ValueError("TEAL without an input threshold reads all of gate/up: no executable saving here")
        mlp = masked.mlp
        self.act = mlp.act_fn
        self.d_ff = mlp.gate_proj.weight.shape[0]
        self.input_threshold, self.threshold = float(masked.input_threshold), float(sel.threshold)
        wg, wu, wd = mlp.gate_proj.weight.data, mlp.up_proj.weight.data, mlp.down_proj.weight.data
        self.register_buffer("gu_t", torch.cat([wg, wu]).T.contiguous())   # (d_model, 2 d_ff): row i = input i
        self.register_buffer("down_t", wd.T.contiguous())                  # (d_ff, d_model): row j = neuron j
        self.reset_counts()

    def reset_counts(self):
        self.tokens, self.kept_in, self.kept_h = 0, 0.0, 0.0

    def forward(self, x):
        shape = x.shape
        x2 = x.reshape(-1, shape[-1])
        keep_in = x2.abs() > self.input_threshold
        gu = sparse_input_product(x2, keep_in, self.gu_t)
        h = self.act(gu[:, :self.d_ff]) * gu[:, self.d_ff:]
        keep_h = h.abs() > self.threshold
        self.tokens += x2.shape[0]
        self.kept_in += float(keep_in.float().mean(1).sum())
        self.kept_h += float(keep_h.float().mean(1).sum())
        return sparse_input_product(h, keep_h, self.down_t).reshape(shape)

    def kept_fractions(self) -> tuple[float, float]:
        """Mean share of FFN inputs and of intermediate neurons kept per token (0.25, 0.25 as
        calibrated for teal_a25) over the tokens seen so far; (1, 1) before any token."""
        if not self.tokens:
            return 1.0, 1.0
        return self.kept_in / self.tokens, self.kept_h / self.tokens

    def bytes_per_token(self) -> dict:
        """Weight bytes one token reads, at the kept fractions measured so far."""
        f_in, f_h = self.kept_fractions()
        gu = self.gu_t.numel() * self.gu_t.element_size()
        down = self.down_t.numel() * self.down_t.element_size()
        return {"read": f_in * gu + f_h * down, "dense_ffn": gu + down}
