"""Every weight kernel this CPU has for a decode-shaped linear layer, timed side by side (profile
section ``cpu_kernels``; issue 14: "use the fastest correct kernel per variant, and report the
slow ones too").

One unit = layer shape × kernel × batch (rows of x). Kernels come from maintained libraries
only: bf16 through PyTorch (eager, and pre-packed once for oneDNN: ``cpu_linear``), the same
weights upcast to fp32 (eager: on a CPU without hardware bf16 an fp32 product can beat a bf16 one
that oneDNN must convert first; ``fp32_eager``), int8 per
channel and int4 in groups of 128 through optimum-quanto (the quality sweep's and the decode
harness's quantizers) and through torchao (``Int8WeightOnlyConfig``; the CPU int4 layout
``PrototypeInt4WeightOnlyConfig``). Each row carries the kernel's error against the fp32
product of the *unquantized* weight (so a fast kernel that computes the wrong thing shows it),
its weight bytes (codes + scales as each format stores them, nominal) and the achieved bytes/s
against the measured copy bandwidth. Timing: ``timing.bench`` (median of repeats after warm-up).

A decode step streams every layer's weights from memory once; a single layer called again and
again stays in this CPU's 32 MB L3 cache and would be timed far above memory bandwidth (the
first run of this module, 2026-11-25, measured a 27 MB bf16 layer at ~3x the copy bandwidth).
So each unit builds enough copies of the layer to exceed ``STREAM_BYTES`` and every timed call
uses the next copy: the weights come from DRAM, as in decode.
"""
from __future__ import annotations

import itertools
from typing import Callable

import torch
import torch.nn as nn
from tqdm.auto import tqdm

from studylib import provenance
from studylib.config import StudyConfigError, section_check
from studylib.kernels import cpu_linear
from studylib.results import ResultStore, safe_key

TABLE = "cpu_kernels"
INT4_GROUP = 128
STREAM_BYTES = 512 * 2**20   # > 10x the L3 cache: every timed call reads its weights from DRAM


def _quanto(bits: str) -> Callable[[nn.Linear], nn.Module]:
    def build(lin):
        from optimum.quanto import freeze, qint4, qint8, quantize

        m = nn.Sequential(lin)
        quantize(m, weights={"int8": qint8, "int4": qint4}[bits])
        freeze(m)
        return m
    return build


def _torchao(bits: str) -> Callable[[nn.Linear], nn.Module]:
    def build(lin):
        from torchao.quantization import Int8WeightOnlyConfig, quantize_

        if bits == "int8":
            cfg = Int8WeightOnlyConfig()
        else:
            from torchao.prototype.quantization.int4 import PrototypeInt4WeightOnlyConfig

            cfg = PrototypeInt4WeightOnlyConfig(group_size=INT4_GROUP)
        m = nn.Sequential(lin)
        quantize_(m, cfg)
        return m
    return build


def _fp32(lin: nn.Linear) -> nn.Module:
    """The layer's bf16 weights upcast to fp32 (exactly), the bf16 input cast on the way in."""
    w = lin.weight.data.float()

    class Fp32(nn.Module):
        def forward(self, x):
            return torch.nn.functional.linear(x.float(), w)
    return Fp32()


#: kernel -> (library, bits per weight, builder from a bf16 nn.Linear)
KERNELS: dict[str, tuple[str, int, Callable[[nn.Linear], nn.Module]]] = {
    "bf16_eager": ("torch", 16, lambda lin: lin),
    "bf16_onednn_packed": ("torch (oneDNN)", 16, lambda lin: cpu_linear.PackedLinear(lin.weight.data, None)),
    "fp32_eager": ("torch", 32, _fp32),
    "int8_quanto": ("optimum-quanto", 8, _quanto("int8")),
    "int4_quanto": ("optimum-quanto", 4, _quanto("int4")),
    "int8_torchao": ("torchao", 8, _torchao("int8")),
    "int4_torchao": ("torchao", 4, _torchao("int4")),
}

