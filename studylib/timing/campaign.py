"""The timing campaign: every timing unit of a profile, in priority order, resumable, under a
time budget. One command runs it (``make gpu PROFILE=h100`` / ``make phase1-timing``).

A profile's ``campaign.groups`` (studylib/profiles.yaml) lists unit groups in the order they
matter; each group has a ``kind``:

* ``layer``   one decoder layer or its FFN alone (``components``) per shape × variant × batch ×
              routing — H1, Table 1/4, quantization, 2:4.
* ``model``   a whole model's decode step (``decode_model.DecodeModel``) per shape × variant ×
              batch × new tokens per step — end-to-end tokens/s and the speculative-decoding
              verify/draft step times.
* ``gate``    the router alone (linear + top-k + softmax) — Table 2's gate overhead.
* ``expert_sweep`` the companion study's expert MLP sweep (003_…txt): expert width × batch ×
              number of experts receiving tokens, hidden 2048, uniform load.
* ``kernel_checks`` correctness of every kernel against an fp32 reference on fresh random
              inputs (written to ``data/kernel_checks``) — run first, so that no timing of a
              wrong kernel is reported without its check beside it.

Every finished unit is written atomically (``results.ResultStore``); a rerun skips it. Before a
unit starts, the campaign stops cleanly if the budget would be exceeded (``budget_s``), so a
second call finishes the rest. Failures of one unit (a kernel missing on this torch build) are
logged and the campaign goes on; the unit stays missing and is retried by the next call.

The GPU image has torch, triton, transformers, pandas, numpy, scipy, statsmodels, yaml and
tqdm — nothing else — and this module's imports stay within that set (tested).
"""
from __future__ import annotations

import itertools
import time
import traceback

import torch
from tqdm.auto import tqdm

from studylib import provenance
from studylib.config import StudyConfigError, check_section, require_device, section_check
from studylib.kernels import quant as Q
from studylib.kernels import triton_gemv as TG
from studylib.results import ResultStore, safe_key
from studylib.shapes import SHAPES, get_shape
from studylib.timer import bench, measure_copy_bandwidth, measure_matmul_flops, warm_up
from studylib.timing.decode_model import DecodeModel
from studylib.timing.modules import (
    ROUTINGS,
    TIMED_MODULES,
    DecoderLayer,
    MoEFFN,
    QuantFFN,
    build_ffn,
    building_on,
    forced_routing,
    swiglu,
    uniform_routing,
)


def _dtype(device: str) -> torch.dtype:
    return torch.bfloat16 if device == "cuda" else torch.float32


# ---------------------------------------------------------------------------------------------
# units


def _layer_units(g: dict, device: str, ctx: int) -> list[dict]:
    out = []
    for shape, variant, comp, batch in itertools.product(g["shapes"], g["variants"], g.get("components", ["layer"]),
                                                         g["batches"]):
        if TIMED_MODULES[variant].get("gpu_only") and device != "cuda":
            continue
        for r in (g.get("routing", ["uniform"]) if TIMED_MODULES[variant]["kind"] == "moe" else ["none"]):
            out.append({"table": "timing", "kind": "layer", "shape": shape, "variant": variant, "component": comp,
                        "batch": batch, "context": ctx, "routing": r, "tokens": 1})
    return out


def _model_units(g: dict, device: str, ctx: int) -> list[dict]:
    return [{"table": "timing", "kind": "model", "shape": s, "variant": v, "component": "model", "batch": b,
             "context": ctx, "routing": "uniform" if TIMED_MODULES[v]["kind"] == "moe" else "none", "tokens": t}
            for s, v, b, t in itertools.product(g["shapes"], g["variants"], g["batches"], g.get("tokens", [1]))
            if not (TIMED_MODULES[v].get("gpu_only") and device != "cuda")]


