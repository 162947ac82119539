"""Quality sweep over *declared* variants (``studylib/quality/variants.yaml``), in resumable
item chunks: one unit = model × variant × task × chunk of items.

A generated GSM8K answer costs ~10 s on 2 cores, so a variant's 300 items take most of an hour;
chunked units lose at most one chunk to an interruption, and the next run (or session) resumes at
the first missing chunk. Every variant sees the same items (the first ``counts[task]`` of the task's
fixed-seed sample), so per-item outcomes pair across variants and across sessions.

Memory (24 GB here): the dense weights are never deep-copied; each variant reloads the model from
the cached safetensors. A variant's transforms run in ``transform_dtype`` (fp32: SparseGPT's
Hessians and the routers' fits from full-precision activations), then the model is cast to the
evaluation ``dtype``. A variant is built in stages, each cached on disk so that a resumed sweep
(or the CPU decode harness) does not prune or convert again:

1. the leading weights-only steps (pruning, GPTQ), stored in the evaluation dtype as safetensors
   and shared by every variant that starts with them (``sparsegpt30`` is the first stage of
   ``sparsegpt30_literal_moe4_top1`` and of ``sparsegpt30_int8_quanto``);
2. the remaining calibrated steps (conversions), run in ``transform_dtype`` on that stored model
   — a conversion is fitted to the pruned model as it is evaluated, whether or not stage 1 came
   from the cache — and stored as a pickled module (routers and experts are not transformers layers)
   where the profile sets ``quality.cache_conversions`` (cpu-qwen: a 1.5B conversion takes ~23 min
   to fit and 3 GB to store; SmolLM2's take seconds and are not worth the disk);
3. the quantizers after the cast (quick, and not all of their modules pickle): never cached.

A cache records the recipe it was built from (steps and calibration settings) and is named by it;
``rm -rf .cache/variants`` forces a rebuild after a change to a transform's code.

Two unit layouts, declared by the profile's ``quality.unit``: ``chunk`` (the default; keys
``<model>__<variant>__<task>__cNNN``) and ``variant`` (one unit per variant holding all its tasks,
key ``<model>__<variant>``: the layout of the first grid, whose committed units keep their names).
A profile may run both: its top-level ``quality`` section and its ``quality.declared`` section
(``declared_profile``) are planned and run one after the other by ``run_quality``.
"""
from __future__ import annotations

import gc
import hashlib
import json
import math
import pickle
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import torch
from tqdm.auto import tqdm

from studylib import provenance
from studylib.config import StudyConfigError, check_section
from studylib.models import CACHE, load_model, resolve_model
from studylib.quality import (
    checks,  # noqa: F401  (registers the quality section's check)
    quant_eval,
    transforms,
)
from studylib.quality.evaluation import evaluate
from studylib.quality.taskdata import TASK_FILES, build_task_files, calibration_ids, require_bench_dir
from studylib.results import ResultStore, safe_key

ROUTING_DEFAULT = {"balance": 1.0, "max_expert_fraction": float("nan"), "c_drop": 0.0}


#: what a profile's top-level ``quality`` plans; a ``declared`` section inherits every other key
#: (model, seed, bench_dir, needle settings, ...) and plans for itself
PLAN_KEYS = ("unit", "variants", "tasks", "counts", "chunk", "variant_counts", "task_variants",
             "first_grid", "cache_stages", "only", "declared")


def declared_profile(prof: dict) -> dict | None:
    """The profile with its ``quality.declared`` section over the top-level settings it shares
    (None if it declares no variants); a declared-only profile (cpu-qwen) keeps its keys at the top."""
    q = prof["quality"]
    if q.get("declared_only"):
        return prof
    if not q.get("declared"):
        return None
    return {**prof, "quality": {**{k: v for k, v in q.items() if k not in PLAN_KEYS}, **q["declared"]}}


def sections(prof: dict) -> list[dict]:
    """The profile (or profiles) whose units ``run_quality`` runs, in order: the top-level section
    where it names variants, then the declared one."""
    q = prof["quality"]
    if q.get("declared_only"):
        return [prof]
    return [p for p in ([prof] if q.get("variants") else []) + [declared_profile(prof)] if p]


