"""The book's front-page table, computed from ``data/`` by the claims registry and committed.

``make verdicts`` (``python -m studylib verdicts``) writes ``data/verdicts.csv``: one row per
claim of ``studylib.claims`` with its measurement, CI and verdict, plus the git commit of the
code that computed it. The book reads that file; ``tests/test_verdicts.py`` regenerates the
table from ``data/`` and fails if the committed file is stale. The file is rewritten only when a
verdict row changes, so rerunning on unchanged data leaves the tree clean.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from .claims import verdict_table
from .results import data_dir, write_csv_atomic

VERDICTS_CSV = "verdicts.csv"
PROVENANCE_COLUMNS = ("git_commit",)


def path() -> Path:
    return data_dir() / VERDICTS_CSV


def committed() -> pd.DataFrame:
    p = path()
    if not p.exists():
        raise FileNotFoundError(f"{p} is missing: run `make verdicts`")
    return pd.read_csv(p, dtype=str, keep_default_na=False)


def _content(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(columns=[c for c in PROVENANCE_COLUMNS if c in df]).astype(str).reset_index(drop=True)


def stale_rows(fresh: pd.DataFrame | None = None) -> pd.DataFrame:
    """Rows of the committed table that differ from a fresh computation (empty when up to date)."""
    fresh = _content(verdict_table() if fresh is None else fresh)
    try:
        old = _content(committed())
    except FileNotFoundError:
        return fresh
    if list(old.columns) != list(fresh.columns) or len(old) != len(fresh):
        return fresh
    return fresh[(old != fresh).any(axis=1)]


def write() -> bool:
    """Writes data/verdicts.csv if any row changed; returns whether it wrote."""
    from .provenance import git_commit

    fresh = verdict_table()
    if path().exists() and stale_rows(fresh).empty:
        return False
    write_csv_atomic(fresh.assign(git_commit=git_commit()), path())
    return True