def _gate_units(g: dict, device: str, ctx: int) -> list[dict]:
    return [{"table": "timing", "kind": "gate", "shape": s, "variant": f"gate{K}_top{k}", "component": "gate",
             "batch": b, "context": ctx, "routing": "none", "tokens": 1, "K": K, "k": k}
            for s, K, k, b in itertools.product(g["shapes"], g.get("experts", [4]), g.get("top_k", [1]), g["batches"])]


def _expert_sweep_units(g: dict, device: str, ctx: int) -> list[dict]:
    return [{"table": "expert_sweep", "kind": "expert_sweep", "hidden": g["hidden"], "expert_width": w,
             "experts": g["experts"], "active_experts": a, "batch": b}
            for w, b, a in itertools.product(g["widths"], g["batches"], g["active"]) if a <= g["experts"]]


def _check_units(g: dict, device: str, ctx: int) -> list[dict]:
    return [{"table": "kernel_checks", "kind": "kernel_checks", "shape": s, "batch": b}
            for s, b in itertools.product(g["shapes"], g["batches"])]


UNIT_KINDS = {"layer": _layer_units, "model": _model_units, "gate": _gate_units,
              "expert_sweep": _expert_sweep_units, "kernel_checks": _check_units}


# ---------------------------------------------------------------------------------------------
# the profile's ``timing`` / ``campaign`` sections: checked here, where their units are made


def _check_unit_lists(section: dict, where: str = "") -> None:
    """Shapes, variants, routings and batch sizes of a ``timing`` section or a campaign group."""
    for key, known, what in (("shapes", SHAPES, "model shape"), ("variants", TIMED_MODULES, "variant"),
                             ("routing", ROUTINGS, "routing")):
        for v in section.get(key, []):
            if v not in known:
                raise StudyConfigError(f"{where}unknown {what} {v!r}; known: {', '.join(sorted(known))}")
    for b in section.get("batches", []):
        if not isinstance(b, int) or b < 1:
            raise StudyConfigError(f"{where}batch size must be a positive integer, got {b!r}")


section_check("timing")(_check_unit_lists)


@section_check("campaign")
def check_campaign(c: dict) -> None:
    for key in ("context", "repeats", "warmup", "groups"):
        if key not in c:
            raise StudyConfigError(f"campaign lacks {key!r}")
    for g in c["groups"]:
        if g.get("kind") not in UNIT_KINDS:
            raise StudyConfigError(f"campaign group {g.get('name')!r}: unknown kind {g.get('kind')!r}; "
                                   f"known: {', '.join(UNIT_KINDS)}")
        _check_unit_lists(g, f"campaign group {g['name']!r}: ")


def timing_campaign(prof: dict) -> dict:
    """The profile's campaign; a profile with only a ``timing`` section (the CPU profiles) gets
    the one group it describes (every FFN/layer unit), under the same unit keys as before."""
    if prof.get("campaign"):
        return prof
    t = prof["timing"]
    group = {"name": "timing", "kind": "layer", "shapes": t["shapes"], "variants": t["variants"],
             "components": ["ffn", "layer"], "batches": t["batches"], "routing": t["routing"]}
    return {**prof, "campaign": {"context": t["context"], "repeats": t["repeats"], "warmup": t["warmup"],
                                 "groups": [group]}}


def unit_key(u: dict) -> str:
    """Stable file name of a unit. Layer units keep the key of the earlier timing sweep
    (shape, variant, component, batch, context, routing), so old and new runs never duplicate."""
    if u["kind"] in ("layer", "gate") and u["tokens"] == 1:
        return safe_key(u["shape"], u["variant"], u["component"], u["batch"], u["context"], u["routing"])
    if u["kind"] == "model":
        return safe_key(u["shape"], u["variant"], "model", u["batch"], u["context"], u["routing"], f"T{u['tokens']}")
    if u["kind"] == "expert_sweep":
        return safe_key(f"h{u['hidden']}", f"w{u['expert_width']}", f"E{u['experts']}", f"a{u['active_experts']}",
                        f"B{u['batch']}")
    if u["kind"] == "kernel_checks":
        return safe_key(u["shape"], f"B{u['batch']}")
    raise AssertionError(u)


