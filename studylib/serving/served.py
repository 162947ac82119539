"""The exported variants served by vLLM beside our own model, in one invocation (profile section ``served``).

Per variant, one engine start serves two kinds of resumable unit:

* **exactness** (table ``served_exactness``, one unit per variant): the first ``exactness_tokens``
  tokens of WikiText-2's test split in windows of ``window`` tokens, sent to the engine as token ids
  (no second tokenization) and scored by our model; per scored position, the log-probability of the
  real next token on each side and each side's top-1 token. vLLM returns prompt log-probabilities,
  not logits, so the "logit difference" reported is that of the log-probabilities of the real token
  (the comparison that decides every log-likelihood benchmark). The engine's ``prompt_logprobs=1``
  returns the real token and its top-1 by token id.
* **decode speed** (table ``served_decode``, one unit per variant × batch): the same method as our CPU
  decode (``decoding.cpu_speed``): B chat-templated GSM8K prompts sent as one request, greedy, exactly
  N new tokens (``min_tokens = max_tokens``, EOS ignored), and the same prompts with 1 new token,
  interleaved, ``repeats`` times; decode time per step = (t_N - t_1) / (N - 1). Then, in the same
  invocation with the engine stopped (both cores free), our decode of the same variant on the same
  prompts with the kernel given by ``ours_kernel``. Both rows carry the bytes one step reads at
  batch 1 (``cpu_speed.weight_bytes_per_step`` of the same weights) and the copy bandwidth measured
  at the start, so the achieved fraction of the peak is comparable.
* **a served stream** (table ``served_stream``, one unit per variant, where the section has
  ``stream``): GSM8K prompts arriving as a seeded Poisson stream, each streamed by its own client, with
  time to first token and time per output token per request (seed 001's metrics); and the converted
  model's expert loads on that real text (prompts and the engine's answers), measured with our model's
  router after the engine stops.

The engine is the one a deployment runs (``serving.engine``: ``vllm serve``'s API server from its own
venv, health-checked, stopped as a process group); its death is an ``EngineError`` that names its log,
and no unit of a variant is written from a dead engine. Variants that no standard checkpoint expresses
are refused by name when the profile is checked (``serving.export.check_exportable``). GPTQ int4 is
served in its packed form (AWQ's int4 layout, ``serving.awq``), its rows counting the bytes of that form
(the W8A8 int8 variant is served as compressed-tensors int8, ``serving.w8a8_checkpoint``: the int8 codes
ours runs too);
our decode cannot execute its fake-quantized weights as int4 (``cpu_speed.not_executable``), so it
has the engine's rows only (our int4 kernel's speed is the int4 weight-only variant's). Variants listed
under ``exactness_only`` are exported for quality (quanto int8 as its dequantized weights, the weights
the sweep evaluates) and get the exactness unit alone, ours scored on the sweep's own kernels.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from studylib import provenance
from studylib.config import StudyConfigError, check_keys, section_check
from studylib.models import CACHE
from studylib.results import ResultStore, safe_key
from studylib.serving.engine import EngineError, checkpoint_env, vllm_server
from studylib.serving.export import OWN, NotExportable, check_exportable

KEYS = ("variants", "batches", "new_tokens", "repeats", "exactness_tokens", "window")
#: ``exactness_only``: variants exported for quality alone (``export`` purpose "quality": the engine holds the
#: weights ours evaluates, not the technique's kernel, e.g. quanto int8 dequantized): their exactness unit only
OPTIONAL = {"ours_kernel": "onednn_packed", "memory_fraction": 0.35, "enforce_eager": False, "stream": None,
            "exactness_only": []}
STREAM_KEYS = ("requests", "rate_per_s", "max_tokens", "seed")
EXACT, SPEED, STREAM = "served_exactness", "served_decode", "served_stream"


@section_check("served")
def check_config(s: dict) -> None:
    from studylib.decoding.cpu_speed import KERNELS
    from studylib.quality.transforms import variant

    check_keys("served", s, KEYS, OPTIONAL)
    if s.get("ours_kernel", OPTIONAL["ours_kernel"]) not in KERNELS:
        raise StudyConfigError(f"served.ours_kernel must be one of {list(KERNELS)}")
    if int(s["exactness_tokens"]) < 1 or int(s["window"]) < 2 or min(s["batches"]) < 1 or int(s["new_tokens"]) < 2:
        raise StudyConfigError("served: exactness_tokens >= 1, window >= 2, batches >= 1 and new_tokens >= 2")
    st = s.get("stream")
    if st is not None and (sorted(st) != sorted(STREAM_KEYS) or int(st["requests"]) < 1 or float(st["rate_per_s"]) <= 0):
        raise StudyConfigError(f"served.stream needs exactly {list(STREAM_KEYS)} (requests >= 1, rate_per_s > 0)")
    both = set(s["variants"]) & set(s.get("exactness_only", []))
    if both:
        raise StudyConfigError(f"served: {sorted(both)} in both variants and exactness_only")
    for v in [*s["variants"], *s.get("exactness_only", [])]:
        try:
            check_exportable(v, variant(v), _purpose(s, v))
        except NotExportable as e:
            raise StudyConfigError(str(e)) from None


def _purpose(s: dict, v: str) -> str:
    return "quality" if v in s.get("exactness_only", []) else "speed"


def wikitext_windows(tok, bench_dir: str | None, n_tokens: int, window: int) -> list[list[int]]:
    """Consecutive windows of WikiText-2 test tokens (the last may be shorter) covering ``n_tokens``
    scored positions (each window scores all its tokens but the first)."""
    from studylib.quality.taskdata import wikitext_test_text

    if not bench_dir:
        raise StudyConfigError("served exactness needs the profile's bench_dir (WikiText-2's test split)")
    text = wikitext_test_text(Path(bench_dir))
    ids = tok(text[: 40 * n_tokens])["input_ids"]   # ~4 characters a token: ample, without tokenizing 1.3 MB
    out, i, scored = [], 0, 0
    while scored < n_tokens and i + 1 < len(ids):
        w = ids[i: i + min(window, n_tokens - scored + 1)]
        out.append(w)
        scored += len(w) - 1
        i += len(w)
    return out


def ours_scores(model, windows: list[list[int]]) -> list[tuple[list[float], list[int]]]:
    """Per window: the log-probability of each real next token and our top-1 token, per position."""
    out = []
    with torch.no_grad():
        for w in windows:
            ids = torch.tensor([w])
            lp = torch.log_softmax(model(ids).logits[0, :-1].float(), -1)
            out.append((lp.gather(1, ids[0, 1:, None])[:, 0].tolist(), lp.argmax(-1).tolist()))
    return out


def served_scores(server, windows: list[list[int]]) -> list[tuple[list[float], list[int]]]:
    """The same from the engine: ``prompt_logprobs=1`` gives, per position, the real token's
    log-probability and the engine's top-1 (rank 1), keyed by token id."""
    out = []
    for w in windows:
        ch = server.post("/v1/completions", {"model": "study", "prompt": w, "max_tokens": 1, "temperature": 0.0,
                                             "prompt_logprobs": 1})["choices"][0]
        plp = ch.get("prompt_logprobs")
        if not plp or len(plp) != len(w):
            raise EngineError(f"the engine returned {len(plp or [])} prompt log-probabilities for {len(w)} tokens; "
                              f"log: {server.log}")
        lps, top = [], []
        for pos, entry in enumerate(plp[1:], start=1):
            real = entry[str(w[pos])] if str(w[pos]) in entry else entry[w[pos]]
            lps.append(float(real["logprob"]))
            top.append(int(next(k for k, v in entry.items() if int(v["rank"]) == 1)))
        out.append((lps, top))
    return out


