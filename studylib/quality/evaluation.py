"""Quality evaluation through lm-evaluation-harness, tasks as data (studylib/quality/tasks/*.yaml).

The task YAMLs point lm-eval's ``json`` loader at the JSONL files of ``studylib.quality.taskdata``
(no hub access at run time); ``log_samples`` gives per-item outcomes, which are what the
study stores and pairs across variants.
"""
from __future__ import annotations

import copy
import math
import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from studylib.quality.taskdata import TASK_FILES, TASKS_DIR

STUDY_KEYS = ("task_type", "chat_template", "answer_check", "item_score", "process_results_from", "source", "items", "rank", "default",
              "budget_check")  # ours, popped before lm-eval sees the config


@lru_cache(maxsize=None)
def _task_yaml(task: str) -> dict:
    """The task's YAML, parsed once per process (``task_type`` is asked for every item)."""
    return yaml.safe_load((TASKS_DIR / f"{TASK_FILES[task]}.yaml").read_text())


def task_config(task: str, data_file: Path) -> dict:
    cfg = copy.deepcopy(_task_yaml(task))
    for k in STUDY_KEYS:
        cfg.pop(k, None)
    cfg.update({"dataset_path": "json", "dataset_kwargs": {"data_files": {"test": str(data_file)}},
                "test_split": "test"})
    if cfg["output_type"] != "generate_until":
        # lm-eval's aggregate metric is not used (statistics come from the per-item samples); these
        # are the ones whose aggregation cannot overflow on a badly broken variant (no exp()).
        # Multiple choice also logs lm-eval's acc_norm (log-likelihood over the choice's length),
        # HellaSwag's protocol, stored per item as ``correct_norm``.
        metric = {"multiple_choice": "acc", "loglikelihood": "acc",
                  "loglikelihood_rolling": "bits_per_byte"}[cfg["output_type"]]
        cfg["metric_list"] = [{"metric": metric}]
        if cfg["output_type"] == "multiple_choice" and not _task_yaml(task).get("process_results_from"):
            cfg["metric_list"].append({"metric": "acc_norm"})
    if src := _task_yaml(task).get("process_results_from"):   # a scorer lm-eval ships (TruthfulQA MC2)
        import importlib

        module, _, name = src.rpartition(".")
        cfg["process_results"] = getattr(importlib.import_module(module), name)
    return cfg


def task_type(task: str) -> str:
    return _task_yaml(task)["task_type"]


def uses_chat_template(task: str) -> bool:
    return bool(_task_yaml(task).get("chat_template"))


def budget(task: str) -> int | None:
    """A generated task's token budget (``max_gen_toks``); None for a task that generates nothing."""
    g = _task_yaml(task).get("generation_kwargs") or {}
    return int(g["max_gen_toks"]) if "max_gen_toks" in g else None


def budget_check_task(task: str) -> str | None:
    """The task declared to re-run ``task``'s truncated answers at a longer budget (``budget_check``)."""
    return _task_yaml(task).get("budget_check")


def answer_check(task: str) -> dict | None:
    """How the task's generated answers are judged (``tasks/answers.py``), or None: lm-eval's filters."""
    return _task_yaml(task).get("answer_check")


def evaluate(model, tokenizer, task_files: dict[str, Path], batch_size: int = 8, device: str = "cpu",
             gen_batch_size: int | None = None, softmax_dtype: str | None = None, lm=None) -> pd.DataFrame:
    """Per-item results of every task: correct (0/1 or NaN), gold_logprob, n_tokens; generation
    tasks add the flexible-extraction outcome, the response and whether it hit the token limit.
    Tasks whose YAML asks for the chat template run in their own lm-eval call with it.
    ``softmax_dtype`` (lm-eval's HFLM option): the dtype of the log-softmax that scores tokens.
    With a bf16 model and None, each token's log-probability *and the document's sum* come back
    rounded to bf16: a 700-token WikiText-2 document's log-likelihood (~-1,700 nats) then moves in
    steps of 8 nats, and two variants that differ by less print the same perplexity.
    ``lm``: an lm-eval model to evaluate through instead of ``model`` (e.g. its ``local-completions``
    client of a served engine: ``serving.served_check``); ``tokenizer`` still counts the tokens."""
    groups: dict[bool, dict] = {}
    for t, p in task_files.items():
        groups.setdefault(uses_chat_template(t), {})[t] = p
    frames = [_evaluate_group(model, tokenizer, files, chat, (gen_batch_size or batch_size) if chat else batch_size,
                              device, softmax_dtype, lm) for chat, files in groups.items()]
    order = {t: i for i, t in enumerate(task_files)}
    df = pd.concat(frames, ignore_index=True)
    return df.sort_values("task", key=lambda c: c.map(order), kind="stable").reset_index(drop=True)