def run_quality(prof: dict, progress: bool = True) -> dict:
    """Every unit of every section of the profile not yet in data/ (``make phase1``)."""
    out = {"measured": 0, "skipped": 0}
    for p in sections(prof):
        done = run_units(p, progress)
        out = {k: out[k] + done[k] for k in out}
    return out


def plan(prof: dict, only: list[str] | None = None) -> list[dict]:
    """Every unit of the profile, in run order (variants in the profile's order, then tasks, then
    chunks); raises before any work for an unknown variant or a bad count."""
    q = prof["quality"]
    counts, chunks = q["counts"], q.get("chunk", {})
    per_variant = q.get("unit", "chunk") == "variant"  # a value other than chunk/variant fails checks.check_quality
    only = only or q.get("only")
    outside = sorted(set(only or []) - set(q["variants"]))
    if outside:
        raise StudyConfigError(f"variants {outside} are not in the profile's quality.variants {q['variants']}")
    names = [v for v in q["variants"] if v in only] if only else q["variants"]
    specs = {v: transforms.variant(v) for v in names}
    if q.get("ratio") is not None:  # `make phase1 RATIO=r`: the variants pruned at r, and the unpruned
        names = [v for v in names if transforms.pruning_ratio(specs[v]) in (0.0, float(q["ratio"]))]
    units = []
    only_for = q.get("task_variants", {})   # {task: [variants]}: a task planned for these variants only
    unknown = sorted({v for vs in only_for.values() for v in vs} - set(q["variants"]))
    if unknown:
        raise StudyConfigError(f"quality.task_variants names variants not in quality.variants: {unknown}")
    for v in names:
        own = q.get("variant_counts", {}).get(v, {})
        lim = {**counts, **own}
        for task in q["tasks"]:
            if task in only_for and v not in only_for[task]:
                continue
            n = lim.get(task)
            if n == 0 and task in own:
                continue  # this variant skips this task (declared per variant, never by default)
            if not isinstance(n, int) or n < 1:
                raise StudyConfigError(f"quality.counts[{task!r}] must be a positive integer, got {n!r}")
            size = n if per_variant else chunks.get(task, n)
            for c in range(math.ceil(n / size)):
                key = safe_key(q["model"], v) if per_variant else safe_key(q["model"], v, task, f"c{c:03d}")
                units.append({"variant": v, "spec": specs[v], "task": task, "chunk": c,
                              "lo": c * size, "hi": min(n, (c + 1) * size), "key": key})
    return units


def coverage(prof: dict) -> "pd.DataFrame":
    """Pre-registered items per variant x task beside those measured in data/ (one row each, in
    the plan's order): what a partially landed sweep judges on, and what the next run will do."""
    import pandas as pd

    q = prof["quality"]
    store = ResultStore("quality_items", prof["name"])
    rows: dict[tuple, dict] = {}
    seen = set()  # a `unit: variant` unit holds all of its variant's tasks: counted once, on its first
    for u in plan(prof):
        r = rows.setdefault((u["variant"], u["task"]), {"variant": u["variant"], "task": u["task"], "planned": 0,
                                                        "measured": 0, "units": 0, "units_left": 0})
        n = u["hi"] - u["lo"]
        r["planned"] += n
        first = u["key"] not in seen
        seen.add(u["key"])
        r["units"] += first
        if store.has(u["key"]):
            r["measured"] += n
        else:
            r["units_left"] += first
    df = pd.DataFrame(list(rows.values()), columns=["variant", "task", "planned", "measured", "units", "units_left"])
    df.insert(0, "model", q["model"])
    return df


def _dtype(name: str | None, default: str) -> torch.dtype:
    return getattr(torch, name or default)


def _calib_bench(q: dict) -> str | None:
    """Where calibration and routing windows come from: the benchmarks' own text (``calib_mixed``)
    or, with None, the essays only."""
    return q.get("bench_dir") if q.get("calib_mixed") else None


def _stage_cache(prof: dict, steps: list) -> tuple[Path, str]:
    """(directory, recipe) of the cached model after ``steps``: named by a hash of the recipe."""
    q = prof["quality"]
    keys = ("model", "dtype", "transform_dtype", "calib_tokens", "calib_mixed", "bench_dir")
    recipe = json.dumps({"steps": steps, **{k: q.get(k) for k in keys}}, sort_keys=True, default=str)
    tag = "+".join(t for t, _ in steps) + "-" + hashlib.sha256(recipe.encode()).hexdigest()[:10]
    return CACHE / "variants" / prof["name"] / q["model"] / tag, recipe


