"""The profile's ``quality`` section, checked before any model loads (registered with ``config``).
Light on purpose: the GPU image validates its profiles with this module and has no quality stack, so
the transforms (and the first grid) are imported only when the section names variants."""
from __future__ import annotations

from studylib.config import StudyConfigError, section_check, validate_ratio
from studylib.quality import PRUNING_METHODS
from studylib.quality.taskdata import BENCH_TASKS, TASK_FILES


@section_check("quality")
def check_quality(q: dict) -> None:
    """The profile's ``quality`` section: ratios, experts, methods, tasks and declared variants
    (unknown names fail here, before any model loads)."""
    for p in q.get("ratios", []):
        validate_ratio(p)
    for k in q.get("experts", []):
        if not isinstance(k, int) or k < 2:
            raise StudyConfigError(f"number of experts must be an integer >= 2, got {k!r}")
    for m in q.get("pruning_methods", []):
        if m not in PRUNING_METHODS:
            raise StudyConfigError(f"unknown pruning method {m!r}")
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
        from studylib.quality.transforms import variant  # noqa: PLC0415  (heavy: only when variants are named)

        variant(v)
    if tasks and q.get("grid_tasks") and not set(q["grid_tasks"]) <= set(tasks):
        raise StudyConfigError(f"grid_tasks {q['grid_tasks']} must be a subset of tasks {tasks}")
    # ``quality.only`` (variants of the first grid) is checked by quality.grid before any work
