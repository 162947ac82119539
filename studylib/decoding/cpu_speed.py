"""End-to-end greedy decode speed on this CPU (profile section ``cpu_decode``): Table 6's CPU row
(sparse routing 0.8-1.0x on CPUs) and CPU evidence for the speed columns of Tables 5 and 7-9.

One unit = model × variant × batch. Each repeat times a whole ``generate`` (prefill + N greedy
tokens, KV cache) and a 1-token ``generate`` on the same prompts, interleaved; decode time per
step = (t_N - t_1) / (N - 1), so the prefill is not counted as decode. Variants are the declared
quality variants (``studylib/quality/variants.yaml``), built exactly as the quality sweep builds
them, then made *executable*: converted FFNs run only their routed experts
(``expert_exec.ExpertExecFFN``) and TEAL's thresholded FFNs read only the weight rows of their kept
activations (``teal_exec.TealExecFFN``) — masking a dense FFN would time the dense FFN. A variant
with no executable form (oracles, the constant floor, fake-quantized weights) is refused before
any work.

Bytes per decode step = the weight bytes one step reads at batch 1 (every parameter of the
decoder and LM head for dense; attention, router, shared and the chosen experts' bytes for an
executed conversion; for TEAL, the rows of the kept activations at the kept fractions measured
during the timed runs); achieved bytes/s = that / step time, against the measured copy bandwidth
(``timing.measure_copy_bandwidth``), for every variant.

Kernels (``kernels`` in the profile; one unit per variant × batch × kernel): ``eager`` runs the
model as transformers builds it; ``onednn_packed`` first pre-packs every bf16 linear layer and
every executed expert's weights once (``kernels.cpu_linear``: eager bf16 linear re-packs the
weight on every call); ``fp32`` upcasts every weight to fp32 (exactly) and runs eager — on a CPU
without hardware bf16 (AVX2-only) oneDNN converts bf16 to fp32 on every product, and the fp32
model, twice the bytes, can be the faster one. Quantized layers keep their library's kernel
under eager and packed, and have no fp32 unit (their codes stay integer: an upcast is not their
kernel). Claims use each variant's fastest measured kernel (``estimates.cpu_decode.fastest_kernel``), as issue 14
asks: the best kernel available for each technique, not one path for all.
"""
from __future__ import annotations

import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from studylib import provenance
from studylib.config import StudyConfigError, section_check
from studylib.decoding.expert_exec import ExpertExecFFN, make_executable
from studylib.decoding.teal_exec import TealExecFFN
from studylib.kernels import cpu_linear
from studylib.quality import transforms
from studylib.quality.taskdata import gsm8k_items
from studylib.results import ResultStore, safe_key

TABLE = "cpu_decode"


KEYS = ("variants", "batches", "new_tokens", "repeats")
OPTIONAL = {"kernels": ["eager"]}
EAGER = "eager"
FP32 = "fp32"
KERNELS = (EAGER, cpu_linear.KERNEL, FP32)


@section_check("cpu_decode")
def check_config(s: dict) -> None:
    for k in KEYS:
        if k not in s:
            raise StudyConfigError(f"cpu_decode needs {k!r}")
    extra = sorted(set(s) - set(KEYS) - set(OPTIONAL))
    if extra:
        raise StudyConfigError(f"cpu_decode: unknown key(s) {extra} (a YAML indentation slip?)")
    bad = sorted(set(s.get("kernels", OPTIONAL["kernels"])) - set(KERNELS))
    if bad:
        raise StudyConfigError(f"cpu_decode: unknown kernel(s) {bad}; known: {list(KERNELS)}")
    for v in s["variants"]:
        require_executable(v, "cpu_decode variant")


def runs_under(variant: str, kernel: str) -> bool:
    """Whether ``kernel`` is a kernel of ``variant``: fp32 upcasts weights, so not of a quantized
    one (its quantizers are the registry's after-cast steps; their codes stay integer)."""
    return kernel != FP32 or not transforms.split_at_cast(transforms.variant(variant)["steps"])[1]


def unit_key(model: str, variant: str, batch: int, kernel: str) -> str:
    """Eager units keep the key they had before kernels were a dimension (resumable either way)."""
    return safe_key(model, variant, f"b{batch}", *(() if kernel == EAGER else (kernel,)))


def apply_kernel(model, kernel: str) -> int:
    """Put ``model`` on ``kernel`` in place; returns how many weight matrices were packed."""
    if kernel == EAGER:
        return 0
    if kernel == FP32:
        model.float()
        return 0
    if not cpu_linear.available():
        raise StudyConfigError(f"kernel {kernel!r} needs {cpu_linear.UNAVAILABLE}")
    return sum(m.pack() for m in model.modules() if isinstance(m, ExpertExecFFN)) + cpu_linear.pack_linears(model)


def not_executable(variant: str) -> str | None:
    """Why our decode cannot time a declared variant honestly (None: it can): each transform declares
    whether its result has an executable form here (``register(not_executable=...)``)."""
    for t, _ in transforms.variant(variant)["steps"]:
        why = transforms.TRANSFORMS[t].not_executable
        if why:
            return f"step {t!r} has no executable form ({why})"
    return None


def require_executable(variant: str, what: str) -> None:
    """Refuse (before loading anything) a declared variant whose speed cannot be measured honestly."""
    why = not_executable(variant)
    if why:
        raise StudyConfigError(f"{what} {variant!r}: {why}: its speed cannot be measured honestly")


