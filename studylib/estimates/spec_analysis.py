"""Estimates with CIs from ``data/spec_decoding``: acceptance, tokens per target step, CPU
wall-clock speedup, token identity, GSM8K paired accuracy, and the GPU speedup the formula
predicts from the acceptance measured here and the step times measured on the H100.

Every CI is a percentile bootstrap over *prompts* (the unit that varies); the identity rate has a
Wilson interval, so that 3/3 identical is reported as [0.44, 1], never as a point.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from statsmodels.stats.proportion import proportion_confint

from studylib.estimates import gpu_claims as G
from studylib.quality.transforms import variant as declared, with_role
from studylib.stats import DEFAULT_B, DEFAULT_SEED, Estimate, mcnemar_pvalue, paired_difference_ci
from studylib.results import BASELINE

#: the shapes whose H100 step times stand for each measured pair: (target shape, draft shape)
GPU_PAIRS = {"qwen2.5-coder-1.5b": ("qwen2.5-1.5b", "qwen2.5-0.5b"),
             "llama-3-8b with a 0.5B draft": ("llama-3-8b", "qwen2.5-0.5b")}


#: the model pair that judges the paper's claims first; SmolLM2's early-exit self-draft (cpu-real) is
#: reported beside it, never pooled with it
PROFILE_RANK = ("cpu-qwen", "cpu-real")


def _variant(df: pd.DataFrame) -> pd.Series:
    return (df["target_variant"].fillna("").astype(str) if "target_variant" in df
            else pd.Series("", index=df.index))


def main_pair(df: pd.DataFrame) -> pd.DataFrame:
    """The plain-target rows of the first profile of PROFILE_RANK that has spec.-decoding data
    (stacked targets are read by ``eta``)."""
    return first_profile_rows(df[_variant(df) == ""] if not df.empty else df)


def stacks(df: pd.DataFrame) -> list[str]:
    """The target variants drafted for on the main pair's profile."""
    d = first_profile_rows(df)
    return sorted(set(_variant(d)) - {""}) if not d.empty else []