#: where the modules a cached conversion was pickled from live now (the package was regrouped on
#: 2026-12-03; a 1.5B conversion takes ~23 min to fit again, so old caches stay loadable)
MOVED_MODULES = {"studylib.transforms": "studylib.quality.transforms", "studylib.moefy": "studylib.quality.transforms.moefy",
                 "studylib.pruning": "studylib.quality.transforms.prune", "studylib.gptq": "studylib.quality.transforms.gptq"}


class _Unpickler(pickle.Unpickler):
    def find_class(self, module, name):
        for old, new in MOVED_MODULES.items():
            if module == old or module.startswith(old + "."):
                module = new + module[len(old):]
                break
        return super().find_class(module, name)


class _moved_pickle:  # noqa: N801  (the ``pickle_module`` torch.load takes: ``Unpickler`` and ``load``)
    Unpickler = _Unpickler
    load = staticmethod(lambda f, **kw: _Unpickler(f, **kw).load())


def _load_stage(where: Path, recipe: str, device: str, dtype: torch.dtype):
    """(model, tok, info) from a stage cache, or None when it is absent or another recipe's."""
    meta = where / "study_info.json"
    if not meta.exists():
        return None
    info = json.loads(meta.read_text())
    if info.pop("recipe", None) != recipe:
        return None
    if (where / "module.pt").exists():
        from transformers import AutoTokenizer

        model = torch.load(where / "module.pt", map_location=device, weights_only=False,
                           pickle_module=_moved_pickle)
        return model.to(dtype), AutoTokenizer.from_pretrained(str(where)), info
    model, tok = load_model(str(where), device, dtype)
    return model, tok, info


def _save_stage(where: Path, recipe: str, model, tok, info: dict, as_module: bool) -> None:
    where.mkdir(parents=True, exist_ok=True)
    if as_module:
        torch.save(model, where / "module.pt")
    else:
        model.save_pretrained(where)
    tok.save_pretrained(where)
    (where / "study_info.json").write_text(json.dumps({**info, "recipe": recipe}))


def build_variant(prof: dict, variant: str, spec: dict):
    """(model, tokenizer, info) for one declared variant, in its evaluation dtype (stages above)."""
    q = prof["quality"]
    dtype = _dtype(spec["dtype"], q.get("dtype", "float32"))
    tdtype = _dtype(q.get("transform_dtype"), "float32")
    before, after = transforms.split_at_cast(spec["steps"])
    k = next((i for i, (t, _) in enumerate(before) if not transforms.TRANSFORMS[t].weights_only), len(before))
    stages = [before[:k], before] if 0 < k < len(before) else [before]
    hit, done = None, []
    for st in reversed([s for s in stages if s]):  # the longest cached stage
        hit = _load_stage(*_stage_cache(prof, st), prof["device"], dtype)
        if hit is not None:
            done = st
            break
    if hit is not None:
        model, tok, info = hit
    else:
        model, tok = load_model(q["model"], prof["device"], tdtype if before else dtype)
        info = {"method": "none", "ratio": 0.0, "weight_sparsity": 0.0}
    pending = [st for st in stages if len(st) > len(done)]
    # only the steps before the cast calibrate (after-cast quantizers take none)
    calib = calibration_ids(tok, q["calib_tokens"], bench_dir=_calib_bench(q)) if pending else None
    for st in pending:
        model = model.to(tdtype)
        info.update(transforms.apply(model, st[len(done):], calib.to(prof["device"])))
        model = model.to(dtype)
        as_module = not transforms.weights_only(st)
        if q.get("cache_stages", True) and (not as_module or q.get("cache_conversions")):  # a module costs a model's size
            _save_stage(*_stage_cache(prof, st), model, tok, info, as_module=as_module)
        done = st
    if after:
        info.update(transforms.apply(model, after, calib))
    return model, tok, info


def _routing(model, tok, q: dict) -> dict:
    """Routing statistics of converted FFNs (none for dense/pruned variants), counted on held-out
    windows (seed 2, not the calibration windows) fed one sequence at a time: real tokens only."""
    from studylib.quality.transforms.ffn import masked_ffns, routing_pass

    if not masked_ffns(model):
        return dict(ROUTING_DEFAULT)
    windows = calibration_ids(tok, q.get("routing_tokens", 2048), seed=2, bench_dir=_calib_bench(q))
    return routing_pass(model, windows.to(next(model.parameters()).device))


