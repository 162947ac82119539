"""The GPU campaign's code path, on the CPU: unit list, resume, budget, and a dry run that
imports nothing the GPU image lacks."""
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from studylib.config import StudyConfigError, load_profile
from studylib.results import read_table
from studylib.timing.campaign import campaign_units, run_campaign, unit_key

REPO = Path(__file__).resolve().parent.parent
SMALL = {"campaign": {"context": 16, "repeats": 2, "warmup": 0, "groups": [
    {"name": "h1_core", "kind": "layer", "shapes": ["llama-3-8b-div8"], "variants": ["dense", "moe4_top1"],
     "components": ["ffn"], "batches": [1, 8]},
    {"name": "gate", "kind": "gate", "shapes": ["llama-3-8b-div8"], "experts": [4], "batches": [1]},
    {"name": "again", "kind": "layer", "shapes": ["llama-3-8b-div8"], "variants": ["dense"], "components": ["ffn"],
     "batches": [1]}]}}


def test_h100_campaign_lists_every_unit_once_in_priority_order():
    prof = load_profile("h100")
    units = campaign_units(prof, "cuda")
    keys = [(u["table"], unit_key(u)) for _, u in units]
    assert len(keys) == len(set(keys))
    groups = [g for g, _ in units]
    assert groups[0] == "kernel_checks" and groups.index("h1_core") < groups.index("e2e") < groups.index("companion")
    # H1 at every Table 1 size, at B = 1, for the paper's combination
    h1 = {u["shape"] for g, u in units if g == "h1_core" and u["variant"] == "pruned30_moe4_top1" and u["batch"] == 1}
    assert h1 == {"llama-2-7b", "llama-3-8b", "llama-2-13b", "llama-30b", "llama-2-70b"}


def test_campaign_resumes_and_stops_at_its_budget(data_dir):
    prof = load_profile("gpu-dryrun", SMALL)
    first = run_campaign(prof, budget_s=0, progress=False, log=lambda *a: None)
    assert first["measured"] == 0 and first["left"] == 5  # the duplicate 'again' unit is listed once
    done = run_campaign(prof, progress=False, log=lambda *a: None)
    assert done == {"measured": 5, "skipped": 0, "failed": 0, "left": 0}
    again = run_campaign(prof, progress=False, log=lambda *a: None)
    assert again["measured"] == 0 and again["skipped"] == 5
    t = read_table("timing", ["gpu-dryrun"])
    assert len(t) == 5 and t["achieved_Bps"].gt(0).all() and set(t["kernel"]) >= {"torch._grouped_mm"}


def test_bad_campaign_fails_before_any_work():
    with pytest.raises(StudyConfigError, match="unknown variant"):
        load_profile("gpu-dryrun", {"campaign": {**SMALL["campaign"], "groups": [
            {"name": "x", "kind": "layer", "shapes": ["llama-3-8b-div8"], "variants": ["nonsense"], "batches": [1]}]}})
    with pytest.raises(StudyConfigError, match="unknown kind"):
        load_profile("gpu-dryrun", {"campaign": {**SMALL["campaign"], "groups": [{"name": "x", "kind": "warp"}]}})


# Imports the device image does not have (KINDS.md of the device tool): the GPU path must not need them.
NOT_ON_GPU_IMAGE = ["torchao", "lm_eval", "gguf", "papermill", "jupytext", "jupyter_book", "optimum"]

DRYRUN = textwrap.dedent("""
    import importlib.abc, sys, json
    BLOCKED = set(json.loads(sys.argv[1]))
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{name} is not on the GPU image")
    sys.meta_path.insert(0, Block())
    from studylib.__main__ import main
    sys.exit(main(["campaign", "--profile", "gpu-dryrun", "--overrides", sys.argv[2]]))
""")


def test_gpu_dryrun_runs_every_unit_kind_without_packages_the_gpu_image_lacks(tmp_path):
    groups = [
        {"name": "kernel_checks", "kind": "kernel_checks", "shapes": ["llama-3-8b-div8"], "batches": [1]},
        {"name": "h1", "kind": "layer", "shapes": ["llama-3-8b-div8"],
         "variants": ["dense", "pruned30_moe4_top1", "expert_alone", "int8wo_torch", "int8wo"], "components": ["layer"],
         "batches": [1, 8], "routing": ["uniform", "severe"]},
        {"name": "e2e", "kind": "model", "shapes": ["llama-3-8b-div8"], "variants": ["dense", "pruned30_moe4_top1"],
         "batches": [1], "tokens": [1, 3]},
        {"name": "gate", "kind": "gate", "shapes": ["llama-3-8b-div8"], "experts": [4], "batches": [8]},
        {"name": "companion", "kind": "expert_sweep", "hidden": 256, "widths": [128], "batches": [8], "experts": 4,
         "active": [1, 4]},
    ]
    env = {**os.environ, "STUDY_DATA_DIR": str(tmp_path / "data")}
    if importlib.util.find_spec("triton") is not None:
        env["TRITON_INTERPRET"] = "1"  # the Triton kernels themselves, as on the GPU
    r = subprocess.run([sys.executable, "-c", DRYRUN, json.dumps(NOT_ON_GPU_IMAGE),
                        json.dumps({"campaign": {"context": 16, "repeats": 2, "warmup": 0, "groups": groups}})],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    assert "'failed': 0" in r.stdout + r.stderr
    for table in ("timing", "kernel_checks", "expert_sweep", "device_peaks"):
        assert list((tmp_path / "data" / table / "gpu-dryrun").glob("*.csv")), table
    # every kernel check passes, the top-1 MoE ones included (their fp64 reference once indexed the
    # combine weights, which top-1 does not have, and every top-1 check read 'unavailable' on the H100)
    checks = pd.concat(pd.read_csv(f) for f in (tmp_path / "data" / "kernel_checks" / "gpu-dryrun").glob("*.csv"))
    bad = checks[~checks["ok"].astype(bool)]
    assert bad.empty, bad[["variant", "error"]].to_string()
    if importlib.util.find_spec("triton") is not None:
        assert {"moe4_top1", "moe8_top1", "pruned30_moe4_top1"} <= set(checks["variant"])
