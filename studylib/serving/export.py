"""Quality variants exported as standard checkpoints an engine loads (``.cache/served/<recipe>/``).

A variant is exportable when every step of its declared pipeline has an exporter here; each
exporter says how its step's result is written (``@exporter(transform)``). What a standard
architecture cannot express gets a clear error, before any model is built:

* pruning (SparseGPT, Wanda, magnitude) changes weight values only: the model is written as its own
  architecture (Qwen2 / Llama), bit for bit;
* GPTQ int4: for **quality** its fake-quantized weights as its own architecture (bit for bit what
  ours evaluates); for **speed** its integer codes in AWQ's packed int4 format (``serving.awq``),
  which vLLM's CPU int4 kernel runs (``<variant>-<hash>-awq``);
* the literal conversion (top-1, no capacity factor) is written in Qwen2-MoE's layout with a gate
  that has a bias (``moe_checkpoint``: its router is a ridge regression with an intercept, and no
  standard MoE gate has one); loading it in vLLM needs that class registered there (its
  ``ModelRegistry``), as transformers has it here. CMoE (a shared part plus routers scored on
  representative neurons) has no exporter yet;
* int8 weights and activations (``transforms.w8a8``, W8A8): the integer codes and scales in
  compressed-tensors' int8 format (``serving.w8a8_checkpoint``), which vLLM's CPU int8 kernel runs
  with the same per-token activation scheme: for speed and quality alike (``<variant>-<hash>-w8a8``);
* optimum-quanto's int8 / int4 weights: vLLM's CPU build has no weight-only int8 kernel and its
  int4 kernels load GPTQ/AWQ packings, not quanto's. Where a profile evaluates them through their
  dequantized weights (``quality.quant_eval: dequantized``, what the quality sweep then runs), that
  model *is* a plain checkpoint — each weight its integers times their scales, rounded to bf16 — so
  it is written as its own architecture for **quality** only (``purpose="quality"``). For speed it is
  refused: the engine would time bf16 products, i.e. dense's speed, not int8's;
* TEAL (thresholds on activations), the oracles (need the dense activations) and the constant
  floor are not models an engine can serve; neither is the attention window (an engine's own
  cache policy, not a checkpoint).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable

from studylib.models import CACHE

#: {transform: {purpose: writer(model, tok, where, params) -> dict}}: how a step's result is written, per purpose
EXPORTERS: dict[str, dict[str, Callable]] = {}
PURPOSES = ("speed", "quality")
#: the checkpoint form of a variant written as its model's own architecture (else the exporter's ``fmt``)
OWN = "own architecture"
#: why a step has no exporter (the error a user sees)
NOT_EXPRESSIBLE = {
    "cmoe": "its router scores representative neurons (not a linear gate) with balancing biases: no exporter yet",
    "teal": "activation thresholds are not a checkpoint",
    "moe_oracle": "an oracle needs the dense activations", "neuron_oracle": "an oracle needs the dense activations",
    "moe_constant": "the constant-expert floor is a bound, not a model",
    "kv_window": "an attention window is the engine's cache policy, not a checkpoint",
}
#: steps an engine can run only as the weights ours evaluates, never as their own kernel: quality only
QUALITY_ONLY = {
    "quanto_int8": "vLLM's CPU build has no weight-only int8 kernel: the dequantized checkpoint would time dense's bf16 "
                   "products (quality only, with quality.quant_eval: dequantized)",
    "quanto_int4": "optimum-quanto's int4 packing is not a format vLLM's CPU kernels load: the dequantized checkpoint "
                   "would time dense's bf16 products (quality only, with quality.quant_eval: dequantized)",
}


class NotExportable(ValueError):
    """A variant whose pipeline has a step no standard checkpoint expresses."""


def exporter(*transforms: str, purposes: tuple[str, ...] = PURPOSES, fmt: str | None = None):
    """Register a writer for ``transforms``' results, for ``purposes``; ``fmt`` names a checkpoint
    form other than the model's own (its directory is then ``<variant>-<hash>-<fmt>``)."""
    def deco(fn):
        fn.format = fmt
        for t in transforms:
            for p in purposes:
                EXPORTERS.setdefault(t, {})[p] = fn
        return fn
    return deco


@exporter("sparsegpt", "wanda", "magnitude", "smoothquant")
@exporter("gptq", purposes=("quality",))
def _as_itself(model, tok, where: Path, params: dict | None = None) -> dict:
    """Weight values changed in place: the model's own architecture holds them exactly."""
    model.save_pretrained(where)
    tok.save_pretrained(where)
    return {"architecture": model.config.architectures[0] if model.config.architectures else type(model).__name__}


@exporter("gptq", purposes=("speed",), fmt="awq")
def _as_awq(model, tok, where: Path, params: dict) -> dict:
    """GPTQ int4 for speed: its integer codes packed in AWQ's format (``serving.awq``), which vLLM's
    CPU int4 kernel loads; for quality the fake-quantized weights themselves are written."""
    from studylib.serving.awq import write_awq

    return write_awq(model, tok, where, int(params.get("bits", 4)), int(params.get("group_size", 128)))