def fast_exact_linears(model, device: str) -> str:
    """Pre-pack a bf16 CPU model's linear layers for oneDNN (``kernels.cpu_linear``) when packed
    and eager products agree bit for bit on this machine: evaluation gets faster (1.3-1.9x per
    product at the batch sizes used) and its results do not depend on it. Else eager, as before.
    Called after the routing row (routing statistics read the modules as built)."""
    from studylib.kernels import cpu_linear

    if device != "cpu" or model.dtype != torch.bfloat16 or not cpu_linear.packing_is_exact():
        return "eager"
    cpu_linear.pack_linears(model)
    return cpu_linear.KERNEL


def evaluation_kernels(model, prof: dict) -> dict:
    """Put a built variant on the kernels its items are evaluated with (after its routing row),
    in place; the labels its provenance records: ``quant_kernel`` only where there is a quantized
    layer, and ``linear_kernel``."""
    out = {}
    if quant_eval.quantized_linears(model):
        out["quant_kernel"] = quant_eval.prepare(model, prof["quality"].get("quant_eval", "library"))
    out["linear_kernel"] = fast_exact_linears(model, prof["device"])
    return out


def task_lines(prof: dict, limits: dict[str, int]) -> dict[str, list[str]]:
    """The first ``limits[task]`` items of each task's fixed-seed sample, one JSON line each."""
    if not limits:
        return {}
    q = prof["quality"]
    files = build_task_files(CACHE / "taskdata" / prof["name"], max(limits.values()), q["seed"],
                             q.get("needle_lengths", []), q.get("bench_dir"), q.get("essay_words", 600),
                             tasks=list(limits), needle_per_length=q.get("needle_per_length"), task_limits=limits)
    return {t: files[t].read_text().splitlines(keepends=True) for t in limits}


def evaluate_items(model, tok, prof: dict, parts: list[dict], lines: dict[str, list[str]], lm=None):
    """Per-item results of one unit: items [lo, hi) of each part's task (lines from ``task_lines``)."""
    q = prof["quality"]
    files = {}
    for u in parts:
        task, lo, hi = u["task"], u["lo"], u["hi"]
        files[task] = CACHE / "taskdata" / prof["name"] / "chunks" / f"{task}-{lo}-{hi}.jsonl"
        files[task].parent.mkdir(parents=True, exist_ok=True)
        files[task].write_text("".join(lines[task][lo:hi]))
    return evaluate(model, tok, files, batch_size=q.get("batch_size", 8), device=prof["device"],
                    gen_batch_size=q.get("gen_batch_size"), softmax_dtype=q.get("softmax_dtype"), lm=lm)


def evaluate_task_items(model, tok, prof: dict, task: str, lines: list[str], lo: int, hi: int, lm=None):
    """Items [lo, hi) of one task (``lines``: its JSONL lines), as a unit evaluates them (through ``lm``,
    an lm-eval model, where given)."""
    return evaluate_items(model, tok, prof, [{"task": task, "lo": lo, "hi": hi}], {task: lines}, lm=lm)


#: engines a sweep evaluates through: ``name -> factory(prof, variant, spec, built) -> context manager``
#: yielding ``(evaluate(parts, lines) -> per-item frame, provenance labels)``. ``built`` is a
#: ``BuiltVariant``: the variant built once, on first use. ``ours`` (below) evaluates our model in this
#: process; ``vllm`` (``studylib.serving.backend``) a ``vllm serve`` process holding its exported checkpoint.
BACKENDS: dict[str, Callable] = {}


def backend(name: str):
    """Register an evaluation engine for ``run_units(..., backend=name)``."""
    def deco(fn):
        BACKENDS[name] = fn
        return fn
    return deco


class BuiltVariant:
    """A variant built on first use (``get()``) and released on demand (``release()``), so that an
    engine that needs only its checkpoint does not keep the model in this process's memory."""

    def __init__(self, prof: dict, variant: str, spec: dict):
        self.prof, self.variant, self.spec, self._built = prof, variant, spec, None

    def get(self):
        if self._built is None:
            self._built = build_variant(self.prof, self.variant, self.spec)
        return self._built

    def release(self) -> None:
        self._built = None
        gc.collect()