def first_profile_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The rows of the first profile of PROFILE_RANK present, each target on its fastest kernel."""
    from studylib.estimates.analysis import first_profile

    return on_fastest_kernel(first_profile(df, PROFILE_RANK))


def on_fastest_kernel(df: pd.DataFrame) -> pd.DataFrame:
    """Per profile × target variant × dtype, only the rows of the kernel on which the target alone
    generated fastest (mean tokens/s over prompts): each target on its best CPU kernel (the dated
    rule of 2026-11-25 in criteria.py), and no prompt counted twice when a run was repeated on a
    second kernel. Rows from before kernels were a dimension ran eager."""
    from studylib.estimates.cpu_decode import with_kernel

    if df.empty:
        return df
    df = with_kernel(df).assign(_v=_variant(df).to_numpy())
    groups = [c for c in ("profile",) if c in df] + ["_v", "dtype"]
    alone = df[df["method"] == "alone"].groupby(groups + ["kernel"])["tokens_per_s"].mean().reset_index()
    if alone.empty:
        return df.drop(columns="_v")
    best = alone.loc[alone.groupby(groups)["tokens_per_s"].idxmax(), groups + ["kernel"]]
    return df.merge(best, on=groups + ["kernel"]).drop(columns="_v")


def eta(df: pd.DataFrame, variant: str, dtype: str = "bfloat16") -> dict | None:
    """Eq. 34 on measured speeds, paired by prompt: S_variant (the variant alone over the target
    alone), S_spec (the draft for the plain target), S_stack (the draft for the variant), each the
    mean over prompts of the per-prompt tokens/s ratio, and η = S_stack / (S_variant · S_spec), at
    the γ the stacked run used; percentile bootstrap over prompts."""
    d = first_profile_rows(df)
    d = d[d["dtype"] == dtype]
    v = _variant(d)
    plain, stack = d[v == ""], d[v == variant]
    if stack.empty:
        return None
    gammas = sorted(set(stack.loc[stack["method"] == "own_loop", "gamma"].astype(int)))
    if not gammas:
        return None
    g = gammas[0]

    def tps(rows, method, gamma=0):
        r = rows[(rows["method"] == method) & (rows["gamma"].astype(int) == gamma)]
        return r.drop_duplicates("prompt_id").set_index("prompt_id")["tokens_per_s"]

    t = pd.concat({"base": tps(plain, "alone"), "var": tps(stack, "alone"), "spec": tps(plain, "own_loop", g),
                   "stack": tps(stack, "own_loop", g)}, axis=1).dropna()
    if t.empty:
        return None
    rows = list(t.to_numpy())

    def stats(rs):
        a = np.array(rs)
        sv, ss, st = (a[:, 1] / a[:, 0]).mean(), (a[:, 2] / a[:, 0]).mean(), (a[:, 3] / a[:, 0]).mean()
        return np.array([sv, ss, st, st / (sv * ss)])

    point, boot = stats(rows), _boot(rows, stats)
    lo, hi = np.percentile(boot, [2.5, 97.5], axis=0)
    names = ("s_variant", "s_spec", "s_stack", "eta")
    return {"variant": variant, "gamma": g, "prompts": len(rows),
            **{n: Estimate(float(point[i]), float(lo[i]), float(hi[i])) for i, n in enumerate(names)}}


def _counts(s: str, gamma: int) -> np.ndarray:
    v = [int(x) for x in str(s).split()] if isinstance(s, str) and s.strip() else []
    return np.array(v + [0] * (gamma - len(v)), float)


def _boot(groups: list, stat, B: int = DEFAULT_B, seed: int = DEFAULT_SEED):
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(groups), (B, len(groups)))
    return np.array([stat([groups[i] for i in row]) for row in idx])


def _estimate(value: float, draws: np.ndarray) -> Estimate:
    return Estimate(float(value), float(np.nanquantile(draws, 0.025)), float(np.nanquantile(draws, 0.975)))


def loop_rows(df: pd.DataFrame, dtype: str = "bfloat16") -> pd.DataFrame:
    return df[(df["method"] == "own_loop") & (df["dtype"] == dtype)]


def _per_prompt_counts(d: pd.DataFrame, width: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per prompt: (accepted, reached) counts per draft position 1..width, summed over its runs."""
    return [(np.sum([_counts(r.accepted, width) for r in g.itertuples()], axis=0),
             np.sum([_counts(r.reached, width) for r in g.itertuples()], axis=0)) for _, g in d.groupby("prompt_id")]


def acceptance_by_position(df: pd.DataFrame, dtype: str = "bfloat16") -> pd.DataFrame:
    """P(proposal i accepted | 1..i-1 accepted), pooled over prompts and draft lengths γ ≥ i."""
    d = loop_rows(df, dtype)
    if d.empty:
        return pd.DataFrame(columns=["position", "acceptance", "lo", "hi", "reached"])
    gmax = int(d["gamma"].max())
    per_prompt = _per_prompt_counts(d, gmax)
    acc = sum(a for a, _ in per_prompt)
    rea = sum(r for _, r in per_prompt)
    draws = _boot(per_prompt, lambda gs: sum(a for a, _ in gs) / np.maximum(sum(r for _, r in gs), 1))
    return pd.DataFrame({"position": np.arange(1, gmax + 1), "acceptance": acc / np.maximum(rea, 1),
                         "lo": np.quantile(draws, 0.025, axis=0), "hi": np.quantile(draws, 0.975, axis=0),
                         "reached": rea.astype(int)})


def _alpha_of(groups) -> float:
    return sum(a for a, _ in groups) / max(sum(r for _, r in groups), 1)


def alpha_groups(df: pd.DataFrame, dtype: str = "bfloat16") -> list:
    """Per prompt: (proposals accepted, proposals reached) over all positions and γ."""
    d = loop_rows(df, dtype)
    if d.empty:
        return []
    return [(float(a.sum()), float(r.sum())) for a, r in _per_prompt_counts(d, int(d["gamma"].max()))]


def alpha(df: pd.DataFrame, dtype: str = "bfloat16") -> Estimate | None:
    """Per-token acceptance α (all positions and γ pooled), the input of the expected-speedup formula."""
    groups = alpha_groups(df, dtype)
    return None if not groups else _estimate(_alpha_of(groups), _boot(groups, _alpha_of))


