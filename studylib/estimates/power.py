"""Power of the paired quality comparisons: how many items a "loss < X pp" claim needs.

A claim "accuracy loss < X" is supported when the whole 95% paired interval of the loss lies
below X (``claims.quality``). With n items, a discordance rate ψ (share of items that one
variant gets right and the other wrong) and a true loss δ, that happens with probability
``stats.paired_power``; ``stats.paired_n_required`` inverts it. ψ is the one unknown that decides
everything, so it is *measured*: on every pair (variant vs dense, same items) already in data/.

The item counts of cpu-qwen (MMLU 1000, GSM8K 300) were fixed on 2026-11-24 from this table,
before any Qwen variant but dense ran; ``resolvable_margin`` says what they can and cannot decide.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from studylib.stats import paired_n_required, paired_power

#: the paper's margins (§1, Table 3 column "loss"), in accuracy points
MARGINS = {"mmlu": 0.01, "gsm8k_cot": 0.03, "gsm8k": 0.03}
POWER = 0.8


def resolvable_margin(n: int, discordance: float, power: float = POWER, level: float = 0.95) -> float:
    """Smallest margin X that n items support with ``power`` when the true loss is 0."""
    from scipy.stats import norm

    z = norm.ppf(0.5 + level / 2) + norm.ppf(power)
    return float(z * np.sqrt(discordance / n))


def discordance_table(deltas: pd.DataFrame) -> pd.DataFrame:
    """One row per paired comparison of ``analysis.quality_deltas`` on a task with a paper margin:
    its measured ψ and loss, the items needed for the margin at power 0.8 (true loss 0, and true
    loss = observed), and the margin the pair's own n resolves."""
    rows = []
    d = deltas[deltas["task"].isin(list(MARGINS))] if not deltas.empty else deltas
    for _, r in d.dropna(subset=["discordance"]).iterrows() if "discordance" in d else []:
        psi, loss, n, m = max(float(r["discordance"]), 1e-6), float(r["acc_loss_pp"]) / 100, int(r["n_items"]), MARGINS[r["task"]]
        rows.append({"profile": r["profile"], "task": r["task"], "variant": r["variant"], "n": n,
                     "discordance": float(r["discordance"]), "loss": loss, "margin": m,
                     "n_for_margin_if_no_loss": paired_n_required(psi, m),
                     "n_for_margin_at_observed_loss": paired_n_required(psi, m, loss),
                     "power_at_n_if_no_loss": paired_power(n, psi, m),
                     "resolvable_margin_at_n": resolvable_margin(n, psi)})
    return pd.DataFrame(rows)


def plan_table(counts: dict[str, int], discordances=(0.02, 0.05, 0.1, 0.15, 0.2, 0.3)) -> pd.DataFrame:
    """What fixed counts can resolve across plausible ψ: the margin they support at power 0.8
    with no true loss, and the power for the paper's margin."""
    rows = []
    for task, n in counts.items():
        for psi in discordances:
            rows.append({"task": task, "n": n, "discordance": psi, "paper_margin": MARGINS.get(task, np.nan),
                         "resolvable_margin": resolvable_margin(n, psi),
                         "power_for_paper_margin": paired_power(n, psi, MARGINS.get(task, np.nan)),
                         "n_for_paper_margin": paired_n_required(psi, MARGINS.get(task, np.nan))})
    return pd.DataFrame(rows)
