"""Speculative-decoding measurement on real models on the CPU (profile section ``spec_decoding``).

One unit = one (dtype, prompt, method, γ) generation, stored with its tokens so that identity
with the target alone is checked from data/:

* ``alone``: the target's greedy generation (transformers ``generate``), γ = 0;
* ``own_loop``: ``speculative.speculative_greedy`` (acceptance per draft position), each γ;
* ``transformers``: transformers' assisted generation at ``reference_gamma`` (the reference
  implementation, timed beside ours so that a slow loop of ours cannot understate the speedup).

A run with ``kernel: onednn_packed`` puts the target and the draft on bf16 weights packed once
for oneDNN (``cpu_speed.apply_kernel``; bit-identical outputs, so acceptance and identity do not
change, only speed); eager units keep their keys, packed ones are added beside them, and the
analysis reads each target's fastest kernel (``spec_analysis.on_fastest_kernel``).

A run with ``target_variant`` (a declared quality variant, e.g. ``int8_quanto`` or the paper's
``sparsegpt30_literal_moe4_top1`` in its executable form) drafts for that variant of the target:
the *stacks* of Eq. 34 and Tables 5/7 ("both"), measured on the same prompts as the plain runs
so that η = S_stack / (S_variant · S_spec) is paired by prompt (``spec_analysis.eta``).

Prompts: GSM8K and MMLU items from ``bench_dir`` and the code prompts of
``studylib/quality/tasks/spec_prompts.yaml``, each in the model's chat template. Units of one dtype run
prompt by prompt, the target alone first; the wall-clock comparison is paired by prompt.
"""
from __future__ import annotations

import re
from pathlib import Path

import torch
import yaml
from tqdm.auto import tqdm

from studylib import provenance
from studylib.config import StudyConfigError, section_check
from studylib.decoding.cpu_speed import EAGER, KERNELS, apply_kernel
from studylib.decoding.speculative import greedy_tokens, speculative_greedy
from studylib.models import load_model, resolve_model
from studylib.quality.taskdata import gsm8k_items, mmlu_items
from studylib.results import ResultStore, safe_key
from studylib.stats import first_divergence

TABLE = "spec_decoding"
PROMPTS_FILE = Path(__file__).resolve().parent.parent / "quality" / "tasks" / "spec_prompts.yaml"
DTYPES = {"bfloat16": torch.bfloat16, "float32": torch.float32}


EARLY_EXIT = "early-exit:"


def early_exit_layers(draft: str) -> int | None:
    """``early-exit:K`` names a self-draft: the target's first K decoder layers, its final norm and
    LM head (no training; the draft for a model that has no smaller sibling, e.g. SmolLM2-135M)."""
    if not str(draft).startswith(EARLY_EXIT):
        return None
    try:
        k = int(draft[len(EARLY_EXIT):])
    except ValueError:
        raise StudyConfigError(f"spec_decoding draft {draft!r}: expected early-exit:<layers>") from None
    if k < 1:
        raise StudyConfigError(f"spec_decoding draft {draft!r}: at least one layer")
    return k


def early_exit_draft(target, k: int):
    """A copy of ``target`` truncated to its first k decoder layers (its own config, so its KV
    cache has k layers)."""
    import copy

    if k >= target.config.num_hidden_layers:
        raise StudyConfigError(f"early-exit draft needs fewer than the target's {target.config.num_hidden_layers} layers")
    draft = copy.deepcopy(target)
    draft.model.layers = draft.model.layers[:k]
    draft.config.num_hidden_layers = k
    if getattr(draft.config, "layer_types", None):
        draft.config.layer_types = draft.config.layer_types[:k]
    return draft