def exactness_row(ours, served) -> dict:
    a = [x for lp, _ in ours for x in lp]
    b = [x for lp, _ in served for x in lp]
    ta = [x for _, t in ours for x in t]
    tb = [x for _, t in served for x in t]
    if len(a) != len(b):
        raise ValueError(f"{len(a)} scored tokens on our side, {len(b)} served")
    d = [abs(x - y) for x, y in zip(a, b)]
    return {"tokens": len(a), "top1_agreement": sum(x == y for x, y in zip(ta, tb)) / len(ta),
            "max_abs_dlogprob": max(d), "mean_abs_dlogprob": sum(d) / len(d),
            "ours_nll": -sum(a) / len(a), "served_nll": -sum(b) / len(b)}


def _time_served(server, prompts: list[str], n: int) -> float:
    t0 = time.perf_counter()
    out = server.post("/v1/completions", {"model": "study", "prompt": prompts, "max_tokens": n, "min_tokens": n,
                                          "ignore_eos": True, "temperature": 0.0})
    dt = time.perf_counter() - t0
    got = [c["index"] for c in out["choices"]]
    if sorted(got) != list(range(len(prompts))) or out["usage"]["completion_tokens"] != n * len(prompts):
        raise EngineError(f"the engine returned {out['usage']['completion_tokens']} tokens for {len(prompts)} x {n}; "
                          f"log: {server.log}")
    return dt


