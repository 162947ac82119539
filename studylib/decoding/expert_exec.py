"""Converted FFNs that *execute* only the chosen experts: the speed counterpart of
``transforms.ffn.MaskedFFN`` (which computes the dense FFN and masks it, right for quality and
wrong for speed).

Each routed expert's rows of gate/up and columns of down are copied once into contiguous
tensors, so a token routed to expert e reads exactly that expert's weights (1/K of the routed
FFN bytes for top-1), plus the always-on shared neurons and the router. Tokens are grouped by
expert (one GEMM per expert that has tokens): at batch 1 that is one small GEMV chain, the case
the paper's speedup is about. Written here because no maintained CPU library runs a converted
dense FFN as experts; the GPU campaign has its own kernels (``studylib.kernels``).

Only selectors computable from the input are executable: a fitted linear router
(``moe_literal``) and CMoE's representative-neuron router (it needs the representative
neurons' activations, two rows of gate/up per expert). Oracles need the dense activations by
definition and have no executable form.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from studylib.quality.transforms.ffn import ExpertSelector, MaskedFFN


class ExpertExecFFN(nn.Module):
    def __init__(self, masked: MaskedFFN):
        super().__init__()
        sel: ExpertSelector = masked.selector
        if not isinstance(sel, ExpertSelector) or sel.kind not in ("linear", "representative"):
            raise ValueError(f"no executable form for selector {type(sel).__name__}/{getattr(sel, 'kind', '?')}")
        if masked.capacity_factor is not None:
            raise ValueError("capacity limits are a quality knob; speed runs use no capacity")
        mlp = masked.mlp
        self.act = mlp.act_fn
        self.kind, self.top_k, self.K = sel.kind, sel.top_k, sel.K
        Wg, Wu, Wd = mlp.gate_proj.weight.data, mlp.up_proj.weight.data, mlp.down_proj.weight.data
        assign = sel.assign
        for e in range(sel.K):
            idx = (assign == e).nonzero().squeeze(1)
            self.register_buffer(f"gu_{e}", torch.cat([Wg[idx], Wu[idx]]).contiguous())
            self.register_buffer(f"down_{e}", Wd[:, idx].contiguous())
        shared = (assign < 0).nonzero().squeeze(1)
        self.n_shared = len(shared)
        self.register_buffer("shared_gu", torch.cat([Wg[shared], Wu[shared]]).contiguous())
        self.register_buffer("shared_down", Wd[:, shared].contiguous())
        if self.kind == "linear":
            self.register_buffer("router_w", sel.router[:-1].to(Wg.dtype).contiguous())
            self.register_buffer("router_b", sel.router[-1].to(Wg.dtype))
        else:  # representative neurons: their gate/up rows
            self.register_buffer("rep_gu", torch.cat([Wg[sel.reps], Wu[sel.reps]]).contiguous())
        self.register_buffer("bias", sel.bias.to(Wg.dtype))
        self.packed = nn.ModuleDict()
        self._packed_bytes: dict | None = None

    def _weight_bytes(self) -> dict:
        if self._packed_bytes is not None:   # the unpacked copies are gone; the values read are the same
            return self._packed_bytes
        nb = lambda *ts: sum(t.numel() * t.element_size() for t in ts)  # noqa: E731
        return {"expert": nb(self.gu_0, self.down_0), "shared": nb(self.shared_gu, self.shared_down),
                "router": nb(self.router_w if self.kind == "linear" else self.rep_gu)}

    def pack(self) -> int:
        """Pre-pack the experts' and shared neurons' weights for oneDNN (``kernels.cpu_linear``),
        dropping the unpacked copies; returns how many matrices were packed."""
        from studylib.kernels.cpu_linear import PackedLinear

        names = [n for n, b in self.named_buffers(recurse=False)
                 if n.startswith(("gu_", "down_", "shared_")) and b.numel()]
        self._packed_bytes = self._weight_bytes()
        for n in names:
            self.packed[n] = PackedLinear(getattr(self, n), None)
            setattr(self, n, None)
        return len(names)

    def _mm(self, x, name):
        return self.packed[name](x) if name in self.packed else x @ getattr(self, name).T

    def _swiglu(self, x, gu, down):
        h = self._mm(x, gu)
        n = h.shape[-1] // 2
        return self._mm(self.act(h[:, :n]) * h[:, n:], down)

    def scores(self, x2):
        if self.kind == "linear":
            return x2 @ self.router_w + self.router_b + self.bias
        h = x2 @ self.rep_gu.T
        n = h.shape[1] // 2
        return (self.act(h[:, :n]) * h[:, n:]).abs() + self.bias

    def forward(self, x):
        shape = x.shape
        x2 = x.reshape(-1, shape[-1])
        top = torch.topk(self.scores(x2), self.top_k, dim=1).indices
        out = self._swiglu(x2, "shared_gu", "shared_down") if self.n_shared else torch.zeros_like(x2)
        for e in top.unique().tolist():
            rows = (top == e).any(1).nonzero().squeeze(1)
            y = self._swiglu(x2[rows], f"gu_{e}", f"down_{e}")
            out.index_add_(0, rows, y)
        return out.reshape(shape)

    def bytes_per_token(self, top_k: int | None = None) -> dict:
        """Weight bytes one token reads: router, shared neurons and its k experts (equal sizes)."""
        k = top_k or self.top_k
        b = self._weight_bytes()
        return {"experts": k * b["expert"], "shared": b["shared"], "router": b["router"],
                "dense_ffn": self.K * b["expert"] + b["shared"]}


def make_executable(model) -> int:
    """Replace every MaskedFFN of ``model`` by its executable form in place (routed experts:
    ``ExpertExecFFN``; TEAL's thresholds: ``teal_exec.TealExecFFN``); returns how many."""
    from studylib.decoding.teal_exec import TealExecFFN
    from studylib.models import decoder_layers
    from studylib.quality.transforms.ffn import NeuronSelector

    n = 0
    for layer in decoder_layers(model):
        if isinstance(layer.mlp, MaskedFFN):
            exe = TealExecFFN if isinstance(layer.mlp.selector, NeuronSelector) else ExpertExecFFN
            layer.mlp = exe(layer.mlp)
            n += 1
    return n
