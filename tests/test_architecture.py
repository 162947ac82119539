"""The house rules of ARCHITECTURE.md, checked on the code: no import circle, no import of another
module's private name, a small top level, dependencies one way between the flows; and a new
technique added from outside studylib runs through a quality unit."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "studylib"
#: the flows from the top of the house down; a package may import only packages at its level or below
LAYERS = {"book": 5, "claims": 4, "estimates": 3, "quality": 2, "timing": 2, "decoding": 2, "serving": 2,
          "paper": 1, "kernels": 1}
#: measurement packages that read another measurement package (what they decode or serve)
SIDEWAYS = {("decoding", "quality"), ("serving", "quality"), ("serving", "decoding"), ("serving", "timing")}


def _modules() -> dict[str, Path]:
    out = {}
    for p in ROOT.rglob("*.py"):
        parts = list(p.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def _imports(mods: dict[str, Path]) -> dict[str, set[tuple[str, str]]]:
    """{module: {(imported module, name or '')}} for every import of studylib, in functions too."""
    graph = {}
    for m, p in mods.items():
        pkg = m if p.name == "__init__.py" else m.rsplit(".", 1)[0]
        deps = set()
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                    tgt = ".".join(base + ([node.module] if node.module else []))
                else:
                    tgt = node.module or ""
                if not tgt.startswith("studylib"):
                    continue
                for a in node.names:
                    full = f"{tgt}.{a.name}"
                    deps.add((full, "") if full in mods else (tgt, a.name))
            elif isinstance(node, ast.Import):
                deps |= {(a.name, "") for a in node.names if a.name.startswith("studylib")}
        deps.discard((m, ""))
        graph[m] = deps
    return graph


def _layer(module: str) -> tuple[str, int]:
    parts = module.split(".")
    top = parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in LAYERS) else ""
    if parts[-1] == "__main__":
        return "__main__", 99
    return top, LAYERS.get(top, 0)


def test_no_import_circle():
    mods = _modules()
    graph = {m: {d for d, _ in deps if d in mods} for m, deps in _imports(mods).items()}
    index, low, stack, on, circles = {}, {}, [], set(), []

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                circles.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    assert circles == []


def test_no_module_imports_another_modules_private_name():
    bad = [(m, f"{d}.{n}") for m, deps in _imports(_modules()).items() for d, n in deps
           if n.startswith("_") and not n.startswith("__")]
    assert bad == []


def test_the_top_level_is_small_and_dependencies_run_one_way():
    top = [p.stem for p in ROOT.glob("*.py")]
    assert len(top) <= 12, sorted(top)
    upward = []
    for m, deps in _imports(_modules()).items():
        (pa, la) = _layer(m)
        for d, _ in deps:
            (pb, lb) = _layer(d)
            if pa == pb or (pa, pb) in SIDEWAYS:
                continue
            if lb > la or (lb == la and la > 0):
                upward.append(f"{m} -> {d}")
    assert upward == []


def test_the_config_imports_nothing_above_the_core():
    deps = {d for d, _ in _imports(_modules())["studylib.config"]}
    assert all(_layer(d)[1] == 0 for d in deps), deps


@pytest.fixture
def toy_transform(tmp_path, monkeypatch):
    """A quantizer registered from this file and a variant declared in a YAML file of its own:
    nothing in studylib is edited."""
    import torch

    from studylib.quality.transforms import registry

    @registry.register("toy_round", after_cast=True)
    def toy_round(model, calib, decimals: int = 2):
        n = 0
        with torch.no_grad():
            for mod in model.modules():
                if isinstance(mod, torch.nn.Linear):
                    mod.weight.copy_(torch.round(mod.weight * 10**decimals) / 10**decimals)
                    n += 1
        return {"method": "toy_round", "rounded_linears": n}

    decl = tmp_path / "more_variants.yaml"
    decl.write_text("toy_round2: {steps: [{toy_round: {decimals: 2}}]}\n")
    monkeypatch.setattr(registry, "VARIANT_FILES", [*registry.VARIANT_FILES, decl])
    yield "toy_round2"
    registry.TRANSFORMS.pop("toy_round")


@pytest.mark.slow
def test_toy_transform_runs_through_a_unit(toy_transform, data_dir):
    from studylib.config import load_profile
    from studylib.quality.units import declared_profile, run_units
    from studylib.results import read_table

    prof = declared_profile(load_profile("embedded", {"quality": {"declared": {
        "tasks": ["probe_facts"], "counts": {"probe_facts": 4}, "variants": ["dense", toy_transform]}}}))
    assert run_units(prof, progress=False) == {"measured": 2, "skipped": 0}
    items = read_table("quality_items", ["embedded"])
    assert sorted(items["variant"].unique()) == ["dense", toy_transform]
    assert items.groupby("variant")["item_id"].apply(sorted).apply(tuple).nunique() == 1  # paired items
    row = read_table("quality_variants", ["embedded"]).set_index("variant").loc[toy_transform]
    assert row["method"] == "toy_round" and row["rounded_linears"] > 0


#: string constants that equal a variant's or timed module's name but are not one (file: {name: why})
NOT_A_VARIANT_NAME = {
    "studylib/results.py": {"dense": "BASELINE's definition: the one place the baseline's name is written"},
    "studylib/paper/tables.py": {"dense": "Table 7's row label, as the paper prints it"},
    "studylib/timing/latency_model.py": {"dense": "a module kind (TIMED_MODULES' 'kind'), not a module"},
    "studylib/serving/shapes_served.py": {"dense": "a module kind (TIMED_MODULES' 'kind'), not a module"},
    "studylib/timing/campaign.py": {"fp8_scaled_mm": "a quantization scheme", "semi24": "a module kind"},
    "studylib/decoding/weight_kernels.py": {"int8_quanto": "a CPU weight kernel's name (data/cpu_kernels)",
                                            "int4_quanto": "a CPU weight kernel's name (data/cpu_kernels)"},
}


def test_no_code_names_a_variant():
    """ARCHITECTURE.md: which variant a claim, table or chapter is about is read from its declaration
    (roles, attributes, BASELINE), never written in code — quality variants (variants*.yaml) and timed
    GPU modules (TIMED_MODULES, whose own file is their declaration) alike."""
    from studylib.quality.transforms import declared_variants
    from studylib.timing.modules import TIMED_MODULES

    names = set(declared_variants()) | set(TIMED_MODULES)
    repo = ROOT.parent
    files = [*ROOT.rglob("*.py"), *(repo / "book").glob("chapters/*.py"), *(repo / "book").glob("*.py"),
             *(repo / "notebooks").glob("*.py")]
    found = []
    for p in files:
        rel = p.relative_to(repo).as_posix()
        if rel == "studylib/timing/modules.py":
            continue
        allowed = NOT_A_VARIANT_NAME.get(rel, {})
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.Constant) and node.value in names and node.value not in allowed:
                found.append(f"{rel}:{node.lineno} {node.value!r}")
    assert not found, found



def test_no_code_parses_a_variant_column():
    """Nor is a variant's meaning parsed from its name: no string method (match, extract, startswith,
    contains, ...) is applied to a ``variant`` column in studylib, the chapters or the notebooks."""
    import re

    repo = ROOT.parent
    files = [*ROOT.rglob("*.py"), *(repo / "book").glob("chapters/*.py"), *(repo / "book").glob("*.py"),
             *(repo / "notebooks").glob("*.py")]
    pattern = re.compile(r"""\[["']variant["']\]\.str\.|\bvariant\.str\.""")
    found = [f"{p.relative_to(repo)}:{i}" for p in files
             for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert not found, found

def test_declared_links_between_flows_resolve():
    """A quality variant's ``timed_module`` names a declared timed module; a timed module's
    ``slice_of`` a routed one; the roles claims read resolve to exactly the declared modules."""
    from studylib.quality.transforms import declared_variants, with_role
    from studylib.results import BASELINE
    from studylib.timing import modules as M

    timed = {v: s["timed_module"] for v, s in declared_variants().items() if s["timed_module"]}
    assert timed and set(timed.values()) <= set(M.TIMED_MODULES), timed
    assert timed[BASELINE] == BASELINE and BASELINE in M.TIMED_MODULES
    # the paper's recipe is the same technique in both flows
    assert timed[with_role("paper_recipe")[0]] == M.with_role("paper_recipe")
    for v, s in M.TIMED_MODULES.items():
        if "slice_of" in s:
            assert M.routed(s["slice_of"]) and not M.routed(v)
    assert M.routing_of(M.with_role("paper_recipe"))[2] == 0.3
    with pytest.raises(ValueError, match="role"):
        M.with_role("no such role")


@pytest.mark.slow
def test_a_backend_registered_from_a_test_file_evaluates_units(data_dir):
    """A new engine is one module and one declaration: registered here, it evaluates a unit, and
    the unit's provenance names it and its wall time."""
    import json
    from contextlib import contextmanager

    from studylib.config import load_profile
    from studylib.quality import units
    from studylib.results import read_table

    calls = []

    @contextmanager
    def toy(prof, variant, spec, built):
        with units.BACKENDS["ours"](prof, variant, spec, built) as (evaluate, labels):
            calls.append(variant)
            yield evaluate, {**labels, "engine": "toy"}

    units.BACKENDS["toy"] = toy
    try:
        prof = units.declared_profile(load_profile("embedded", {"quality": {"declared": {
            "tasks": ["probe_facts"], "counts": {"probe_facts": 2}, "variants": ["dense"]}}}))
        assert units.run_units(prof, progress=False, backend="toy") == {"measured": 1, "skipped": 0}
    finally:
        units.BACKENDS.pop("toy")
    params = json.loads(read_table("quality_items", ["embedded"])["params"].iloc[0])
    assert calls == ["dense"] and params["engine"] == "toy" and params["wall_s"] > 0


def test_vllm_backend_refuses_before_building(data_dir, monkeypatch):
    """A variant with no checkpoint form, or no engine venv: a clear error before any model loads."""
    import studylib.serving.backend
    import studylib.serving.engine
    from studylib.config import StudyConfigError, load_profile
    from studylib.quality import units
    from studylib.quality.transforms import declared_variants

    monkeypatch.setattr(units, "build_variant", lambda *a, **k: pytest.fail("a model was built"))
    teal = next(v for v, s in declared_variants().items() if any(t == "teal" for t, _ in s["steps"]))
    prof = units.declared_profile(load_profile("embedded", {"quality": {"declared": {
        "tasks": ["probe_facts"], "counts": {"probe_facts": 2}, "variants": [teal]}}}))
    with pytest.raises(StudyConfigError, match="vllm"):
        units.run_units(prof, progress=False, backend="vllm")
    with pytest.raises(StudyConfigError, match="not registered"):
        units.run_units(prof, progress=False, backend="nonesuch")
    dense = units.declared_profile(load_profile("embedded", {"quality": {"declared": {
        "tasks": ["probe_facts"], "counts": {"probe_facts": 2}, "variants": ["dense"]}}}))
    if (studylib.serving.engine.VLLM_VENV / "bin" / "python").exists():   # past the venv: no served check in data/
        with pytest.raises(StudyConfigError, match="no served check"):
            units.run_units(dense, progress=False, backend="vllm")
