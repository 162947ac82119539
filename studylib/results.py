"""Tidy, append-only, resumable result tables under data/.

Layout: ``data/<table>/<profile>/<unit-key>.csv`` — one file per finished unit of work
(one variant × shape × batch, one model variant × task, ...). A unit is written to a
temporary file in the same folder and renamed into place (``os.replace`` is atomic on POSIX),
so a run killed at any moment leaves either the whole unit or nothing. Rerunning skips
units whose file exists: nothing is lost and nothing duplicated. Reading concatenates the
files. CSV (not parquet) so that reviewers can diff committed results.
"""
from __future__ import annotations

import csv
import fcntl
import json
import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from studylib.provenance import PROVENANCE_COLUMNS

REPO = Path(__file__).resolve().parent.parent
#: The name every table gives the unmodified model (the ``variant`` column of the quality, timing and
#: CPU decode tables; declared as a quality variant and as a timed module): the baseline of every
#: comparison. Code compares with it by this name, never by writing it out.
BASELINE = "dense"

#: Required columns per table (besides provenance). The book build validates data/ against it.
SCHEMA: dict[str, list[str]] = {
    "device_peaks": ["device", "copy_bandwidth_Bps", "matmul_flops", "matmul_dtype"],
    "timing": ["shape", "variant", "component", "batch", "context", "routing", "median_s", "p95_s",
               "ci_lo_s", "ci_hi_s", "n", "bytes_moved", "achieved_Bps", "samples_s"],
    "quality_items": ["model", "variant", "task", "task_type", "item_id", "correct", "gold_logprob",
                      "n_tokens"],
    "quality_variants": ["model", "variant", "method", "ratio", "experts", "top_k", "capacity_factor",
                         "balance", "c_drop", "max_expert_fraction", "weight_sparsity"],
    "model_checks": ["model", "check", "value"],
    # GPU/CPU timing campaign (studylib.timing.campaign): the companion study's expert-MLP sweep and the
    # correctness check of every timed kernel
    "expert_sweep": ["hidden", "expert_width", "experts", "active_experts", "batch", "median_s", "p95_s",
                     "ci_lo_s", "ci_hi_s", "n", "bytes_moved", "achieved_Bps", "samples_s"],
    "kernel_checks": ["shape", "batch", "check", "variant", "kernel", "rel_err", "ok"],
    # speculative decoding on the CPU (studylib.decoding.spec_sweep): one generation per row
    # greedy decode speed on the CPU (studylib.decoding.cpu_speed): one row per repeat
    "cpu_decode": ["model", "variant", "dtype", "batch", "new_tokens", "repeat", "t_full_s", "t_prefill_s", "step_s",
                   "decode_tokens_per_s", "bytes_per_step", "achieved_Bps", "copy_bandwidth_Bps"],
    # vLLM beside our model (studylib.serving.served): exactness on WikiText-2, decode speed per engine
    "served_exactness": ["model", "variant", "engine", "engine_version", "tokens", "top1_agreement",
                         "max_abs_dlogprob", "mean_abs_dlogprob", "ours_nll", "served_nll"],
    "served_stream": ["model", "variant", "engine", "engine_version", "rate_per_s", "max_tokens", "request",
                      "arrival_s", "ttft_s", "tpot_s", "e2e_s", "output_tokens"],
    "served_shapes": ["shape", "module", "tensor_parallel_size", "engine", "engine_version", "batch", "new_tokens",
                      "repeat", "t_full_s", "t_prefill_s", "step_s", "decode_tokens_per_s"],
    "served_decode": ["model", "variant", "engine", "engine_version", "kernel", "batch", "new_tokens", "repeat",
                      "t_full_s", "t_prefill_s", "step_s", "decode_tokens_per_s", "bytes_per_step", "achieved_Bps",
                      "copy_bandwidth_Bps"],
    # one linear layer under every CPU weight kernel (studylib.decoding.weight_kernels)
    "cpu_kernels": ["in_features", "out_features", "kernel", "library", "bits", "batch", "median_s", "n",
                    "weight_bytes", "achieved_Bps", "copy_bandwidth_Bps", "rel_error"],
    "spec_decoding": ["target", "draft", "dtype", "prompt_id", "prompt_kind", "method", "gamma", "new_tokens",
                      "cycles", "accepted", "reached", "wall_s", "identical_to_alone", "first_divergence",
                      "correct", "tokens"],
    # a quantized variant's items under quanto's kernels and under its dequantized weights (studylib.quality.quant_eval)
    "quant_eval": ["model", "variant", "task", "item_id", "correct_library", "correct_dequantized",
                   "gold_logprob_library", "gold_logprob_dequantized"],
    # GPTQ vs round-to-nearest, one real layer's output error on calibration and held-out tokens
    # (studylib.quality.gptq_holdout)
    "gptq_holdout": ["model", "layer", "linear", "method", "percdamp", "calib_tokens", "heldout_tokens",
                     "err_calib", "err_heldout"],
    # committed quality items re-measured on another machine, per item (studylib.quality.machine_check)
    "machine_check": ["model", "variant", "task", "item_id", "correct_here", "correct_reference", "cpu_reference"],
    # the same comparison with the served engine (studylib.serving.served_check)
    "served_check": ["model", "variant", "task", "item_id", "correct_here", "correct_reference", "engine",
                     "engine_version"],
    # a generated task's truncated answers re-run at a longer budget (studylib.quality.budget_check)
    "budget_check": ["model", "variant", "task", "item_id", "budget", "budget_long", "correct_budget", "correct_long",
                     "n_tokens_long", "truncated_long", "engine"],
    # wall time of the embedded default from scratch (studylib.timing.repro)
    "repro_runs": ["target", "run_profile", "wall_s", "exit_code", "cpu_count", "load_before", "load_after"],
    # committed generated answers judged again by the task's answer checker (issue 36; one file per
    # quality_items unit, same key): read_table("quality_items") puts these scores in place of the
    # string-matched ones, which stay beside them as correct_string / correct_flexible_string
    "answer_scores": ["model", "variant", "task", "item_id", "correct", "correct_flexible", "correct_string",
                      "correct_flexible_string", "answer_checker"],
}

