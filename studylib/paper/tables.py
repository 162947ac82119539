"""The paper's tables (1-9) as data, transcribed as printed. Ranges are (low, high) tuples.

These are predictions, never results: the book sets each beside the measurement that tests it.
"""
from __future__ import annotations

#: Table 1: projected speedup by model size (attention %, FFN %, max, realistic range).
TABLE1 = {
    "7B": {"n_params": 7e9, "attn": 0.45, "ffn": 0.55, "max": 1.57, "realistic": (1.3, 1.4)},
    "13B": {"n_params": 13e9, "attn": 0.42, "ffn": 0.58, "max": 1.64, "realistic": (1.4, 1.5)},
    "30B": {"n_params": 30e9, "attn": 0.38, "ffn": 0.62, "max": 1.76, "realistic": (1.5, 1.6)},
    "70B": {"n_params": 70e9, "attn": 0.35, "ffn": 0.65, "max": 1.85, "realistic": (1.6, 1.7)},
    "175B": {"n_params": 175e9, "attn": 0.32, "ffn": 0.68, "max": 1.94, "realistic": (1.7, 1.8)},
}

#: Table 2: gate overhead vs batch size (µs, % of layer, viability).
TABLE2 = {
    1: {"gate_us": 16.0, "pct_of_layer": 0.29, "viability": "Prohibitive"},
    8: {"gate_us": 2.0, "pct_of_layer": 0.05, "viability": "Acceptable"},
    32: {"gate_us": 0.5, "pct_of_layer": 0.013, "viability": "Ideal"},
}

#: Table 3: projected quality loss of 30% pruning + 4-expert top-1, percentage points.
TABLE3 = {
    "mmlu": {"loss_pct": (0.3, 0.8), "kind": "factual"},
    "gsm8k": {"loss_pct": (1.0, 2.0), "kind": "reasoning"},
    "math": {"loss_pct": (1.5, 3.0), "kind": "reasoning"},
    "long_context": {"loss_pct": (5.0, 15.0), "kind": "retrieval"},
}

#: Table 4: throughput impact of expert load imbalance (4 experts).
TABLE4 = {
    "balanced": {"fractions": (0.25, 0.25, 0.25, 0.25), "throughput": 1.00},
    "mild": {"fractions": (0.40, 0.20, 0.20, 0.20), "throughput": 0.85},
    "severe": {"fractions": (0.70, 0.10, 0.10, 0.10), "throughput": 0.55},
    "catastrophic": {"fractions": (0.90, 0.05, 0.05, 0.00), "throughput": 0.35},
}

#: Table 5: engineering ROI (hours range, speedup range, printed hours per 1x).
TABLE5 = {
    "int8": {"hours": (50, 100), "speedup": (1.8, 2.2), "hours_per_x": 42, "hardware": "Universal"},
    "spec_decode": {"hours": (100, 200), "speedup": (2.3, 2.7), "hours_per_x": 60, "hardware": "Universal"},
    "sparse_routing": {"hours": (700, 1200), "speedup": (1.7, 1.9), "hours_per_x": 412, "hardware": "A100/H100"},
    "int8+spec_decode": {"hours": (150, 300), "speedup": (2.7, 3.3), "hours_per_x": 55, "hardware": "Universal"},
}

#: Table 6: sparse-routing speedup by hardware.
TABLE6 = {
    "A100/H100": (1.7, 1.9), "T4/V100": (1.1, 1.3), "TPU": (1.0, 1.2), "CPU": (0.8, 1.0),
}

#: Table 7: cost per 1M tokens (fraction of dense) and VRAM (fraction of dense), 70B model.
TABLE7 = {
    "dense": {"speedup": 1.0, "cost": 1.0, "vram": (1.00, 1.00)},
    "sparse_routing": {"speedup": 1.7, "cost": 0.6, "vram": (1.25, 1.50)},
    "int8": {"speedup": 2.0, "cost": 0.5, "vram": (1.05, 1.05)},
    "spec_decode": {"speedup": 2.5, "cost": 0.4, "vram": (1.15, 1.15)},
    "int8+spec_decode": {"speedup": 3.3, "cost": 0.3, "vram": (1.20, 1.20)},
}

#: Table 8: sparse routing vs quantization.
TABLE8 = {
    "sparse_routing": {"speedup": (1.7, 1.9), "hours": (700, 1200), "quality_loss_pct": (0.8, 3.0),
                       "vram_overhead": (0.25, 0.50)},
    "int8": {"speedup": (1.8, 2.2), "hours": (50, 100), "quality_loss_pct": (0.5, 1.5),
             "vram_overhead": (0.05, 0.05)},
}

#: Table 9: sparse routing vs speculative decoding.
TABLE9 = {
    "sparse_routing": {"speedup": (1.7, 1.9), "hours": (700, 1200), "hours_per_x": 412,
                       "quality_loss_pct": (0.8, 3.0)},
    "spec_decode": {"speedup": (2.3, 2.7), "hours": (100, 200), "hours_per_x": 60,
                    "quality_loss_pct": (0.3, 0.5)},
}

#: Headline claims of the abstract and §9.
HEADLINE_SPEEDUP = (1.7, 1.9)         # 30% SparseGPT + 4-expert top-1, A100/H100
HEADLINE_MMLU_LOSS_PCT = 1.0          # "< 1% MMLU loss"
REASONING_TO_FACTUAL_RATIO = (2.0, 3.0)  # §8.1.2 (§4.4 says 3-5x instead)
SECTION44_RATIO = (3.0, 5.0)
