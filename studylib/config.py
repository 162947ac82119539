"""Profiles (studylib/profiles.yaml) and parameter validation.

Every notebook and make target goes through ``load_profile`` + ``validate_*`` first, so a bad
value fails with a message that names it before any model is loaded or any kernel runs.
"""
from __future__ import annotations

import copy
from pathlib import Path

import yaml

PROFILES_FILE = Path(__file__).with_name("profiles.yaml")
MAX_PRUNING_RATIO = 0.95


class StudyConfigError(ValueError):
    """A bad profile or parameter, reported before any expensive work starts."""


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def available_profiles() -> list[str]:
    return sorted(yaml.safe_load(PROFILES_FILE.read_text()))


def load_profile(name: str, overrides: dict | None = None) -> dict:
    raw = yaml.safe_load(PROFILES_FILE.read_text())
    if name not in raw:
        raise StudyConfigError(f"unknown profile {name!r}; choose one of: {', '.join(sorted(raw))}")
    prof = raw[name]
    while "inherit" in prof:
        parent = prof.pop("inherit")
        prof = _merge(raw[parent], prof)
    prof = _merge(prof, overrides or {})
    prof["name"] = name
    bench = prof.get("quality", {}).get("bench_dir")
    if bench and not Path(bench).is_absolute():  # relative to the repository root, not the cwd
        prof["quality"]["bench_dir"] = str((PROFILES_FILE.parent.parent / bench).resolve())
    validate_profile(prof)
    return prof


def validate_ratio(p, what: str = "pruning ratio") -> float:
    try:
        p = float(p)
    except (TypeError, ValueError):
        raise StudyConfigError(f"{what} must be a number, got {p!r}") from None
    if not 0.0 <= p <= MAX_PRUNING_RATIO:
        raise StudyConfigError(f"{what} {p!r} is out of range [0, {MAX_PRUNING_RATIO}]")
    return p


def validate_profile(prof: dict) -> None:
    if prof.get("device") not in ("cpu", "cuda"):
        raise StudyConfigError(f"profile device must be 'cpu' or 'cuda', got {prof.get('device')!r}")
    _check_unit_lists(prof.get("timing", {}))
    _validate_campaign(prof.get("campaign"))
    if prof.get("spec_decoding"):
        from .decoding.spec_sweep import check_config  # noqa: PLC0415

        check_config(prof["spec_decoding"])
    if prof.get("cpu_decode"):
        from .decoding.cpu_speed import check_config as check_decode  # noqa: PLC0415

        check_decode(prof["cpu_decode"])
    if prof.get("cpu_kernels"):
        from .kernels.cpu_weight_kernels import check_config as check_kernels  # noqa: PLC0415

        check_kernels(prof["cpu_kernels"])
    q = prof.get("quality", {})
    for p in q.get("ratios", []):
        validate_ratio(p)
    for k in q.get("experts", []):
        if not isinstance(k, int) or k < 2:
            raise StudyConfigError(f"number of experts must be an integer >= 2, got {k!r}")
    for m in q.get("pruning_methods", []):
        if m not in ("magnitude", "wanda", "sparsegpt"):
            raise StudyConfigError(f"unknown pruning method {m!r}")
    from .taskdata import BENCH_TASKS, TASK_FILES  # noqa: PLC0415

    tasks = q.get("tasks")
    for t, n in (q.get("task_limits") or {}).items():
        if not isinstance(n, int) or n < 1:
            raise StudyConfigError(f"task_limits[{t!r}] must be a positive integer, got {n!r}")
    for t in (tasks or []) + (q.get("grid_tasks") or []) + list(q.get("task_limits") or {}):
        if t not in TASK_FILES:
            raise StudyConfigError(f"unknown task {t!r}; known: {', '.join(TASK_FILES)}")
        if t in BENCH_TASKS and not q.get("bench_dir"):
            raise StudyConfigError(f"task {t!r} reads real benchmark files: set quality.bench_dir")
    for v in q.get("variants", []) + (q.get("declared") or {}).get("variants", []):
        from .transforms import variant  # noqa: PLC0415  (declared: studylib/quality_variants.yaml)

        variant(v)
    if q.get("only"):
        from .quality_sweep import variant_specs  # noqa: PLC0415

        bad = sorted(set(q["only"]) - {s["variant"] for s in variant_specs(q)})
        if bad:
            raise StudyConfigError(f"unknown quality variant(s) {bad} in quality.only")
    if tasks and q.get("grid_tasks") and not set(q["grid_tasks"]) <= set(tasks):
        raise StudyConfigError(f"grid_tasks {q['grid_tasks']} must be a subset of tasks {tasks}")