@exporter(*QUALITY_ONLY, purposes=("quality",))
def _as_dequantized(model, tok, where: Path, params: dict | None = None) -> dict:
    """quanto's layers replaced by their dequantized weights (``quality.quant_eval.dequantize_linears``,
    the very function the quality sweep evaluates them through), then written as the model's own
    architecture."""
    from studylib.quality.quant_eval import dequantize_linears

    n = dequantize_linears(model)
    return {**_as_itself(model, tok, where), "dequantized_linears": n,
            "weights": "dequantized (integers x scales, rounded to the model's dtype): for quality, not for speed"}


@exporter("w8a8", fmt="w8a8")
def _as_w8a8(model, tok, where: Path, params: dict | None = None) -> dict:
    """int8 weights and activations: the integer codes ours evaluates, in compressed-tensors' int8
    format, which vLLM's CPU int8 kernel runs (the same scheme: the engine quantizes each token's
    activations as ours does); for speed and for quality alike."""
    from studylib.serving.w8a8_checkpoint import write_w8a8

    return write_w8a8(model, tok, where)


@exporter("moe_literal")
def _as_moe(model, tok, where: Path, params: dict | None = None) -> dict:
    from studylib.serving.moe_checkpoint import write_literal

    return write_literal(model, tok, where)


#: {transform: fn(params, purpose) -> why not, or None}: settings of an exportable step that still do not map
PARAM_CHECKS = {
    "moe_literal": lambda p, _: (
        "only top-1 maps exactly (Qwen2-MoE weighs top-k experts by renormalised probabilities; ours sums them)"
        if p.get("top_k", 1) != 1 else "a capacity factor has no checkpoint form" if p.get("capacity_factor") is not None
        else None),
    "gptq": lambda p, purpose: (
        f"vLLM's CPU weight-only kernel takes int4 only, not int{p.get('bits', 4)}"
        if purpose == "speed" and int(p.get("bits", 4)) != 4 else None),
}


def check_exportable(variant: str, spec: dict, purpose: str = "speed", prof: dict | None = None) -> None:
    """``NotExportable`` naming the first step that cannot be written for ``purpose`` ("speed": the
    engine runs the technique's own kernel; "quality": the engine evaluates the weights ours
    evaluates, on ``prof``'s settings), and why."""
    if purpose not in PURPOSES:
        raise ValueError(f"purpose must be one of {PURPOSES}, not {purpose!r}")
    for t, params in spec["steps"]:
        fns = EXPORTERS.get(t, {})
        if purpose not in fns:
            why = QUALITY_ONLY.get(t) or NOT_EXPRESSIBLE.get(t, "no exporter is registered for it")
        elif t in QUALITY_ONLY and prof is not None and prof["quality"].get("quant_eval", "library") != "dequantized":
            why = ("the profile evaluates quanto's own kernels (quality.quant_eval: library); the engine can only "
                   "hold the dequantized weights, which ours then does not evaluate")
        else:
            why = PARAM_CHECKS.get(t, lambda *_: None)(params, purpose)
        if why:
            raise NotExportable(f"variant {variant!r} cannot be served as a standard checkpoint for {purpose}: "
                                f"step {t!r}: {why}")


def writer(spec: dict, purpose: str) -> tuple[Callable, dict]:
    """(the writer, its step's params): the last step decides the checkpoint's form."""
    if not spec["steps"]:
        return _as_itself, {}
    t, params = spec["steps"][-1]
    return EXPORTERS[t][purpose], params


def served_dir(prof: dict, variant: str, spec: dict, fmt: str | None = None) -> Path:
    """``.cache/served/<model>/<variant>-<hash of its recipe>[-<format>]``: built once per recipe and form."""
    q = prof["quality"]
    recipe = json.dumps({"steps": spec["steps"], "dtype": spec.get("dtype") or q.get("dtype"), "model": q["model"],
                         "calib_tokens": q.get("calib_tokens"), "calib_mixed": q.get("calib_mixed")},
                        sort_keys=True, default=str)
    return CACHE / "served" / q["model"] / (f"{variant}-{hashlib.sha256(recipe.encode()).hexdigest()[:10]}"
                                            + (f"-{fmt}" if fmt else ""))


def export(prof: dict, variant: str, built=None, purpose: str = "speed") -> Path:
    """The variant as a checkpoint directory an engine loads (built by the quality pipeline, written once).
    ``built``: a callable returning the variant already built, (model, tokenizer, info), used instead
    of building it again; ``purpose``: as ``check_exportable``."""
    from studylib.quality.transforms import variant as declared
    from studylib.quality.units import build_variant

    spec = declared(variant)
    check_exportable(variant, spec, purpose, prof)
    write, params = writer(spec, purpose)
    where = served_dir(prof, variant, spec, write.format)
    if (where / "study_export.json").exists():
        return where
    model, tok, info = built() if built else build_variant(prof, variant, spec)
    out = {"variant": variant, "steps": [[t, p] for t, p in spec["steps"]], "build": info,
           "format": write.format or OWN}
    out.update(write(model, tok, where, params))
    (where / "study_export.json").write_text(json.dumps(out, default=str))
    return where
