"""GPTQ int-k weight quantization with error compensation (``studylib.gptq``), before the cast."""
from __future__ import annotations

from ..gptq import gptq_model
from . import register


@register("gptq", weights_only=True)
def gptq(model, calib, bits: int = 4, group_size: int = 128, percdamp: float = 0.01):
    return gptq_model(model, calib, bits, group_size, percdamp=percdamp)
