"""Phase 1 / Phase 2 timing sweep: every (shape, variant, component, batch, routing) unit of a
profile, resumable through the results store."""
from __future__ import annotations

import itertools

import torch
from tqdm.auto import tqdm

from . import provenance
from .config import require_device
from .results import ResultStore, safe_key
from .shapes import get_shape
from .timing import bench, measure_copy_bandwidth, measure_matmul_flops
from .variants import VARIANTS, DecoderLayer, build_ffn, forced_routing, variant_bytes


def units(prof: dict, device: str) -> list[dict]:
    t = prof["timing"]
    out = []
    for shape, variant, comp, batch in itertools.product(t["shapes"], t["variants"], ("ffn", "layer"), t["batches"]):
        if VARIANTS[variant].get("gpu_only") and device != "cuda":
            continue
        routings = t["routing"] if VARIANTS[variant]["kind"] == "moe" else ["none"]
        for r in routings:
            out.append({"shape": shape, "variant": variant, "component": comp, "batch": batch,
                        "context": t["context"], "routing": r})
    return out


def _time_unit(u: dict, device: str, t: dict) -> dict:
    shape = get_shape(u["shape"])
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    torch.manual_seed(0)
    ffn = build_ffn(u["variant"], shape, device)
    forced = None
    if VARIANTS[u["variant"]]["kind"] == "moe":
        forced = forced_routing("uniform" if u["routing"] == "none" else u["routing"], u["batch"], ffn.K, ffn.k, device)
    mod = ffn if u["component"] == "ffn" else DecoderLayer(shape, ffn, u["batch"], u["context"])
    if VARIANTS[u["variant"]]["kind"] not in ("quant", "semi24"):
        mod = mod.to(device=device, dtype=dtype)
    else:
        mod = mod.to(device=device)
        if u["component"] == "layer":
            for name, sub in mod.named_children():
                if name != "ffn":
                    sub.to(dtype=dtype)
    if forced is not None:
        ffn.forced = forced
    x = torch.randn(u["batch"], shape.hidden, device=device, dtype=dtype)
    with torch.no_grad():
        res = bench(lambda: mod(x), device, t["repeats"], t["warmup"])
    nbytes = variant_bytes(u["variant"], mod, u["component"], forced, shape, u["batch"], u["context"],
                           torch.finfo(dtype).bits // 8)
    del mod, ffn
    return {**u, **res.summary(), "bytes_moved": nbytes, "achieved_Bps": nbytes / res.median}


def run_timing(prof: dict, progress: bool = True) -> dict:
    """Measure the device peaks once per run, then every missing unit. Returns counts."""
    device = require_device(prof)
    t = prof["timing"]
    prov_params = {"timing": t}
    peaks = ResultStore("device_peaks", prof["name"])
    dev_name = torch.cuda.get_device_name(0) if device == "cuda" else "cpu"
    pk = safe_key(dev_name)
    if not peaks.has(pk):
        peaks.write(pk, [{"device": dev_name, "copy_bandwidth_Bps": measure_copy_bandwidth(device),
                          "matmul_flops": measure_matmul_flops(device),
                          "matmul_dtype": "bf16" if device == "cuda" else "fp32"}],
                    provenance.collect(prof["name"], prov_params))
    store = ResultStore("timing", prof["name"])
    all_units = units(prof, device)
    todo = [u for u in all_units if not store.has(safe_key(*u.values()))]
    done = 0
    for u in tqdm(todo, desc="timing units", disable=not progress):
        row = _time_unit(u, device, t)
        store.write(safe_key(*u.values()), [row], provenance.collect(prof["name"], {**prov_params, "unit": u}))
        done += 1
    return {"measured": done, "skipped": len(all_units) - len(todo)}
