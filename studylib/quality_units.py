"""Quality sweep over *declared* variants (``studylib/quality_variants.yaml``), in resumable
item chunks: one unit = model × variant × task × chunk of items.

A generated GSM8K answer costs ~10 s on 2 cores, so a variant's 300 items take most of an hour;
chunked units lose at most one chunk to an interruption, and the next run (or session) resumes at
the first missing chunk. Every variant sees the same items (the first ``counts[task]`` of the task's
fixed-seed sample), so per-item outcomes pair across variants and across sessions.

Memory (24 GB here): the dense weights are never deep-copied; each variant reloads the model from
the cached safetensors. A variant's transforms run in ``transform_dtype`` (fp32: SparseGPT's
Hessians and the routers' fits from full-precision activations), then the model is cast to the
evaluation ``dtype``; a weights-only pipeline (pruning) is cached on disk so that a resumed
sweep does not prune again.
"""
from __future__ import annotations

import gc
import json
import math
from pathlib import Path

import torch
from tqdm.auto import tqdm

from . import provenance, transforms
from .config import StudyConfigError, require_bench_dir
from .evaluation import evaluate
from .models import CACHE, load_model, resolve_model
from .results import ResultStore, safe_key
from .taskdata import build_task_files, calibration_ids

ROUTING_DEFAULT = {"balance": 1.0, "max_expert_fraction": float("nan"), "c_drop": 0.0}


def declared_profile(prof: dict) -> dict | None:
    """The profile with its ``quality.declared`` section merged over ``quality`` (None if it
    declares no variants); a declared-only profile (cpu-qwen) keeps its keys at the top."""
    q = prof["quality"]
    if q.get("declared_only"):
        return prof
    if not q.get("declared"):
        return None
    return {**prof, "quality": {**q, **q["declared"]}}


def plan(prof: dict, only: list[str] | None = None) -> list[dict]:
    """Every unit of the profile, in run order (variants in the profile's order, then tasks, then
    chunks); raises before any work for an unknown variant or a bad count."""
    q = prof["quality"]
    counts, chunks = q["counts"], q.get("chunk", {})
    names = only or q["variants"]
    specs = {v: transforms.variant(v) for v in names}
    units = []
    for v in names:
        own = q.get("variant_counts", {}).get(v, {})
        lim = {**counts, **own}
        for task in q["tasks"]:
            n = lim.get(task)
            if n == 0 and task in own:
                continue  # this variant skips this task (declared per variant, never by default)
            if not isinstance(n, int) or n < 1:
                raise StudyConfigError(f"quality.counts[{task!r}] must be a positive integer, got {n!r}")
            size = chunks.get(task, n)
            for c in range(math.ceil(n / size)):
                units.append({"variant": v, "spec": specs[v], "task": task, "chunk": c,
                              "lo": c * size, "hi": min(n, (c + 1) * size),
                              "key": safe_key(q["model"], v, task, f"c{c:03d}")})
    return units


def _dtype(name: str | None, default: str) -> torch.dtype:
    return getattr(torch, name or default)


def _variant_cache(prof: dict, variant: str) -> Path:
    q = prof["quality"]
    return CACHE / "variants" / prof["name"] / q["model"] / variant


def build_variant(prof: dict, variant: str, spec: dict):
    """(model, tokenizer, info) for one declared variant, in its evaluation dtype."""
    q = prof["quality"]
    dtype = _dtype(spec["dtype"], q.get("dtype", "float32"))
    steps = spec["steps"]
    cached = _variant_cache(prof, variant)
    if transforms.weights_only(steps) and (cached / "config.json").exists():
        model, tok = load_model(str(cached), prof["device"], dtype)
        return model, tok, json.loads((cached / "study_info.json").read_text())
    before, after = transforms.split_at_cast(steps)
    model, tok = load_model(q["model"], prof["device"], _dtype(q.get("transform_dtype"), "float32") if before else dtype)
    info = {"method": "none", "ratio": 0.0, "weight_sparsity": 0.0}
    calib = None  # only the steps before the cast calibrate (after-cast quantizers take none)
    if before:
        calib = calibration_ids(tok, q["calib_tokens"], bench_dir=q.get("bench_dir") if q.get("calib_mixed") else None)
        info.update(transforms.apply(model, before, calib.to(prof["device"])))
        model = model.to(dtype)
    if after:
        info.update(transforms.apply(model, after, calib))
    if transforms.weights_only(steps):
        model.save_pretrained(cached)
        tok.save_pretrained(cached)
        (cached / "study_info.json").write_text(json.dumps(info))
    return model, tok, info