def per_gamma(df: pd.DataFrame, dtype: str = "bfloat16", method: str = "own_loop") -> pd.DataFrame:
    """Tokens per target step and CPU wall-clock speedup over the target alone, per γ, paired by prompt."""
    alone = df[(df["method"] == "alone") & (df["dtype"] == dtype)].set_index("prompt_id")["tokens_per_s"]
    rows = []
    for g, d in df[(df["method"] == method) & (df["dtype"] == dtype)].groupby("gamma"):
        d = d[d["prompt_id"].isin(alone.index)]
        if d.empty:
            continue
        ratio = (d.set_index("prompt_id")["tokens_per_s"] / alone).dropna().to_numpy()
        tpc = (d["new_tokens"] / d["cycles"]).to_numpy() if method == "own_loop" else np.array([np.nan])
        sp = _estimate(np.mean(ratio), _boot(list(ratio), np.mean))
        rows.append({"gamma": int(g), "method": method, "prompts": len(ratio), "tokens_per_step": float(np.mean(tpc)),
                     "cpu_speedup": sp.value, "cpu_lo": sp.lo, "cpu_hi": sp.hi,
                     "identical": int(d["identical_to_alone"].astype(bool).sum())})
    return pd.DataFrame(rows)


def best_cpu_speedup(df: pd.DataFrame, dtype: str = "bfloat16") -> tuple[Estimate | None, int | None, str]:
    best = None
    for method in ("own_loop", "transformers"):
        pg = per_gamma(df, dtype, method)
        for r in pg.itertuples():
            if best is None or r.cpu_speedup > best[0].value:
                best = (Estimate(r.cpu_speedup, r.cpu_lo, r.cpu_hi), int(r.gamma), method)
    return best if best else (None, None, "")


def kernel_comparison(df: pd.DataFrame, dtype: str = "bfloat16") -> pd.DataFrame:
    """The plain pair on each kernel it was measured on: the target alone's mean tokens/s and the
    best own-loop speedup (paired by prompt, bootstrap CI), so that a reader sees what the kernel
    changes. The claims read only the fastest kernel (``on_fastest_kernel``)."""
    from studylib.estimates.analysis import first_profile
    from studylib.estimates.cpu_decode import with_kernel

    d = first_profile(df[_variant(df) == ""], PROFILE_RANK) if not df.empty else df
    if d.empty:
        return pd.DataFrame()
    d = with_kernel(d[d["dtype"] == dtype])
    rows = []
    for k, g in d.groupby("kernel"):
        pg = per_gamma(g, dtype)
        alone = g[g["method"] == "alone"]["tokens_per_s"]
        if pg.empty or alone.empty:
            continue
        b = pg.loc[pg["cpu_speedup"].idxmax()]
        rows.append({"kernel": k, "prompts": int(b["prompts"]), "target alone, tokens/s": float(alone.mean()),
                     "best γ": int(b["gamma"]), "speedup": f"{b['cpu_speedup']:.2f} [{b['cpu_lo']:.2f}, {b['cpu_hi']:.2f}]"})
    return pd.DataFrame(rows)


def identity(df: pd.DataFrame, dtype: str) -> dict | None:
    """Share of draft-assisted generations token-identical to the target alone (Wilson 95% CI)."""
    d = df[(df["method"] != "alone") & (df["dtype"] == dtype)]
    if d.empty:
        return None
    k, n = int(d["identical_to_alone"].astype(bool).sum()), len(d)
    lo, hi = proportion_confint(k, n, method="wilson")
    first = d.loc[~d["identical_to_alone"].astype(bool), "first_divergence"]
    return {"identical": k, "n": n, "rate": Estimate(k / n, float(lo), float(hi)),
            "first_divergence_median": float(first.median()) if len(first) else None}