#: tables whose rows are re-judged by another table with the same unit keys (read_table applies it)
RESCORED_BY = {"quality_items": "answer_scores"}
_RESCORED_COLUMNS = ("correct", "correct_flexible", "extracted_strict", "extracted_flexible", "answer_checker")


def data_dir() -> Path:
    """Root of the results; STUDY_DATA_DIR overrides it (tests write to a temp dir)."""
    return Path(os.environ.get("STUDY_DATA_DIR", REPO / "data"))


_SAFE = re.compile(r"[^A-Za-z0-9._=-]+")


def safe_key(*parts) -> str:
    key = "__".join(_SAFE.sub("-", str(p)) for p in parts)
    if not key:
        raise ValueError("empty unit key")
    return key


def _quoting(df: pd.DataFrame) -> int:
    """pandas leaves a field holding a bare carriage return unquoted, and every CSV reader then
    splits the row there (a collapsed model's generated answer can contain one): quote every
    field of such a file. Files without one keep the minimal quoting they always had."""
    text = df.select_dtypes(include=["object", "string"])
    has_cr = any(text[c].astype(str).str.contains("\r", regex=False).any() for c in text.columns)
    return csv.QUOTE_ALL if has_cr else csv.QUOTE_MINIMAL


def write_csv_atomic(df: pd.DataFrame, path: Path) -> Path:
    """Write to a temporary file in the same folder, fsync, rename into place: a reader (or a
    run killed mid-write) sees the whole file or the previous one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="") as fh:
            df.to_csv(fh, index=False, quoting=_quoting(df))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


class ResultStore:
    def __init__(self, table: str, profile: str, root: Path | None = None):
        if table not in SCHEMA:
            raise ValueError(f"unknown results table {table!r}; known: {', '.join(SCHEMA)}")
        self.table, self.profile = table, profile
        self.dir = Path(root or data_dir()) / table / profile

    def path(self, key: str) -> Path:
        return self.dir / f"{key}.csv"

    def has(self, key: str) -> bool:
        return self.path(key).exists()

    def write(self, key: str, rows, provenance: dict) -> Path:
        df = pd.DataFrame(rows)
        if df.empty:
            raise ValueError(f"unit {key!r} of {self.table!r} has no rows")
        missing = [c for c in SCHEMA[self.table] if c not in df.columns]
        if missing:
            raise ValueError(f"{self.table}: unit {key!r} lacks columns {missing}")
        for c in PROVENANCE_COLUMNS:
            df[c] = provenance[c]
        df["unit"] = key
        return write_csv_atomic(df, self.path(key))

    @contextmanager
    def claim(self, key: str):
        """Hold unit ``key`` while this process measures it. Yields False when another process holds
        it, or wrote it since this one planned its run (skip it then); True otherwise. Two sweeps
        started side by side thus never measure the same unit twice. The claim is an advisory flock
        on a dot-file beside the unit (git-ignored): the kernel drops it when its process dies, so a
        killed run never leaves a stale claim behind."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / f".{key}.lock", "w") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield not self.has(key)
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def held_elsewhere(self, key: str) -> bool:
        """Whether another sweep holds unit ``key`` right now (``claim`` taken and released at once)."""
        with self.claim(key) as ours:
            return not ours and not self.has(key)

    def keys(self) -> list[str]:
        return sorted(p.stem for p in self.dir.glob("*.csv")) if self.dir.exists() else []


