"""Phase 1 / Phase 2 timing: the profile's timing campaign (``studylib.campaign``).

CPU profiles describe one group in their ``timing`` section; GPU profiles list their groups in
priority order under ``campaign``. Either way every unit is resumable through the results store.
"""
from __future__ import annotations

from .campaign import run_campaign
from .config import timing_campaign


def run_timing(prof: dict, progress: bool = True, budget_s: float | None = None) -> dict:
    """Measure the device peaks once, then every missing unit. Returns counts."""
    return run_campaign(timing_campaign(prof), budget_s=budget_s, progress=progress)
