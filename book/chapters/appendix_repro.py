# %% [markdown]
# # Appendix B — Reproducibility
#
# ## Commands
# | what | command | where | time |
# |---|---|---|---|
# | set up, every phase on the embedded default, the book | `make all` | any CPU machine | measured below |
# | tests | `make test` | any | the brief's budget: under ten minutes |
# | real benchmark items on CPU, then the declared conversions, bounds, Eq. 25 grid, int8/int4 | `make phase1-quality PROFILE=cpu-real` | CPU, with `../shared/data` | see *How long the measurements took* |
# | H2 on a 1.5B model: MMLU 1,000 and generated GSM8K 300 items per variant, bf16 | `make setup-qwen && make phase1-quality PROFILE=cpu-qwen` | CPU, 24 GB RAM, with `../shared/data` | hours per variant (GSM8K generation dominates), resumable by chunk; see below |
# | answers of a quantized variant under quanto's kernel and under its dequantized weights (how the Qwen quantized variants are evaluated) | `make quant-check PROFILE=cpu-qwen VARIANT=int8_quanto ITEMS=50` | CPU, with `../shared/data` | minutes |
# | CPU decode speed per variant (Table 6's CPU row); speculative decoding (0.5B → 1.5B; SmolLM2 early-exit self-draft) | `make phase2 PROFILE=cpu-qwen` / `PROFILE=cpu-real` | an *idle* CPU, with `../shared/data` | see below |
# | everything measured anew, book from it (committed `data/` untouched) | `make all FRESH=1` | any CPU machine | as `make all` |
# | the same from an empty model cache too, timed into `data/repro_runs/` | `make time-embedded` | an idle CPU machine | measured below |
# | the built book in headless Chromium (screenshots in `book/_build/screenshots/`) | `make book-check` | any, installs Debian's chromium | minutes |
# | the verdict table from `data/` | `make verdicts` (also run by `make book`) | any | seconds |
# | the whole GPU campaign (H1, end-to-end 8B decode, gate, int8/int4/fp8, spec.-decoding step times, Table 4, companion sweep) | `make gpu PROFILE=h100 BUDGET_S=520` (run it twice: the second call finishes what the budget left; on the device tool, carry the first call's `data/*/h100` back into the tree) | one H100 (80 GB); no network, no venv: runs on the image's python3 | two calls within the device tool's per-call limit (per-call times below) |
# | the H200 replication (kernel checks, end-to-end 8B decode with every linear quantized, int8 verification steps, quantized layers, H1 sweep, split-K A/B, then gate, 2:4 and top-2/8 layers, Table 4, companion) | `make gpu PROFILE=h200 BUDGET_S=440` (resumable like the H100's; carry `data/*/h200` back between calls) | one H200 | two calls so far; about two more finish it |
# | quality at 8B | `make phase1-quality PROFILE=h100 OVERRIDES='{"quality":{"model":"/path/to/Meta-Llama-3-8B"}}'` | GPU with the weights | hours |
#
# 70B does not fit in bf16 on one 80 GB GPU (≈ 140 GB of weights): its timing is composed
# from per-layer measurements (layers × layer time + embeddings/head), validated at 8B.
#
# ## The embedded default from scratch, measured
# `make time-embedded` runs `make all FRESH=1` with an empty data directory and an empty model
# cache (the model is de-quantized again, every variant rebuilt), after `make setup`.

# %% tags=["remove-cell"]
import pandas as pd

from studylib.book import tables as book
from studylib.results import SCHEMA, read_table

book.setup()

# %% tags=["hide-input"]
rr = read_table("repro_runs")
if rr.empty:
    book.md("*Not measured yet: `make time-embedded` on an idle machine.*")
else:
    rr = rr.assign(minutes=rr["wall_s"] / 60)
    book.table(rr[["timestamp_utc", "target", "run_profile", "minutes", "exit_code", "cpu_count", "load_before",
                   "load_after", "git_commit"]], digits=1,
               caption="Table B.1. Wall time of the embedded default from scratch (data/repro_runs/; "
               "studylib.timing.repro). Load average before/after shows whether the machine was idle.")