def campaign_units(prof: dict, device: str) -> list[tuple[str, dict]]:
    """(group name, unit) in priority order, without duplicates."""
    c = prof["campaign"]
    seen, out = set(), []
    for g in c["groups"]:
        for u in UNIT_KINDS[g["kind"]](g, device, c["context"]):
            k = (u["table"], unit_key(u))
            if k not in seen:
                seen.add(k)
                out.append((g["name"], u))
    return out


# ---------------------------------------------------------------------------------------------
# measuring one unit


def _timed(mod, x, device: str, c: dict) -> dict:
    with torch.no_grad():
        res = bench(lambda: mod(x), device, c["repeats"], c["warmup"])
    return res.summary()


def _time_layer(u: dict, device: str, c: dict) -> dict:
    shape = get_shape(u["shape"])
    dt = _dtype(device)
    torch.manual_seed(0)
    with building_on(device, dt):
        ffn = build_ffn(u["variant"], shape, device)
        mod = ffn if u["component"] == "ffn" else DecoderLayer(shape, ffn, u["batch"], u["context"])
        forced = None
        if isinstance(ffn, MoEFFN):
            forced = (uniform_routing(u["batch"], ffn.K, ffn.k, device) if u["routing"] == "uniform"
                      else forced_routing(u["routing"], u["batch"], ffn.K, ffn.k, device))
            ffn.forced = forced
        x = torch.randn(u["batch"], shape.hidden)
    row = _timed(mod, x, device, c)
    nbytes = mod.bytes_read(forced, u["batch"])
    kernel = ffn.kernel_for(u["batch"]) if isinstance(ffn, MoEFFN) else ffn.kernel
    quantized = "" if not isinstance(ffn, QuantFFN) else "ffn" if u["component"] == "ffn" else "ffn+attention"
    return {**row, "bytes_moved": nbytes, "achieved_Bps": nbytes / row["median_s"], "kernel": kernel,
            "experts_touched": -1 if forced is None else int(forced.unique().numel()), "quantized": quantized}


def _time_model(u: dict, device: str, c: dict) -> dict:
    shape = get_shape(u["shape"])
    torch.manual_seed(0)
    with building_on(device, _dtype(device)):
        model = DecodeModel(shape, u["variant"], u["batch"], u["context"], u["tokens"], device)
        ids = torch.randint(0, shape.vocab, (u["batch"], u["tokens"]))
    row = _timed(model, ids, device, c)
    nbytes = model.bytes_read()
    return {**row, "bytes_moved": nbytes, "achieved_Bps": nbytes / row["median_s"], "kernel": model.kernel,
            "tokens_per_s": u["batch"] / row["median_s"], "quantized": model.quantized}


def _time_gate(u: dict, device: str, c: dict) -> dict:
    shape = get_shape(u["shape"])
    with building_on(device, _dtype(device)):
        router = torch.nn.Linear(shape.hidden, u["K"], bias=False)
        x = torch.randn(u["batch"], shape.hidden)

    def gate(x):
        top, idx = torch.topk(router(x).float(), u["k"], dim=-1)
        return top.softmax(-1), idx

    row = _timed(gate, x, device, c)
    nbytes = router.weight.numel() * router.weight.element_size()
    return {**row, "bytes_moved": nbytes, "achieved_Bps": nbytes / row["median_s"], "kernel": "linear+topk+softmax"}


def _time_expert_sweep(u: dict, device: str, c: dict) -> dict:
    D, W, E, a, B = u["hidden"], u["expert_width"], u["experts"], u["active_experts"], u["batch"]
    torch.manual_seed(0)
    with building_on(device, _dtype(device)):
        ffn = MoEFFN(D, W * E, E, 1)
        ffn.forced = (torch.arange(B) % a).view(B, 1)
        x = torch.randn(B, D)
    row = _timed(ffn, x, device, c)
    nbytes = ffn.bytes_read(ffn.forced, B)
    return {**row, "bytes_moved": nbytes, "achieved_Bps": nbytes / row["median_s"], "kernel": ffn.kernel_for(B)}