def _evaluate_group(model, tokenizer, task_files, chat: bool, batch_size: int, device: str,
                    softmax_dtype: str | None = None, lm=None) -> pd.DataFrame:
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM

    if lm is None:
        lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size, device=device,
                  softmax_dtype=softmax_dtype)
    cfgs = {t: task_config(t, p) for t, p in task_files.items()}
    # bootstrap_iters=0: every statistic of the study is computed from the per-item samples;
    # lm-eval's own aggregate stderr is unused, costs time, and overflows on the astronomically
    # large perplexities of a badly broken variant (OverflowError in sample_stddev).
    res = simple_evaluate(model=lm, tasks=list(cfgs.values()), log_samples=True, verbosity="ERROR",
                          bootstrap_iters=0, apply_chat_template=chat)
    rows = []
    for task, cfg in cfgs.items():
        if cfg["output_type"] == "generate_until":
            rows += _generation_rows(task, res["samples"][task], tokenizer, cfg["generation_kwargs"]["max_gen_toks"])
            continue
        for s in res["samples"][task]:
            rows.append(_scored_row(task, cfg["output_type"], s, tokenizer))
    return pd.DataFrame(rows)


def _scored_row(task: str, otype: str, s: dict, tokenizer) -> dict:
    doc = s["doc"]
    if otype == "multiple_choice":
        lls = [r[0][0] for r in s["resps"]]
        tgt = int(s["target"])
        gold_text = doc["choices"][tgt] if "choices" in doc and isinstance(doc["choices"][0], str) and doc["choices"][0].startswith(" ") else None
        correct = float(int(np.argmax(lls)) == tgt)
        lp, text = lls[tgt], gold_text
    elif otype == "loglikelihood":
        lp, greedy = s["resps"][0][0]
        correct = float(greedy)
        text = " " + doc["answer"]
    else:  # rolling
        lp = s["resps"][0][0] if isinstance(s["resps"][0], (list, tuple)) else s["resps"][0]
        correct = math.nan
        text = doc["text"]
    n_tok = len(tokenizer(text, add_special_tokens=False).input_ids) if text else 1
    row = {"task": task, "task_type": task_type(task), "item_id": doc["id"], "correct": correct,
           "gold_logprob": float(lp), "n_tokens": n_tok, "length": doc.get("length", np.nan)}
    if "depth" in doc:   # a needle's position in its haystack (retrieval tasks)
        row["depth"] = doc["depth"]
    if "acc_norm" in s:
        row["correct_norm"] = float(s["acc_norm"])
    if key := _task_yaml(task).get("item_score"):   # a continuous item score (MC2's true mass)
        row.update(score=float(s[key]), correct=np.nan)
    return row


def _generation_rows(task: str, samples: list[dict], tokenizer, max_gen_toks: int) -> list[dict]:
    """lm-eval logs one sample per item *and filter*: merge them into one row per item.
    ``correct`` is the strict filter (the pre-registered primary), ``correct_flexible`` the other;
    ``truncated``: the response used the whole token budget (it never reached a stop)."""
    by_id: dict[str, dict] = {}
    for s in samples:
        doc = s["doc"]
        row = by_id.setdefault(doc["id"], {"task": task, "task_type": task_type(task), "item_id": doc["id"],
                                           "gold_logprob": math.nan, "length": doc.get("length", np.nan),
                                           **({"depth": doc["depth"]} if "depth" in doc else {})})
        resp = s["resps"][0][0]
        n = len(tokenizer(resp, add_special_tokens=False).input_ids)
        row.update({"n_tokens": n, "truncated": float(n >= max_gen_toks - 1), "response": resp})
        key = "correct" if s["filter"] == "strict-match" else f"correct_{s['filter'].split('-')[0]}"
        row[key] = float(s["exact_match"])
        row[f"extracted_{s['filter'].split('-')[0]}"] = s["filtered_resps"][0]
        row["_doc"] = doc
    spec = answer_check(task)
    for row in by_id.values():
        doc = row.pop("_doc")
        if spec:
            row.update(checked_columns(spec, row, doc))
    return list(by_id.values())


def checked_columns(spec: dict, row: dict, doc: dict) -> dict:
    """A generated row's scores under the task's answer checker; lm-eval's string scores move to
    ``*_string`` beside them."""
    from studylib.quality.tasks import answers

    c = answers.check(spec, row.get("response", ""), doc)
    return {"correct_string": row.get("correct"), "correct_flexible_string": row.get("correct_flexible"),
            "correct": c.correct, "correct_flexible": c.correct_flexible,
            "extracted_strict": c.extracted_strict, "extracted_flexible": c.extracted_flexible,
            "answer_checker": answers.version()}


def _safe_exp(x: float) -> float:
    """exp that returns inf instead of raising for the perplexity of a broken variant."""
    return math.exp(x) if x < 709 else math.inf


def task_summary(items: pd.DataFrame) -> pd.DataFrame:
    """Per variant × task: accuracy (where defined), mean log-prob per token, perplexity."""
    g = items.groupby([c for c in ("profile", "model", "variant", "task", "task_type") if c in items], dropna=False)
    out = g.apply(lambda d: pd.Series({
        "n_items": len(d),
        "accuracy": d["correct"].mean() if d["correct"].notna().any() else np.nan,
        "logprob_per_token": d["gold_logprob"].sum() / d["n_tokens"].sum(),
        "perplexity": _safe_exp(-d["gold_logprob"].sum() / d["n_tokens"].sum()),
    }), include_groups=False)
    return out.reset_index()
