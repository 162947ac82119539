"""The quality sweep's units evaluated through vLLM (``make sweep BACKEND=vllm``; issue 38).

The variant is exported once as a standard checkpoint (``serving.export``), our model is released,
and one ``vllm serve`` process holds it for all of the variant's units in this run. lm-eval's
``local-completions`` client (``served_check.client``) sends the harness's own token ids: the same
tasks, items, chat template, stop strings and token limits as our backend, with generation batched
by the engine (continuous batching: where it pays is long chain-of-thought generation, whose
batches in our loop wait for their longest answer). Each unit's provenance says ``engine: vllm``,
the engine's version and the checkpoint, and its wall time, so items/hour compare across engines
(and ``make served-check`` times both engines on the same items: Table 4.6h). Which engine the book's units came from is read from there.

Units measured through vLLM are the same units as ours: a variant is swept this way only once a
served check of it is in data/ (``make served-check``: its agreement with ours item by item is what
licenses the engine); ``quality.served.require_check: false`` lifts that (the tests' tiny models).
"""
from __future__ import annotations

from contextlib import contextmanager

from studylib.config import StudyConfigError
from studylib.quality.units import backend, evaluate_items


def _check(prof: dict, variant: str, spec: dict) -> None:
    """Before any model is built: the engine's venv exists and the variant has a checkpoint form."""
    from studylib.serving.engine import VLLM_VENV
    from studylib.serving.export import NotExportable, check_exportable

    if not (VLLM_VENV / "bin" / "python").exists():
        raise StudyConfigError(f"backend vllm: no vLLM environment at {VLLM_VENV} (make setup-vllm, or set VLLM_VENV)")
    try:
        check_exportable(variant, spec, "quality", prof)
    except NotExportable as e:
        raise StudyConfigError(f"backend vllm: {e}") from None
    if prof["quality"].get("served", {}).get("require_check", True):
        from studylib.results import read_table

        sc = read_table("served_check", [prof["name"]])
        if sc.empty or not (sc["variant"] == variant).any():
            raise StudyConfigError(
                f"backend vllm: {variant!r} has no served check on profile {prof['name']!r}: run `make served-check "
                f"PROFILE={prof['name']} VARIANT={variant} TASK=gsm8k_cot ITEMS=50` first (its agreement with ours "
                "licenses evaluating the variant through the engine)")


@backend("vllm")
@contextmanager
def served(prof: dict, variant: str, spec: dict, built):
    from transformers import AutoTokenizer

    from studylib.models import CACHE
    from studylib.serving.engine import checkpoint_env
    from studylib.serving.export import export
    from studylib.serving.served_check import served_client

    q = prof["quality"]
    where = export(prof, variant, built=built.get, purpose="quality")
    built.release()   # the engine holds the weights now
    tok = AutoTokenizer.from_pretrained(where)
    log = CACHE / "served" / "logs" / f"sweep__{q['model']}__{variant}.log"
    with served_client(prof, where, log) as (server, lm, s):
        labels = {"engine": "vllm", "vllm": server.version(), "checkpoint": where.name, "served_in_flight": s["in_flight"],
                  "engine_env": checkpoint_env(where)}
        # the engine's death mid-unit is an EngineError naming its log; the unit is then not written
        yield server.guarded(lambda parts, lines: evaluate_items(None, tok, prof, parts, lines, lm=lm)), labels


served.check = _check
