"""Model shapes from the published configs (config.json of each model on its hub page).

Timing uses models of these shapes with random weights: latency does not depend on
weight values. ``size_class`` maps each shape to the row of the paper's Table 1 it tests.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Shape:
    name: str
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    vocab: int
    tied_embeddings: bool = False
    size_class: str | None = None  # row of Table 1

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    @property
    def attn_params(self) -> int:
        """Q, K, V, O projection parameters of one layer."""
        hd = self.head_dim
        return self.hidden * hd * (2 * self.heads + 2 * self.kv_heads)

    @property
    def ffn_params(self) -> int:
        """SwiGLU FFN: gate, up and down projections of one layer."""
        return 3 * self.hidden * self.intermediate

    @property
    def layer_params(self) -> int:
        return self.attn_params + self.ffn_params + 2 * self.hidden

    @property
    def embed_params(self) -> int:
        return self.vocab * self.hidden * (1 if self.tied_embeddings else 2) + self.hidden

    @property
    def n_params(self) -> int:
        return self.layers * self.layer_params + self.embed_params

    @property
    def ffn_fraction_of_linear(self) -> float:
        """FFN share of the per-layer projection weights (what sparse routing can shrink)."""
        return self.ffn_params / (self.ffn_params + self.attn_params)

    def kv_bytes_per_token(self, bytes_per_el: int = 2) -> int:
        return 2 * self.layers * self.kv_heads * self.head_dim * bytes_per_el


SHAPES: dict[str, Shape] = {s.name: s for s in [
    Shape("llama-2-7b", 4096, 11008, 32, 32, 32, 32000, size_class="7B"),
    Shape("llama-3-8b", 4096, 14336, 32, 32, 8, 128256, size_class="7B"),
    Shape("llama-2-13b", 5120, 13824, 40, 40, 40, 32000, size_class="13B"),
    Shape("llama-30b", 6656, 17920, 60, 52, 52, 32000, size_class="30B"),
    Shape("llama-2-70b", 8192, 28672, 80, 64, 8, 32000, size_class="70B"),
    Shape("llama-3-70b", 8192, 28672, 80, 64, 8, 128256, size_class="70B"),
    # The speculative-decoding pair measured on the CPU (config.json of Qwen2.5-Coder-*-Instruct)
    Shape("qwen2.5-1.5b", 1536, 8960, 28, 12, 2, 151936, tied_embeddings=True),
    Shape("qwen2.5-0.5b", 896, 4864, 24, 14, 2, 151936, tied_embeddings=True),
    # The embedded default's real model (SmolLM2-135M, Llama architecture).
    Shape("smollm2-135m", 576, 1536, 30, 9, 3, 49152, tied_embeddings=True),
    # A CPU-sized stand-in with Llama-8B's aspect ratios (hidden/8, intermediate/8, GQA 4:1).
    Shape("llama-3-8b-div8", 512, 1792, 4, 8, 2, 16032),
]}


def get_shape(name: str) -> Shape:
    try:
        return SHAPES[name]
    except KeyError:
        raise ValueError(f"unknown model shape {name!r}; known: {', '.join(sorted(SHAPES))}") from None
