"""The paper's claims as a registry: one ``Claim`` per row of the book's verdict table.

A claim carries its id, wording, source (equation, table, section), the paper's prediction,
the function that computes its measurement from ``data/`` and the pre-registered criterion
(``studylib.paper.criteria``) that turns that measurement into a verdict. Adding a claim is one
entry in one of the modules below:

* ``hardware``: speed claims (Table 1/H1, the headline, gate overhead, Table 4, int8, Table 6's CPU row)
* ``quality``: accuracy claims (MMLU/GSM8K losses, probes, Eq. 25, the reasoning/factual ratio, H2)
* ``phases``: the §8.2 phases and H3, which combine the measurements of other claims

``studylib.verdicts`` turns the registry into the committed ``data/verdicts.csv``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable

import pandas as pd

from ..paper import criteria as C
from ..stats import Estimate

PENDING_GPU = "not yet measured (needs the h100 profile)"

#: the verdict table's groups (§8.1's hypotheses, §8.2's phases, the §3 audit), in the book's order;
#: each claim declares its own
GROUP_H1 = "H1 · speed, and its growth with model size"
GROUP_H2 = "H2 · quality preservation"
GROUP_H3 = "H3 · return on effort against int8 and speculative decoding"
GROUP_PHASES = "Phases 1-3 · the plan's milestones and failure modes"
GROUP_AUDIT = "§3 audit · the paper's own arithmetic"
GROUPS = (GROUP_H1, GROUP_H2, GROUP_H3, GROUP_PHASES, GROUP_AUDIT)


@dataclass(frozen=True)
class Measured:
    """What a claim's measurement function found in data/. ``estimate`` is what the criterion
    judges; ``inputs`` carries anything else it needs (several estimates, probabilities)."""
    estimate: Estimate | None = None
    text: str = "—"
    ci: str = "—"
    scale: str = ""
    inputs: dict = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return self.estimate is None and not self.inputs


@dataclass(frozen=True)
class Claim:
    id: str
    wording: str
    source: str
    prediction: str
    chapter: str
    measure: Callable[["Data"], Measured]
    criterion: Callable[[Measured], str]
    pending: str = C.NOT_MEASURED   # the verdict while measure() finds nothing
    group: str = ""                 # its group in the verdict table (GROUPS)

    def row(self, data: "Data") -> dict:
        m = self.measure(data)
        verdict = self.pending if m.empty else self.criterion(m)
        return {"id": self.id, "claim": self.wording, "source": self.source, "prediction": self.prediction,
                "measured": m.text, "95% CI": m.ci, "verdict": verdict, "scale": m.scale, "chapter": self.chapter,
                "group": self.group}


class Data:
    """The tables of data/ that claims read, and estimates several claims share, each computed
    once per verdict table."""

    def __init__(self):
        self._memo: dict = {}

    def once(self, key: str, compute: Callable[[], object]):
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def table(self, name: str) -> pd.DataFrame:
        from ..results import read_table
        return self.once(f"table:{name}", lambda: read_table(name))

    @property
    def timing(self) -> pd.DataFrame:
        return self.table("timing")

    @property
    def items(self) -> pd.DataFrame:
        return self.table("quality_items")

    @property
    def variants(self) -> pd.DataFrame:
        return self.table("quality_variants")

    @cached_property
    def deltas(self) -> pd.DataFrame:
        from .. import analysis
        return (analysis.quality_deltas(self.items) if not self.items.empty
                else pd.DataFrame(columns=["variant", "task", "profile", "model"]))


def ci_text(e: Estimate | None, fmt: str = "{:.2f}") -> str:
    """'[lo, hi]' in ``fmt``; where rounding would print a real interval as a point (a tight
    timing CI: [1.32, 1.32]) the ends get the decimals that tell them apart (up to 4)."""
    if e is None:
        return "—"
    lo, hi = fmt.format(e.lo), fmt.format(e.hi)
    if lo == hi and e.lo != e.hi and math.isfinite(e.hi - e.lo):
        d = min(4, max(0, -math.floor(math.log10(abs(e.hi - e.lo)))))
        lo, hi = f"{e.lo:.{d}f}", f"{e.hi:.{d}f}"
    return f"[{lo}, {hi}]"


def band(lo: float, hi: float) -> Callable[[Measured], str]:
    """Criterion: the estimate's CI inside [lo, hi] (``stats.interval_verdict``)."""
    from ..stats import interval_verdict
    return lambda m: interval_verdict(m.estimate, lo, hi)


def registry() -> list[Claim]:
    from . import hardware, phases, quality

    claims = [*hardware.CLAIMS, *quality.CLAIMS, *phases.CLAIMS]
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
