"""Triton kernels for decode-time FFNs: weight-only quantized matmul and a top-k expert GEMV.

Why written here: the GPU image has torch 2.11 + triton 3.6 and nothing can be installed there
(no torchao, no vLLM), and torch itself has no weight-only fp8/int4-with-groups kernel for a
bf16 activation nor a fused "run only the chosen expert" GEMV. Both kernels are the standard
decode designs (gpt-fast's int8/int4 GEMV; vLLM fused_moe at small M), written from their
description:

* ``wo_matmul``: y = x @ dequant(W).T for x (M, K) bf16 and W (N, K) stored as bf16, int8 or
  fp8-e4m3 with one scale per output row, or int4 (two per byte along K) with one scale per
  row and group of ``group`` columns. Weights are de-quantized in registers after the load, so
  the kernel reads only the quantized bytes: that read is the whole cost at decode batch sizes.
* ``expert_gemv``: for each (token, expert) slot s, y[s] = W[e_s] @ x[row_s]; with ``glu`` the
  expert's fused gate|up rows give silu(gate) * up (SwiGLU) in the same pass. Only the chosen
  expert's rows are loaded: a top-1-of-4 layer reads a quarter of the FFN's bytes, no weight
  copy, no host sync (expert ids stay on the device), so it is CUDA-graph capturable.

On a machine without a GPU the same kernels run in Triton's interpreter
(``TRITON_INTERPRET=1``, set before triton is imported): the tests check them against plain
torch there.
"""
from __future__ import annotations

import os

import torch

try:  # triton is on the GPU image; on CPU machines it is optional (interpreter for tests)
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - exercised on machines without triton
    triton = None
    tl = None

INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"

QUANT_NONE, QUANT_ROW, QUANT_INT4 = 0, 1, 2


def available(device: str) -> bool:
    """True when the kernels can run for tensors on ``device``."""
    if triton is None:
        return False
    return device == "cuda" or INTERPRET