def gsm8k_paired(df: pd.DataFrame, gamma: int, dtype: str = "bfloat16", method: str = "own_loop") -> dict | None:
    """GSM8K accuracy with and without the draft on the same items (the plain target, one row per
    prompt: greedy repeats agree): paired difference alone − assisted in pp with Tango's score
    interval (never a point, even when no answer changed) and McNemar's exact p."""
    g = df[(df["prompt_kind"] == "gsm8k") & (df["dtype"] == dtype) & (_variant(df) == "")]
    a = g[g["method"] == "alone"].groupby("prompt_id")["correct"].first()
    b = g[(g["method"] == method) & (g["gamma"] == gamma)].groupby("prompt_id")["correct"].first()
    common = a.index.intersection(b.index)
    if len(common) == 0:
        return None
    a, b = a[common].astype(float) > 0, b[common].astype(float) > 0
    d = paired_difference_ci(a, b)
    return {"n": len(common), "alone": float(a.mean()), "assisted": float(b.mean()), "discordance": float((a != b).mean()),
            "delta_pp": Estimate(100 * d.value, 100 * d.lo, 100 * d.hi, d.level), "mcnemar_p": mcnemar_pvalue(a, b)}


def gpu_prediction(df: pd.DataFrame, timing: pd.DataFrame, pair: str, dtype: str = "bfloat16",
                   gammas=range(1, 9), target_variant: str = BASELINE, profile: str | None = None,
                   at_dense_efficiency: bool = False) -> pd.DataFrame:
    """Expected speedup on the GPU per γ = f(α measured here, GPU step times of the dense target at 1
    token, of the verifying target (``target_variant``: the int8 variant's timed module for the int8 + draft stack, ``BOTH``) at γ+1
    tokens and of the draft at 1 token) — ``gpu_claims.spec_decode_speedup`` — with the CI of α
    propagated by the prompt bootstrap. ``df``'s acceptance must come from the same kind of target
    (the plain rows for dense, the stacked rows for a variant); every step time from one ``profile``.
    ``at_dense_efficiency``: the variant's verification steps at the dense step's achieved bandwidth
    (the bound a kernel as efficient as dense's would give)."""
    groups = alpha_groups(df, dtype)
    target, draft = GPU_PAIRS[pair]
    t1, td = G.step_time_s(timing, target, 1, profile=profile), G.step_time_s(timing, draft, 1, profile=profile)
    if not groups or t1 is None or td is None:
        return pd.DataFrame()
    a_hat, a_draws = _alpha_of(groups), _boot(groups, _alpha_of)
    rows = []
    for g in gammas:
        tv = (G.step_time_at_dense_efficiency_s(timing, target, g + 1, target_variant, profile=profile)
              if at_dense_efficiency else G.step_time_s(timing, target, g + 1, variant=target_variant, profile=profile))
        if tv is None:
            continue
        f = np.vectorize(lambda a: G.spec_decode_speedup(a, g, t1, tv, td))
        draws = f(a_draws)
        rows.append({"pair": pair, "gamma": g, "alpha": a_hat, "speedup": float(f(a_hat)),
                     "lo": float(np.quantile(draws, 0.025)), "hi": float(np.quantile(draws, 0.975)),
                     "t_target_1_ms": t1 * 1e3, "t_verify_ms": tv * 1e3, "t_draft_ms": td * 1e3})
    return pd.DataFrame(rows)


def stack_rows(df: pd.DataFrame, variant: str) -> pd.DataFrame:
    """The main pair's rows with the draft drafting for ``variant`` (each target on its fastest kernel)."""
    d = first_profile_rows(df) if not df.empty else df
    return d[_variant(d) == variant] if not d.empty else d


#: the CPU stack whose acceptance stands for the GPU's int8 target in "both" (Tables 5/7): the
#: declared int8 variant, and the timed GPU module it declares (``timed_module``)
BOTH = (with_role("int8")[0], declared(with_role("int8")[0])["timed_module"])


def best_gpu_prediction(df: pd.DataFrame, timing: pd.DataFrame, pair: str, **kw) -> tuple[Estimate | None, int | None]:
    p = gpu_prediction(df, timing, pair, **kw)
    if p.empty:
        return None, None
    r = p.loc[p["speedup"].idxmax()]
    return Estimate(float(r["speedup"]), float(r["lo"]), float(r["hi"])), int(r["gamma"])
