"""Committed quality units re-measured through the served engine, item by item (``make served-check``;
table ``served_check``): the question ``make machine-check`` asks of a machine, asked of vLLM.

A committed unit's items ``[0, n)`` are evaluated by the same lm-eval tasks, but through lm-eval's
``local-completions`` client of a ``vllm serve`` process holding the variant's exported checkpoint
(token ids sent as the harness tokenizes them, log-likelihoods from the engine's echoed prompt
log-probabilities, greedy generation under the same chat template and limits). Stored per item beside
the committed row (``quality.machine_check.comparison``); the reading is the agreement rate and the
paired difference served − ours with Tango's interval, which decides whether serving changes a verdict.

Both engines are timed on the same items in the same invocation (the engine first, then ours with the
engine stopped, at the sweep's settings: ``quality.served.in_flight`` requests in flight for vLLM,
``quality.gen_batch_size`` / ``batch_size`` for ours): ``book.cpu_speed.served_check_table`` reads
the two wall times, which say where ``make sweep BACKEND=vllm`` pays.
"""
from __future__ import annotations

from contextlib import contextmanager

import pandas as pd

from studylib.config import StudyConfigError

TABLE = "served_check"


def client(server, checkpoint, max_length: int = 4096, in_flight: int = 8):
    """lm-eval's completions client of ``server`` (tokenizer from the exported checkpoint): one request
    per item, ``in_flight`` of them at once, so that the engine's continuous batching refills a slot as
    soon as an answer ends (lm-eval's batched requests would wait for the longest answer of each batch)."""
    from lm_eval.models.openai_completions import LocalCompletionsAPI

    return LocalCompletionsAPI(base_url=f"{server.url}/v1/completions", model="study", tokenizer=str(checkpoint),
                               tokenizer_backend="huggingface", tokenized_requests=True, batch_size=1,
                               num_concurrent=in_flight, max_length=max_length, max_retries=1, timeout=3600)


#: ``quality.served`` defaults: requests in flight, context limit, share of memory for weights + KV
SERVED_DEFAULTS = {"in_flight": 32, "max_model_len": 4096, "memory_fraction": 0.3, "enforce_eager": False}


@contextmanager
def served_client(prof: dict, where, log):
    """A ``vllm serve`` process holding the checkpoint ``where`` with the profile's ``quality.served``
    settings, and lm-eval's client of it: (server, lm, settings). The sweep's vLLM backend and the
    served check both start the engine here."""
    from studylib.serving.engine import vllm_server

    s = {**SERVED_DEFAULTS, **prof["quality"].get("served", {})}
    with vllm_server(where, log, max_model_len=s["max_model_len"], memory_fraction=s["memory_fraction"],
                     extra=("--enforce-eager",) if s["enforce_eager"] else ()) as server:
        yield server, client(server, where, s["max_model_len"], s["in_flight"]), s


def reading(t: pd.DataFrame) -> dict:
    """Items, changed outcomes, accuracy each way and the paired difference served − ours (pp, Tango)."""
    from studylib.quality.machine_check import summary
    from studylib.stats import paired_difference_ci

    d = paired_difference_ci(t["correct_here"].astype(float) > 0, t["correct_reference"].astype(float) > 0)
    out = {**summary(t), "served_accuracy": float((t["correct_here"].astype(float) > 0).mean()),
           "ours_accuracy": float((t["correct_reference"].astype(float) > 0).mean()),
           "delta_pp": 100 * d.value, "delta_lo_pp": 100 * d.lo, "delta_hi_pp": 100 * d.hi}
    if "correct_ours_now" in t and t["correct_ours_now"].notna().any():
        # ours re-run in the same invocation: how much of the engines' difference is our own run-to-run change
        now = t["correct_ours_now"].astype(float) > 0
        out["ours_now_differs"] = int((now != (t["correct_reference"].astype(float) > 0)).sum())
        out["served_vs_ours_now_differs"] = int((now != (t["correct_here"].astype(float) > 0)).sum())
    return out


def check_served(prof: dict, variant: str, task: str, n_items: int | None = None) -> pd.DataFrame:
    """Items [0, n) of ``variant``'s first committed unit of ``task`` through vLLM, compared item by item."""
    import time

    from transformers import AutoTokenizer

    from studylib import provenance
    from studylib.models import CACHE
    from studylib.quality.machine_check import committed_unit, comparison
    from studylib.quality.transforms import variant as declared
    from studylib.quality.units import build_variant, evaluate_task_items, evaluation_kernels, task_lines
    from studylib.results import ResultStore, safe_key
    from studylib.serving.engine import checkpoint_env
    from studylib.serving.export import NotExportable, check_exportable, export

    q = prof["quality"]
    try:
        check_exportable(variant, declared(variant), "quality", prof)
    except NotExportable as e:
        raise StudyConfigError(str(e)) from None
    unit, n, ref = committed_unit(prof, variant, task, n_items)
    lines = task_lines(prof, {task: n})[task]
    where = export(prof, variant, purpose="quality")
    tok = AutoTokenizer.from_pretrained(where)
    with served_client(prof, where, CACHE / "served" / "logs" / f"check__{q['model']}__{variant}.log") as (server, lm, s):
        version = server.version()
        t0 = time.perf_counter()
        here = server.guarded(evaluate_task_items)(None, tok, prof, task, lines, 0, n, lm=lm)
        wall_served = time.perf_counter() - t0
    # ours on the same items, now, for the wall time (and as a second look at the committed rows)
    model, tok, _ = build_variant(prof, variant, declared(variant))
    kernels = evaluation_kernels(model, prof)
    t0 = time.perf_counter()
    ours = evaluate_task_items(model, tok, prof, task, lines, 0, n)
    wall_ours = time.perf_counter() - t0
    del model
    t = comparison(here.assign(task=task), ref).assign(model=q["model"], variant=variant, engine="vllm",
                                                        engine_version=version)
    t["correct_ours_now"] = t["item_id"].map(ours.set_index("item_id")["correct"])
    params = {"quality": dict(q), "variant": variant, "task": task, "items": [0, n], "unit_items": [0, unit["hi"]],
              "reference_unit": unit["key"], "engine": "vllm", "vllm": version, "checkpoint": where.name,
              "engine_env": checkpoint_env(where),
              "served_in_flight": s["in_flight"], "wall_s_served": round(wall_served, 1),
              "wall_s_ours": round(wall_ours, 1), **kernels}
    ResultStore(TABLE, prof["name"]).write(safe_key(q["model"], variant, task, f"n{n}"), t,
                                           provenance.collect(prof["name"], params))
    return t
