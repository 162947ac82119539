"""The paper's claims as a registry: one ``Claim`` per row of the book's verdict table.

A claim carries its id, wording, source (equation, table, section), the paper's prediction,
the function that computes its measurement from ``data/`` and the pre-registered criterion
(``studylib.paper.criteria``) that turns that measurement into a verdict. Adding a claim is one
entry in a ``CLAIMS`` list of one of the modules below (a new module of claims is found by
scanning this package; its ``RANK`` places its rows in the table):

* ``hardware``: speed claims (Table 1/H1, the headline, gate overhead, Table 4, int8, Table 6's CPU row)
* ``quality``: accuracy claims (MMLU/GSM8K losses, probes, Eq. 25, the reasoning/factual ratio, H2)
* ``phases``: the §8.2 phases and H3, which combine the measurements of other claims

``studylib.claims.verdicts`` turns the registry into the committed ``data/verdicts.csv``.
"""
from __future__ import annotations

import importlib
import pkgutil

import pandas as pd

from studylib.claims.base import (  # noqa: F401,E501
    GROUP_AUDIT,
    GROUP_H1,
    GROUP_H2,
    GROUP_H3,
    GROUP_PHASES,
    GROUPS,
    Claim,
    Data,
    Measured,
    ci_text,
)


def _claim_modules() -> list:
    """Every module of this package that declares ``CLAIMS``, in ``RANK`` order."""
    mods = [importlib.import_module(f"{__name__}.{m.name}") for m in pkgutil.iter_modules(__path__)]
    return sorted((m for m in mods if hasattr(m, "CLAIMS")), key=lambda m: m.RANK)


def registry() -> list[Claim]:
    claims = [c for m in _claim_modules() for c in m.CLAIMS]
    ids = [c.id for c in claims]
    dup = {i for i in ids if ids.count(i) > 1}
    if dup:
        raise ValueError(f"duplicate claim ids: {sorted(dup)}")
    ungrouped = [c.id for c in claims if c.group not in GROUPS]
    if ungrouped:
        raise ValueError(f"claims without a group of GROUPS: {ungrouped}")
    return claims


def verdict_table(data: Data | None = None) -> pd.DataFrame:
    data = data or Data()
    return pd.DataFrame([c.row(data) for c in registry()])
