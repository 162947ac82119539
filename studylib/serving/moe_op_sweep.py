"""The companion study's expert-MLP sweep (003_…txt) through vLLM's own CPU fused-MoE op.

003 times one MoE layer's experts (hidden 2048, 8 experts, expert width × batch × activated experts,
uniform routing) on an A100; ``timing.campaign`` reproduces it on the H100 with our kernels
(data/expert_sweep/h100). Here the same grid runs through the kernel vLLM's CPU backend serves
every MoE checkpoint with (``torch.ops._C.cpu_fused_moe`` on weights pre-packed by
``prepack_moe_weight``; AMX tiles where the CPU has them, as vLLM chooses), so the CPU row is the
engine's kernel at its best, not ours.

Two processes, because vLLM lives in its own venv (``make setup-vllm``): the child (``python -m
studylib.serving.moe_op_sweep`` in that venv) imports only torch and vllm, times each unit with
``time.perf_counter`` around the op (the method of ``timer.bench`` on the CPU: warm-up calls, then
one sample per call) and prints one JSON line per unit with its samples and its error against a
float32 reference of the same weights; the parent (our venv) turns samples into the table's median
and bootstrap CI and writes resumable units with provenance (profile section ``vllm_expert_sweep``).
Routing: token i goes to expert i mod ``active`` (top-1), so exactly ``active`` experts are read.
"""
from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time

KEYS = ("hidden", "widths", "batches", "experts", "active", "repeats")


def check_config(s: dict) -> None:
    from studylib.config import StudyConfigError, check_keys

    check_keys("vllm_expert_sweep", s, KEYS)
    if any(a > s["experts"] or a < 1 for a in s["active"]) or int(s["repeats"]) < 3:
        raise StudyConfigError("vllm_expert_sweep: 1 <= active <= experts, repeats >= 3")


try:  # registered where our venv has the registry; the child in vLLM's venv imports none of studylib's config
    from studylib.config import section_check

    section_check("vllm_expert_sweep")(check_config)
except ImportError:  # pragma: no cover
    pass


def _isa() -> str:
    """AMX where the CPU has it (the kernel vLLM picks there), after asking the kernel for the AMX
    tile state (Linux grants it per process; without it the first tile instruction is illegal)."""
    import torch

    return "amx" if torch.cpu._is_amx_tile_supported() and torch._C._cpu._init_amx() else "vec"


def _unit(hidden: int, width: int, experts: int, active: int, batch: int, repeats: int) -> dict:
    """One grid point through vLLM's op: samples (s) and the relative error against fp32."""
    import torch
    from vllm import _custom_ops as ops

    torch.manual_seed(0)
    isa = _isa()
    w13 = (torch.randn(experts, 2 * width, hidden) / hidden ** 0.5).to(torch.bfloat16)
    w2 = (torch.randn(experts, hidden, width) / width ** 0.5).to(torch.bfloat16)
    x = torch.randn(batch, hidden).to(torch.bfloat16)
    ids = (torch.arange(batch) % active).view(batch, 1).to(torch.int32)
    wts = torch.ones(batch, 1, dtype=torch.float32)
    p13, p2 = ops.cpu_prepack_moe_weight(w13, isa), ops.cpu_prepack_moe_weight(w2, isa)
    out = torch.empty(batch, hidden, dtype=torch.bfloat16)

    def run():
        ops.cpu_fused_moe(out, x, p13, p2, None, None, wts, ids, "silu", isa)

    run()
    ref = torch.empty(batch, hidden)
    for t in range(batch):
        e = int(ids[t, 0])
        g, u = (w13[e].float() @ x[t].float()).chunk(2)
        ref[t] = w2[e].float() @ (torch.nn.functional.silu(g) * u)
    err = float((out.float() - ref).norm() / ref.norm())
    for _ in range(5):
        run()
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        samples.append(time.perf_counter() - t0)
    return {"samples": samples, "rel_err": err, "kernel": f"vllm cpu_fused_moe ({isa})",
            "threads": torch.get_num_threads()}


