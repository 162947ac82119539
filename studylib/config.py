"""Profiles (studylib/profiles.yaml) and parameter validation.

Every notebook and make target goes through ``load_profile`` + ``validate_*`` first, so a bad
value fails with a message that names it before any model is loaded or any kernel runs.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Callable

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


def load_profile(name: str, overrides: dict | None = None, validate: bool = True) -> dict:
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
    if validate:
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


#: {section: [check(section_dict)]}: each profile section is checked by the module that owns it,
#: which registers its check with ``@section_check`` where it is defined (quality, timing, decoding);
#: this module imports none of them, so the registry runs one way.
SECTION_CHECKS: dict[str, list[Callable[[dict], None]]] = {}


def section_check(section: str):
    """Register ``fn(section_dict)`` as a check of the profile section ``section``."""
    def deco(fn):
        SECTION_CHECKS.setdefault(section, []).append(fn)
        return fn
    return deco


def check_keys(section: str, s: dict, required, optional=()) -> None:
    """A section's keys: every required one present, none unknown (a YAML indentation slip)."""
    missing = [k for k in required if k not in s]
    if missing:
        raise StudyConfigError(f"{section} needs {missing}")
    extra = sorted(set(s) - set(required) - set(optional))
    if extra:
        raise StudyConfigError(f"{section}: unknown key(s) {extra} (a YAML indentation slip?)")


def check_section(prof: dict, section: str) -> None:
    """Run the registered checks of one section (a runner calls it for the section it reads, so a
    bad value fails before any work even where the profile was loaded before the owner was imported)."""
    if prof.get(section):
        for fn in SECTION_CHECKS.get(section, []):
            fn(prof[section])


def validate_profile(prof: dict) -> None:
    """The device, then every section whose owner has registered a check (``python -m studylib
    check`` imports every owner first)."""
    if prof.get("device") not in ("cpu", "cuda"):
        raise StudyConfigError(f"profile device must be 'cpu' or 'cuda', got {prof.get('device')!r}")
    for section in list(SECTION_CHECKS):
        check_section(prof, section)


def require_device(prof: dict) -> str:
    """Fail fast when a GPU-only profile runs where there is no GPU, or a profile tied to one CPU
    ISA (``cpu_isa``: its units are that machine's measurements) runs on another."""
    import torch

    if prof["device"] == "cuda" and not torch.cuda.is_available():
        raise StudyConfigError(
            f"profile {prof['name']!r} needs a CUDA GPU and none is visible; "
            "run it on the GPU machine or use PROFILE=embedded")
    if prof.get("cpu_isa"):
        from studylib.provenance import cpu_isa  # noqa: PLC0415

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
    from studylib.provenance import cpu_name, native_bf16

    q = prof.get("quality") or {}
    if prof.get("device") != "cpu" or q.get("dtype", prof.get("dtype")) != "bfloat16" or native_bf16() \
            or prof.get("cpu_isa"):   # a profile made for this kind of CPU knows
        return None
    return (f"warning: profile {prof['name']!r} evaluates in bf16, and this CPU ({cpu_name()}) has no hardware "
            "bf16 (avx512_bf16/amx_bf16): expect ~12x longer units than on the machines the committed units "
            "came from, and check with `make machine-check` whether it changes their answers; a conversion's "
            "calibration (fp32) is not affected")
