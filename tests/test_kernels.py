"""Weight packing round trips, and the Triton decode kernels against plain torch (in Triton's
interpreter on machines without a GPU; skipped where triton is not installed)."""
import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from studylib.kernels import quant as Q

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("kind,bound", [("int8", 0.01), ("fp8", 0.04), ("int4", 0.13)])
def test_quantized_weights_round_trip_within_expected_error(kind, bound):
    torch.manual_seed(0)
    W = torch.randn(64, 256)
    q, s = Q.quantize_int4(W) if kind == "int4" else Q.quantize_rowwise(W, kind)
    err = float((Q.dequantize(q, s, kind) - W).norm() / W.norm())
    # round-to-nearest on a Gaussian: int8 ~0.5%, fp8-e4m3 ~2.5%, int4 with groups of 128 ~11%
    assert 0 < err < bound
    assert Q.weight_bytes(q, s) < W.numel() * 2  # fewer bytes than bf16


def test_int4_packing_is_two_values_per_byte_low_nibble_first():
    W = torch.zeros(1, 128)
    W[0, 0], W[0, 1] = 7.0, -7.0  # scale 1: q0 = 7, q1 = -7
    q, s = Q.quantize_int4(W)
    assert q.shape == (1, 64) and q.dtype == torch.int8
    assert int(q[0, 0]) & 0xF == 7 and int(q[0, 0]) >> 4 == -7


KERNEL_SCRIPT = textwrap.dedent("""
    import torch
    from studylib.kernels import triton_gemv as T, quant as Q
    from studylib.timing.modules import MoEFFN
    torch.manual_seed(0)
    x = torch.randn(3, 256)
    W = torch.randn(48, 256)
    for kind, qc in (("int8", T.QUANT_ROW), ("fp8", T.QUANT_ROW), ("int4", T.QUANT_INT4)):
        q, s = Q.quantize_int4(W) if kind == "int4" else Q.quantize_rowwise(W, kind)
        ref = x @ Q.dequantize(q, s, kind).T
        y = T.wo_matmul(x, q, s, qc)
        assert float((y - ref).norm() / ref.norm()) < 1e-5, kind
    # split-K: K-slices summed in fp32 give the same product
    x2, W2 = torch.randn(2, 1024), torch.randn(40, 1024)
    for kind, qc in (("int8", T.QUANT_ROW), ("int4", T.QUANT_INT4)):
        q, s = Q.quantize_int4(W2) if kind == "int4" else Q.quantize_rowwise(W2, kind)
        ref = x2 @ Q.dequantize(q, s, kind).T
        for splits in (1, 2, 4):
            y = T.wo_matmul(x2, q, s, qc, splits=splits)
            assert y.shape == ref.shape and y.dtype == x2.dtype
            assert float((y - ref).norm() / ref.norm()) < 1e-5, (kind, splits)
    m = MoEFFN(256, 512, K=4, k=2)
    m.forced = torch.tensor([[0, 3], [2, 1]])
    xs = torch.randn(2, 256)
    w, idx = m.route(xs)
    a, b = m._forward_gemv(xs, w, idx), m._forward_grouped(xs, w, idx)
    assert float((a - b).norm() / b.norm()) < 1e-5
    print("kernels ok")
""")


@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="triton not installed")
def test_triton_kernels_match_torch_in_the_interpreter():
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    r = subprocess.run([sys.executable, "-c", KERNEL_SCRIPT], cwd=REPO, env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "kernels ok" in r.stdout


def test_split_k_fills_the_gpu_only_where_the_output_is_narrow():
    from studylib.kernels.triton_gemv import split_k

    sms4 = 4 * 132  # H100/H200: 132 SMs, 4 programs each
    assert split_k(1, 4096, 14336, sms4) == 4     # Llama-3-8B down projection: 128 tiles x 4
    assert split_k(1, 6144, 4096, sms4) == 2      # its q|k|v
    assert split_k(1, 28672, 4096, sms4) == 1     # gate|up: already 896 tiles
    assert split_k(1, 4096, 1000, sms4) == 1      # K that does not split into multiples of 256
    assert split_k(8, 4096, 14336, 1) == 1        # a tiny device never splits