def _rel_err(y: torch.Tensor, ref: torch.Tensor) -> float:
    y, ref = y.double().cpu(), ref.double().cpu()
    return float((y - ref).norm() / ref.norm().clamp_min(1e-30))


def _check_kernels(u: dict, device: str, c: dict) -> list[dict]:
    """Every FFN variant against an fp64 reference of the same weights, on fresh random inputs
    (a non-finite output fails)."""
    shape = get_shape(u["shape"])
    dt = _dtype(device)
    rows = []
    gen = torch.Generator().manual_seed(int(time.time()))
    x = torch.randn(u["batch"], shape.hidden, generator=gen).to(device=device, dtype=dt)
    for variant, spec in TIMED_MODULES.items():
        if spec.get("gpu_only") and device != "cuda":
            continue
        try:
            with building_on(device, dt):
                ffn = build_ffn(variant, shape, device)
            with torch.no_grad():
                if spec["kind"] == "moe":
                    ffn.forced = uniform_routing(u["batch"], ffn.K, ffn.k, device)
                    ref = _moe_reference(ffn, x)
                elif spec["kind"] == "quant":
                    ref = _quant_reference(ffn, x)
                elif spec["kind"] == "semi24":
                    ref = None
                else:
                    ref = _dense_reference(ffn, x)
                y = ffn(x)
            if ref is None:
                continue
            err = _rel_err(y, ref)
            # bf16 outputs: ~4e-3; fp8_scaled_mm also quantizes the activations to e4m3 (~5e-2)
            tol = spec.get("tolerance", 2e-2 if dt == torch.bfloat16 else 1e-4)
            ok = bool(torch.isfinite(y).all()) and err < tol
            rows.append({"check": f"{variant} vs fp64 reference", "variant": variant, "kernel": ffn.kernel,
                         "rel_err": err, "ok": ok})
        except Exception as e:  # noqa: BLE001 - a missing kernel is a finding, not a crash
            rows.append({"check": f"{variant} vs fp64 reference", "variant": variant, "kernel": "unavailable",
                         "rel_err": float("nan"), "ok": False, "error": f"{type(e).__name__}: {e}"[:300]})
    return rows


def _dense_reference(ffn, x):
    x64 = x.double().cpu()
    return swiglu(x64 @ ffn.gu.weight.double().cpu().T) @ ffn.down.weight.double().cpu().T


def _moe_reference(ffn, x):
    x64 = x.double().cpu()
    w, idx = ffn.route(x)  # w is None for top-1: the combine weight is exactly 1
    out = torch.zeros_like(x64)
    wgu, wd = ffn.w_gu.double().cpu(), ffn.w_d.double().cpu()
    for t in range(x.shape[0]):
        for j in range(ffn.k):
            e = int(idx[t, j])
            out[t] += (1.0 if w is None else float(w[t, j])) * (swiglu(wgu[e] @ x64[t]) @ wd[e].T)
    return out


def _dequantized(lin, K: int, x) -> torch.Tensor:
    """The fp64 weight a quantized linear computes with."""
    if lin.scheme == "int4_torch":
        # tinygemm's packing is its own: de-quantize by multiplying the identity, then check the
        # kernel on x against that (and the packing through the weight error the quality runs report)
        eye = torch.eye(K, device=x.device, dtype=x.dtype)
        return torch._weight_int4pack_mm(eye, lin.q, 128, lin.s).double().cpu().T
    kind = {"int8": "int8", "fp8": "fp8", "int4": "int4", "int8_torch": "int8", "int8_compiled": "int8",
            "fp8_scaled_mm": "fp8"}[lin.scheme]
    sc = lin.s.float().cpu()
    return Q.dequantize(lin.q.cpu(), sc if kind == "int4" else sc.reshape(-1), kind).double()


