"""§7.1 qualification function and §7.3 abort conditions, as the paper states them.

The §7.1 listing is not valid Python (``1e9 tokens/day``, ``30%``); this is the closest
runnable reading: inference scale in tokens/day, cost reduction as a fraction.
"""
from __future__ import annotations

from dataclasses import dataclass


def should_consider_sparse_routing(model_size_b: float, hardware: str, workload: dict, team: dict) -> dict:
    """§7.1: returns every condition's value and the overall decision (``all``)."""
    conditions = {
        "scale_justified": model_size_b >= 70,
        "hardware_compatible": hardware in ("A100", "H100"),
        "workload_suitable": (
            workload["batch_size"] >= 32
            and workload["throughput_priority"] > workload["latency_priority"]
            and not workload["long_context_critical"]
        ),
        "team_capable": (
            team["engineering_budget"] >= 500
            and team["ml_infra_expertise"] >= 7 / 10
            and "quantization" in team["implemented_optimizations"]
            and "speculative_decoding" in team["implemented_optimizations"]
        ),
        "business_case": (
            workload["inference_scale_tokens_per_day"] >= 1e9
            or workload["cost_reduction"] >= 0.30
            or workload["research_exploration"] is True
        ),
    }
    return {**conditions, "decision": all(conditions.values())}


@dataclass(frozen=True)
class AbortCondition:
    number: int
    text: str
    measurable: bool
    threshold: float | None = None


#: §7.3, in the paper's order. Thresholds are in the units the study measures.
ABORT_CONDITIONS = (
    AbortCondition(1, "GSM8K (reasoning) degradation exceeds 3% during initial validation", True, 3.0),
    AbortCondition(2, "Load imbalance: > 70% of tokens routed to a single expert", True, 0.70),
    AbortCondition(3, "Engineering costs exceed 1000 hours", False, 1000.0),
    AbortCondition(4, "Requirement for multi-hardware support", False),
    AbortCondition(5, "Long-context retrieval critical for application", False),
)


def abort_gsm8k(degradation_pct_points: float) -> bool:
    """§7.3 condition 1 (degradation in accuracy percentage points)."""
    return degradation_pct_points > ABORT_CONDITIONS[0].threshold


def abort_load_imbalance(max_expert_fraction: float) -> bool:
    """§7.3 condition 2."""
    return max_expert_fraction > ABORT_CONDITIONS[1].threshold


def abort_hours(hours: float) -> bool:
    """§7.3 condition 3."""
    return hours > ABORT_CONDITIONS[2].threshold