# %% [markdown]
# **What the embedded profile can and cannot decide.** It exists so that anyone can run the whole
# pipeline on a laptop in minutes: a real trained model (SmolLM2-135M from a PyPI package),
# generated probes, CPU timing at small shapes. Its verdicts are pipeline checks, labelled with
# their scale; it cannot decide H2 (the model is at chance on MMLU and cannot solve GSM8K), H1 or
# any A100/H100 claim.
#
# ## Provenance of every data file

# %% tags=["hide-input"]
rows = []
for table in SCHEMA:
    df = read_table(table)
    if df.empty:
        continue
    prov = df[["profile", "gpu_name", "git_commit", "torch_version"]].astype(str).replace("nan", "")
    for (prof, gpu, commit, torch_v), g in df.groupby([prov[c] for c in prov]):
        rows.append({"table": table, "profile": prof, "device": gpu or "cpu", "git commit": commit[:10],
                     "torch": torch_v, "units": g["unit"].nunique(), "rows": len(g),
                     "first": g["timestamp_utc"].min(), "last": g["timestamp_utc"].max(),
                     "files": f"data/{table}/{prof}/"})
book.table(pd.DataFrame(rows), caption="Table B.2. Every results table by profile, device, commit and torch "
           "version (data/<table>/<profile>/; provenance columns of each file).")

# %% [markdown]
# ## How long the measurements took
# Wall time per unit of work, read from the provenance timestamps: the gap between consecutive
# units written by one host at one commit, gaps over 15 minutes counted as interruptions (the
# first unit of each run, which also loads the model, is not counted). This is the evidence
# behind the time column above.

# %% tags=["hide-input"]
gaps = []
for table in ("timing", "expert_sweep", "quality_items"):
    df = read_table(table)
    if df.empty:
        continue
    u = df.drop_duplicates("unit")[["profile", "host", "git_commit", "unit", "timestamp_utc"]].copy()
    u["t"] = pd.to_datetime(u["timestamp_utc"])
    for (prof, _, _), g in u.groupby(["profile", "host", "git_commit"]):
        d = g["t"].sort_values().diff().dt.total_seconds().dropna()
        gaps += [{"table": table, "profile": prof, "seconds": s} for s in d if s < 900]
gaps = pd.DataFrame(gaps)
if not gaps.empty:
    summary = gaps.groupby(["table", "profile"])["seconds"].agg(["count", "median", "max"]).round(1)
    n_units = {(t, p): read_table(t, [p])["unit"].nunique() for t, p in summary.index}
    summary["units in data/"] = [n_units[i] for i in summary.index]
    summary["est. total (min)"] = (summary["median"] * summary["units in data/"] / 60).round(1)
    book.table(summary, index=True, digits=1)

# %% [markdown]
# ### The GPU campaign, call by call
# Each `make gpu` call is one run id in the provenance. Its wall time here is the span from its
# first to its last unit written (model start-up and the first unit's compilation come before
# the first timestamp and are not included); `units` counts what that call added. A second call
# resumes where the first stopped, so the calls add up to the whole campaign.

# %% tags=["hide-input"]
runs = []
for table in ("timing", "expert_sweep", "kernel_checks", "device_peaks"):
    df = read_table(table)
    df = df[df["profile"].isin(["h100", "h200"])] if not df.empty else df
    for (prof, run), g in df.groupby(["profile", "run_id"]):
        t = pd.to_datetime(g["timestamp_utc"])
        runs.append({"profile": prof, "run id": run, "table": table, "git commit": str(g["git_commit"].iloc[0])[:10],
                     "units": g["unit"].nunique(), "first": t.min(), "last": t.max()})
if runs:
    calls = pd.DataFrame(runs).groupby(["profile", "run id"]).agg(
        commit=("git commit", "first"), tables=("table", lambda x: ", ".join(sorted(set(x)))),
        units=("units", "sum"), first=("first", "min"), last=("last", "max"))
    calls["wall (s)"] = (calls["last"] - calls["first"]).dt.total_seconds().round(0)
    book.table(calls.drop(columns=["first", "last"]), index=True)
    book.md(f"All GPU calls: {int(calls['units'].sum())} units, {calls['wall (s)'].sum() / 60:.1f} min between "
            "first and last unit (plus start-up per call).")
