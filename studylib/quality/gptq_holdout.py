"""Does GPTQ's advantage over round-to-nearest survive on tokens it was not calibrated on?

GPTQ minimises each layer's output error on its calibration inputs. On Qwen2.5-Coder-1.5B the
``gptq_int4`` variant (16,384 calibration tokens, as every calibrated variant of the profile) came
out no better than round-to-nearest int4 end to end; this module asks whether the error
compensation generalises, layer by layer, and how that depends on the calibration budget and the
damping. For a few real linear layers it gives the relative output error
``||X (Q - W)^T||_F / ||X W^T||_F`` of RTN and of GPTQ (same grid: ``studylib.quality.transforms.gptq``) on

* the calibration tokens GPTQ saw: prefixes of the sweep's own calibration draw
  (``taskdata.calibration_ids`` with the profile's seed: the first 16,384 tokens of a larger draw
  are exactly the sweep's 16,384), and
* held-out tokens it never saw: windows of the WikiText-2 *test* text (the perplexity task's text).

Both errors come from Hessians alone, ``||X D^T||^2 = tr(D X^T X D^T)``, so no activations are
stored. Activations come from the model in bf16 (the sweep calibrates in fp32: bf16 keeps this
diagnostic to minutes on two cores; it is an error ratio, not a variant). Written here because no
library reports GPTQ's held-out layer error; the quantizer itself is ``studylib.quality.transforms.gptq``'s.
"""
from __future__ import annotations

import pandas as pd
import torch

from studylib.quality.transforms import with_role
from studylib.quality.transforms.gptq import quantize_gptq, quantize_rtn
from studylib.quality.transforms.prune import hessian

DEFAULT_SIZES = (16384, 32768, 65536)
DEFAULT_DAMPS = (0.01, 0.1)


def energy(M: torch.Tensor, XtX: torch.Tensor) -> torch.Tensor:
    """||X M^T||_F^2 = tr(M X^T X M^T) from the raw Gram matrix X^T X (float64)."""
    M = M.double()
    return torch.einsum("ij,jk,ik->", M, XtX, M)


def rel_error(W: torch.Tensor, Q: torch.Tensor, XtX: torch.Tensor, ref: torch.Tensor | None = None) -> float:
    """||X (Q - W)^T|| / ||X W^T|| from X^T X; ``ref``: ``energy(W, XtX)`` when the caller has it."""
    return float(torch.sqrt(energy(Q - W, XtX) / (energy(W, XtX) if ref is None else ref)))


class _Gram:
    """Running X^T X (``H``) of one Linear's inputs and their count ``n``, the attributes
    ``pruning.hessian`` reads. The twin of ``pruning._Stats``, which multiplies in float64 (what the
    sweep's SparseGPT/GPTQ use); here each batch's product is fp32 and only the sum is float64,
    which halves this diagnostic's time on 8,960-wide inputs."""

    def __init__(self, cols: int):
        self.H = torch.zeros(cols, cols, dtype=torch.float64)
        self.n = 0

    def add(self, x: torch.Tensor):
        x = x.reshape(-1, x.shape[-1]).float()
        self.H += (x.T @ x).double()
        self.n += x.shape[0]


def compare(W: torch.Tensor, calib: _Gram, held: _Gram, bits: int, group_size: int, damps) -> list[dict]:
    """RTN and GPTQ (one per damping) of ``W`` against the calibration Gram ``calib``; errors on both."""
    fits = [("rtn", None, quantize_rtn(W, bits, group_size))] + [
        ("gptq", d, quantize_gptq(W, hessian(calib), bits, group_size, d)) for d in damps]
    ref_c, ref_h = energy(W, calib.H), energy(W, held.H)
    return [{"method": method, "percdamp": damp, "calib_tokens": calib.n,
             "err_calib": rel_error(W, Q, calib.H, ref_c), "err_heldout": rel_error(W, Q, held.H, ref_h)}
            for method, damp, Q in fits]


def wikitext_windows(tokenizer, bench_dir: str, n_tokens: int, seq_len: int = 512, seed: int = 7) -> torch.Tensor:
    """Held-out windows of the WikiText-2 test split (``taskdata.random_windows``)."""
    from studylib.quality.taskdata import random_windows, wikitext_test_text

    return random_windows([tokenizer(wikitext_test_text(bench_dir), return_tensors="pt").input_ids[0]],
                          n_tokens, seq_len, seed)


def default_picks(n_layers: int) -> list[tuple[int, str]]:
    mid = n_layers // 2
    return [(0, "mlp.down_proj"), (mid, "mlp.down_proj"), (mid, "mlp.up_proj"), (mid, "self_attn.q_proj")]