#: the weight kernel the whole-model CPU decode runs for each weight width (bits), as
#: ``decoding.cpu_speed`` uses them (the quanto layers of the int8/int4 variants); bf16 prefers
#: oneDNN's pre-packed product where it was measured. Kernel names, declared above.
DECODE_KERNELS = {32: "fp32_eager", 16: ("bf16_onednn_packed", "bf16_eager"), 8: "int8_quanto", 4: "int4_quanto"}


def weight_bytes(out_f: int, in_f: int, bits: int) -> int:
    """Bytes a kernel reads for the weight: codes, plus a bf16 scale per output row (int8) or a
    bf16 scale and zero point per group of 128 (int4)."""
    codes = out_f * in_f * bits // 8
    if bits >= 16:
        return codes
    if bits == 8:
        return codes + 2 * out_f
    return codes + 2 * 2 * out_f * (in_f // INT4_GROUP)


@section_check("cpu_kernels")
def check_config(s: dict) -> None:
    for k in ("shapes", "kernels", "batches", "repeats"):
        if k not in s:
            raise StudyConfigError(f"cpu_kernels needs {k!r}")
    extra = sorted(set(s) - {"shapes", "kernels", "batches", "repeats", "stream_bytes"})
    if extra:
        raise StudyConfigError(f"cpu_kernels: unknown key(s) {extra}")
    bad = sorted(set(s["kernels"]) - set(KERNELS))
    if bad:
        raise StudyConfigError(f"cpu_kernels: unknown kernel(s) {bad}; known: {list(KERNELS)}")
    for sh in s["shapes"]:
        if not (isinstance(sh, list) and len(sh) == 2 and all(isinstance(x, int) and x % INT4_GROUP == 0 for x in sh)):
            raise StudyConfigError(f"cpu_kernels shape {sh!r}: [in_features, out_features], multiples of {INT4_GROUP}")


def run_cpu_kernels(prof: dict, progress: bool = True) -> dict:
    from studylib.timer import bench, measure_copy_bandwidth

    s = prof["cpu_kernels"]
    check_config(s)
    store = ResultStore(TABLE, prof["name"])
    todo = [(tuple(sh), k, b) for sh in s["shapes"] for k in s["kernels"] for b in s["batches"]
            if not store.has(safe_key(f"{sh[0]}x{sh[1]}", k, f"b{b}"))]
    if not todo:
        return {"measured": 0}
    if any(k == "bf16_onednn_packed" for _, k, _ in todo) and not cpu_linear.available():
        raise StudyConfigError(f"cpu_kernels: bf16_onednn_packed needs {cpu_linear.UNAVAILABLE}; "
                               "drop it from `kernels` or run on such a CPU")
    bw = measure_copy_bandwidth("cpu")
    prov = provenance.collect(prof["name"], {"cpu_kernels": s})
    for (in_f, out_f), k, b in tqdm(todo, desc="cpu weight kernels", disable=not progress):
        lib, bits, build = KERNELS[k]
        nbytes = weight_bytes(out_f, in_f, bits)
        copies = max(2, -(-s.get("stream_bytes", STREAM_BYTES) // nbytes))
        torch.manual_seed(0)
        x = torch.randn(b, in_f, dtype=torch.bfloat16)
        with torch.no_grad():
            layers = []
            for i in range(copies):
                lin = nn.Linear(in_f, out_f, bias=False, dtype=torch.bfloat16)
                lin.weight.mul_(0.02 / lin.weight.std())   # the scale of a trained layer's weights
                if i == 0:
                    ref = x.float() @ lin.weight.float().T
                layers.append(build(lin))
            y = layers[0](x).float()
            turn = itertools.count()
            r = bench(lambda: layers[next(turn) % copies](x), "cpu", s["repeats"], copies)
        del layers
        store.write(safe_key(f"{in_f}x{out_f}", k, f"b{b}"), [{
            "in_features": in_f, "out_features": out_f, "kernel": k, "library": lib, "bits": bits, "batch": b,
            **r.summary(), "weight_bytes": nbytes, "achieved_Bps": nbytes / r.median, "copy_bandwidth_Bps": bw,
            "rel_error": float((y - ref).norm() / ref.norm()), "copies": copies,
            "threads": torch.get_num_threads()}], prov)
    return {"measured": len(todo)}
