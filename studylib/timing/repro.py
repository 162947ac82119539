"""How long the embedded default takes from scratch (issue 16: at most 30 minutes on an idle
2-core machine), measured rather than estimated: `make time-embedded` runs `make all FRESH=1`
with an empty scratch data directory *and* an empty model/variant cache, and records the wall
time, the machine's core count and its load average before and after in `data/repro_runs/`.
The setup step (pip install) is excluded: the venv must exist already.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pandas as pd

from studylib import provenance
from studylib.results import REPO, ResultStore, safe_key

TABLE = "repro_runs"


def time_make(target: str = "all", profile: str = "embedded", scratch: Path | None = None) -> dict:
    scratch = scratch or REPO / ".cache" / "fresh"
    shutil.rmtree(scratch, ignore_errors=True)
    env = {**os.environ, "STUDY_CACHE_DIR": str(scratch / "cache")}
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    rc = subprocess.run(["make", target, "FRESH=1", f"PROFILE={profile}"], cwd=REPO, env=env).returncode
    wall = time.perf_counter() - t0
    row = {"target": f"make {target} FRESH=1", "run_profile": profile, "wall_s": round(wall, 1), "exit_code": rc,
           "cpu_count": os.cpu_count(), "load_before": round(load_before, 2),
           "load_after": round(os.getloadavg()[0], 2)}
    store = ResultStore(TABLE, profile, root=REPO / "data")
    key = safe_key(target, time.strftime("%Y%m%dT%H%M%S"))
    store.write(key, pd.DataFrame([row]), provenance.collect(profile, {"target": target, "fresh": True}))
    return row
