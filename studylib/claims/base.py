"""What a claim is (``Claim``), what it found (``Measured``), the data claims read (``Data``),
the verdict table's groups, and two criterion helpers. The registry is the package (``studylib.claims``)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable

import pandas as pd

from studylib.paper import criteria as C
from studylib.stats import Estimate

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
        from studylib.results import read_table
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
        from studylib.estimates import analysis
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
    from studylib.stats import interval_verdict
    return lambda m: interval_verdict(m.estimate, lo, hi)
