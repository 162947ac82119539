"""The dated log of every change to the pre-registered criteria, generated from git (issue 13).

``studylib/paper/criteria.py`` was first written before any data existed (commit 29853cc); it
changed afterwards, some of it after data had been looked at. That is allowed when disclosed:
the audit appendix prints (1) every commit that touched a file holding a decision rule, with its
date and message, and (2) the dated "Added"/"Changed" notes inside criteria.py that give each
change's reason. Without a git checkout (a copy of the tree), (1) is empty and says so.
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[2]
# the old paths too: git log does not follow a moved file here
RULE_FILES = ("studylib/paper/criteria.py", "studylib/claims", "studylib/estimates/roi.py", "studylib/estimates/power.py",
              "studylib/roi.py", "studylib/power.py")
_NOTE = re.compile(r"^# --- (Added|Changed) (\d{4}-\d{2}-\d{2})(.*)$")


def commits(paths=RULE_FILES) -> pd.DataFrame:
    """Commits touching the decision rules, oldest first: commit, date, files, subject."""
    try:
        out = subprocess.run(["git", "log", "--reverse", "--date=short", "--name-only",
                              "--format=@@%h|%ad|%s", "--", *paths], cwd=REPO, capture_output=True,
                             text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return pd.DataFrame(columns=["commit", "date", "files", "subject"])
    rows = []
    for block in out.split("@@")[1:]:
        head, *files = [x for x in block.splitlines() if x.strip()]
        h, date, subject = head.split("|", 2)
        rows.append({"commit": h, "date": date, "files": ", ".join(sorted(files)), "subject": subject})
    return pd.DataFrame(rows)


def dated_notes(path: Path = REPO / "studylib" / "paper" / "criteria.py") -> pd.DataFrame:
    """The '# --- Added/Changed <date>' blocks of criteria.py: kind, date, text."""
    rows, cur = [], None
    for line in path.read_text().splitlines():
        m = _NOTE.match(line.strip())
        if m:
            cur = {"kind": m.group(1), "date": m.group(2), "text": m.group(3).strip(" ():")}
            rows.append(cur)
        elif cur is not None and line.startswith("#"):
            cur["text"] = (cur["text"] + " " + line.lstrip("# ").strip()).strip()
        else:
            cur = None
    return pd.DataFrame(rows, columns=["kind", "date", "text"])
