# %% [markdown]
# # Appendix B — Reproducibility
#
# ## Commands
# | what | command | where | time |
# |---|---|---|---|
# | set up, every phase on the embedded default, the book | `make all` | any CPU machine | ~20–30 min on 2 cores |
# | tests | `make test` | any | < 10 min |
# | real benchmark items on CPU | `make phase1-quality PROFILE=cpu-real` | CPU, with `../shared/data` | ~1 h |
# | H1 timing sweep at Llama shapes | `make phase1-timing PROFILE=h100` | one H100 (80 GB) | < 10 min |
# | quality at 8B | `make phase1-quality PROFILE=h100 OVERRIDES='{"quality":{"model":"/path/to/Meta-Llama-3-8B"}}'` | GPU with the weights | hours |
#
# 70B does not fit in bf16 on one 80 GB GPU (≈ 140 GB of weights): its timing is composed
# from per-layer measurements (layers × layer time + embeddings/head), validated at 8B.
#
# ## Provenance of every data file

# %%
import pandas as pd
from studylib.results import SCHEMA, read_table

rows = []
for table in SCHEMA:
    df = read_table(table)
    if df.empty:
        continue
    for (prof, gpu, commit, torch_v), g in df.fillna("").groupby(["profile", "gpu_name", "git_commit", "torch_version"]):
        rows.append({"table": table, "profile": prof, "device": gpu or "cpu", "git commit": commit[:10],
                     "torch": torch_v, "units": g["unit"].nunique(), "rows": len(g),
                     "first": g["timestamp_utc"].min(), "last": g["timestamp_utc"].max(),
                     "files": f"data/{table}/{prof}/"})
pd.DataFrame(rows)