def _speed_rows(engine: str, times: list[tuple[int, float, float]], s: dict, b: int, prompt_tokens: int,
                per_step: int, bw: float, base: dict) -> list[dict]:
    n = int(s["new_tokens"])
    rows = []
    for r, t1, tn in times:
        step = max(tn - t1, 1e-9) / (n - 1)
        rows.append({**base, "engine": engine, "batch": b, "prompt_tokens": prompt_tokens, "new_tokens": n,
                     "repeat": r, "t_full_s": tn, "t_prefill_s": t1, "step_s": step, "decode_tokens_per_s": b / step,
                     "bytes_per_step": per_step, "achieved_Bps": per_step / step, "copy_bandwidth_Bps": bw})
    return rows


def stream_load(server, prompts: list[str], rate_per_s: float, max_tokens: int, seed: int) -> list[dict]:
    """Requests arriving as a Poisson stream (``rate_per_s``, seeded), each streamed by its own client
    thread as a user's would be: per request its arrival, time to first token, time per output token
    after it and end-to-end time (the metrics of seed 001), and its text."""
    import random
    from concurrent.futures import ThreadPoolExecutor

    rng = random.Random(seed)
    arrivals, t = [], 0.0
    for _ in prompts:
        arrivals.append(t)
        t += rng.expovariate(rate_per_s)
    t0 = time.perf_counter()

    def one(i):
        time.sleep(max(0.0, t0 + arrivals[i] - time.perf_counter()))
        return {"request": i, "arrival_s": arrivals[i], **server.stream_completion(prompts[i], max_tokens)}

    with ThreadPoolExecutor(max_workers=len(prompts)) as pool:
        return list(pool.map(one, range(len(prompts))))


def expert_loads(model, tok, texts: list[str]) -> dict:
    """The converted model's routing on real served text (prompts and the engine's answers), one
    sequence at a time: balance (Eq. 32), the busiest expert's share in the worst layer, and the
    tokens routed; empty for a model with no router."""
    from studylib.quality.transforms.ffn import masked_ffns, routing_pass

    if not any(m.n_experts > 1 for m in masked_ffns(model)):
        return {}
    ids = [torch.tensor(tok(t)["input_ids"]) for t in texts]
    r = routing_pass(model, ids)
    return {"expert_balance": r["balance"], "expert_max_fraction": r["max_expert_fraction"],
            "routed_tokens": r["routing_tokens"]}


