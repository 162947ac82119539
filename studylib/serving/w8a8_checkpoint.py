"""The W8A8 int8 variant (``quality.transforms.w8a8``) as a compressed-tensors checkpoint: the format
vLLM's CPU int8 kernel (``CompressedTensorsW8A8Int8`` → its oneDNN / AMX ``scaled_mm``) loads.

Each quantized linear is written as ``weight`` (int8, out x in: the very codes ours evaluates) and
``weight_scale`` (fp32, out x 1); the ``quantization_config`` declares int8 weights per output
channel and int8 activations per token, dynamic and symmetric — the scheme ours computes, so the
engine runs the same model with its own kernel. The LM head is in ``ignore`` (it stays in the
model's dtype, as ours keeps it); embeddings are not linear layers and are never quantized."""
from __future__ import annotations

from pathlib import Path

import torch

#: the compressed-tensors description of ``transforms.w8a8``'s scheme (what vLLM's config parser reads)
SCHEME = {
    "targets": ["Linear"],
    "weights": {"num_bits": 8, "type": "int", "symmetric": True, "strategy": "channel", "dynamic": False},
    "input_activations": {"num_bits": 8, "type": "int", "symmetric": True, "strategy": "token", "dynamic": True},
}


def quantization_config(ignore: list[str]) -> dict:
    return {"quant_method": "compressed-tensors", "format": "int-quantized", "quantization_status": "compressed",
            "config_groups": {"group_0": SCHEME}, "ignore": ignore}


def w8a8_tensors(model) -> tuple[dict[str, torch.Tensor], int]:
    """(the checkpoint's tensors, how many linears are int8): the model's own tensors with each W8A8
    layer's codes and scales in compressed-tensors' names. ``ValueError`` where a decoder layer
    still holds a plain linear (the checkpoint would declare it int8 while it is not)."""
    from studylib.quality.transforms.w8a8 import W8A8Linear
    from studylib.serving.checkpoint import decoder_linears, own_tensors

    q = decoder_linears(model, W8A8Linear)
    if stray := sorted(decoder_linears(model)):
        raise ValueError(f"not every decoder linear is W8A8 (e.g. {stray[0]}): not the w8a8 variant")
    sd = {k: v for k, v in own_tensors(model).items() if not any(k.startswith(f"{n}.") for n in q)}
    for name, mod in q.items():
        sd[f"{name}.weight"] = mod.int8_weight()
        sd[f"{name}.weight_scale"] = mod.weight_scale.detach().float()
        if mod.bias is not None:
            sd[f"{name}.bias"] = mod.bias.detach()
    return sd, len(q)


def write_w8a8(model, tok, where: Path) -> dict:
    """The checkpoint in ``where``; returns what the export records."""
    from studylib.serving.checkpoint import write_quantized

    sd, n = w8a8_tensors(model)
    write_quantized(model, tok, where, sd, quantization_config(["lm_head"]))
    # a decode step reads the same int8 codes served as in ours: no bytes to swap in the served rows
    return {"architecture": model.config.architectures[0] if model.config.architectures else type(model).__name__,
            "format": "w8a8", "scheme": "compressed-tensors int-quantized: int8 weights per channel, int8 "
                                        "activations per token (dynamic, symmetric)", "quantized_linears": n}