@backend("ours")
@contextmanager
def _ours(prof: dict, variant: str, spec: dict, built: BuiltVariant):
    """Our model in this process, on the kernels ``evaluation_kernels`` picks (lm-eval's HFLM)."""
    model, tok, _ = built.get()
    labels = {"engine": "ours", "weights_digest": provenance.weights_digest(model), **evaluation_kernels(model, prof)}
    yield (lambda parts, lines: evaluate_items(model, tok, prof, parts, lines)), labels


def run_units(prof: dict, progress: bool = True, only: list[str] | None = None,
              tasks: list[str] | None = None, backend: str = "ours") -> dict:
    """Measure every unit of the plan not yet in data/. ``only`` / ``tasks`` restrict this run to
    some variants / tasks (the order in which a long sweep fills in; the plan itself is fixed).
    ``backend``: the engine that evaluates the units (``BACKENDS``); each unit's provenance names it
    (``engine``) with its wall time (``wall_s``)."""
    q = prof["quality"]
    check_section(prof, "quality")
    require_bench_dir(prof)
    resolve_model(q["model"])  # unknown / not installed: fail before any work
    if q.get("softmax_dtype") not in (None, "float32", "bfloat16", "float16"):
        raise StudyConfigError(f"quality.softmax_dtype must be float32, bfloat16 or float16, not {q['softmax_dtype']!r}")
    if q.get("quant_eval", "library") not in quant_eval.MODES:
        raise StudyConfigError(f"quality.quant_eval must be one of {quant_eval.MODES}, not {q['quant_eval']!r}")
    if backend not in BACKENDS:
        raise StudyConfigError(f"backend {backend!r} is not registered; known: {sorted(BACKENDS)}")
    units = plan(prof, only)
    unknown = sorted(set(tasks or []) - set(q["tasks"]))
    if unknown:
        raise StudyConfigError(f"tasks {unknown} are not in the profile's quality.tasks {q['tasks']}")
    items = ResultStore("quality_items", prof["name"])
    vstore = ResultStore("quality_variants", prof["name"])
    todo = [u for u in units if not items.has(u["key"]) and (not tasks or u["task"] in tasks)]
    left_out = {u["key"] for u in units if tasks and u["task"] not in tasks and not items.has(u["key"])}
    split = sorted({u["key"] for u in todo} & left_out)
    if split:
        raise StudyConfigError(f"--tasks {tasks} would split units that hold several tasks ({split[0]}, ...): "
                               "a `unit: variant` profile runs all of a variant's tasks at once")
    # a run killed after a variant's items but before its routing row: rebuild it for the row alone
    orphans = [v for v in dict.fromkeys(u["variant"] for u in units) if not vstore.has(safe_key(q["model"], v))
               and any(items.has(u["key"]) for u in units if u["variant"] == v)]
    if not todo and not orphans:
        return {"measured": 0, "skipped": len({u["key"] for u in units})}
    check = getattr(BACKENDS[backend], "check", None)   # an engine's own check, before any model is built
    if check:
        for variant in dict.fromkeys(u["variant"] for u in todo):
            check(prof, variant, next(u["spec"] for u in units if u["variant"] == variant))
    needed = list(dict.fromkeys(u["task"] for u in todo))  # a variant may plan 0 items of a task
    lines = task_lines(prof, {t: max(u["hi"] for u in units if u["task"] == t) for t in needed})
    bar = tqdm(total=len({u["key"] for u in todo}), desc="quality units", disable=not progress)
    measured = 0
    for variant in dict.fromkeys([u["variant"] for u in todo] + orphans):
        mine = [u for u in todo if u["variant"] == variant]
        if mine and variant not in orphans and all(items.held_elsewhere(u["key"]) or items.has(u["key"])
                                                   for u in mine):
            tqdm.write(f"skipping {variant}: another sweep holds or has written all of its units; not built")
            bar.update(len(_by_key(mine)))
            continue
        spec = next(u["spec"] for u in units if u["variant"] == variant)
        built = BuiltVariant(prof, variant, spec)
        vkey = safe_key(q["model"], variant)
        dtype = str(_dtype(spec["dtype"], q.get("dtype", "float32"))).replace("torch.", "")
        params = {"quality": dict(q), "variant": variant, "steps": [[t, p] for t, p in spec["steps"]],
                  "dtype": f"torch.{dtype}"}
        if not vstore.has(vkey):  # the variant's row first: a kill after it loses at most one unit
            model, tok, info = built.get()
            # the first grid's Eq. 25 design is declared by the profile (``first_grid``), as its rows always said
            grid = {"grid": variant in q["first_grid"]} if "first_grid" in q else {}
            vstore.write(vkey, [{"model": q["model"], "variant": variant, "experts": 1, "top_k": 1,
                                 "capacity_factor": None, **info, **_routing(model, tok, q), "dtype": dtype,
                                 **grid}],
                         provenance.collect(prof["name"], params))
        if not mine:
            built.release()
            continue
        with BACKENDS[backend](prof, variant, spec, built) as (evaluate_parts, labels):
            params.update(labels)
            for key, parts in _by_key(mine).items():
                with items.claim(key) as ours:
                    if ours:
                        t0 = time.perf_counter()
                        df = evaluate_parts(parts, lines)
                        wall = time.perf_counter() - t0
                        where = {"task": parts[0]["task"], "items": [parts[0]["lo"], parts[0]["hi"]]} if len(parts) == 1 \
                            else {"tasks": {u["task"]: [u["lo"], u["hi"]] for u in parts}}
                        df.insert(0, "variant", variant)
                        df.insert(0, "model", q["model"])
                        df["dtype"] = dtype
                        items.write(key, df, provenance.collect(prof["name"], {**params, **where, "wall_s": round(wall, 1)}))
                        measured += 1
                    else:
                        tqdm.write(f"skipping {key}: another sweep is measuring it or has written it")
                bar.update(1)
        built.release()
    bar.close()
    return {"measured": measured, "skipped": len({u["key"] for u in units}) - measured}


