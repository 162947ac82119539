"""Weight-only quantization through a maintained library (optimum-quanto 0.2.7): int8 per output
channel, int4 in groups of 128 — round-to-nearest with scales (the chapter names it as such; the
GPTQ-class int4 with error compensation is ``transforms.gptq``, written in ``studylib.quality.transforms.gptq``
because GPTQ/AutoRound builds need a CUDA toolchain this CPU machine lacks). Only the decoder layers' linear layers are quantized (embeddings and
the LM head stay in the evaluation dtype, as in the GPU timing variants).

These steps run *after* the model is cast to its evaluation dtype (``after_cast``): quanto's
packed weights are built for the activations' dtype and are not cast afterwards.
"""
from __future__ import annotations

from studylib.models import decoder_layers
from studylib.quality.transforms.registry import register


def _quanto(weights: str):
    def step(model, calib):
        from optimum.quanto import freeze, qint4, qint8, quantize

        w = {"int8": qint8, "int4": qint4}[weights]
        for layer in decoder_layers(model):
            quantize(layer, weights=w)
            freeze(layer)
        return {"method": f"quanto_{weights}", "weight_bits": 8 if weights == "int8" else 4}
    return step


register("quanto_int8", after_cast=True, quantizer=True)(_quanto("int8"))
register("quanto_int4", after_cast=True, quantizer=True)(_quanto("int4"))