def _check_unit_lists(section: dict, where: str = "") -> None:
    """Shapes, variants, routings and batch sizes of a ``timing`` section or a campaign group."""
    from .shapes import SHAPES  # noqa: PLC0415
    from .variants import ROUTINGS, VARIANTS  # noqa: PLC0415 (light import)

    for key, known, what in (("shapes", SHAPES, "model shape"), ("variants", VARIANTS, "variant"),
                             ("routing", ROUTINGS, "routing")):
        for v in section.get(key, []):
            if v not in known:
                raise StudyConfigError(f"{where}unknown {what} {v!r}; known: {', '.join(sorted(known))}")
    for b in section.get("batches", []):
        if not isinstance(b, int) or b < 1:
            raise StudyConfigError(f"{where}batch size must be a positive integer, got {b!r}")


def _validate_campaign(c: dict | None) -> None:
    if not c:
        return
    from .campaign import UNIT_KINDS  # noqa: PLC0415

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


def require_device(prof: dict) -> str:
    """Fail fast when a GPU-only profile runs where there is no GPU, or a profile tied to one CPU
    ISA (``cpu_isa``: its units are that machine's measurements) runs on another."""
    import torch

    if prof["device"] == "cuda" and not torch.cuda.is_available():
        raise StudyConfigError(
            f"profile {prof['name']!r} needs a CUDA GPU and none is visible; "
            "run it on the GPU machine or use PROFILE=embedded")
    if prof.get("cpu_isa"):
        from .provenance import cpu_isa  # noqa: PLC0415

        if cpu_isa() != prof["cpu_isa"]:
            raise StudyConfigError(
                f"profile {prof['name']!r} measures a CPU whose widest vector ISA is {prof['cpu_isa']}; "
                f"this one's is {cpu_isa() or 'unknown'} (its units would be mislabelled)")
    return prof["device"]


def slow_bf16_warning(prof: dict) -> str | None:
    """A bf16 CPU quality sweep on a CPU without hardware bf16: it runs, ~12x slower than on the
    AVX-512 BF16 machines the committed units came from (dense MMLU, 16 items: ~7 min on an
    AVX2-only EPYC, 2026-12-02), and its greedy generations differ from theirs on most items
    (data/machine_check/). Said before any work."""
    from .provenance import cpu_name, native_bf16

    q = prof.get("quality") or {}
    if prof.get("device") != "cpu" or q.get("dtype", prof.get("dtype")) != "bfloat16" or native_bf16() \
            or prof.get("cpu_isa"):   # a profile made for this kind of CPU knows
        return None
    return (f"warning: profile {prof['name']!r} evaluates in bf16, and this CPU ({cpu_name()}) has no hardware "
            "bf16 (avx512_bf16/amx_bf16): expect ~12x longer units than on the machines the committed units "
            "came from, and check with `make machine-check` whether it changes their answers; a conversion's "
            "calibration (fp32) is not affected")


def require_bench_dir(prof: dict) -> str | None:
    """Fail fast when the quality phase needs real benchmark files that are not there."""
    from .taskdata import BENCH_TASKS  # noqa: PLC0415

    q = prof.get("quality", {})
    bench = q.get("bench_dir")
    wants = set(q.get("tasks") or (BENCH_TASKS if bench else ())) & set(BENCH_TASKS)
    if wants and not (bench and Path(bench).is_dir()):
        raise StudyConfigError(
            f"profile {prof['name']!r} evaluates {sorted(wants)} from quality.bench_dir={bench!r}, "
            "which is not a directory (real benchmark files: see ../shared/ASSETS.md)")
    return bench