def layer_errors(model, tokenizer, bench_dir: str, picks=None, sizes=DEFAULT_SIZES, damps=DEFAULT_DAMPS,
                 heldout_tokens: int = 8192, bits: int = 4, group_size: int = 128, batch: int = 4,
                 progress: bool = True) -> pd.DataFrame:
    """One row per (layer, linear, calibration size, method, damping). The forward pass stops after
    the deepest picked layer; GPTQ runs each time the calibration prefix reaches a size."""
    from tqdm.auto import tqdm

    from studylib.models import decoder_layers, linear_modules
    from studylib.quality.taskdata import calibration_ids

    layers = decoder_layers(model)
    picks = picks or default_picks(len(layers))
    if sorted(sizes) != list(sizes) or sizes[0] < 512:
        raise ValueError(f"sizes must be increasing token counts >= 512, got {sizes!r}")
    mods = {p: linear_modules(layers[p[0]])[p[1]] for p in picks}
    grams: dict = {}

    class _Stop(Exception):
        pass

    def stop(*_):
        raise _Stop

    def run(ids: torch.Tensor, key: str, on_batch=None):
        hooks = [m.register_forward_hook(lambda mod, inp, out, p=p: grams[(key, p)].add(inp[0]))
                 for p, m in mods.items()]
        hooks.append(layers[max(li for li, _ in picks)].register_forward_hook(stop))
        try:
            for i in tqdm(range(0, len(ids), batch), desc=f"gptq hold-out: {key} tokens", disable=not progress):
                try:
                    with torch.no_grad():
                        model(ids[i:i + batch])
                except _Stop:
                    pass
                if on_batch:
                    on_batch()
        finally:
            for h in hooks:
                h.remove()

    for p, m in mods.items():
        grams[("held", p)], grams[("calib", p)] = _Gram(m.in_features), _Gram(m.in_features)
    run(wikitext_windows(tokenizer, bench_dir, heldout_tokens), "held")
    rows, todo = [], list(sizes)

    def at_size():
        n = grams[("calib", picks[0])].n  # tokens seen so far (every pick sees the same tokens)
        while todo and n >= todo[0]:
            todo.pop(0)
            for p, m in mods.items():
                W = m.weight.data.float()
                for r in compare(W, grams[("calib", p)], grams[("held", p)], bits, group_size, damps):
                    rows.append({"layer": p[0], "linear": p[1], "in_features": W.shape[1], **r})

    calib = calibration_ids(tokenizer, sizes[-1], bench_dir=bench_dir)
    per_batch = batch * calib.shape[1]
    if any(s % per_batch for s in sizes):
        raise ValueError(f"sizes {sizes!r} must be multiples of {per_batch} tokens (batch x window)")
    run(calib, "calib", at_size)
    out = pd.DataFrame(rows)
    out["heldout_tokens"] = grams[("held", picks[0])].n
    return out


def measure(prof: dict, sizes=DEFAULT_SIZES, damps=DEFAULT_DAMPS, progress: bool = True) -> pd.DataFrame:
    """``layer_errors`` on a profile's model, stored in ``data/gptq_holdout/<profile>/`` with provenance."""
    from studylib import provenance
    from studylib.config import StudyConfigError
    from studylib.models import load_model
    from studylib.results import ResultStore, safe_key

    q = prof["quality"]
    if not q.get("bench_dir"):
        raise StudyConfigError(f"profile {prof['name']!r} has no bench_dir: the held-out text is WikiText-2's test split")
    model, tok = load_model(q["model"], dtype=torch.bfloat16)
    t = layer_errors(model, tok, q["bench_dir"], sizes=sizes, damps=damps, progress=progress)
    t = t.assign(model=q["model"], activations="bfloat16")
    params = {"model": q["model"], "sizes": list(sizes), "damps": list(damps), "bits": 4, "group_size": 128,
              "sweep_calib_tokens": q.get("calib_tokens"), "heldout": "wikitext-2 test, 512-token windows, seed 7"}
    # the unit is named after the declared GPTQ variant whose calibration budget it checks
    ResultStore("gptq_holdout", prof["name"]).write(safe_key(q["model"], with_role("int4_gptq")[0]), t,
                                                  provenance.collect(prof["name"], params))
    return t


def relative_to_rtn(t: pd.DataFrame) -> pd.DataFrame:
    """Each GPTQ row's calibration and held-out error as a fraction of round-to-nearest's on the
    same layer, calibration size and tokens (1 = no better than RTN)."""
    keys = [k for k in ("profile", "model", "layer", "linear", "calib_tokens") if k in t]
    rtn = t[t["method"] == "rtn"][keys + ["err_calib", "err_heldout"]].rename(
        columns={"err_calib": "err_calib_rtn", "err_heldout": "err_heldout_rtn"})
    g = t[t["method"] == "gptq"].merge(rtn, on=keys, how="left")
    return g.assign(calib_vs_rtn=g["err_calib"] / g["err_calib_rtn"],
                    heldout_vs_rtn=g["err_heldout"] / g["err_heldout_rtn"],
                    site=[f"layer {li} {lin.split('.')[-1]}" for li, lin in zip(g["layer"], g["linear"])])
