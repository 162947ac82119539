"""Memory footprint of each variant: the bytes of weights, scales and index buffers the modules
actually hold (Table 7's VRAM column), counted from the tensors this study's variants build.

One decoder layer of each variant is built at the real shape (bf16, CPU, random weights — the
byte count does not depend on values) and its unique tensor storages are summed; a weight-only
quantized variant quantizes every linear, attention and LM head too (as the timed models do since
2026-11-30; before, only the FFN was counted quantized). Speculative decoding holds
the draft model besides the target (and the draft's KV cache, not counted here). Counts, not
estimates: there is no sampling error to put an interval on.
"""
from __future__ import annotations

import torch

from studylib.shapes import get_shape
from studylib.results import BASELINE
from studylib.timing.modules import DecoderLayer, QuantFFN, QuantLinear, build_ffn, building_on, with_role

#: Table 7's techniques and the timed module of this study that implements each (by declared role)
TABLE7_VARIANTS = {"sparse_routing": with_role("paper_recipe"), "int8": with_role("int8_footprint")}


def held_bytes(module: torch.nn.Module) -> int:
    """Bytes of the unique storages behind a module's parameters and buffers."""
    seen, total = set(), 0
    for t in [*module.parameters(), *module.buffers()]:
        st = t.untyped_storage()
        if st.data_ptr() not in seen:
            seen.add(st.data_ptr())
            total += st.nbytes()
    return total


def model_bytes(shape_name: str, variant: str) -> int:
    """A whole model's held bytes: one decoder layer of the variant built at the real shape (its
    attention quantized with the FFN, as the timed models are; KV cache excluded) times the layers,
    plus the embedding and an untied LM head (quantized with the rest; per-row storage is uniform,
    so 8 rows are built and scaled)."""
    s = get_shape(shape_name)
    with torch.no_grad(), building_on("cpu", torch.bfloat16):
        ffn = build_ffn(variant, s, "cpu")
        layer = DecoderLayer(s, ffn, 1, 1)
        per_layer = held_bytes(layer) - held_bytes_of(layer.attn.k_cache, layer.attn.v_cache)
        emb = s.vocab * s.hidden * 2 + s.hidden * 2
        head = 0
        if not s.tied_embeddings:
            w = torch.randn(8, s.hidden)
            row = held_bytes(QuantLinear(w, ffn.scheme)) / 8 if isinstance(ffn, QuantFFN) else s.hidden * 2
            head = int(row * s.vocab)
    return s.layers * per_layer + emb + head


def held_bytes_of(*tensors: torch.Tensor) -> int:
    return sum(t.untyped_storage().nbytes() for t in tensors)


def relative_footprints(shape_name: str = "llama-3-8b", draft_shape: str = "qwen2.5-0.5b") -> dict[str, float]:
    dense = model_bytes(shape_name, BASELINE)
    out = {k: model_bytes(shape_name, v) / dense for k, v in TABLE7_VARIANTS.items()}
    out["spec_decode"] = 1 + get_shape(draft_shape).n_params / get_shape(shape_name).n_params
    return out
