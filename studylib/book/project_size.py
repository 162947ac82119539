"""The size of this project's own implementation of each technique (``project_size.yaml``):
non-blank, non-comment source lines, files, Triton kernels and the libraries each needs — what
can be measured here beside the paper's engineering hours (Table 5), which cannot."""
from __future__ import annotations

import ast
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[2]
SPEC = Path(__file__).with_name("project_size.yaml")


def _code_lines(lines: list[str]) -> int:
    return sum(1 for ln in lines if ln.strip() and not ln.strip().startswith("#"))


def entry_lines(entry: str) -> int:
    path, _, name = entry.partition(":")
    text = (REPO / path).read_text()
    lines = text.splitlines()
    if not name:
        return _code_lines(lines)
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name == name:
            start = min([node.lineno] + [d.lineno for d in node.decorator_list])
            return _code_lines(lines[start - 1:node.end_lineno])
    raise KeyError(f"{name!r} not found in {path}")


def sizes() -> pd.DataFrame:
    rows = []
    for tech, spec in yaml.safe_load(SPEC.read_text()).items():
        code = spec["code"]
        rows.append({"technique": tech, "lines of code": sum(entry_lines(e) for e in code),
                     "files": len({e.partition(":")[0] for e in code}),
                     "Triton kernels": sum(e.rsplit(":", 1)[-1].endswith("_kernel") for e in code),
                     "libraries": ", ".join(spec["libraries"])})
    return pd.DataFrame(rows).set_index("technique")