def _child() -> None:
    """Read a JSON list of units on stdin; print one JSON line per unit, in order."""
    import vllm

    for u in json.loads(sys.stdin.read()):
        r = _unit(u["hidden"], u["expert_width"], u["experts"], u["active_experts"], u["batch"], u["repeats"])
        print(json.dumps({**u, **r, "engine_version": vllm.__version__}), flush=True)


def units(s: dict) -> list[dict]:
    return [{"hidden": int(s["hidden"]), "expert_width": int(w), "experts": int(s["experts"]), "active_experts": int(a),
             "batch": int(b), "repeats": int(s["repeats"])}
            for w, b, a in itertools.product(s["widths"], s["batches"], s["active"]) if a <= s["experts"]]


def unit_key(u: dict) -> str:
    return f"h{u['hidden']}_w{u['expert_width']}_e{u['experts']}_a{u['active_experts']}_b{u['batch']}"


def row(result: dict) -> dict:
    """The expert_sweep table's row (the GPU campaign's columns) from a child's JSON line."""
    import numpy as np

    from studylib.stats import bootstrap_median

    s = np.asarray(result["samples"])
    ci = bootstrap_median(s)
    D, W, a = result["hidden"], result["expert_width"], result["active_experts"]
    nbytes = a * 3 * D * W * 2 + 2 * result["batch"] * D * 2       # the active experts' bf16 weights, x and out
    med = float(np.median(s))
    return {"hidden": D, "expert_width": W, "experts": result["experts"], "active_experts": a,
            "batch": result["batch"], "group": "companion", "median_s": med, "p50_s": med,
            "p95_s": float(np.quantile(s, 0.95)), "ci_lo_s": ci.lo, "ci_hi_s": ci.hi, "n": len(s),
            "samples_s": " ".join(f"{x:.6e}" for x in s), "bytes_moved": nbytes, "achieved_Bps": nbytes / med,
            "kernel": result["kernel"], "rel_err": result["rel_err"], "engine_version": result["engine_version"],
            "threads": result["threads"]}


def run_vllm_expert_sweep(prof: dict, progress: bool = True) -> dict:
    """Every missing unit of the profile's ``vllm_expert_sweep`` grid, in one child process."""
    from tqdm.auto import tqdm

    from studylib import provenance
    from studylib.config import StudyConfigError
    from studylib.models import CACHE
    from studylib.results import REPO, ResultStore
    from studylib.serving.engine import VLLM_VENV, engine_env

    s = prof.get("vllm_expert_sweep")
    if not s:
        raise StudyConfigError(f"profile {prof['name']!r} has no vllm_expert_sweep section")
    check_config(s)
    python = VLLM_VENV / "bin" / "python"
    if not python.exists():
        raise StudyConfigError(f"no vLLM environment at {VLLM_VENV}: run `make setup-vllm`")
    store = ResultStore("expert_sweep", prof["name"])
    todo = [u for u in units(s) if not store.has(unit_key(u))]
    if not todo:
        return {"measured": 0}
    log = CACHE / "served" / "logs" / f"vllm_expert_sweep_{prof['name']}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as err:
        proc = subprocess.Popen([str(python), "-m", "studylib.serving.moe_op_sweep"], cwd=REPO,
                                env=engine_env(VLLM_VENV), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                                text=True)
    proc.stdin.write(json.dumps(todo))
    proc.stdin.close()
    done = 0
    bar = tqdm(total=len(todo), desc="vLLM fused-MoE sweep", disable=not progress)
    for line in proc.stdout:
        if not line.startswith("{"):
            continue
        r = json.loads(line)
        store.write(unit_key(r), [row(r)], provenance.collect(prof["name"], {"vllm_expert_sweep": s,
                                                                            "engine": "vllm", "vllm": r["engine_version"]}))
        done += 1
        bar.update(1)
    rc = proc.wait()
    if rc != 0 or done != len(todo):
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        raise RuntimeError(f"the vLLM op sweep stopped after {done} of {len(todo)} units (exit {rc}); log: {log}\n{tail}")
    return {"measured": done}


if __name__ == "__main__":
    _child()
