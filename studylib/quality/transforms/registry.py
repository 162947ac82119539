"""Model transforms as named, registered steps. A quality variant is a pipeline of them,
declared in ``studylib/quality/variants.yaml`` (data, in the spirit of lm-eval's task configs):

    sparsegpt30_moe4_top1: {steps: [{sparsegpt: {ratio: 0.3}}, {moe_literal: {experts: 4, top_k: 1}}]}

Adding a technique is one module here that registers a name with ``@register`` plus one line of
YAML. A transform is ``fn(model, calib, **params) -> dict`` (what it did: sparsity, active
fraction, ...); it changes ``model`` in place. ``weights_only=True`` marks transforms that only
change weight values (pruning), so the sweep may cache their result on disk.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import yaml

from studylib.config import StudyConfigError
from studylib.quality import PRUNING_METHODS

VARIANTS_FILE = Path(__file__).resolve().parent.parent / "variants.yaml"
#: every file of variant declarations, read in order (a name may be declared once): the package's
#: ``quality/variants*.yaml``, found by scanning (``variants.yaml`` first); a study built on this one,
#: or a test, appends its own file rather than editing ours
VARIANT_FILES: list[Path] = sorted(VARIANTS_FILE.parent.glob("variants*.yaml"))


def pruning_ratio(spec: dict) -> float:
    """The fraction of weights a declared variant's pruning steps remove (2:4 is 0.5; 0 if none)."""
    return max([0.5 if p.get("nm") else float(p.get("ratio", 0.0)) for t, p in spec["steps"] if t in PRUNING_METHODS],
               default=0.0)


@dataclass(frozen=True)
class Transform:
    name: str
    fn: Callable
    weights_only: bool
    after_cast: bool = False
    quantizer: bool = False
    not_executable: str | None = None


TRANSFORMS: dict[str, Transform] = {}


def register(name: str, weights_only: bool = False, after_cast: bool = False, quantizer: bool = False,
             not_executable: str | None = None):
    """``after_cast``: runs after the model is cast to its evaluation dtype (quantizers).
    ``quantizer``: replaces linears by a quantization library's layers (``make quant-check`` compares
    their kernels with the de-quantized weights). ``not_executable``: why the result has no form whose
    speed can be measured honestly (a bound, fake-quantized weights); None when it decodes as built."""
    def deco(fn):
        if name in TRANSFORMS:
            raise ValueError(f"transform {name!r} registered twice")
        TRANSFORMS[name] = Transform(name, fn, weights_only, after_cast, quantizer, not_executable)
        return fn
    return deco


def _steps(name: str, decl) -> list[tuple[str, dict]]:
    steps = []
    for s in decl.get("steps", []):
        if not (isinstance(s, dict) and len(s) == 1):
            raise StudyConfigError(f"variant {name!r}: each step is one {{transform: {{params}}}}, got {s!r}")
        (t, params), = s.items()
        steps.append((t, dict(params or {})))
    return steps


def check_steps(name: str, steps: list[tuple[str, dict]]) -> None:
    """Unknown transform or parameter: a clear error before any model is loaded."""
    for t, params in steps:
        if t not in TRANSFORMS:
            raise StudyConfigError(f"variant {name!r}: unknown transform {t!r}; known: {', '.join(sorted(TRANSFORMS))}")
        try:
            inspect.signature(TRANSFORMS[t].fn).bind(None, None, **params)
        except TypeError as e:
            raise StudyConfigError(f"variant {name!r}, transform {t!r}: {e}") from None


def declared_variants() -> dict[str, dict]:
    """{variant: {"dtype": str|None, "steps": [(transform, params)], "note": str, "family": str|None,
    "roles": [str], "timed_module": str|None}} from the YAML files."""
    raw: dict = {}
    for f in VARIANT_FILES:
        more = yaml.safe_load(Path(f).read_text()) or {}
        twice = sorted(set(raw) & set(more))
        if twice:
            raise StudyConfigError(f"variants declared twice (again in {f}): {twice}")
        raw.update(more)
    out = {}
    for name, decl in raw.items():
        decl = decl or {}
        steps = _steps(name, decl)
        check_steps(name, steps)
        roles = decl.get("roles") or []
        if not (isinstance(roles, list) and all(isinstance(r, str) for r in roles)):
            raise StudyConfigError(f"variant {name!r}: roles must be a list of names, got {roles!r}")
        timed = decl.get("timed_module")
        if timed is not None and not isinstance(timed, str):
            raise StudyConfigError(f"variant {name!r}: timed_module names one timed GPU module, got {timed!r}")
        out[name] = {"dtype": decl.get("dtype"), "steps": steps, "note": decl.get("note", ""),
                     "family": decl.get("family"), "roles": roles, "timed_module": timed}
    return out


def without_pruning(name: str) -> str | None:
    """The declared variant that is ``name``'s pipeline with its pruning steps left out (the
    conversion alone, beside the paper's pruned combination); None if none is declared."""
    known = declared_variants()
    spec = known[name]
    rest = [(t, p) for t, p in spec["steps"] if t not in PRUNING_METHODS]
    if rest == spec["steps"]:
        return None
    return next((v for v, s in known.items() if s["steps"] == rest and s["dtype"] == spec["dtype"]), None)


def with_role(role: str) -> tuple[str, ...]:
    """The variants that declare ``role`` (``roles: [...]`` in ``variants*.yaml``), in declaration
    order: which variant a claim, a table or the abstract is about is read here, never written in
    code. An unknown role is an error that lists the declared ones."""
    found = tuple(v for v, s in declared_variants().items() if role in s["roles"])
    if not found:
        known = sorted({r for s in declared_variants().values() for r in s["roles"]})
        raise StudyConfigError(f"no variant declares the role {role!r}; declared roles: {', '.join(known)}")
    return found


def variant(name: str) -> dict:
    known = declared_variants()
    if name not in known:
        raise StudyConfigError(f"unknown quality variant {name!r}; declared in {VARIANTS_FILE.name}: "
                               f"{', '.join(known)}")
    return known[name]


def weights_only(steps) -> bool:
    return bool(steps) and all(TRANSFORMS[t].weights_only for t, _ in steps)


def split_at_cast(steps) -> tuple[list, list]:
    """(steps before the cast to the evaluation dtype, steps after it); an after-cast step must
    not precede a before-cast one."""
    flags = [TRANSFORMS[t].after_cast for t, _ in steps]
    if flags != sorted(flags):
        raise StudyConfigError(f"steps {[t for t, _ in steps]}: quantization must come last")
    k = flags.index(True) if True in flags else len(steps)
    return list(steps[:k]), list(steps[k:])


def apply(model, steps, calib) -> dict:
    """Run a variant's pipeline in order; the info dicts of the steps, merged."""
    info = {}
    for t, params in steps:
        info.update(TRANSFORMS[t].fn(model, calib, **params) or {})
    return info

