"""One-shot pruning steps (the algorithms are in ``studylib.pruning``)."""
from __future__ import annotations

from ..pruning import prune_model
from . import register


def _prune(method):
    def step(model, calib, ratio: float = 0.0, nm: list[int] | None = None, targets: str = "all"):
        out = prune_model(model, calib, method, ratio, tuple(nm) if nm else None, targets, progress=True)
        return {"method": method, "ratio": ratio if not nm else 0.5, **out}
    return step


for _m in ("magnitude", "wanda", "sparsegpt"):
    register(_m, weights_only=True)(_prune(_m))
