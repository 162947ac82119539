"""The paper's equations, transcribed literally, each tagged with its number.

Paper: "Sparse Routing for LLM Inference: Theoretical Analysis and When to Use It"
(../shared/seeds/000_9b6c07c5012a0781.txt). Nothing here is measured; these are the
*predictions* the study tests. Each function reproduces the paper's own arithmetic,
including its unit conventions, so that tests can check the printed numbers and flag
where the paper is not self-consistent (see ``studylib.paper.consistency``).

Unit convention of §3.1 (reverse-engineered from Eq. 5): a parameter counts as ONE byte
and the result is in microseconds, i.e. ``T = params / BW[B/s] * 1e6``.
"""
from __future__ import annotations

import math

#: §3.1.1 uses "2 TB/s" for the A100 in Eqs. 5-6 (the prose also says 640 GB/s).
PAPER_BW_BYTES_PER_S = 2e12
#: Eq. 23: A100 dense bf16 peak the paper uses.
PAPER_A100_TFLOPS = 312.0


def _us(params: float, bw: float = PAPER_BW_BYTES_PER_S) -> float:
    """The paper's convention: params/BW, one byte per parameter, in microseconds."""
    return params / bw * 1e6


def eq2_t_attn(D: int, bw: float = PAPER_BW_BYTES_PER_S) -> float:
    """Eq. 2 (and Eq. 5): T_attn = D^2 / BW  [µs, paper convention]."""
    return _us(D * D, bw)


def eq3_t_ffn(D: int, D_ff: int, bw: float = PAPER_BW_BYTES_PER_S) -> float:
    """Eq. 3 (and Eq. 6): T_ffn = 2·D·D_ff / BW  [µs, paper convention]."""
    return _us(2 * D * D_ff, bw)


#: Eq. 4 / Eq. 7: dense per-layer overhead, µs.
EQ4_T_OVERHEAD_DENSE_US = 3.0
#: Eq. 11 / Eq. 17: sparse per-layer overhead, µs.
EQ11_T_OVERHEAD_SPARSE_US = 5.0
#: Eq. 12 / Eq. 29: pruning ratio of the headline configuration.
EQ12_P = 0.3
#: Eq. 13: number of experts.
EQ13_K = 4


def eq10_t_gate(D: int, K: int, bw: float = PAPER_BW_BYTES_PER_S) -> float:
    """Eq. 10 / Eq. 21: T_gate = 2·D·K / BW  [µs, paper convention]."""
    return _us(2 * D * K, bw)


def eq1_t_layer_dense(t_attn: float, t_ffn: float, t_over: float = EQ4_T_OVERHEAD_DENSE_US) -> float:
    """Eq. 1 / Eq. 8: per-layer dense time = T_attn + T_ffn + T_overhead."""
    return t_attn + t_ffn + t_over


def eq9_t_layer_sparse(t_attn: float, t_ffn: float, t_gate: float, p: float = EQ12_P,
                       K: int = EQ13_K, t_over: float = EQ11_T_OVERHEAD_SPARSE_US) -> float:
    """Eq. 9: T_sparse = T_attn + T_ffn·(1-p)/K + T_gate + T_overhead^sparse."""
    return t_attn + t_ffn * (1 - p) / K + t_gate + t_over


def eq18_speedup(t_dense: float, t_sparse: float) -> float:
    """Eq. 18: Speedup = T_dense / T_sparse."""
    return t_dense / t_sparse


def eq19_f_attn(n_params: float) -> float:
    """Eq. 19: f_attn(N) = 0.45 - 0.13·log10(N / 7e9)."""
    return 0.45 - 0.13 * math.log10(n_params / 7e9)


def eq20_max_speedup(f_attn: float) -> float:
    """Eq. 20: the 'attention wall', Max speedup = 1 / f_attn."""
    return 1.0 / f_attn


def eq22_ai_gemm(D: int, D_out: int) -> float:
    """Eq. 22: arithmetic intensity of a B=1 GEMV = 2·D·D_out / (4·D·D_out) FLOP/byte."""
    return (2 * D * D_out) / (4 * D * D_out)


