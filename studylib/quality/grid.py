"""Phase 1 quality sweep: prune / MoE-convert the real model, evaluate every variant on the
same items, store per-item outcomes and routing statistics. One unit = one model variant."""
from __future__ import annotations

import copy

from tqdm.auto import tqdm

from studylib import provenance
from studylib.config import StudyConfigError, check_section, section_check, validate_ratio
from studylib.models import CACHE, load_model, resolve_model
from studylib.quality import checks  # noqa: F401  (registers the quality section's check)
from studylib.quality.evaluation import evaluate
from studylib.quality.taskdata import build_task_files, calibration_ids, require_bench_dir
from studylib.quality.transforms.moefy import moefy_model, routing_summary
from studylib.quality.transforms.prune import prune_model
from studylib.quality.units import ROUTING_DEFAULT, declared_profile, run_units
from studylib.results import ResultStore, safe_key


def variant_specs(q: dict) -> list[dict]:
    """The profile's model variants, in a stable order."""
    specs = [{"variant": "dense"}]
    for m in q["pruning_methods"]:
        for p in q["ratios"]:
            specs.append({"variant": f"{m}{int(round(p * 100))}", "method": m, "ratio": validate_ratio(p)})
        if q.get("semi_structured") and m != "magnitude":
            specs.append({"variant": f"{m}_2of4", "method": m, "nm": (2, 4), "ratio": 0.5})
    for K in q["experts"]:
        for k in q["top_k"]:
            if k < K:
                specs.append({"variant": f"moe{K}_top{k}", "K": K, "top_k": k})
    specs.append({"variant": "sparsegpt30_moe4_top1", "method": "sparsegpt", "ratio": 0.3, "K": 4, "top_k": 1})
    grid = q["eq25_grid"]  # pruning ratio × router bias (lowers balance) × capacity (drops tokens)
    for p in grid["ratios"]:
        for b in grid["bias"]:
            for cf in grid["capacity"]:
                point = {"method": "sparsegpt" if p else None, "ratio": p, "K": 4, "top_k": 1, "bias": b,
                         "capacity_factor": cf}
                same = [s for s in specs if _config(s) == _config(point)]
                if same:  # already a named variant (moe4_top1, the paper's combination): reuse it
                    same[0]["grid"] = True
                else:
                    specs.append({"variant": f"grid_p{int(p * 100)}_b{b}_cf{cf}", **point, "grid": True,
                                  "grid_only": True})
    return specs


@section_check("quality")
def check_only(q: dict) -> None:
    """``quality.only`` names variants of this grid (imported for the check only where a profile sets it)."""
    if q.get("only"):
        bad = sorted(set(q["only"]) - {s["variant"] for s in variant_specs(q)})
        if bad:
            raise StudyConfigError(f"unknown quality variant(s) {bad} in quality.only")


def files_for(spec: dict, files: dict, grid_files: dict) -> dict:
    """Grid-only points see grid_tasks; a named variant that is also a grid point (the paper's
    30% SparseGPT + 4-expert top-1, moe4_top1) is evaluated on every task."""
    return grid_files if spec.get("grid_only") else files


def _config(spec: dict) -> tuple:
    return (spec.get("method") if spec.get("ratio") else None, spec.get("ratio", 0.0) or 0.0, spec.get("nm"),
            spec.get("K"), spec.get("top_k"), spec.get("bias", 0.0) or 0.0, spec.get("capacity_factor"))


def apply_variant(model, spec: dict, calib) -> dict:
    info = {"method": spec.get("method") or "none", "ratio": spec.get("ratio", 0.0),
            "experts": spec.get("K", 1), "top_k": spec.get("top_k", 1),
            "capacity_factor": spec.get("capacity_factor"), "weight_sparsity": 0.0}
    if spec.get("method") and (spec.get("ratio", 0) > 0 or spec.get("nm")):
        info.update(prune_model(model, calib, spec["method"], spec.get("ratio", 0.0), spec.get("nm"), progress=False))
    moes = []
    if "K" in spec:
        moes = moefy_model(model, calib, spec["K"], spec["top_k"], spec.get("capacity_factor"),
                           spec.get("bias", 0.0), progress=False)
        for m in moes:  # calibration passes must not count in the eval's routing statistics
            m.reset_stats()
    return info, moes


def run_quality(prof: dict, progress: bool = True, only: list[str] | None = None) -> dict:
    q = prof["quality"]
    if q.get("declared_only"):  # declared variants only, in item-chunked units
        return run_units(prof, progress, only)
    legacy = _run_legacy(prof, progress, only)
    if declared_profile(prof):  # then the profile's declared variants (issue 12's conversions)
        done = run_units(declared_profile(prof), progress)
        legacy = {k: legacy[k] + done[k] for k in legacy}
    return legacy


def _run_legacy(prof: dict, progress: bool = True, only: list[str] | None = None) -> dict:
    q = prof["quality"]
    device = prof["device"]
    check_section(prof, "quality")
    require_bench_dir(prof)
    resolve_model(q["model"])  # unknown / not installed: fail before any work
    specs = variant_specs(q)
    only = only or q.get("only")
    if only:
        unknown = sorted(set(only) - {s["variant"] for s in specs})
        if unknown:
            raise ValueError(f"unknown quality variant(s) {unknown}")
        by_name = {s["variant"]: s for s in specs}
        specs = [by_name[v] for v in only]  # in the order given: most important first
    items = ResultStore("quality_items", prof["name"])
    vstore = ResultStore("quality_variants", prof["name"])
    todo = [s for s in specs if not items.has(safe_key(q["model"], s["variant"]))]
    if not todo:
        return {"measured": 0, "skipped": len(specs)}
    files = build_task_files(CACHE / "taskdata" / prof["name"], q["limit"] or 10**9, q["seed"],
                             q["needle_lengths"], q.get("bench_dir"), q.get("essay_words", 600),
                             q.get("tasks"), q.get("needle_per_length"), q.get("task_limits"))
    grid_files = {t: files[t] for t in (q.get("grid_tasks") or files)}
    model, tok = load_model(q["model"], device)
    calib = calibration_ids(tok, q["calib_tokens"]).to(device)
    dense_state = copy.deepcopy(model.state_dict())
    for spec in tqdm(todo, desc="quality variants", disable=not progress):
        model.load_state_dict(dense_state)
        info, moes = apply_variant(model, spec, calib)
        df = evaluate(model, tok, files_for(spec, files, grid_files), device=device)
        route = routing_summary(moes) if moes else dict(ROUTING_DEFAULT)
        for layer, m in zip(model.model.layers, moes):  # undo the conversion
            layer.mlp = m.mlp
        params = {"quality": {k: v for k, v in q.items()}, "spec": spec}
        prov = provenance.collect(prof["name"], params)
        key = safe_key(q["model"], spec["variant"])
        vstore.write(key, [{"model": q["model"], "variant": spec["variant"], **info, **route,
                            "grid": bool(spec.get("grid")), "bias": spec.get("bias", 0.0)}], prov)
        df.insert(0, "variant", spec["variant"])
        df.insert(0, "model", q["model"])
        items.write(key, df, prov)
    return {"measured": len(todo), "skipped": len(specs) - len(todo)}
