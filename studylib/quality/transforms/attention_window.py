"""Attention that sees part of the context: the paper's own explanation of its long-context loss
(§4.5 blames sparse attention and KV eviction, not the FFN conversion), made testable.

``kv_window`` keeps, for each query, the first ``sinks`` tokens of its sequence (StreamingLLM's
attention sinks, Xiao et al. 2023) and the most recent ``window`` of the context (a fraction of
the sequence's length, so one variant reads 25% of a 1k and of a 4k context alike):

* ``mode: local``: every query, prompt and generated, sees only that band (local / sliding-window
  attention with sinks when ``sinks > 0``);
* ``mode: evict``: the prompt is read with full attention and the cache is cut to sinks + window
  for the tokens generated after it (KV eviction after prefill, what a serving engine with a
  fixed cache budget does).

Why written here: transformers removed its ``SinkCache`` (it lives on as a Hub ``custom_generate``
recipe that re-rotates cached keys and works with ``generate`` only), and its sliding-window masks
are fixed in the model's config, without sinks; lm-eval scores log-likelihoods in one forward pass
with no cache at all. A band mask applied inside attention gives the same set of visible tokens in
both paths, keeps each token's original position (RoPE is not re-indexed: the StreamingLLM paper
re-indexes within the cache; here eviction changes what is seen, not where it is), and is exactly
dense when the band covers the whole context (tested). It is registered with transformers'
``AttentionInterface`` around its own SDPA kernel, so nothing else of the model changes.
"""
from __future__ import annotations

import torch

from studylib.quality.transforms.registry import register

IMPLEMENTATION = "study_kv_window"
MODES = ("local", "evict")


def band(allowed: torch.Tensor | None, batch: int, q_len: int, kv_len: int, sinks: int, window: float,
         device) -> torch.Tensor:
    """(batch, 1, q_len, kv_len) boolean: what each query may see. ``allowed``: the model's own mask
    (causal and padding; None = causal, no padding). A row's sequence starts at its first visible
    key (left padding), its sinks are its first ``sinks`` tokens, its window ``ceil(window · length)``
    of the most recent keys, length counted from that start to the query."""
    j = torch.arange(kv_len, device=device)
    pos = torch.arange(kv_len - q_len, kv_len, device=device)              # queries are the last q_len keys
    causal = j[None, :] <= pos[:, None]
    if allowed is None:
        allowed = causal[None, None].expand(batch, 1, q_len, kv_len)
    elif allowed.dtype != torch.bool:
        allowed = allowed == 0                                               # an additive mask: 0 where visible
    start = allowed[:, 0, -1, :].to(torch.int8).argmax(-1)                  # first visible key of each row
    rel_j = j[None, :] - start[:, None]                                      # (b, kv) position in its sequence
    rel_q = pos[None, :] - start[:, None]                                    # (b, q)
    w = torch.ceil(window * (rel_q + 1).float()).clamp_min(1)               # keys in the recent window
    recent = (rel_q[:, :, None] - rel_j[:, None, :]) < w[:, :, None]
    sink = (rel_j >= 0) & (rel_j < sinks)
    return allowed & (recent | sink[:, None, :])[:, None]


def window_attention(module, query, key, value, attention_mask, **kwargs):
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    cfg = getattr(module, "study_kv_window", None)
    q_len, kv_len = query.shape[2], key.shape[2]
    if cfg is not None and (cfg["mode"] == "local" or q_len == 1):
        attention_mask = band(attention_mask, query.shape[0], q_len, kv_len, cfg["sinks"], cfg["window"], query.device)
    return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)


def _register_with_transformers() -> None:
    """transformers is imported here, not at module import: its model code loads torchao's extensions,
    which print to stderr (the book's pages, which import the transform registry, must stay clean)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

    AttentionInterface.register(IMPLEMENTATION, window_attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register(IMPLEMENTATION, sdpa_mask)


@register("kv_window", after_cast=True)
def kv_window(model, calib, window: float = 0.25, sinks: int = 4, mode: str = "local") -> dict:
    """Every attention layer of ``model`` sees sinks + the recent ``window`` (fraction) of its context."""
    if mode not in MODES:
        raise ValueError(f"kv_window mode must be one of {MODES}, not {mode!r}")
    if not 0 < window <= 1 or sinks < 0:
        raise ValueError(f"kv_window needs 0 < window <= 1 and sinks >= 0, got window={window}, sinks={sinks}")
    n = 0
    for mod in model.modules():
        if hasattr(mod, "o_proj") and hasattr(mod, "q_proj"):               # a decoder attention layer
            mod.study_kv_window = {"window": float(window), "sinks": int(sinks), "mode": mode}
            n += 1
    if n == 0:
        raise ValueError("kv_window found no attention layer (q_proj/o_proj) in the model")
    _register_with_transformers()
    model.set_attn_implementation(IMPLEMENTATION)
    return {"method": f"kv_window_{mode}", "attention_window": float(window), "attention_sinks": int(sinks),
            "attention_layers": n}
