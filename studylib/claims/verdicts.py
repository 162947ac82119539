"""The book's front-page table, computed from ``data/`` by the claims registry and committed.

``make verdicts`` (``python -m studylib verdicts``) writes ``data/verdicts.csv``: one row per
claim of ``studylib.claims`` with its measurement, CI and verdict, plus the git commit of the
code that computed it. The book reads that file; ``tests/test_verdicts.py`` regenerates the
table from ``data/`` and fails if the committed file is stale. The file is rewritten only when a
verdict row changes, so rerunning on unchanged data leaves the tree clean.
"""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from studylib.claims import verdict_table
from studylib.results import data_dir, write_csv_atomic

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
    from studylib.provenance import git_commit

    fresh = verdict_table()
    if path().exists() and stale_rows(fresh).empty:
        return False
    write_csv_atomic(fresh.assign(git_commit=git_commit()), path())
    return True


#: badge colours by the verdict's first word (the rest of the verdict text stays beside it)
BADGE = {"supported": "#1a7f37", "refuted": "#cf222e", "inconclusive": "#9a6700", "not-measured": "#6e7781",
         "pending": "#6e7781", "triggered": "#cf222e", "not-triggered": "#1a7f37", "arithmetic": "#1a7f37"}


#: the kinds a verdict falls into (``kind``), in the order the front page counts them
KINDS = ("supported", "refuted", "inconclusive", "at the floor", "mixed", "not yet measured", "pending GPU",
         "triggered", "not triggered")


def kind(verdict: str) -> str:
    """The verdict's kind, as its badge shows it: its first word, "at the floor" for a verdict the
    floor rule left open, and for a verdict in parts ("int8 refuted; ...") the one kind all its parts
    share, else "mixed"."""
    v = str(verdict)
    for two in ("not yet measured", "not triggered"):
        if v.startswith(two):
            return "pending GPU" if "pending" in v else two
    head, _, rest = v.partition(" ")
    if head == "inconclusive" and (rest.startswith("(floor") or "at chance" in rest.split(";")[0]):
        return "at the floor"
    if "pending" in v:
        return "pending GPU"
    if head in ("supported", "refuted", "inconclusive", "triggered", "arithmetic"):
        return head
    found = {k for k in ("supported", "refuted", "inconclusive", "triggered") if re.search(rf"\b{k}\b", v)}
    return found.pop() if len(found) == 1 else "mixed"


def badge_html(verdict: str, compact: bool = False) -> str:
    """A coloured badge for the verdict's kind, followed by its qualification in small text
    (``compact``: the badge alone, the full wording in its tooltip). A verdict the floor rule
    left open reads "at the floor" (criteria, 2026-12-03)."""
    import html

    v = str(verdict)
    for two_words in ("not yet measured", "not triggered"):  # kinds whose name has a space
        if v.startswith(two_words):
            v = "not-" + two_words.split()[-1] + v[len(two_words):]
    head, _, rest = v.partition(" ")
    floor = head == "inconclusive" and (rest.startswith("(floor") or "at chance" in rest.split(";")[0])
    kind = "at the floor" if floor else ("at chance" if "at chance" in v else ("pending GPU" if "pending" in v else head))
    colour = BADGE.get(head, "#6e7781") if kind not in ("at chance", "at the floor") else "#8250df"
    label = html.escape(kind if kind in ("at chance", "at the floor", "pending GPU") else head.replace("-", " "))
    if compact and head not in BADGE and kind == head:   # a verdict in parts ("int8 refuted; ..."): its kinds
        found = {k for k in ("supported", "refuted", "inconclusive", "triggered") if re.search(rf"\b{k}\b", v)}
        kind = head = found.pop() if len(found) == 1 else "mixed"
        colour, label = BADGE.get(head, "#6e7781"), head
    if compact:
        return (f'<span title="{html.escape(str(verdict))}" style="background:{colour};color:white;border-radius:4px;'
                f'padding:1px 6px;white-space:nowrap">{label}</span>'
                + ('<small> +</small>' if rest and not floor else ""))
    more = f'<br><small>{html.escape(rest)}</small>' if rest and kind == head else ""
    return (f'<span style="background:{colour};color:white;border-radius:4px;padding:1px 6px;'
            f'white-space:nowrap">{label}</span>{more}')
