"""bf16 linear layers on the CPU with their weights pre-packed once in oneDNN's blocked layout.

Eager ``F.linear`` on a bf16 CPU tensor calls the same oneDNN matmul, but reorders the weight
into the blocked layout on *every* call: at decode (one token per sequence) that reorder costs
as much as the product itself. Measured on this study's CPU (2 EPYC cores, AVX-512 bf16;
1536 -> 8960, Qwen2.5-1.5B's up projection): 1.9 ms eager vs 1.0 ms packed at one token, 2.1
vs 1.4 ms at 16, with bit-identical outputs. PyTorch packs this way only inside
``torch.compile`` with inductor's weight freezing (``mkldnn._reorder_linear_weight`` +
``mkldnn._linear_pointwise``, the two ops used here), and freezing failed on the second
``generate`` with a static KV cache (session 9). So the packing is done by hand, eagerly, with
the same two ops: no compiler, no graph breaks, nothing else in the model changes.

``pack_linears`` replaces plain ``nn.Linear`` modules whose weight is a plain bf16 CPU tensor
(quantized tensor subclasses, other dtypes and other devices keep their own kernels).
``packing_is_exact`` checks on this machine that packed and eager products agree bit for bit,
so a quality run may use packing for speed without its results depending on it; on a CPU
without AVX-512 (an AVX2-only EPYC, seen 2026-12-02) oneDNN refuses the bf16 reorder and the
check (``available``) answers False, so the run stays eager.
"""
from __future__ import annotations

import functools

import torch
import torch.nn as nn

KERNEL = "onednn_packed"
_PROBE_ROWS = (1, 3, 16, 100)


#: why a packed kernel cannot run here, for the errors of every caller
UNAVAILABLE = ("oneDNN bf16 weight packing, which this PyTorch build or this CPU (AVX-512 or AVX-NE-CONVERT "
               "needed) does not offer")


@functools.cache
def available() -> bool:
    """oneDNN weight packing is in this PyTorch build *and* this CPU runs its bf16 reorder
    (it needs AVX-512 bw/vl/dq or AVX-NE-CONVERT; an AVX2-only CPU is refused at run time)."""
    if not (torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_reorder_linear_weight")):
        return False
    try:
        torch.ops.mkldnn._reorder_linear_weight(torch.zeros(16, 16, dtype=torch.bfloat16), 1)
    except RuntimeError:
        return False
    return True


def _packable(m: nn.Module) -> bool:
    w = getattr(m, "weight", None)
    return (type(m) is nn.Linear and type(w) in (torch.Tensor, nn.Parameter) and w.dtype == torch.bfloat16
            and w.device.type == "cpu")


class PackedLinear(nn.Module):
    """y = x Wᵀ + b with W pre-packed for oneDNN. The packed weight is an attribute, not a
    parameter: ``state_dict`` and ``parameters()`` no longer list it (pack for running only).
    ``nbytes`` is the bytes a product reads (the packed copy holds the same bf16 values)."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, batch_hint: int = 1):
        super().__init__()
        self.out_features, self.in_features = weight.shape
        self.packed = torch.ops.mkldnn._reorder_linear_weight(weight.detach().contiguous(), batch_hint)
        self.register_buffer("bias", None if bias is None else bias.detach().clone())
        self.nbytes = weight.numel() * weight.element_size() + (0 if bias is None else bias.numel() * bias.element_size())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.mkldnn._linear_pointwise(x, self.packed, self.bias, "none", [], "")

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, kernel={KERNEL}"


def pack_linears(model: nn.Module, batch_hint: int = 1) -> int:
    """Replace every packable ``nn.Linear`` in ``model`` by a ``PackedLinear``, in place; returns
    how many. Tied weights (an LM head sharing the embedding) get their own packed copy."""
    if not available():
        raise RuntimeError(f"pack_linears needs {UNAVAILABLE}: not available")
    targets = [(name, m) for name, m in model.named_modules() if _packable(m)]
    for name, m in targets:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, PackedLinear(m.weight, m.bias, batch_hint))
    return len(targets)


def packing_is_exact(in_features: int = 256, out_features: int = 512, seed: int = 0) -> bool:
    """True when packed and eager bf16 products agree bit for bit on this machine, with and
    without bias, at the row counts decode and prefill use."""
    if not available():
        return False
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(out_features, in_features, generator=g).to(torch.bfloat16)
    b = torch.randn(out_features, generator=g).to(torch.bfloat16)
    for bias in (None, b):
        lin = PackedLinear(w, bias)
        for rows in _PROBE_ROWS:
            x = torch.randn(rows, in_features, generator=g).to(torch.bfloat16)
            if not torch.equal(lin(x), torch.nn.functional.linear(x, w, bias)):
                return False
    return True
