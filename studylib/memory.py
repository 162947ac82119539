"""Memory footprint of each variant: the bytes of weights, scales and index buffers the modules
actually hold (Table 7's VRAM column), counted from the tensors this study's variants build.

One FFN of each variant is built at the real shape (bf16, CPU, random weights — the byte count
does not depend on values) and its unique tensor storages are summed; attention, norms and
embeddings are the same in every variant and counted from the shape. Speculative decoding holds
the draft model besides the target (and the draft's KV cache, not counted here). Counts, not
estimates: there is no sampling error to put an interval on.
"""
from __future__ import annotations

import torch

from .shapes import get_shape
from .variants import building_on, build_ffn

#: Table 7's techniques and the variant of this study that implements each
TABLE7_VARIANTS = {"sparse_routing": "pruned30_moe4_top1", "int8": "int8wo_torch"}


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
    s = get_shape(shape_name)
    with torch.no_grad(), building_on("cpu", torch.bfloat16):
        ffn = held_bytes(build_ffn(variant, s, "cpu"))
    per_layer_rest = (s.attn_params + 2 * s.hidden) * 2
    return s.layers * (ffn + per_layer_rest) + s.embed_params * 2


def relative_footprints(shape_name: str = "llama-3-8b", draft_shape: str = "qwen2.5-0.5b") -> dict[str, float]:
    dense = model_bytes(shape_name, "dense")
    out = {k: model_bytes(shape_name, v) / dense for k, v in TABLE7_VARIANTS.items()}
    out["spec_decode"] = 1 + get_shape(draft_shape).n_params / get_shape(shape_name).n_params
    return out