def run_served(prof: dict, progress: bool = True) -> dict:
    """Every missing exactness, speed and stream unit of the section's variants; one engine start per variant."""
    from studylib.decoding import cpu_speed as C
    from studylib.decoding.expert_exec import make_executable
    from studylib.quality import transforms
    from studylib.quality.units import build_variant, evaluation_kernels
    from studylib.serving.export import export
    from studylib.timer import measure_copy_bandwidth

    s = prof.get("served")
    if not s:
        raise StudyConfigError(f"profile {prof['name']!r} has no served section")
    check_config(s)
    q = prof["quality"]
    ex, sp, sr = ResultStore(EXACT, prof["name"]), ResultStore(SPEED, prof["name"]), ResultStore(STREAM, prof["name"])
    st = s.get("stream")
    todo = {v: ([] if ex.has(safe_key(q["model"], v)) else ["exactness"])
               + ([] if not st or sr.has(safe_key(q["model"], v)) else ["stream"])
               + [b for b in s["batches"] if not sp.has(safe_key(q["model"], v, f"b{b}"))] for v in s["variants"]}
    todo.update({v: [] if ex.has(safe_key(q["model"], v)) else ["exactness"] for v in s.get("exactness_only", [])})
    todo = {v: t for v, t in todo.items() if t}
    if not todo:
        return {"measured": 0}
    bw = measure_copy_bandwidth("cpu")
    kernel = s.get("ours_kernel", OPTIONAL["ours_kernel"])
    n = int(s["new_tokens"])
    bar = tqdm(total=sum(len(t) for t in todo.values()), desc="served", disable=not progress)
    log_dir = CACHE / "served" / "logs"
    measured = 0
    for v, units in todo.items():
        model, tok, info = build_variant(prof, v, transforms.variant(v))
        where = export(prof, v, purpose=_purpose(s, v))
        # a quality export holds the weights the sweep evaluates: ours is scored on the sweep's kernels too
        kernels = evaluation_kernels(model, prof) if _purpose(s, v) == "quality" else {}
        windows = wikitext_windows(tok, q.get("bench_dir"), int(s["exactness_tokens"]), int(s["window"])) \
            if "exactness" in units else []
        ours_exact = ours_scores(model, windows) if windows else None
        batches = [b for b in units if b not in ("exactness", "stream")]
        prompts = {b: C.prompt_texts(tok, q.get("bench_dir"), b) for b in batches}
        stream_prompts = C.prompt_texts(tok, q.get("bench_dir"), int(st["requests"]), int(st["seed"])) \
            if "stream" in units else []
        served_times, served_exact, streamed, version = {}, None, None, ""
        extra = ("--enforce-eager",) if s.get("enforce_eager") else ()
        with vllm_server(where, log_dir / f"{q['model']}__{v}.log", memory_fraction=float(s.get("memory_fraction", 0.35)),
                         max_model_len=max(2048, int(s["window"]) + 8), extra=extra) as server:
            version = server.version()
            if windows:
                served_exact = served_scores(server, windows)
            for b in batches:
                _time_served(server, prompts[b], 4)          # warm-up at this batch
                served_times[b] = [(r, _time_served(server, prompts[b], 1), _time_served(server, prompts[b], n))
                                   for r in range(int(s["repeats"]))]
            if stream_prompts:
                streamed = stream_load(server, stream_prompts, float(st["rate_per_s"]), int(st["max_tokens"]),
                                       int(st["seed"]))
        # the engine is stopped: both cores are ours again; the routing on the served text first (the
        # model as converted), then our decode (the model made executable)
        loads = expert_loads(model, tok, [p + r["text"] for p, r in zip(stream_prompts, streamed)]) if streamed else {}
        # a variant the engine runs in a packed form (GPTQ int4 as AWQ) reads fewer bytes per step there;
        # a variant ours cannot execute (fake-quantized weights) has the engine's rows only
        ours_why = C.not_executable(v)
        packed = json.loads((where / "study_export.json").read_text())
        if batches:
            make_executable(model)
            per_step = C.weight_bytes_per_step(model)
            per_step_served = per_step - int(packed.get("replaced_bf16_bytes", 0)) + int(packed.get("int4_bytes", 0))
            if ours_why is None:
                C.apply_kernel(model, kernel)
        base = {"model": q["model"], "variant": v, "dtype": "bfloat16", "engine_version": version,
                "threads": torch.get_num_threads(), "checkpoint": where.name}
        params = {"served": s, "variant": v, "vllm": version, "checkpoint": str(where.name), "purpose": _purpose(s, v),
                  "engine_env": checkpoint_env(where), **kernels}
        if served_exact is not None:
            ex.write(safe_key(q["model"], v), [{**base, "engine": "vllm", "window": int(s["window"]),
                                                 **exactness_row(ours_exact, served_exact)}],
                     provenance.collect(prof["name"], params))
            measured += 1
            bar.update(1)
        if streamed is not None:
            sr.write(safe_key(q["model"], v), [{**base, "engine": "vllm", "rate_per_s": float(st["rate_per_s"]),
                                                 "max_tokens": int(st["max_tokens"]), **loads,
                                                 **{k: r[k] for k in ("request", "arrival_s", "ttft_s", "tpot_s",
                                                                      "e2e_s", "output_tokens")}} for r in streamed],
                     provenance.collect(prof["name"], {**params, "stream": st}))
            measured += 1
            bar.update(1)
        for b in batches:
            enc = C.encode(tok, prompts[b])
            pt = int(enc["input_ids"].shape[1])
            rows = _speed_rows("vllm", served_times[b], s, b, pt, per_step_served, bw,
                               {**base, "kernel": "vllm" if packed.get("format", OWN) == OWN else f"vllm {packed['format']}"})
            if ours_why is None:
                C.time_generate(model, enc, 4, tok.pad_token_id)      # warm-up
                ours = [(r, C.time_generate(model, enc, 1, tok.pad_token_id),
                         C.time_generate(model, enc, n, tok.pad_token_id)) for r in range(int(s["repeats"]))]
                rows += _speed_rows("ours", ours, s, b, pt, per_step, bw, {**base, "kernel": kernel})
            sp.write(safe_key(q["model"], v, f"b{b}"), rows, provenance.collect(prof["name"], {**params, "batch": b}))
            measured += 1
            bar.update(1)
        del model
    return {"measured": measured}

