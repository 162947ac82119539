"""Declared-variant quality units: item chunks pair across variants, an interrupted sweep resumes
without redoing or duplicating a finished unit."""
import copy
import json

import pandas as pd
import pytest
import torch

from studylib.config import StudyConfigError, load_profile


def _prof(**declared):
    d = {"tasks": ["probe_facts"], "counts": {"probe_facts": 6}, "chunk": {"probe_facts": 4},
         "variants": ["dense", "int8_quanto"], **declared}
    return load_profile("embedded", {"quality": {"declared": d}})


def test_plan_chunks_items_and_rejects_bad_counts():
    from studylib.quality.units import declared_profile, plan

    units = plan(declared_profile(_prof()))
    assert [(u["variant"], u["lo"], u["hi"]) for u in units] == [
        ("dense", 0, 4), ("dense", 4, 6), ("int8_quanto", 0, 4), ("int8_quanto", 4, 6)]
    assert len({u["key"] for u in units}) == 4
    with pytest.raises(StudyConfigError, match="positive integer"):
        plan(declared_profile(_prof(counts={"probe_facts": 0})))
    with pytest.raises(StudyConfigError, match="unknown quality variant"):
        _prof(variants=["dense", "not-declared"])
    # a run restricted to some variants keeps the profile's order and never leaves its plan
    assert [u["variant"] for u in plan(declared_profile(_prof()), only=["int8_quanto", "dense"])][::2] == [
        "dense", "int8_quanto"]
    with pytest.raises(StudyConfigError, match="not in the profile"):
        plan(declared_profile(_prof()), only=["int4_quanto"])


@pytest.mark.slow
def test_sweep_resumes_at_the_missing_chunk(data_dir, monkeypatch):
    from studylib.quality import units as quality_units
    from studylib.quality.units import declared_profile, run_units
    from studylib.results import ResultStore, read_table

    prof = declared_profile(_prof())
    assert run_units(prof, progress=False) == {"measured": 4, "skipped": 0}
    first = read_table("quality_items", ["embedded"]).sort_values(["variant", "item_id"])
    assert len(first) == 12 and first.groupby("variant")["item_id"].nunique().eq(6).all()
    store = ResultStore("quality_items", "embedded")
    lost = [k for k in store.keys() if k.endswith("c001")][0]
    store.path(lost).unlink()                                   # a run killed before its last chunk
    built = []
    monkeypatch.setattr(quality_units, "build_variant",
                        lambda p, v, spec, real=quality_units.build_variant: built.append(v) or real(p, v, spec))
    with store.claim(lost):                                     # ... while another sweep measures it
        assert run_units(prof, progress=False) == {"measured": 0, "skipped": 4}
        assert built == [] and store.held_elsewhere(lost)       # its one unit is taken: not even built
    assert not store.has(lost)
    assert run_units(prof, progress=False) == {"measured": 1, "skipped": 3} and len(built) == 1
    again = read_table("quality_items", ["embedded"]).sort_values(["variant", "item_id"])
    assert len(again) == 12                                     # nothing duplicated
    assert (again["correct"].to_numpy() == first["correct"].to_numpy()).all()
    # the rebuilt variants are the same weights: every unit names one digest per variant
    from studylib.results import mixed_weights
    assert again.groupby("variant")["params"].agg(lambda p: {json.loads(x)["weights_digest"] for x in p}).map(len).eq(1).all()
    assert mixed_weights(data_dir) == []
    rows = ResultStore("quality_variants", "embedded")
    row = [k for k in rows.keys() if k.endswith("int8_quanto")][0]
    rows.path(row).unlink()                                     # killed after its items, before its row
    assert run_units(prof, progress=False) == {"measured": 0, "skipped": 4}
    assert set(read_table("quality_variants", ["embedded"])["variant"]) == {"dense", "int8_quanto"}


@pytest.mark.slow
def test_a_run_of_variants_that_skip_a_task_builds_only_the_tasks_they_plan(data_dir):
    from studylib.quality.units import declared_profile, run_units
    from studylib.results import read_table

    prof = declared_profile(_prof(tasks=["probe_facts", "probe_arith"], counts={"probe_facts": 4, "probe_arith": 4},
                                  variant_counts={"int8_quanto": {"probe_arith": 0}}))
    assert run_units(prof, progress=False, only=["int8_quanto"]) == {"measured": 1, "skipped": 0}
    assert set(read_table("quality_items", ["embedded"])["task"]) == {"probe_facts"}


