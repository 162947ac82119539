"""Writing a quantized checkpoint an engine loads: the model's own tensors with some linears'
weights replaced by their packed form, the ``quantization_config`` the engine reads from
``config.json``, the tokenizer, and (where asked) the engine settings the checkpoint needs
(``serving.engine.ENGINE_ENV_FILE``). Shared by the int4 (``awq``) and int8 (``w8a8_checkpoint``) forms."""
from __future__ import annotations

import json
from pathlib import Path

import torch


def decoder_linears(model, kind: type = torch.nn.Linear) -> dict[str, torch.nn.Module]:
    """{state-dict prefix: module} of every ``kind`` module inside the model's decoder layers (the
    layers a quantizer replaces; embeddings and the LM head stay as they are)."""
    from studylib.models import decoder_layers

    layers = {id(layer) for layer in decoder_layers(model)}
    out = {}
    for name, mod in model.named_modules():
        if id(mod) in layers:
            out.update({f"{name}.{sub}": m for sub, m in mod.named_modules() if isinstance(m, kind)})
    return out


def own_tensors(model) -> dict[str, torch.Tensor]:
    """The model's state dict as a checkpoint holds it (a tied LM head is not written twice)."""
    sd = dict(model.state_dict())
    if getattr(model.config, "tie_word_embeddings", False):
        sd.pop("lm_head.weight", None)
    return sd


def write_quantized(model, tok, where: Path, tensors: dict[str, torch.Tensor], quantization_config: dict,
                    engine_env: dict | None = None) -> None:
    """``tensors`` as ``model.safetensors`` with ``quantization_config`` in ``config.json`` (the model's
    own config is left as it was), the generation config, the tokenizer and any ``engine_env``."""
    from safetensors.torch import save_file

    where.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(where / "model.safetensors"),
              metadata={"format": "pt"})
    model.config.quantization_config = quantization_config
    try:
        model.config.save_pretrained(where)
    finally:
        del model.config.quantization_config
    if getattr(model, "generation_config", None) is not None:
        model.generation_config.save_pretrained(where)
    tok.save_pretrained(where)
    if engine_env:
        from studylib.serving.engine import ENGINE_ENV_FILE

        (where / ENGINE_ENV_FILE).write_text(json.dumps(engine_env))