def eq23_critical_ai(tflops: float = PAPER_A100_TFLOPS, bw: float = PAPER_BW_BYTES_PER_S) -> float:
    """Eq. 23: ridge point = peak FLOP/s / BW  [FLOP/byte]."""
    return tflops * 1e12 / bw


def eq24_gate_per_batch(t_gate_single: float, batch: int) -> float:
    """Eq. 24: T_gate^batch = T_gate^single / BatchSize."""
    return t_gate_single / batch


#: Eqs. 26-28: quality-loss coefficients.
EQ26_ALPHA = 0.8
EQ27_BETA = 2.5
EQ28_GAMMA = 8.0


def eq25_quality_loss(p: float, balance: float, c_drop: float, alpha: float = EQ26_ALPHA,
                      beta: float = EQ27_BETA, gamma: float = EQ28_GAMMA) -> float:
    """Eq. 25: Q_loss = α·p + β·(1-Balance) + γ·C_drop (the paper gives no unit; Table 3
    reads it in percentage points)."""
    return alpha * p + beta * (1 - balance) + gamma * c_drop


def eq32_routing_efficiency(fractions) -> float:
    """Eq. 32: Efficiency = 1 - Σ|p_i - 1/K| / (2·(1 - 1/K)); 1 = uniform, 0 = one expert."""
    fr = [float(f) for f in fractions]
    K = len(fr)
    if K < 2:
        raise ValueError("Eq. 32 needs at least two experts")
    total = sum(fr)
    if total <= 0:
        raise ValueError("expert fractions must sum to a positive number")
    fr = [f / total for f in fr]
    return 1 - sum(abs(f - 1 / K) for f in fr) / (2 * (1 - 1 / K))


def eq33_hours_per_speedup(hours: float, speedup: float) -> float:
    """Eq. 33: ROI metric = engineering hours / achieved speedup (lower is better)."""
    return hours / speedup


#: Eq. 34 / §6.3: the interaction efficiency the paper assumes.
EQ34_ETA = 0.8


def eq34_combined_speedup(s_a: float, s_b: float, eta: float = EQ34_ETA) -> float:
    """Eq. 34: Speedup_combined = S_sparse · S_spec · η_interaction."""
    return s_a * s_b * eta


def eq34_eta_from_measurement(s_combined: float, s_a: float, s_b: float) -> float:
    """Eq. 34 solved for η: η = S_combined / (S_a · S_b)."""
    return s_combined / (s_a * s_b)


def paper_section31(D: int = 4096, D_ff: int = 14336, n_layers: int = 32, p: float = EQ12_P,
                    K: int = EQ13_K, bw: float = PAPER_BW_BYTES_PER_S) -> dict:
    """§3.1 end to end (Eqs. 1-18) as the paper computes it, from its formulas.

    The paper *prints* 56.0 for Eq. 6 where its formula gives 58.7; this function uses the
    formula. ``PRINTED_SECTION31`` holds the printed values for comparison.
    """
    t_attn = eq2_t_attn(D, bw)
    t_ffn = eq3_t_ffn(D, D_ff, bw)
    t_gate = eq10_t_gate(D, K, bw)
    dense = eq1_t_layer_dense(t_attn, t_ffn)
    sparse = eq9_t_layer_sparse(t_attn, t_ffn, t_gate, p, K)
    return {
        "t_attn_us": t_attn, "t_ffn_us": t_ffn, "t_ffn_sparse_us": t_ffn * (1 - p) / K,
        "t_gate_us": t_gate, "t_layer_dense_us": dense, "t_layer_sparse_us": sparse,
        "t_token_dense_ms": dense * n_layers / 1e3, "t_token_sparse_ms": sparse * n_layers / 1e3,
        "speedup": eq18_speedup(dense, sparse),
    }


#: The numbers §3.1 prints (Eqs. 5-8, 14-18), µs per layer unless named otherwise.
PRINTED_SECTION31 = {
    "t_attn_us": 8.4, "t_ffn_us": 56.0, "t_ffn_sparse_us": 9.8, "t_gate_us": 16.0,
    "t_layer_dense_us": 67.4, "t_layer_sparse_us": 39.2,
    "t_token_dense_ms": 2.16, "t_token_sparse_ms": 1.25, "speedup": 1.73,
}