def _quant_reference(ffn, x):
    wgu = _dequantized(ffn.gu, x.shape[1], x)
    wd = _dequantized(ffn.down, wgu.shape[0] // 2, x)
    return swiglu(x.double().cpu() @ wgu.T) @ wd.T


RUNNERS = {"layer": _time_layer, "model": _time_model, "gate": _time_gate, "expert_sweep": _time_expert_sweep}


# ---------------------------------------------------------------------------------------------
# the campaign


def _peaks(prof: dict, device: str) -> None:
    peaks = ResultStore("device_peaks", prof["name"])
    dev_name = torch.cuda.get_device_name(0) if device == "cuda" else "cpu"
    pk = safe_key(dev_name)
    if not peaks.has(pk):
        warm_up(device)
        peaks.write(pk, [{"device": dev_name, "copy_bandwidth_Bps": measure_copy_bandwidth(device),
                          "matmul_flops": measure_matmul_flops(device),
                          "matmul_dtype": "bf16" if device == "cuda" else "fp32"}],
                    provenance.collect(prof["name"], {"campaign": "peaks"}))


def run_campaign(prof: dict, budget_s: float | None = None, progress: bool = True, log=print) -> dict:
    """Measure every missing unit of ``prof['campaign']`` in priority order; stop before a unit
    would start past ``budget_s`` seconds. Returns counts (measured, skipped, failed, left)."""
    check_section(prof, "campaign")
    device = require_device(prof)
    c = prof["campaign"]
    t0 = time.monotonic()
    _peaks(prof, device)
    units = campaign_units(prof, device)
    stores = {t: ResultStore(t, prof["name"]) for t in {u["table"] for _, u in units}}
    todo = [(g, u) for g, u in units if not stores[u["table"]].has(unit_key(u))]
    counts = {"measured": 0, "skipped": len(units) - len(todo), "failed": 0, "left": 0}
    longest = 0.0
    bar = tqdm(todo, desc=f"campaign {prof['name']}", disable=not progress)
    for i, (group, u) in enumerate(bar):
        elapsed = time.monotonic() - t0
        if budget_s is not None and elapsed + max(longest, 1.0) > budget_s:
            counts["left"] = len(todo) - i
            log(f"budget: stopping after {elapsed:.0f}s with {counts['left']} units left (rerun to finish)")
            break
        bar.set_postfix_str(f"{group}: {unit_key(u)}"[:60])
        start = time.monotonic()
        try:
            rows = _check_kernels(u, device, c) if u["kind"] == "kernel_checks" else [RUNNERS[u["kind"]](u, device, c)]
            meta = {k: v for k, v in u.items() if k not in ("table", "kind")}
            rows = [{**meta, "group": group, **r} for r in rows]
            stores[u["table"]].write(unit_key(u), rows, provenance.collect(prof["name"], {"campaign": c, "unit": u}))
            counts["measured"] += 1
        except Exception as e:  # noqa: BLE001
            counts["failed"] += 1
            log(f"FAILED {group} {unit_key(u)}: {type(e).__name__}: {e}\n{traceback.format_exc(limit=3)}")
        finally:
            if device == "cuda":
                torch.cuda.empty_cache()
        longest = max(longest, time.monotonic() - start)
    log(f"campaign {prof['name']}: {counts} in {time.monotonic() - t0:.0f}s; triton kernels: {TG.available(device)}")
    return counts


def run_timing(prof: dict, progress: bool = True, budget_s: float | None = None) -> dict:
    """Phase 1 / 2 timing: a CPU profile's one ``timing`` group or a GPU profile's ``campaign``
    groups, resumable through the results store. Returns counts."""
    check_section(prof, "timing")
    return run_campaign(timing_campaign(prof), budget_s=budget_s, progress=progress)
