"""Results store, provenance, profiles, CLI fail-fast, resume after a kill, environment files."""
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from studylib import provenance
from studylib.config import StudyConfigError, load_profile
from studylib.results import ResultStore, read_table, validate_data

REPO = Path(__file__).resolve().parent.parent


def test_store_write_read_skip(data_dir):
    s = ResultStore("model_checks", "embedded")
    prov = provenance.collect("embedded", {"x": 1})
    assert not s.has("k1")
    s.write("k1", [{"model": "m", "check": "c", "value": 1.0}], prov)
    assert s.has("k1")
    df = read_table("model_checks")
    assert len(df) == 1 and df["profile"].iloc[0] == "embedded" and df["git_commit"].iloc[0]
    assert validate_data() == []
    with pytest.raises(ValueError, match="lacks columns"):
        s.write("k2", [{"model": "m"}], prov)
    assert not s.has("k2") and not list(s.dir.glob(".*tmp"))


def test_a_unit_claimed_by_another_process_is_skipped_and_its_claim_dies_with_it(data_dir):
    """Two sweeps side by side never measure one unit twice; a killed sweep leaves no stale claim."""
    s = ResultStore("model_checks", "embedded")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from studylib.results import ResultStore\n"
         "with ResultStore('model_checks', 'embedded', root=sys.argv[1]).claim('k1') as ours:\n"
         "    print(ours, flush=True); time.sleep(60)", str(s.dir.parent.parent)],
        stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert holder.stdout.readline().strip() == "True"
        assert s.held_elsewhere("k1") and not s.held_elsewhere("k2")
        with s.claim("k1") as ours:
            assert ours is False                       # held elsewhere: skip it
        with s.claim("k2") as ours:
            assert ours is True                        # other units stay free
    finally:
        holder.kill()
        holder.wait()
    assert not s.held_elsewhere("k1")
    with s.claim("k1") as ours:
        assert ours is True                            # the kill released it
        with s.claim("k1") as again:
            assert again is False                      # one holder at a time, within a process too
    s.write("k1", [{"model": "m", "check": "c", "value": 1.0}], provenance.collect("embedded", {}))
    with s.claim("k1") as ours:
        assert ours is False                           # written meanwhile: nothing left to measure
    assert validate_data() == [] and len(read_table("model_checks")) == 1


def test_a_generated_answer_with_a_bare_carriage_return_round_trips(data_dir):
    """A collapsed model can emit '\r'; pandas leaves such a field unquoted and readers split the
    row there. The store quotes the file; validation catches a file split anyway."""
    s = ResultStore("model_checks", "embedded")
    prov = provenance.collect("embedded", {"x": 1})
    s.write("k1", [{"model": "a\rb", "check": "c\r\n", "value": 1.0}, {"model": "m", "check": "c", "value": 2.0}], prov)
    df = read_table("model_checks")
    assert list(df["model"]) == ["a\rb", "m"] and list(df["value"]) == [1.0, 2.0] and validate_data() == []
    bad = s.path("k1").read_bytes().replace(b'"a\rb"', b"a\rb")     # what the unquoted file looked like
    s.path("k1").write_bytes(bad)
    assert any("do not parse" in p for p in validate_data())


def test_unknown_profile_and_bad_ratio_fail_fast():
    with pytest.raises(StudyConfigError, match="nonsense"):
        load_profile("nonsense")
    with pytest.raises(StudyConfigError, match="1.5"):
        load_profile("embedded", {"quality": {"ratio": 1.5}})
    with pytest.raises(StudyConfigError, match="llama-9000"):
        load_profile("embedded", {"timing": {"shapes": ["llama-9000"]}})


def test_quality_settings_fail_fast(tmp_path):
    from studylib.models import UnknownModelError, resolve_model
    from studylib.quality.taskdata import require_bench_dir

    with pytest.raises(StudyConfigError, match="no_such_task"):
        load_profile("cpu-real", {"quality": {"tasks": ["mmlu", "no_such_task"]}})
    with pytest.raises(StudyConfigError, match="bench_dir"):
        load_profile("embedded", {"quality": {"tasks": ["mmlu"]}})
    with pytest.raises(StudyConfigError, match="counts"):
        load_profile("cpu-real", {"quality": {"counts": {"mmlu": 0}}})
    with pytest.raises(StudyConfigError, match="moe3_top9"):
        load_profile("cpu-real", {"quality": {"only": ["dense", "moe3_top9"]}})
    with pytest.raises(StudyConfigError, match=str(tmp_path / "nowhere")):
        require_bench_dir(load_profile("cpu-real", {"quality": {"bench_dir": str(tmp_path / "nowhere")}}))
    assert require_bench_dir(load_profile("embedded")) is None
    with pytest.raises(UnknownModelError, match="llama-9000"):
        resolve_model("llama-9000")


