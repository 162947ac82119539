"""Command line used by the Makefile.

  python -m studylib check --profile P [--ratio R] [--overrides JSON]
  python -m studylib run-notebook notebooks/X.py --profile P [--ratio R] [--overrides JSON]
  python -m studylib campaign --profile P [--budget-s S]   (the GPU campaign; see studylib/timing/campaign.py)
  python -m studylib sweep --profile P [--tasks T,..] [--only V,..] [--backend ours|vllm] [--status]
                                         (the quality units not yet in data/, in the profile's order,
                                          restricted to some tasks / variants; see quality_units.run_units;
                                          --status lists what is left and runs nothing)
  python -m studylib rescore --profile P   (committed generated answers judged again by the task's
                                         answer checker, from the stored responses; tasks/answers.py)
  python -m studylib budget-check --profile P --variant V --task T [--backend ours|vllm]
                                         (a generated task's truncated answers re-run at the longer budget
                                          its YAML declares; studylib/quality/budget_check.py)
  python -m studylib gptq-holdout --profile P  (GPTQ vs RTN layer error on held-out text; studylib/quality/gptq_holdout.py)
  python -m studylib validate-data
  python -m studylib book-pdf            (the built book printed by headless Chromium into book/_build/book.pdf)
  python -m studylib verdicts            (writes data/verdicts.csv from data/; see studylib/claims/verdicts.py)
  python -m studylib time-make           (times `make all FRESH=1` from scratch; see studylib/timing/repro.py)

Parameters are validated before anything runs; a bad one exits with status 2 and a message
naming the value.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from studylib.config import StudyConfigError, load_profile, require_device, slow_bf16_warning, validate_profile
from studylib.results import BASELINE

REPO = Path(__file__).resolve().parent.parent


def _overrides(args) -> dict:
    try:
        ov = json.loads(args.overrides or "{}")
    except json.JSONDecodeError as e:
        raise StudyConfigError(f"--overrides is not valid JSON: {args.overrides!r} ({e})") from None
    if args.ratio is not None:  # the variants pruned at this ratio, and the unpruned (quality.units.plan)
        ov.setdefault("quality", {})["ratio"] = args.ratio
    return ov


#: the module that checks each profile section (it registers the check with ``config``, which imports
#: none of them); only the owners of the sections a profile has are imported, so the GPU image, which
#: has no quality or CPU-decoding stack, validates its own profiles
SECTION_OWNERS = {"quality": ("studylib.quality.checks",), "timing": ("studylib.timing.campaign",),
                  "campaign": ("studylib.timing.campaign",), "cpu_decode": ("studylib.decoding.cpu_speed",),
                  "spec_decoding": ("studylib.decoding.spec_sweep",), "cpu_kernels": ("studylib.decoding.weight_kernels",),
                  "served": ("studylib.serving.served",), "vllm_expert_sweep": ("studylib.serving.moe_op_sweep",),
                  "served_shapes": ("studylib.serving.shapes_served",)}


def section_owners(prof: dict | None = None) -> None:
    """Import the owners of ``prof``'s sections (of every section when None), registering their checks."""
    import importlib

    for section, mods in SECTION_OWNERS.items():
        if prof is None or prof.get(section):
            for mod in mods:
                importlib.import_module(mod)


def _check(args) -> dict:
    prof = load_profile(args.profile, _overrides(args), validate=False)
    section_owners(prof)
    validate_profile(prof)
    require_device(prof)
    if warning := slow_bf16_warning(prof):
        print(warning, file=sys.stderr)
    return prof


