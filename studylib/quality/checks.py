"""The profile's ``quality`` section, checked before any model loads (registered with ``config``).
Light on purpose: the GPU image validates its profiles with this module and has no quality stack, so
the transforms (and the first grid) are imported only when the section names variants."""
from __future__ import annotations

from studylib.config import StudyConfigError, section_check, validate_ratio
from studylib.quality.taskdata import BENCH_TASKS, TASK_FILES


@section_check("quality")
def check_quality(q: dict) -> None:
    """The profile's ``quality`` section: tasks, counts, the ratio filter and the variants each part
    names (unknown names fail here, before any model loads)."""
    if q.get("ratio") is not None:
        validate_ratio(q["ratio"])
    for part in (q, q.get("declared") or {}):
        tasks = part.get("tasks") or []
        for t in tasks + list(part.get("counts") or {}):
            if t not in TASK_FILES:
                raise StudyConfigError(f"unknown task {t!r}; known: {', '.join(TASK_FILES)}")
            if t in BENCH_TASKS and not q.get("bench_dir"):
                raise StudyConfigError(f"task {t!r} reads real benchmark files: set quality.bench_dir")
        for t, n in (part.get("counts") or {}).items():
            if not isinstance(n, int) or n < 1:
                raise StudyConfigError(f"quality.counts[{t!r}] must be a positive integer, got {n!r}")
        names = part.get("variants") or []
        for key in ("only", "first_grid", "eq25_grid_variants"):
            outside = sorted(set(part.get(key) or []) - set(names))
            if outside:
                raise StudyConfigError(f"quality.{key} names variant(s) {outside} that are not in its variants")
        if part.get("unit", "chunk") not in ("chunk", "variant"):
            raise StudyConfigError(f"quality.unit must be 'chunk' or 'variant', not {part['unit']!r}")
        if names:
            from studylib.quality.transforms import variant  # noqa: PLC0415  (heavy: only when variants are named)

            for v in names:
                variant(v)
