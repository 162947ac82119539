"""Timing harness: CUDA graphs + CUDA events on the GPU, perf_counter on the CPU.

GPU method (after triton ``do_bench`` / nvbench practice, see ../shared/ANCHORS.md):
the callable is captured once in a CUDA graph (launch overhead out of the picture, as in a
real decode loop that replays a graph), replayed ``warmup`` times, then ``repeats`` times
with a pair of events around each replay. Before each timed replay a 2×L2-sized buffer is
zeroed (outside the events) when ``flush_l2`` is set, so weights are read from HBM, not L2
— what happens in a real model, whose layers evict each other. The sample of per-replay
times gives the median, p95 and a bootstrap CI of the median (``studylib.stats``).
The same run records the device's measured copy bandwidth (the roofline) and bf16 matmul
throughput.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from studylib.stats import bootstrap_median


@dataclass
class TimingResult:
    samples_s: np.ndarray

    @property
    def median(self) -> float:
        return float(np.median(self.samples_s))

    @property
    def p95(self) -> float:
        return float(np.quantile(self.samples_s, 0.95))

    def summary(self) -> dict:
        ci = bootstrap_median(self.samples_s)
        return {"median_s": self.median, "p50_s": self.median, "p95_s": self.p95, "ci_lo_s": ci.lo,
                "ci_hi_s": ci.hi, "n": len(self.samples_s),
                "samples_s": " ".join(f"{x:.4e}" for x in self.samples_s)}


def _bench_cpu(fn, repeats: int, warmup: int) -> np.ndarray:
    for _ in range(warmup):
        fn()
    out = np.empty(repeats)
    for i in range(repeats):
        t0 = time.perf_counter()
        fn()
        out[i] = time.perf_counter() - t0
    return out


def _bench_cuda(fn, repeats: int, warmup: int, flush_l2: bool, use_graph: bool) -> np.ndarray:
    dev = torch.device("cuda")
    l2 = getattr(torch.cuda.get_device_properties(dev), "L2_cache_size", 50 * 2**20)
    flush = torch.empty(2 * l2 // 4 + 1, dtype=torch.int32, device=dev) if flush_l2 else None
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(s)
    if use_graph:
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            fn()
        run = g.replay
    else:
        run = fn
    for _ in range(warmup):
        run()
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(repeats)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(repeats)]
    torch.cuda.synchronize()
    for i in range(repeats):
        if flush is not None:
            flush.zero_()
        starts[i].record()
        run()
        ends[i].record()
    torch.cuda.synchronize()
    return np.array([a.elapsed_time(b) / 1e3 for a, b in zip(starts, ends)])


def bench(fn, device: str, repeats: int = 50, warmup: int = 10, flush_l2: bool = True,
          use_graph: bool = True) -> TimingResult:
    if device == "cuda":
        return TimingResult(_bench_cuda(fn, repeats, warmup, flush_l2, use_graph))
    return TimingResult(_bench_cpu(fn, repeats, warmup))


def warm_up(device: str, seconds: float = 2.0) -> None:
    """Run matmuls for a while so that clocks leave their idle state before peaks are measured
    (an idle H100 sits at a few hundred MHz; the first copy measured 20% low without this)."""
    if device != "cuda":
        return
    a = torch.randn(4096, 4096, device=device, dtype=torch.bfloat16)
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(20):
            a @ a
        torch.cuda.synchronize()


def measure_copy_bandwidth(device: str, sizes: tuple[int, ...] | None = None, repeats: int = 30) -> float:
    """Bytes/s of a device-to-device copy (read + write counted), the best over a few sizes: the
    achievable roofline every timed variant is compared with."""
    sizes = sizes or ((2**28, 2**30, 2**32) if device == "cuda" else (2**28,))
    best = 0.0
    for nbytes in sizes:
        a = torch.empty(nbytes // 2, dtype=torch.bfloat16 if device == "cuda" else torch.float32, device=device)
        b = torch.empty_like(a)
        r = bench(lambda: b.copy_(a), device, repeats, 5, flush_l2=False, use_graph=device == "cuda")
        best = max(best, 2 * a.numel() * a.element_size() / r.median)
        del a, b
    return best


def measure_matmul_flops(device: str, n: int | None = None, repeats: int = 20) -> float:
    n = n or (8192 if device == "cuda" else 1024)
    dt = torch.bfloat16 if device == "cuda" else torch.float32
    a = torch.randn(n, n, dtype=dt, device=device)
    b = torch.randn(n, n, dtype=dt, device=device)
    r = bench(lambda: a @ b, device, repeats, 3, flush_l2=False, use_graph=device == "cuda")
    return 2 * n ** 3 / r.median