def weight_bytes_per_step(model) -> int:
    """Weight bytes one decode step reads at batch 1 (tied embeddings counted once, as the LM head)."""
    from studylib.models import decoder_layers

    total = 0
    for layer in decoder_layers(model):
        for name, mod in layer.named_children():
            if isinstance(mod, ExpertExecFFN):
                b = mod.bytes_per_token()
                total += b["experts"] + b["shared"] + b["router"]
            elif isinstance(mod, TealExecFFN):
                total += mod.bytes_per_token()["read"]
            else:
                total += sum(_nbytes(p) for p in mod.parameters()) + sum(_nbytes(b) for b in mod.buffers()) + \
                    sum(m.nbytes for m in mod.modules() if isinstance(m, cpu_linear.PackedLinear))
    head = model.get_output_embeddings()
    head_bytes = head.nbytes if isinstance(head, cpu_linear.PackedLinear) else _nbytes(head.weight)
    return total + head_bytes + sum(_nbytes(p) for p in model.model.norm.parameters())


def _nbytes(t) -> int:
    """Bytes a tensor really holds (quantized tensor subclasses report their packed size)."""
    inner = getattr(t, "_data", None)
    if inner is not None:  # optimum-quanto packed weights: data + scale (+ shift)
        return sum(_nbytes(getattr(t, a)) for a in ("_data", "_scale", "_shift") if getattr(t, a, None) is not None)
    return t.numel() * t.element_size()


def prompt_texts(tok, bench_dir: str | None, batch: int, seed: int = 0) -> list[str]:
    """``batch`` GSM8K questions under the model's chat template: the prompts every decode-speed unit
    times (ours and the served engine's alike)."""
    if bench_dir:
        qs = [it["question"] for it in gsm8k_items(Path(bench_dir), batch, seed)]
    else:
        qs = [f"Tom has {3 + i} apples and buys {5 + i} more. How many apples does he have?" for i in range(batch)]
    return [tok.apply_chat_template([{"role": "user", "content": q}], tokenize=False, add_generation_prompt=True)
            if tok.chat_template else q for q in qs]


def encode(tok, texts: list[str]) -> dict:
    tok.padding_side = "left"
    return tok(texts, return_tensors="pt", padding=True)


def _prompts(tok, bench_dir: str | None, batch: int, seed: int = 0) -> dict:
    return encode(tok, prompt_texts(tok, bench_dir, batch, seed))


def time_generate(model, enc, n: int, pad_id: int) -> float:
    t0 = time.perf_counter()
    with torch.no_grad():
        model.generate(**enc, max_new_tokens=n, min_new_tokens=n, do_sample=False, pad_token_id=pad_id)
    return time.perf_counter() - t0


def run_cpu_decode(prof: dict, progress: bool = True) -> dict:
    from studylib.quality.units import build_variant
    from studylib.timer import measure_copy_bandwidth

    s = prof["cpu_decode"]
    check_config(s)
    q = prof["quality"]
    kernels = s.get("kernels", OPTIONAL["kernels"])
    store = ResultStore(TABLE, prof["name"])
    todo = [(v, b, k) for v in s["variants"] for k in kernels for b in s["batches"]
            if runs_under(v, k) and not store.has(unit_key(q["model"], v, b, k))]
    if not todo:
        return {"measured": 0}
    torch.manual_seed(0)
    bw = measure_copy_bandwidth("cpu")
    bar = tqdm(total=len(todo), desc="cpu decode", disable=not progress)
    for v, k in dict.fromkeys((v, k) for v, _, k in todo):
        model, tok, info = build_variant(prof, v, transforms.variant(v))
        make_executable(model)
        if k == FP32:                                  # the fp32 weights are what a step reads
            apply_kernel(model, k)
        static_bytes = weight_bytes_per_step(model)   # before packing drops the unpacked copies
        if k != FP32:
            apply_kernel(model, k)
        for b in [b for vv, b, kk in todo if (vv, kk) == (v, k)]:
            enc = _prompts(tok, q.get("bench_dir"), b)
            time_generate(model, enc, 4, tok.pad_token_id)  # warm-up
            teal = [m for m in model.modules() if isinstance(m, TealExecFFN)]
            for m in teal:
                m.reset_counts()
            times = []
            for r in range(s["repeats"]):
                t1 = time_generate(model, enc, 1, tok.pad_token_id)
                tn = time_generate(model, enc, s["new_tokens"], tok.pad_token_id)
                times.append((r, t1, tn, max(tn - t1, 1e-9) / (s["new_tokens"] - 1)))
            # TEAL reads the rows of the activations it kept (static_bytes counted its FFNs whole):
            # bytes at the kept fractions just measured, prompt and generated tokens alike
            per_step = static_bytes - sum(b["dense_ffn"] - b["read"] for b in (m.bytes_per_token() for m in teal))
            rows = []
            for r, t1, tn, step in times:
                rows.append({"model": q["model"], "variant": v, "dtype": str(model.dtype).replace("torch.", ""),
                             "kernel": k, "batch": b, "prompt_tokens": int(enc["input_ids"].shape[1]),
                             "new_tokens": s["new_tokens"], "repeat": r, "t_full_s": tn, "t_prefill_s": t1,
                             "step_s": step, "decode_tokens_per_s": b / step, "bytes_per_step": per_step,
                             "achieved_Bps": per_step / step, "copy_bandwidth_Bps": bw,
                             "threads": torch.get_num_threads()})
            store.write(unit_key(q["model"], v, b, k), rows,
                        provenance.collect(prof["name"], {"cpu_decode": s, "variant": v, "batch": b, "kernel": k}))
            bar.update(1)
        del model
    bar.close()
    return {"measured": len(todo)}