def read_table(table: str, profiles: list[str] | None = None, root: Path | None = None) -> pd.DataFrame:
    """All units of a table (optionally only some profiles); empty frame if none yet."""
    base = Path(root or data_dir()) / table
    files = sorted(base.glob("*/*.csv")) if base.exists() else []
    if profiles is not None:
        files = [f for f in files if f.parent.name in profiles]
    if not files:
        return pd.DataFrame(columns=SCHEMA[table] + PROVENANCE_COLUMNS + ["unit"])
    df = pd.concat([pd.read_csv(f) for f in files], ignore_index=True)
    if table in RESCORED_BY:
        df = apply_rescores(df, read_table(RESCORED_BY[table], profiles, root))
    return df


def apply_rescores(df: pd.DataFrame, scores: pd.DataFrame) -> pd.DataFrame:
    """Rows of ``df`` with a re-judged score in ``scores`` (same profile, unit and item) take its
    ``correct``/``correct_flexible``; their old values go to ``*_string`` (kept for one release).
    Rows scored by the checker when they were measured already have both and are left alone."""
    if scores.empty:
        return df
    keys = ["profile", "unit", "item_id"]
    cols = [c for c in _RESCORED_COLUMNS if c in scores]
    s = scores[keys + cols].rename(columns={c: f"{c}__new" for c in cols})
    out = df.merge(s, on=keys, how="left", validate="many_to_one")
    hit = out["correct__new"].notna()
    for c in ("correct", "correct_flexible"):
        if f"{c}_string" not in out:
            out[f"{c}_string"] = pd.NA
        if c in out:
            out.loc[hit, f"{c}_string"] = out.loc[hit, c]
    for c in cols:
        if c not in out:
            out[c] = pd.NA
        out[c] = out[c].astype(object) if out[c].dtype != out[f"{c}__new"].dtype else out[c]
        out.loc[hit, c] = out.loc[hit, f"{c}__new"]
    out = out.drop(columns=[f"{c}__new" for c in cols])
    for c in ("correct", "correct_flexible", "correct_string", "correct_flexible_string"):
        if c in out:
            out[c] = pd.to_numeric(out[c], errors="coerce")
    return out


def validate_data(root: Path | None = None) -> list[str]:
    """Check every committed file against SCHEMA and provenance; returns problems found."""
    root = Path(root or data_dir())
    problems = []
    for table, cols in SCHEMA.items():
        for f in sorted((root / table).glob("*/*.csv")) if (root / table).exists() else []:
            df = pd.read_csv(f)
            miss = [c for c in cols + PROVENANCE_COLUMNS + ["unit"] if c not in df.columns]
            if miss:
                problems.append(f"{f}: missing columns {miss}")
            elif (df["unit"].astype(str) != f.stem).any():  # a row split by an unquoted line break
                problems.append(f"{f}: rows that do not parse as this unit's (unit column != {f.stem})")
            elif df["git_commit"].isna().any() or df["timestamp_utc"].isna().any():
                problems.append(f"{f}: provenance incomplete")
    problems += mixed_weights(root)
    for d in root.iterdir() if root.exists() else []:
        if d.is_dir() and d.name not in SCHEMA:
            problems.append(f"{d}: not a known results table")
    return problems


def mixed_weights(root: Path, table: str = "quality_items") -> list[str]:
    """Problems where units of one (profile, model, variant) were measured on different weights: their
    provenance names two ``weights_digest`` values (``provenance.weights_digest``; units measured
    before 2026-12-04 carry none and are not compared)."""
    seen: dict[tuple, dict[str, str]] = {}
    for f in sorted((root / table).glob("*/*.csv")) if (root / table).exists() else []:
        head = pd.read_csv(f, nrows=1, usecols=lambda c: c in ("model", "variant", "params"))
        if head.empty or "params" not in head:
            continue
        digest = json.loads(head["params"].iloc[0]).get("weights_digest")
        if digest:
            seen.setdefault((f.parent.name, head["model"].iloc[0], head["variant"].iloc[0]), {})[f.stem] = digest
    return [f"{table}/{prof}: {variant} on {model} was measured on different weights "
            f"({', '.join(f'{u}: {d}' for u, d in sorted(units.items()))})"
            for (prof, model, variant), units in sorted(seen.items()) if len(set(units.values())) > 1]

