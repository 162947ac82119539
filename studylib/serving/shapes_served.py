"""The served decode benchmark at model shapes no machine here holds weights for (the paper's 70B),
through vLLM's tensor parallelism and dummy weights (profile section ``served_shapes``).

Past one machine the way is the engine's tensor parallelism, not our own: each shape
(``studylib.shapes``) and each timed module form (``timing.modules.TIMED_MODULES``: dense, or K experts
top-k of a width) is written as a ``config.json`` only — dense as Llama, the converted forms in the
literal conversion's Qwen2-MoE layout with its biased gate (``moe_checkpoint``'s class, served by the
plugin) — and served with ``--load-format dummy`` (random weights: latency does not depend on their
values, as the GPU campaign assumes), ``--skip-tokenizer-init`` (prompts are token ids; no tokenizer
is needed) and ``--tensor-parallel-size N``. On a CPU, N ranks split the cores
(``VLLM_CPU_OMP_THREADS_BIND`` "0|1"): the tests run the whole path at a tiny shape with N = 2; on a
box with N GPUs the same profile section times the 70B shapes. Decode speed by the method of
``serving.served`` (t_N − t_1 over N − 1 steps, exactly N new tokens).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from tqdm.auto import tqdm

from studylib import provenance
from studylib.config import StudyConfigError, check_keys, section_check
from studylib.models import CACHE
from studylib.results import ResultStore, safe_key
from studylib.serving.engine import EngineError, Server, engine_env, free_port, serve_command

KEYS = ("shapes", "modules", "tensor_parallel_size", "batches", "prompt_tokens", "new_tokens", "repeats")
OPTIONAL = {"enforce_eager": False, "memory_fraction": 0.3, "device": "cpu"}
TABLE = "served_shapes"


@section_check("served_shapes")
def check_config(s: dict) -> None:
    from studylib.shapes import get_shape
    from studylib.timing.modules import TIMED_MODULES

    check_keys("served_shapes", s, KEYS, OPTIONAL)
    for name in s["shapes"]:
        try:
            get_shape(name)
        except ValueError as e:
            raise StudyConfigError(str(e)) from None
    for m in s["modules"]:
        spec = TIMED_MODULES.get(m)
        if spec is None or spec["kind"] not in ("dense", "moe") or spec.get("slice") or spec.get("zero_frac") \
                or (spec["kind"] == "moe" and spec["k"] != 1):
            raise StudyConfigError(f"served_shapes module {m!r}: only dense and top-1 expert forms have a checkpoint "
                                   "form (TIMED_MODULES)")
    tp = int(s["tensor_parallel_size"])
    if tp < 1 or int(s["new_tokens"]) < 2:
        raise StudyConfigError("served_shapes: tensor_parallel_size >= 1 and new_tokens >= 2")
    if s.get("device", "cpu") == "cpu" and tp > 1 and tp > (__import__("os").cpu_count() or 1):
        raise StudyConfigError(f"served_shapes: {tp} CPU ranks need {tp} cores")


def shape_config(shape_name: str, module: str) -> dict:
    """``config.json`` of ``shape_name`` with its FFN in the form of timed module ``module``."""
    from studylib.shapes import get_shape
    from studylib.timing.modules import TIMED_MODULES

    sh, spec = get_shape(shape_name), TIMED_MODULES[module]
    common = {"vocab_size": sh.vocab, "hidden_size": sh.hidden, "num_hidden_layers": sh.layers,
              "num_attention_heads": sh.heads, "num_key_value_heads": sh.kv_heads, "hidden_act": "silu",
              "max_position_embeddings": 4096, "rms_norm_eps": 1e-5, "tie_word_embeddings": sh.tied_embeddings,
              "rope_theta": 10000.0, "torch_dtype": "bfloat16", "bos_token_id": 1, "eos_token_id": 2}
    if spec["kind"] == "dense":
        w = int(sh.intermediate * spec.get("width", 1.0))
        return {**common, "architectures": ["LlamaForCausalLM"], "model_type": "llama", "intermediate_size": w - w % 8}
    from studylib.serving.moe_checkpoint import ARCHITECTURE

    width = int(sh.intermediate / spec["K"] * spec.get("width", 1.0))
    return {**common, "architectures": [ARCHITECTURE], "model_type": "qwen2_moe", "intermediate_size": sh.intermediate,
            "num_experts": spec["K"], "num_experts_per_tok": spec["k"], "moe_intermediate_size": width - width % 8,
            "norm_topk_prob": True, "shared_expert_intermediate_size": 0, "decoder_sparse_step": 1,
            "mlp_only_layers": [], "use_sliding_window": False}


def write_shape(shape_name: str, module: str) -> Path:
    where = CACHE / "served" / "shapes" / f"{shape_name}__{module}"
    where.mkdir(parents=True, exist_ok=True)
    (where / "config.json").write_text(json.dumps(shape_config(shape_name, module), indent=2))
    return where


def _time(server: Server, prompts: list[list[int]], n: int) -> float:
    t0 = time.perf_counter()
    out = server.post("/v1/completions", {"model": "study", "prompt": prompts, "max_tokens": n, "min_tokens": n,
                                          "ignore_eos": True, "temperature": 0.0})
    dt = time.perf_counter() - t0
    if out["usage"]["completion_tokens"] != n * len(prompts):
        raise EngineError(f"the engine returned {out['usage']['completion_tokens']} tokens for {len(prompts)} x {n}; "
                          f"log: {server.log}")
    return dt


def run_served_shapes(prof: dict, progress: bool = True) -> dict:
    """Every missing unit (shape × module × batch at the section's tensor parallelism), one engine
    start per shape × module."""
    import random

    s = prof.get("served_shapes")
    if not s:
        raise StudyConfigError(f"profile {prof['name']!r} has no served_shapes section")
    check_config(s)
    tp, n = int(s["tensor_parallel_size"]), int(s["new_tokens"])
    store = ResultStore(TABLE, prof["name"])
    key = lambda sh, m, b: safe_key(sh, m, f"tp{tp}", f"b{b}")  # noqa: E731
    todo = {(sh, m): [b for b in s["batches"] if not store.has(key(sh, m, b))] for sh in s["shapes"] for m in s["modules"]}
    todo = {k: v for k, v in todo.items() if v}
    bar = tqdm(total=sum(len(v) for v in todo.values()), desc="served shapes", disable=not progress)
    measured = 0
    for (sh, m), batches in todo.items():
        where = write_shape(sh, m)
        vocab = json.loads((where / "config.json").read_text())["vocab_size"]
        rng = random.Random(0)
        extra = ["--load-format", "dummy", "--skip-tokenizer-init", "--tensor-parallel-size", str(tp)]
        if s.get("enforce_eager"):
            extra.append("--enforce-eager")
        port = free_port()
        log = CACHE / "served" / "logs" / f"shape__{sh}__{m}__tp{tp}.log"
        env = engine_env(ranks=tp) if s.get("device", "cpu") == "cpu" else None
        server = Server(serve_command(where, port, max_model_len=int(s["prompt_tokens"]) + n + 16,
                                      memory_fraction=float(s.get("memory_fraction", 0.3)), extra=tuple(extra)),
                        port, log, env)
        with server:
            version = server.version()
            for b in batches:
                prompts = [[rng.randrange(3, vocab) for _ in range(int(s["prompt_tokens"]))] for _ in range(b)]
                _time(server, prompts, 2)                                          # warm-up
                times = [(r, _time(server, prompts, 1), _time(server, prompts, n)) for r in range(int(s["repeats"]))]
                rows = [{"shape": sh, "module": m, "tensor_parallel_size": tp, "engine": "vllm", "engine_version": version,
                         "batch": b, "prompt_tokens": int(s["prompt_tokens"]), "new_tokens": n, "repeat": r,
                         "t_full_s": tn, "t_prefill_s": t1, "step_s": max(tn - t1, 1e-9) / (n - 1),
                         "decode_tokens_per_s": b * (n - 1) / max(tn - t1, 1e-9)} for r, t1, tn in times]
                store.write(key(sh, m, b), rows, provenance.collect(prof["name"], {"served_shapes": s, "module": m,
                                                                                  "shape": sh, "vllm": version}))
                measured += 1
                bar.update(1)
    return {"measured": measured}