@section_check("spec_decoding")
def check_config(s: dict, models: bool = False) -> None:
    """Fail before loading anything on a bad section (``models``: also that both models are installed)."""
    for k in ("target", "draft", "runs"):
        if k not in s:
            raise StudyConfigError(f"spec_decoding needs {k!r}")
    early = early_exit_layers(s["draft"])
    if models:
        resolve_model(s["target"])
        if early is None:
            resolve_model(s["draft"])
    for r in s["runs"]:
        if r.get("target_variant"):   # unknown variant or no executable form: StudyConfigError
            from studylib.decoding.cpu_speed import require_executable

            require_executable(r["target_variant"], "spec_decoding target_variant")
        if r["dtype"] not in DTYPES:
            raise StudyConfigError(f"spec_decoding dtype {r['dtype']!r} not in {sorted(DTYPES)}")
        if r.get("kernel", EAGER) not in KERNELS:
            raise StudyConfigError(f"spec_decoding kernel {r['kernel']!r} not in {list(KERNELS)}")
        if any(int(g) < 1 for g in r["gammas"]):
            raise StudyConfigError(f"spec_decoding gammas must be >= 1: {r['gammas']}")


def prompts(bench: str | None, counts: dict, seed: int) -> list[dict]:
    """The prompt set (ids, kinds, gold answers); tokenized later with the target's chat template."""
    spec = yaml.safe_load(PROMPTS_FILE.read_text())
    if (counts.get("gsm8k") or counts.get("mmlu")) and not (bench and Path(bench).is_dir()):
        raise StudyConfigError(f"spec_decoding prompts from GSM8K/MMLU need quality.bench_dir, got {bench!r}")
    out = []
    if counts.get("gsm8k"):
        for it in gsm8k_items(Path(bench), counts["gsm8k"], seed):
            out.append({"id": it["id"], "kind": "gsm8k", "text": spec["gsm8k"].format(question=it["question"]),
                        "gold": it["answer"].split("####")[-1].strip().replace(",", "")})
    if counts.get("mmlu"):
        for it in mmlu_items(Path(bench), counts["mmlu"], seed):
            opts = "\n".join(f"{L}. {c}" for L, c in zip("ABCD", it["choices"]))
            out.append({"id": it["id"], "kind": "mmlu", "text": spec["mmlu"].format(question=it["question"], options=opts),
                        "gold": "ABCD"[it["gold"]]})
    for i, text in enumerate(spec["code"][:counts.get("code", 0)]):
        out.append({"id": f"code-{i}", "kind": "code", "text": text, "gold": ""})
    return out


def chat_ids(tok, text: str) -> list[int]:
    chat = tok.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True, tokenize=False)
    return tok(chat, add_special_tokens=False)["input_ids"]


_NUM = re.compile(r"-?\d[\d,]*\.?\d*")


def gsm8k_correct(text: str, gold: str) -> bool:
    """Number after the last '####', else the last number in the text (flexible extraction)."""
    tail = text.split("####")[-1] if "####" in text else text
    nums = _NUM.findall(tail)
    return bool(nums) and nums[-1 if "####" not in text else 0].replace(",", "").rstrip(".") == gold


