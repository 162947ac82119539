"""int8 weights *and* int8 activations (W8A8): the int8 a CPU serving engine runs fastest.

vLLM's CPU build has no weight-only int8 kernel (its int8 is ``scaled_mm``: int8 x int8 products,
int32 sums, on AMX / VNNI), so the study's weight-only int8 (``quantize.quanto_int8``) cannot be
served as int8 at all; this is the int8 it *can* serve, and the usual int8 of deployments:

* weights: symmetric int8 per output channel, scale = max |w| / 127 of the row (round to nearest);
* activations: symmetric int8 per token, computed on the fly, scale = max |x| / 127 of the token
  (vLLM's dynamic per-token scheme; no SmoothQuant-style calibration: training-free, nothing fitted).

Only the decoder layers' linear layers are quantized (embeddings and the LM head stay in the
evaluation dtype, as for quanto). The product is PyTorch's own int8 GEMM (``torch._int_mm``: int8 x
int8 summed exactly in int32, oneDNN on the CPU, faster here than the bf16 GEMM), then scaled in fp32,
as the engine's kernel does. Why exact sums matter: on SmolLM2 merely rounding the integer sums to
bf16 moved the text's log-probabilities by 0.18 nats/token (int8 itself moves them 0.28 from dense),
because each rounding can push a value over the next layer's activation-quantization step; ours then
scored 0.19 from the engine. Why written here rather than taken from a library: torchao's
``Int8DynamicActivationInt8WeightConfig`` computes the same scheme, but the export
(``serving.export``) must write *the very integer codes and scales* ours evaluates, and torchao's
tensor-subclass internals (where the codes live) change between its releases; here they are two
plain tensors.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from studylib.models import decoder_layers
from studylib.quality.transforms.registry import register

QMAX = 127


def quantize_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(codes, scales): symmetric int8 per row of ``x`` (codes in [-127, 127] held in ``x``'s dtype,
    fp32 scales of shape rows x 1); an all-zero row gets scale 1 (its codes are 0 either way)."""
    xf = x.float()
    s = xf.abs().amax(dim=-1, keepdim=True) / QMAX
    s = torch.where(s > 0, s, torch.ones_like(s))
    return torch.round(xf / s).clamp_(-QMAX, QMAX).to(x.dtype), s


class W8A8Linear(nn.Module):
    """y = (q(x) s_x) (W_q s_w)ᵀ + b, with q per token and W_q per output channel: ``qweight`` (in x out,
    int8: the layout ``torch._int_mm`` takes), ``weight_scale`` (out x 1, fp32) and ``bias`` are buffers."""

    def __init__(self, lin: nn.Linear):
        super().__init__()
        self.in_features, self.out_features = lin.in_features, lin.out_features
        w_q, s = quantize_rows(lin.weight.data.float())
        self.register_buffer("qweight", w_q.to(torch.int8).T.contiguous())
        self.register_buffer("weight_scale", s)
        self.register_buffer("bias", None if lin.bias is None else lin.bias.detach().clone())

    def int8_weight(self) -> torch.Tensor:
        """The weight's integer codes as int8, out x in (what an engine loads)."""
        return self.qweight.T.contiguous()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        x_q, s_x = quantize_rows(x.reshape(-1, shape[-1]).float())
        y = torch._int_mm(x_q.to(torch.int8), self.qweight).float() * s_x * self.weight_scale.reshape(-1)
        if self.bias is not None:
            y = y + self.bias.float()
        return y.to(x.dtype).reshape(*shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                "int8 weights (per channel) x int8 activations (per token), int32 sums")


@register("w8a8", after_cast=True)
def w8a8(model, calib):
    """Every decoder layer's ``nn.Linear`` replaced by a ``W8A8Linear`` (no calibration: dynamic
    activation scales)."""
    n = 0
    for layer in decoder_layers(model):
        for name, m in list(layer.named_modules()):
            if type(m) is nn.Linear:
                parent_name, _, child = name.rpartition(".")
                setattr(layer.get_submodule(parent_name) if parent_name else layer, child, W8A8Linear(m))
                n += 1
    return {"method": "w8a8_dynamic", "weight_bits": 8, "activation_bits": 8, "quantized_linears": n}