def run_notebook(path: str, profile: str, overrides: dict) -> Path:
    import jupytext
    import papermill

    src = Path(path)
    if not src.exists():
        raise StudyConfigError(f"no notebook {path!r}")
    out_dir = REPO / "notebooks" / "executed" / profile
    out_dir.mkdir(parents=True, exist_ok=True)
    ipynb = out_dir / f"{src.stem}.input.ipynb"
    jupytext.write(jupytext.read(src), ipynb)
    out = out_dir / f"{src.stem}.ipynb"
    papermill.execute_notebook(str(ipynb), str(out), parameters={"profile": profile, "overrides": overrides},
                               kernel_name="python3", progress_bar=False, log_output=True, cwd=str(REPO))
    ipynb.unlink()
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m studylib")
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("check", "run-notebook", "campaign", "sweep", "quant-check", "gptq-holdout", "machine-check",
                 "rescore", "serve", "vllm-expert-sweep", "serve-shapes", "served-check", "budget-check"):
        p = sub.add_parser(name)
        if name == "machine-check":
            p.add_argument("--variant", default=BASELINE)
            p.add_argument("--task", default="mmlu")
            p.add_argument("--items", type=int, default=None, help="items 0..N of the first unit (default: all of it)")
        if name == "served-check":
            p.add_argument("--variant", default=BASELINE)
            p.add_argument("--task", default="mmlu")
            p.add_argument("--items", type=int, default=None, help="items 0..N of the first unit (default: all of it)")
        if name == "budget-check":
            p.add_argument("--variant", default=BASELINE)
            p.add_argument("--task", default="math500")
            p.add_argument("--backend", default="ours", help="the engine that re-runs the items: ours or vllm")
        if name == "quant-check":
            p.add_argument("--variant", default=None, help="a quantized variant (default: the declared role int8)")
            p.add_argument("--task", default="mmlu")
            p.add_argument("--items", type=int, default=50)
        if name == "run-notebook":
            p.add_argument("notebook")
        if name == "sweep":
            p.add_argument("--tasks", default="", help="comma-separated tasks to fill in now (default: all)")
            p.add_argument("--only", default="", help="comma-separated variants to fill in now (default: all)")
            p.add_argument("--status", action="store_true",
                           help="print planned vs measured items per variant x task; run nothing")
            p.add_argument("--backend", default="ours",
                           help="the engine that evaluates the units: ours (default) or vllm (make setup-vllm)")
        if name == "campaign":
            p.add_argument("--budget-s", type=float, default=None, help="stop cleanly before this many seconds")
        p.add_argument("--profile", default="embedded")
        p.add_argument("--ratio", type=str, default=None, help="run only the variants pruned at this ratio (and the unpruned)")
        p.add_argument("--overrides", default="{}", help="JSON merged into the profile")
    sub.add_parser("validate-data")
    sub.add_parser("book-pdf")
    sub.add_parser("verdicts")
    sub.add_parser("time-make")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "validate-data":
            from studylib.results import validate_data

            problems = validate_data()
            for p in problems:
                print("data/:", p, file=sys.stderr)
            print(f"data/ valid: {not problems}")
            return 1 if problems else 0
        if args.cmd == "verdicts":
            from studylib.claims import verdicts

            wrote = verdicts.write()
            print(f"{verdicts.path().relative_to(REPO) if verdicts.path().is_relative_to(REPO) else verdicts.path()}: "
                  + ("updated" if wrote else "up to date"))
            return 0
        if args.cmd == "book-pdf":
            from studylib.book.check import print_pdf

            out = REPO / "book" / "_build" / "book.pdf"
            r = print_pdf(REPO / "book", out)
            (out.parent / "book.cut_off.txt").write_text("\n".join(r["cut_off"]))
            print(f"{out.relative_to(REPO)}: {len(r['pages'])} pages of the book"
                  + (f"; cut off in print: {r['cut_off'][:3]}" if r["cut_off"] else ""))
            return 1 if r["cut_off"] else 0
        if args.cmd == "time-make":
            from studylib.timing.repro import time_make

            row = time_make()
            print(f"make all FRESH=1 (embedded, from scratch): {row['wall_s'] / 60:.1f} min, exit {row['exit_code']}")
            return row["exit_code"]
        prof = _check(args)
        if args.cmd == "campaign":
            from studylib.timing.campaign import run_timing

            counts = run_timing(prof, budget_s=args.budget_s)
            return 1 if counts["failed"] else 0
        if args.cmd == "sweep":
            import pandas as pd

            import studylib.serving.backend  # noqa: F401  (registers the vllm backend beside ours)
            from studylib.quality.units import BACKENDS, coverage, run_units, sections

            if args.backend not in BACKENDS:
                raise StudyConfigError(f"--backend {args.backend!r} is not one of {sorted(BACKENDS)}")

            parts = sections(prof) if prof.get("quality") else []
            if not parts:
                raise StudyConfigError(f"profile {prof['name']!r} declares no quality variants to sweep")
            split = lambda s: [x for x in s.split(",") if x] or None  # noqa: E731
            only = split(args.only)
            unknown = sorted(set(only or []) - {v for p in parts for v in p["quality"]["variants"]})
            if unknown:
                raise StudyConfigError(f"variants {unknown} are in none of the profile's quality sections")
            unknown = sorted(set(split(args.tasks) or []) - {t for p in parts for t in p["quality"]["tasks"]})
            if unknown:
                raise StudyConfigError(f"tasks {unknown} are in none of the profile's quality sections")
            if args.status:
                c = pd.concat([coverage(p) for p in parts], ignore_index=True)
                print(c[c["units_left"] > 0].to_string(index=False) if (c["units_left"] > 0).any()
                      else "every pre-registered unit is measured")
                print(f"{int(c['units_left'].sum())} of {int(c['units'].sum())} units left")
                return 0
            for p in parts:
                mine = [v for v in only if v in p["quality"]["variants"]] if only else None
                if only and not mine:
                    continue
                tasks = [t for t in split(args.tasks) or [] if t in p["quality"]["tasks"]] if args.tasks else None
                if args.tasks and not tasks:
                    continue
                print(run_units(p, tasks=tasks, only=mine, backend=args.backend))
            return 0
        if args.cmd == "rescore":
            from studylib.quality.units import declared_profile, rescore

            if (declared := declared_profile(prof)) is None:
                raise StudyConfigError(f"profile {prof['name']!r} declares no quality variants")
            print(rescore(declared))
            return 0
        if args.cmd == "quant-check":
            from studylib.quality.quant_check import agreement
            from studylib.quality.quant_eval import summary
            from studylib.quality.units import declared_profile

            if (declared := declared_profile(prof)) is None:
                raise StudyConfigError(f"profile {prof['name']!r} declares no quality variants")
            from studylib.quality.transforms import with_role

            print(summary(agreement(declared, args.variant or with_role("int8")[0], args.task, args.items)))
            return 0
        if args.cmd == "machine-check":
            from studylib.quality.machine_check import check, summary
            from studylib.quality.units import declared_profile

            if (declared := declared_profile(prof)) is None:
                raise StudyConfigError(f"profile {prof['name']!r} declares no quality variants")
            print(summary(check(declared, args.variant, args.task, args.items)))
            return 0
        if args.cmd == "gptq-holdout":
            from studylib.quality.gptq_holdout import measure

            t = measure(prof)
            print(t.pivot_table(index=["layer", "linear", "calib_tokens"], columns=["method", "percdamp"],
                                values="err_heldout", dropna=False).round(4).to_string())
            return 0
        if args.cmd == "budget-check":
            import studylib.serving.backend  # noqa: F401  (registers the vllm backend beside ours)
            from studylib.quality.budget_check import check_budget, reading

            print(reading(check_budget(prof, args.variant, args.task, args.backend)))
            return 0
        if args.cmd == "served-check":
            from studylib.serving.served_check import check_served, reading

            print(reading(check_served(prof, args.variant, args.task, args.items)))
            return 0
        if args.cmd == "serve-shapes":
            from studylib.serving.shapes_served import run_served_shapes

            print(run_served_shapes(prof))
            return 0
        if args.cmd == "vllm-expert-sweep":
            from studylib.serving.moe_op_sweep import run_vllm_expert_sweep

            print(run_vllm_expert_sweep(prof))
            return 0
        if args.cmd == "serve":
            from studylib.serving.served import run_served

            print(run_served(prof))
            return 0
        if args.cmd == "check":
            print(f"profile {prof['name']!r} OK: {prof['description']}")
            return 0
        out = run_notebook(args.notebook, args.profile, _overrides(args))
        print(f"executed {out.relative_to(REPO)}")
        return 0
    except StudyConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