if triton is not None:

    @triton.jit
    def _wo_matmul_kernel(x_ptr, w_ptr, s_ptr, y_ptr, M, N, K: tl.constexpr, K_SPLIT: tl.constexpr,
                          stride_xm, stride_wn, stride_sn, stride_ym, stride_yk,
                          QUANT: tl.constexpr, GROUP: tl.constexpr, DOT_DT: tl.constexpr,
                          BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
        # program (n, m, k): output tile (m, n) over the k-th slice of K_SPLIT input columns; with
        # several slices each writes an fp32 partial (y is then (splits, M, N)) that the caller sums
        pid_n = tl.program_id(0)
        pid_m = tl.program_id(1)
        pid_k = tl.program_id(2)
        rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
        rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        k_lo = pid_k * K_SPLIT
        for kk in range(0, K_SPLIT, BLOCK_K):
            k0 = k_lo + kk
            rk = k0 + tl.arange(0, BLOCK_K)
            x = tl.load(x_ptr + rm[:, None] * stride_xm + rk[None, :],
                        mask=(rm[:, None] < M) & (rk[None, :] < K), other=0.0).to(DOT_DT)
            if QUANT == 2:
                rkh = k0 // 2 + tl.arange(0, BLOCK_K // 2)
                b = tl.load(w_ptr + rn[:, None] * stride_wn + rkh[None, :],
                            mask=(rn[:, None] < N) & (rkh[None, :] < K // 2), other=0)
                lo = (b << 4) >> 4          # low nibble, sign-extended
                hi = b >> 4                 # high nibble (arithmetic shift)
                w = tl.join(lo, hi).reshape(BLOCK_N, BLOCK_K).to(tl.float32)
                sc = tl.load(s_ptr + rn * stride_sn + k0 // GROUP, mask=rn < N, other=0.0).to(tl.float32)
                w = (w * sc[:, None]).to(DOT_DT)
            else:
                w = tl.load(w_ptr + rn[:, None] * stride_wn + rk[None, :],
                            mask=(rn[:, None] < N) & (rk[None, :] < K), other=0.0).to(DOT_DT)
            acc += tl.dot(x, tl.trans(w))
        if QUANT == 1:
            sc = tl.load(s_ptr + rn, mask=rn < N, other=0.0).to(tl.float32)
            acc = acc * sc[None, :]
        tl.store(y_ptr + pid_k * stride_yk + rm[:, None] * stride_ym + rn[None, :], acc.to(y_ptr.dtype.element_ty),
                 mask=(rm[:, None] < M) & (rn[None, :] < N))

    @triton.jit
    def _expert_gemv_kernel(x_ptr, w_ptr, eid_ptr, row_ptr, cw_ptr, y_ptr, N, K: tl.constexpr,
                            stride_xm, stride_we, stride_wn, stride_ym,
                            GLU: tl.constexpr, HAS_CW: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
        s = tl.program_id(0)
        pid_n = tl.program_id(1)
        e = tl.load(eid_ptr + s).to(tl.int64)
        row = tl.load(row_ptr + s).to(tl.int64)
        rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
        base = w_ptr + e * stride_we
        acc = tl.zeros((BLOCK_N,), dtype=tl.float32)
        acc_u = tl.zeros((BLOCK_N,), dtype=tl.float32)
        for k0 in range(0, K, BLOCK_K):
            rk = k0 + tl.arange(0, BLOCK_K)
            x = tl.load(x_ptr + row * stride_xm + rk, mask=rk < K, other=0.0).to(tl.float32)
            m = (rn[:, None] < N) & (rk[None, :] < K)
            w = tl.load(base + rn[:, None] * stride_wn + rk[None, :], mask=m, other=0.0).to(tl.float32)
            acc += tl.sum(w * x[None, :], axis=1)
            if GLU:
                wu = tl.load(base + (rn[:, None] + N) * stride_wn + rk[None, :], mask=m, other=0.0).to(tl.float32)
                acc_u += tl.sum(wu * x[None, :], axis=1)
        if GLU:
            out = acc * tl.sigmoid(acc) * acc_u
        elif HAS_CW:
            out = acc * tl.load(cw_ptr + s).to(tl.float32)
        else:
            out = acc
        tl.store(y_ptr + s * stride_ym + rn, out.to(y_ptr.dtype.element_ty), mask=rn < N)


if triton is not None:
    # Autotuned on the GPU, once per (N, K, GLU), during the warm-up before graph capture.
    _expert_gemv_tuned = triton.autotune(
        configs=[triton.Config({"BLOCK_N": bn, "BLOCK_K": bk}, num_warps=nw)
                 for bn in (2, 4, 8, 16) for bk in (256, 512, 1024) for nw in (2, 4, 8) if bn * bk <= 8192],
        key=["N", "K", "GLU"])(_expert_gemv_kernel)
    _wo_matmul_tuned = triton.autotune(
        configs=[triton.Config({"BLOCK_N": bn, "BLOCK_K": bk}, num_warps=nw, num_stages=st)
                 for bn in (16, 32, 64) for bk in (64, 128) for nw in (4,) for st in (3, 5)],
        key=["N", "K", "K_SPLIT", "QUANT", "M"])(_wo_matmul_kernel)

# Triton's interpreter (3.6) computes tl.dot on bf16 operands wrongly, so under it the dot runs in
# fp32; on the GPU the operands are bf16 (the tensor-core path).
GEMV_BLOCK_N, GEMV_BLOCK_K = 8, 512        # interpreter only; the GPU autotunes
MM_BLOCK_M, MM_BLOCK_K = 16, 128


SPLIT_K_MAX = 16
SPLIT_K_UNIT = 256  # a K-slice is a multiple of this: of every BLOCK_K tried and of the int4 group


def split_k(M: int, N: int, K: int, programs: int) -> int:
    """How many K-slices a decode-shaped product gets: the largest power of two (at most
    SPLIT_K_MAX) keeping ~32-row output tiles x slices within ``programs`` (4 per SM) and each slice
    a multiple of SPLIT_K_UNIT columns. A narrow output (Llama-3-8B's down projection: 4,096
    rows, 14,336 columns) otherwise leaves most SMs idle, each streaming one long row block."""
    tiles = -(-N // 32) * -(-M // MM_BLOCK_M)
    s = 1
    while 2 * s <= SPLIT_K_MAX and tiles * 2 * s <= programs and K % (2 * s * SPLIT_K_UNIT) == 0:
        s *= 2
    return s


def wo_matmul(x: torch.Tensor, w: torch.Tensor, scale: torch.Tensor | None, quant: int, group: int = 128,
              splits: int | None = None) -> torch.Tensor:
    """x (M, K) @ dequant(w).T -> (M, N) in x's dtype (see the module docstring for layouts).
    ``splits``: K-slices summed in fp32 (default: ``split_k`` for this device)."""
    M, K = x.shape
    N = w.shape[0]
    if quant == QUANT_INT4 and (K % group or group % MM_BLOCK_K):
        raise ValueError(f"int4 needs K % group == 0 and group % {MM_BLOCK_K} == 0 (K={K}, group={group})")
    # (the tuned configs use BLOCK_K <= 128, so a K-block never straddles an int4 group)
    if splits is None:
        splits = 1 if INTERPRET else split_k(M, N, K, 4 * _sm_count(x.device))
    if K % splits or (splits > 1 and (K // splits) % SPLIT_K_UNIT):
        raise ValueError(f"K={K} does not split into {splits} slices of a multiple of {SPLIT_K_UNIT}")
    y = torch.empty(M, N, dtype=x.dtype, device=x.device) if splits == 1 else \
        torch.empty(splits, M, N, dtype=torch.float32, device=x.device)
    s = scale if scale is not None else w  # unused when quant == 0
    args = (x, w, s, y, M, N, K, K // splits, x.stride(0), w.stride(0), s.stride(0) if s.dim() > 1 else 1,
            y.stride(-2), y.stride(0) if splits > 1 else 0)
    if INTERPRET:
        grid = (triton.cdiv(N, 16), triton.cdiv(M, MM_BLOCK_M), splits)
        _wo_matmul_kernel[grid](*args, QUANT=quant, GROUP=group, DOT_DT=tl.float32, BLOCK_M=MM_BLOCK_M,
                                BLOCK_N=16, BLOCK_K=MM_BLOCK_K)
    else:
        grid = lambda m: (triton.cdiv(N, m["BLOCK_N"]), triton.cdiv(M, MM_BLOCK_M), splits)  # noqa: E731
        _wo_matmul_tuned[grid](*args, QUANT=quant, GROUP=group, DOT_DT=tl.bfloat16, BLOCK_M=MM_BLOCK_M)
    return y if splits == 1 else y.sum(0).to(x.dtype)


_SMS: dict = {}


def _sm_count(device: torch.device) -> int:
    if device.type != "cuda":
        return 1
    if device not in _SMS:
        _SMS[device] = torch.cuda.get_device_properties(device).multi_processor_count
    return _SMS[device]


def expert_gemv(x: torch.Tensor, w: torch.Tensor, eids: torch.Tensor, rows: torch.Tensor,
                combine: torch.Tensor | None, glu: bool) -> torch.Tensor:
    """Per slot s: W[eids[s]] @ x[rows[s]]. ``w`` is (E, N_out, K) (``glu``: (E, 2N, K), gate rows
    first). Returns (S, N) with N = w.shape[1] // 2 if glu else w.shape[1], scaled by
    ``combine[s]`` when not glu."""
    S = eids.numel()
    E, R, K = w.shape
    N = R // 2 if glu else R
    y = torch.empty(S, N, dtype=x.dtype, device=x.device)
    cw = combine if combine is not None else y  # unused without HAS_CW
    args = (x, w, eids, rows, cw, y, N, K, x.stride(0), w.stride(0), w.stride(1), y.stride(0))
    if INTERPRET:
        _expert_gemv_kernel[(S, triton.cdiv(N, GEMV_BLOCK_N))](*args, GLU=glu, HAS_CW=combine is not None,
                                                               BLOCK_N=GEMV_BLOCK_N, BLOCK_K=GEMV_BLOCK_K)
    else:
        _expert_gemv_tuned[lambda m: (S, triton.cdiv(N, m["BLOCK_N"]))](*args, GLU=glu, HAS_CW=combine is not None)
    return y