def test_cli_names_the_bad_value():
    for args, word in ((["--profile", "nonsense"], "nonsense"), (["--ratio", "1.5"], "1.5"), (["--ratio", "abc"], "abc")):
        r = subprocess.run([sys.executable, "-m", "studylib", "check", *args], capture_output=True, text=True, cwd=REPO)
        assert r.returncode == 2 and word in r.stderr


def test_gpu_profile_without_gpu_fails_fast():
    import torch
    if torch.cuda.is_available():
        pytest.skip("has a GPU")
    r = subprocess.run([sys.executable, "-m", "studylib", "check", "--profile", "h100"], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 2 and "needs a CUDA GPU" in r.stderr


def test_profiles_inherit():
    p = load_profile("cpu-real")
    assert p["quality"]["bench_dir"] and p["timing"] == load_profile("embedded")["timing"]
    assert load_profile("h200")["device"] == "cuda"


_SWEEP = """
import os, sys
from studylib.config import load_profile
from studylib.timing.campaign import run_timing
p = load_profile("embedded", {"timing": {"shapes": ["llama-3-8b-div8"], "repeats": 40, "warmup": 2,
                                          "variants": ["dense", "moe4_top1", "int8wo"]}})
print(run_timing(p, progress=False))
"""


def _units(d):
    return sorted(p.name for p in (d / "timing" / "embedded").glob("*.csv"))


def test_killed_run_resumes_without_loss_or_duplicates(tmp_path):
    env = dict(os.environ, STUDY_DATA_DIR=str(tmp_path / "full"))
    subprocess.run([sys.executable, "-c", _SWEEP], env=env, check=True, cwd=REPO, capture_output=True)
    full = _units(tmp_path / "full")
    env = dict(os.environ, STUDY_DATA_DIR=str(tmp_path / "killed"))
    proc = subprocess.Popen([sys.executable, "-c", _SWEEP], env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    d = tmp_path / "killed" / "timing" / "embedded"
    t0 = time.time()
    while time.time() - t0 < 120 and len(list(d.glob("*.csv"))) < 3:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = _units(tmp_path / "killed")
    assert 0 < len(partial) < len(full)
    subprocess.run([sys.executable, "-c", _SWEEP], env=env, check=True, cwd=REPO, capture_output=True)
    assert _units(tmp_path / "killed") == full
    again = subprocess.run([sys.executable, "-c", _SWEEP], env=env, check=True, cwd=REPO, capture_output=True, text=True)
    assert "'measured': 0" in again.stdout
    df = read_table("timing", root=tmp_path / "killed")
    assert not df.duplicated(["shape", "variant", "component", "batch", "routing"]).any()


def _deps(names):
    return {re.split(r"[<>=\[ ]", n.strip())[0].lower().replace("_", "-") for n in names}


def test_environment_yml_agrees_with_pyproject():
    import tomllib
    pp = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = _deps(pp["dependencies"] + pp["optional-dependencies"]["book"] + pp["optional-dependencies"]["test"])
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip = next(d for d in env["dependencies"] if isinstance(d, dict))["pip"]
    assert declared <= _deps(pip), declared - _deps(pip)


def test_notebooks_have_papermill_parameters_cell():
    import jupytext
    for nb in sorted((REPO / "notebooks").glob("*.py")):
        cells = jupytext.read(nb).cells
        params = [c for c in cells if "parameters" in c.metadata.get("tags", [])]
        assert len(params) == 1 and "profile" in params[0].source, nb


def test_committed_data_is_valid():
    assert validate_data(REPO / "data") == []


def test_first_grid_is_declared_and_complete():
    """The first grid's variants are declared pipelines (no two with one recipe); its Eq. 25 design
    has every p x bias x capacity point once; its grid-only points see the grid tasks only, and the
    paper's combination, a grid point too, sees every task; units keep the committed names."""
    from studylib.quality.transforms import declared_variants
    from studylib.quality.units import plan, sections

    declared = declared_variants()
    recipes = [repr((s["dtype"], s["steps"])) for s in declared.values()]
    assert len(set(recipes)) == len(recipes), "two declared variants with one recipe"
    for name in ("embedded", "cpu-real"):
        top = sections(load_profile(name))[0]
        q = top["quality"]
        points = set()
        for v in q["first_grid"]:
            (_, conv), = [s for s in declared[v]["steps"] if s[0] == "moefy"]
            p = next((pp.get("ratio") for t, pp in declared[v]["steps"] if t == "sparsegpt"), 0.0)
            points.add((p, conv.get("bias", 0.0), conv.get("capacity_factor")))
        assert points == {(p, b, c) for p in (0.0, 0.3) for b in (0.0, 1.0) for c in (None, 1.0)}
        units = plan(top)
        assert all(u["key"] == f"smollm2-135m__{u['variant']}" for u in units)
        tasks = lambda v: {u["task"] for u in units if u["variant"] == v}  # noqa: E731
        assert tasks("sparsegpt30_moe4_top1") == set(q["tasks"])
        if name == "cpu-real":
            assert tasks("grid_p30_b1.0_cf1.0") == {"mmlu", "hellaswag", "wikitext"}


def test_committed_first_grid_units_count_as_measured():
    from studylib.quality.units import coverage, sections

    for name in ("embedded", "cpu-real"):
        cov = coverage(sections(load_profile(name))[0])
        assert (cov["units_left"] == 0).all(), cov[cov["units_left"] > 0]


def test_ratio_filter_keeps_the_variants_pruned_at_it_and_the_unpruned():
    from studylib.quality.units import plan, sections

    names = {u["variant"] for u in plan(sections(load_profile("cpu-real", {"quality": {"ratio": 0.2}}))[0])}
    assert {"dense", "wanda20", "sparsegpt20", "moe4_top1"} <= names
    assert not names & {"sparsegpt30", "wanda_2of4", "sparsegpt30_moe4_top1", "grid_p30_b1.0_cf1.0"}


def test_provenance_names_no_absolute_checkout_path():
    from studylib.provenance import REPO, collect

    prov = collect("embedded", {"bench_dir": str(REPO.parent / "shared" / "data"), "out": str(REPO / "data")})
    assert str(REPO) not in prov["params"] and str(REPO.parent) + "/" not in prov["params"]
    assert '"../shared/data"' in prov["params"] and '"./data"' in prov["params"]


def test_a_bf16_cpu_sweep_on_a_cpu_without_hardware_bf16_is_announced_before_any_work(monkeypatch):
    from studylib.config import load_profile, slow_bf16_warning

    monkeypatch.setattr(provenance, "cpu_flags", lambda: {"avx2", "fma"})
    warning = slow_bf16_warning(load_profile("cpu-qwen"))
    assert warning and "no hardware bf16" in warning
    assert slow_bf16_warning(load_profile("embedded")) is None            # evaluates in fp32
    monkeypatch.setattr(provenance, "cpu_flags", lambda: {"avx2", "avx512f", "avx512_bf16"})
    assert slow_bf16_warning(load_profile("cpu-qwen")) is None
    import torch

    assert provenance.cpu_name().endswith(f"({torch.backends.cpu.get_cpu_capability()})")   # the ISA in every row


def test_a_profile_tied_to_one_cpu_isa_is_refused_on_another_before_any_work(monkeypatch):
    from studylib.config import StudyConfigError, load_profile, require_device, slow_bf16_warning

    prof = load_profile("cpu-qwen-avx2")
    monkeypatch.setattr(provenance, "cpu_isa", lambda: "AVX512")
    with pytest.raises(StudyConfigError, match="widest vector ISA is AVX2; this one's is AVX512"):
        require_device(prof)
    monkeypatch.setattr(provenance, "cpu_isa", lambda: "AVX2")
    assert require_device(prof) == "cpu"
    monkeypatch.setattr(provenance, "cpu_flags", lambda: {"avx2", "fma"})
    assert slow_bf16_warning(prof) is None                 # made for this CPU: nothing to warn about
    assert prof.get("spec_decoding") is None and "fp32" in prof["cpu_decode"]["kernels"]