def _routing(model, tok, q: dict) -> dict:
    """Routing statistics of converted FFNs (none for dense/pruned variants), counted on held-out
    windows (seed 2, not the calibration windows) fed one sequence at a time: real tokens only."""
    from .transforms.ffn import masked_ffns, routing_pass

    if not masked_ffns(model):
        return dict(ROUTING_DEFAULT)
    windows = calibration_ids(tok, q.get("routing_tokens", 2048), seed=2,
                              bench_dir=q.get("bench_dir") if q.get("calib_mixed") else None)
    return routing_pass(model, windows.to(next(model.parameters()).device))


def run_units(prof: dict, progress: bool = True, only: list[str] | None = None,
              tasks: list[str] | None = None) -> dict:
    """Measure every unit of the plan not yet in data/. ``only`` / ``tasks`` restrict this run to
    some variants / tasks (the order in which a long sweep fills in; the plan itself is fixed)."""
    q = prof["quality"]
    require_bench_dir(prof)
    resolve_model(q["model"])  # unknown / not installed: fail before any work
    units = plan(prof, only)
    unknown = sorted(set(tasks or []) - set(q["tasks"]))
    if unknown:
        raise StudyConfigError(f"tasks {unknown} are not in the profile's quality.tasks {q['tasks']}")
    items = ResultStore("quality_items", prof["name"])
    vstore = ResultStore("quality_variants", prof["name"])
    todo = [u for u in units if not items.has(u["key"]) and (not tasks or u["task"] in tasks)]
    if not todo:
        return {"measured": 0, "skipped": len(units)}
    biggest = {t: max(u["hi"] for u in units if u["task"] == t) for t in q["tasks"]}
    files = build_task_files(CACHE / "taskdata" / prof["name"], max(biggest.values()), q["seed"],
                             q.get("needle_lengths", []), q.get("bench_dir"), q.get("essay_words", 600),
                             tasks=q["tasks"], needle_per_length=q.get("needle_per_length"), task_limits=biggest)
    lines = {t: files[t].read_text().splitlines(keepends=True) for t in q["tasks"]}
    chunk_dir = CACHE / "taskdata" / prof["name"] / "chunks"
    chunk_dir.mkdir(parents=True, exist_ok=True)
    bar = tqdm(total=len(todo), desc="quality units", disable=not progress)
    for variant in dict.fromkeys(u["variant"] for u in todo):
        mine = [u for u in todo if u["variant"] == variant]
        spec = mine[0]["spec"]
        model, tok, info = build_variant(prof, variant, spec)
        vkey = safe_key(q["model"], variant)
        dtype = str(model.dtype).replace("torch.", "")
        params = {"quality": dict(q), "variant": variant, "steps": [[t, p] for t, p in spec["steps"]],
                  "dtype": str(model.dtype)}
        for u in mine:
            part = chunk_dir / f"{u['task']}-{u['lo']}-{u['hi']}.jsonl"
            part.write_text("".join(lines[u["task"]][u["lo"]:u["hi"]]))
            df = evaluate(model, tok, {u["task"]: part}, batch_size=q.get("batch_size", 8), device=prof["device"],
                          gen_batch_size=q.get("gen_batch_size"))
            prov = provenance.collect(prof["name"], {**params, "task": u["task"], "items": [u["lo"], u["hi"]]})
            df.insert(0, "variant", variant)
            df.insert(0, "model", q["model"])
            df["dtype"] = dtype
            items.write(u["key"], df, prov)
            if not vstore.has(vkey):
                vstore.write(vkey, [{"model": q["model"], "variant": variant, "experts": 1, "top_k": 1,
                                     "capacity_factor": None, **info, **_routing(model, tok, q),
                                     "dtype": dtype}], prov)
            bar.update(1)
        del model
        gc.collect()
    bar.close()
    return {"measured": len(todo), "skipped": len(units) - len(todo)}