def test_a_run_restricted_to_an_unknown_task_fails_before_any_work(data_dir):
    from studylib.quality.units import declared_profile, run_units
    from studylib.results import read_table

    with pytest.raises(StudyConfigError, match="not in the profile's quality.tasks"):
        run_units(declared_profile(_prof()), progress=False, tasks=["mmlu"])
    assert read_table("quality_items", ["embedded"]).empty


def test_the_sweep_command_refuses_a_variant_or_task_outside_the_plan(data_dir, capsys):
    from studylib.__main__ import main

    assert main(["sweep", "--profile", "embedded", "--only", "no_such_variant"]) == 2
    assert "no_such_variant" in capsys.readouterr().err
    assert main(["sweep", "--profile", "embedded", "--tasks", "no_such_task"]) == 2
    assert "no_such_task" in capsys.readouterr().err


def test_coverage_counts_planned_and_measured_items_and_the_status_command_runs_nothing(data_dir, capsys):
    from studylib import provenance
    from studylib.__main__ import main
    from studylib.quality.units import coverage, declared_profile, plan
    from studylib.results import SCHEMA, ResultStore

    prof = declared_profile(_prof())
    c = coverage(prof)
    assert c[["planned", "measured", "units", "units_left"]].values.tolist() == [[6, 0, 2, 2], [6, 0, 2, 2]]
    unit = plan(prof)[1]                                         # dense, items 4..5
    rows = [{col: 0 for col in SCHEMA["quality_items"]} for _ in range(2)]
    ResultStore("quality_items", "embedded").write(unit["key"], rows, provenance.collect("embedded", {}))
    c = coverage(prof).set_index("variant")
    assert (c.loc["dense", "measured"], c.loc["dense", "units_left"]) == (2, 1)
    assert (c.loc["int8_quanto", "measured"], c.loc["int8_quanto", "units_left"]) == (0, 2)
    assert main(["sweep", "--profile", "embedded", "--status",
                 "--overrides", '{"quality": {"declared": {"tasks": ["probe_facts"], "counts": {"probe_facts": 6}, '
                 '"chunk": {"probe_facts": 4}, "variants": ["dense", "int8_quanto"]}}}']) == 0
    # the first grid's 14 units (none in this empty data dir) and 3 of the declared section's 4
    assert "17 of 18 units left" in capsys.readouterr().out
    assert len(ResultStore("quality_items", "embedded").keys()) == 1  # --status measured nothing


def test_a_task_declared_for_some_variants_is_planned_for_those_only():
    from studylib.quality.units import declared_profile, plan

    prof = _prof(tasks=["probe_facts", "probe_arith"], counts={"probe_facts": 4, "probe_arith": 4},
                 task_variants={"probe_arith": ["int8_quanto"]})
    units = plan(declared_profile(prof))
    assert {(u["variant"], u["task"]) for u in units} == {("dense", "probe_facts"), ("int8_quanto", "probe_facts"),
                                                          ("int8_quanto", "probe_arith")}
    with pytest.raises(StudyConfigError, match="task_variants names variants"):
        plan(declared_profile(_prof(task_variants={"probe_facts": ["nope"]})))


def test_weights_digest_tells_two_fits_apart_and_validation_names_the_mix(tmp_path):
    from studylib.provenance import weights_digest
    from studylib.results import mixed_weights

    torch.manual_seed(0)
    a = torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.Linear(4, 2)).to(torch.bfloat16)
    b = torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.Linear(4, 2)).to(torch.bfloat16)
    b.load_state_dict(a.state_dict())
    assert weights_digest(a) == weights_digest(b)
    with torch.no_grad():
        b[1].weight.view(torch.int16)[0, 0] += 1                     # the next bf16 value
    assert weights_digest(a) != weights_digest(b)                 # one weight one step away
    assert weights_digest(copy.deepcopy(a).float()) != weights_digest(a)   # same values, another dtype
    d = tmp_path / "quality_items" / "p"
    d.mkdir(parents=True)
    for unit, digest in (("m__v__t__c000", "aa"), ("m__v__t__c001", "aa"), ("m__w__t__c000", "cc"), ("m__v__t__c002", "bb")):
        pd.DataFrame({"model": ["m"], "variant": [unit.split("__")[1]],
                      "params": [json.dumps({"weights_digest": digest})]}).to_csv(d / f"{unit}.csv", index=False)
    (problem,) = mixed_weights(tmp_path)
    assert "v on m" in problem and "c002: bb" in problem and "c000: aa" in problem
