"""Physical bounds for decode: bytes that must cross HBM per step / bandwidth.

A decode step at batch B must read every weight it uses once (plus the KV cache of each
sequence). At small B that read is the whole cost, so `bytes / peak_bandwidth` is a hard
lower bound on step time, whatever the kernel. Datasheet numbers here are only for the
chapter that audits the paper's arithmetic; measured runs record the device's *measured*
copy bandwidth and use that as the roofline.
"""
from __future__ import annotations

from dataclasses import dataclass

from studylib.shapes import Shape


@dataclass(frozen=True)
class Device:
    name: str
    hbm_bytes_per_s: float   # datasheet peak
    bf16_dense_flops: float  # datasheet peak, dense tensor-core


DATASHEET = {
    "A100-40GB": Device("A100-40GB", 1.555e12, 312e12),
    "A100-80GB": Device("A100-80GB", 2.039e12, 312e12),
    "H100-SXM": Device("H100-SXM", 3.35e12, 989e12),
    "H200": Device("H200", 4.8e12, 989e12),
}


def top_k_ffn_fraction(p: float, K: int, k: int = 1) -> float:
    """Fraction of a dense FFN's weights one token reads after pruning p and top-k of K."""
    return (1 - p) * k / K


def decode_bytes(shape: Shape, batch: int = 1, context: int = 0, bytes_per_weight: float = 2.0,
                 ffn_fraction: float = 1.0, experts_touched_fraction: float | None = None,
                 kv_bytes_per_el: int = 2) -> float:
    """Bytes read from HBM by one decode step of the whole model.

    ``ffn_fraction``: share of each FFN's weights one token needs (e.g. 0.7/4 for 30% pruning
    + top-1 of 4). ``experts_touched_fraction``: share of FFN weights the *batch* touches
    (defaults to ffn_fraction at B=1; pass the expected union for B>1). Pruned weights count
    as gone (the most favourable assumption: a perfect sparse format with free metadata).
    """
    touched = ffn_fraction if experts_touched_fraction is None else experts_touched_fraction
    per_layer = shape.attn_params + shape.ffn_params * touched + 2 * shape.hidden
    weights = (shape.layers * per_layer + shape.embed_params) * bytes_per_weight
    kv = batch * context * shape.kv_bytes_per_token(kv_bytes_per_el)
    return weights + kv


def expected_experts_touched(K: int, k: int, batch: int) -> float:
    """Expected fraction of K experts used by at least one of `batch` tokens, each picking
    k distinct experts uniformly: 1 - (1 - k/K)^B."""
    return 1 - (1 - k / K) ** batch


def lower_bound_seconds(bytes_moved: float, bandwidth: float) -> float:
    return bytes_moved / bandwidth


def achieved_bandwidth(bytes_moved: float, seconds: float) -> float:
    return bytes_moved / seconds


def ceiling_speedup(shape: Shape, p: float = 0.3, K: int = 4, k: int = 1, batch: int = 1,
                    context: int = 0) -> float:
    """Bandwidth-bound ceiling of sparse routing over dense for the whole model: dense bytes /
    sparse bytes, with the batch's expected expert union."""
    dense = decode_bytes(shape, batch, context)
    frac = (1 - p) * expected_experts_touched(K, k, batch)
    sparse = decode_bytes(shape, batch, context, ffn_fraction=frac)
    return dense / sparse