def run_spec(prof: dict, progress: bool = True) -> dict:
    s = prof["spec_decoding"]
    check_config(s, models=True)
    store = ResultStore(TABLE, prof["name"])
    done = skipped = 0
    for run in s["runs"]:
        plan = [("alone", 0)] + [("own_loop", int(g)) for g in run["gammas"]]
        if run.get("reference_gamma"):
            plan.append(("transformers", int(run["reference_gamma"])))

        tv = run.get("target_variant") or ""
        kernel = run.get("kernel", EAGER)

        def key(p, method, gamma):
            return safe_key(s["target"] + (f"+{tv}" if tv else ""), s["draft"], run["dtype"], p["id"], method, gamma,
                            *(() if kernel == EAGER else (kernel,)))

        plist = prompts(prof["quality"].get("bench_dir"), run["prompts"], s.get("seed", 0))
        todo = [p for p in plist if not all(store.has(key(p, m, g)) for m, g in plan)]
        skipped += len(plan) * (len(plist) - len(todo))
        if not todo:
            continue
        dtype = DTYPES[run["dtype"]]
        target, tok = _target(prof, s, tv, dtype)
        k = early_exit_layers(s["draft"])
        draft = early_exit_draft(target, k) if k else load_model(s["draft"], dtype=dtype)[0]
        for m in (target, draft):   # after the early-exit copy: the draft packs its own layers
            apply_kernel(m, kernel)
        prov = provenance.collect(prof["name"], {"spec_decoding": s, "run": run})
        warm = chat_ids(tok, "Hello")   # first calls allocate and pick kernels: not part of any timed unit
        greedy_tokens(target, warm, 4, tok.eos_token_id)
        speculative_greedy(target, draft, warm, 4, 2, tok.eos_token_id)
        for p in tqdm(todo, desc=f"spec decoding ({run['dtype']})", disable=not progress):
            ids, eos = chat_ids(tok, p["text"]), tok.eos_token_id
            budget = run["max_new_tokens"]
            n_new = budget.get(p["kind"], 128) if isinstance(budget, dict) else int(budget)
            alone_tokens = None
            for method, gamma in plan:   # the target alone first: identity is checked against it
                k = key(p, method, gamma)
                if store.has(k):
                    alone_tokens = _tokens(store, k) if method == "alone" else alone_tokens
                    skipped += 1
                    continue
                row = {"target": s["target"], "target_variant": tv, "draft": s["draft"], "dtype": run["dtype"],
                       "kernel": kernel, "prompt_id": p["id"],
                       "prompt_kind": p["kind"], "prompt_tokens": len(ids), "method": method, "gamma": gamma,
                       "cycles": float("nan"), "accepted": "", "reached": ""}
                if method == "alone":
                    toks, wall = greedy_tokens(target, ids, n_new, eos)
                    alone_tokens = toks
                    row["cycles"] = len(toks)
                elif method == "own_loop":
                    r = speculative_greedy(target, draft, ids, n_new, gamma, eos)
                    toks, wall = r.tokens, r.wall_s
                    row.update(cycles=r.cycles, accepted=" ".join(map(str, r.accepted)),
                               reached=" ".join(map(str, r.reached)))
                else:
                    toks, wall = greedy_tokens(target, ids, n_new, eos, assistant=draft, gamma=gamma)
                text = tok.decode(toks, skip_special_tokens=True)
                div = first_divergence(toks, alone_tokens)
                row.update(new_tokens=len(toks), wall_s=wall, tokens_per_s=len(toks) / wall,
                           identical_to_alone=div is None, first_divergence=-1 if div is None else div,
                           correct=_correct(p, text), tokens=" ".join(map(str, toks)))
                store.write(k, [row], prov)
                done += 1
        del target, draft
    return {"measured": done, "skipped": skipped}


def _target(prof: dict, s: dict, variant: str, dtype: torch.dtype):
    """The target model, or its declared variant in executable form (experts executed, quantized
    weights packed) built as the quality sweep and the CPU decode harness build it."""
    if not variant:
        return load_model(s["target"], dtype=dtype)
    from studylib.decoding.cpu_speed import make_executable
    from studylib.quality import transforms
    from studylib.quality.units import build_variant

    if prof["quality"]["model"] != s["target"]:
        raise StudyConfigError(f"target_variant needs quality.model == spec_decoding.target "
                               f"({prof['quality']['model']!r} vs {s['target']!r})")
    model, tok, _ = build_variant(prof, variant, transforms.variant(variant))
    if model.dtype != dtype:
        raise StudyConfigError(f"target_variant {variant!r} is evaluated in {model.dtype}, the run asks {dtype}")
    make_executable(model)
    return model, tok


def _correct(p: dict, text: str) -> float:
    if p["kind"] == "gsm8k":
        return float(gsm8k_correct(text, p["gold"]))
    if p["kind"] == "mmlu":
        return float(text.strip()[:1].upper() == p["gold"])
    return float("nan")


def _tokens(store: ResultStore, key: str) -> list[int]:
    import pandas as pd

    t = pd.read_csv(store.path(key))["tokens"].iloc[0]
    return [int(x) for x in str(t).split()] if isinstance(t, str) else []