def _by_key(units: list[dict]) -> dict[str, list[dict]]:
    """Units grouped by the file they are written to (one part each, or all of a variant's tasks)."""
    out: dict[str, list[dict]] = {}
    for u in units:
        out.setdefault(u["key"], []).append(u)
    return out


def rescore(prof: dict, progress: bool = True) -> dict:
    """Judge the committed generated answers of every generation task that declares an answer
    checker (``tasks/answers.py``) again, from the stored responses (nothing is regenerated): one
    ``answer_scores`` unit per ``quality_items`` unit, same key, resumable. Units measured since
    the checker was wired into evaluation carry its scores already and are skipped."""
    import pandas as pd

    from studylib.quality.evaluation import answer_check, checked_columns

    q = prof["quality"]
    require_bench_dir(prof)
    items = ResultStore("quality_items", prof["name"])
    scores = ResultStore("answer_scores", prof["name"])
    todo = []
    for key in items.keys():
        if scores.has(key):
            continue
        head = pd.read_csv(items.path(key), nrows=1)
        task = str(head["task"].iloc[0])
        if task in TASK_FILES and answer_check(task) and "correct_string" not in head:
            todo.append((key, task))
    done = 0
    docs: dict[str, dict] = {}
    for key, task in tqdm(todo, desc="re-judging generated answers", disable=not progress):
        if task not in docs:
            path = build_task_files(CACHE / "taskdata" / prof["name"] / "rescore", 10**9, q["seed"], [],
                                    q.get("bench_dir"), tasks=[task])[task]
            docs[task] = {d["id"]: d for d in map(json.loads, path.read_text().splitlines())}
        unit = pd.read_csv(items.path(key), keep_default_na=False, na_values=[""])
        spec = answer_check(task)
        rows = []
        for r in unit.to_dict("records"):
            row = {"model": r["model"], "variant": r["variant"], "task": task, "item_id": r["item_id"],
                   **checked_columns(spec, {"response": "" if pd.isna(r.get("response")) else str(r["response"]),
                                            "correct": r["correct"], "correct_flexible": r.get("correct_flexible")},
                                     docs[task][r["item_id"]])}
            rows.append(row)
        scores.write(key, rows, provenance.collect(prof["name"], {"rescored_unit": key, "task": task,
                                                                  "answer_check": spec}))
        done += 1
    return {"rescored": done, "skipped": len(items.keys()) - done}
