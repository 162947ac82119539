"""A whole decoder-only model's decode step at a real shape (random weights), gpt-fast style.

Embedding -> ``layers`` x (RMSNorm, GQA attention over a static KV cache, RMSNorm, FFN variant)
-> RMSNorm -> LM head, for ``batch`` sequences and ``tokens`` new tokens each (1 = decode, γ+1 =
speculative verification). The timing harness captures the whole step in one CUDA graph, as a
compiled decode loop replays it. Used for end-to-end tokens/s (dense vs the paper's combination
vs weight-only quantization), for the speculative-decoding step times, and to check that
layers x layer time + head ≈ model time.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from studylib.shapes import Shape
from studylib.timing.modules import (
    TIMED_MODULES,
    DecoderLayer,
    MoEFFN,
    QuantFFN,
    QuantLinear,
    RMSNorm,
    build_ffn,
    linear_bytes,
    uniform_routing,
)


class DecodeModel(nn.Module):
    def __init__(self, shape: Shape, variant: str, batch: int, context: int, tokens: int = 1, device: str = "cpu"):
        super().__init__()
        self.shape, self.B, self.T = shape, batch, tokens
        self.embed = nn.Embedding(shape.vocab, shape.hidden)
        self.layers = nn.ModuleList(
            DecoderLayer(shape, build_ffn(variant, shape, device), batch, context, tokens) for _ in range(shape.layers))
        self.norm = RMSNorm(shape.hidden)
        self.head = None if shape.tied_embeddings else nn.Linear(shape.hidden, shape.vocab, bias=False)
        ffn0 = self.layers[0].ffn
        if self.head is not None and isinstance(ffn0, QuantFFN):  # every linear quantized, the head too
            self.head = QuantLinear(self.head.weight.data, ffn0.scheme, ffn0.splits)
        self.forced = None
        if TIMED_MODULES[variant]["kind"] == "moe":
            f0 = self.layers[0].ffn
            self.forced = uniform_routing(batch * tokens, f0.K, f0.k, device)
            for layer in self.layers:
                layer.ffn.forced = self.forced

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.embed(ids.reshape(-1))
        for layer in self.layers:
            x = layer(x)
        x = self.norm(x)
        return x @ self.embed.weight.T if self.head is None else self.head(x)

    def bytes_read(self) -> int:
        """Weights every step must read (touched experts only) + the KV cache."""
        n = self.B * self.T
        per_layer = sum(layer.bytes_read(self.forced, n) for layer in self.layers)
        head = self.embed.weight.numel() * self.embed.weight.element_size() if self.head is None else linear_bytes(self.head)
        emb_rows = n * self.shape.hidden * self.embed.weight.element_size()
        return per_layer + head + emb_rows + self.norm.w.numel() * self.norm.w.element_size()

    @property
    def quantized(self) -> str:
        """Which linears hold quantized weights ('' for none)."""
        if not isinstance(self.layers[0].ffn, QuantFFN):
            return ""
        return "ffn+attention" + ("+head" if isinstance(self.head, QuantLinear) else "")

    @property
    def kernel(self) -> str:
        ffn = self.layers[0].ffn
        return ffn.kernel_for(self.B * self.T) if isinstance(ffn, MoEFFN) else getattr(ffn, "kernel", type(ffn).__name__)
