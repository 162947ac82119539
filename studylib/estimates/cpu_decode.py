"""Speedups of whole greedy decode on the CPU (``data/cpu_decode``): each variant on its fastest
measured kernel, its median step time over dense's with a bootstrap interval, and the η of a
weight stack. The measurements: ``decoding.cpu_speed``."""
from __future__ import annotations

from studylib.decoding.cpu_speed import EAGER
from studylib.stats import bootstrap_ratio_of_medians
from studylib.results import BASELINE


def with_kernel(df):
    """Rows measured before kernels were a dimension ran eager."""
    if df.empty:
        return df
    return df.assign(kernel=df["kernel"].fillna(EAGER)) if "kernel" in df else df.assign(kernel=EAGER)


def with_served(cd, served):
    """Our decode's rows (``data/cpu_decode``) with the served engine's (``data/served_decode``, engine
    vLLM) as one more kernel, ``vllm``: the served rows were timed by the same method, so a variant's
    fastest kernel may be the engine a deployment runs (issue 38). Our own rows of the served runs stay
    out (they repeat ``cpu_decode``'s kernels at another time)."""
    import pandas as pd

    if served is None or served.empty:
        return with_kernel(cd)
    v = served[served["engine"] == "vllm"].assign(kernel="vllm")
    return pd.concat([with_kernel(cd), v[[c for c in v.columns if c in set(cd.columns) | {"kernel"}]]],
                     ignore_index=True) if not cd.empty else v


def fastest_kernel(df):
    """Per profile × variant × batch, the rows of the kernel with the lowest median step time."""
    df = with_kernel(df)
    if df.empty:
        return df
    med = df.groupby(["profile", "variant", "batch", "kernel"])["step_s"].median().reset_index()
    best = med.loc[med.groupby(["profile", "variant", "batch"])["step_s"].idxmin(), ["profile", "variant", "batch", "kernel"]]
    return df.merge(best, on=["profile", "variant", "batch", "kernel"])


def speedup_vs_dense(df, variant: str, batch: int):
    """Median decode step time of dense / of ``variant`` at ``batch`` with a bootstrap CI."""
    d = df[(df["batch"] == batch)]
    a = d[d["variant"] == BASELINE]["step_s"].to_numpy()
    b = d[d["variant"] == variant]["step_s"].to_numpy()
    if len(a) == 0 or len(b) == 0:
        return None
    return bootstrap_ratio_of_medians(a, b)



def stack_eta(df, stack: str, parts: tuple[str, ...], batch: int = 1, B: int = 2000, seed: int = 0):
    """η of a weight stack (e.g. 30% SparseGPT + int8) on the CPU: S_stack / ∏ S_part, each S the
    dense median step time over the variant's; percentile bootstrap resampling every variant's
    repeats independently. None until the stack and all its parts are measured."""
    import numpy as np

    from studylib.stats import Estimate

    d = df[df["batch"] == batch]
    t = {v: d[d["variant"] == v]["step_s"].to_numpy() for v in (BASELINE, stack, *parts)}
    if any(len(a) == 0 for a in t.values()):
        return None

    def eta(s):
        med = {v: np.median(a) for v, a in s.items()}
        return (med[BASELINE] / med[stack]) / np.prod([med[BASELINE] / med[p] for p in parts])

    rng = np.random.default_rng(seed)
    boot = [eta({v: rng.choice(a, len(a)) for v, a in t.items()}) for _ in range(B)]
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return Estimate(float(eta(t)), float(lo), float(hi))


def decode_table(cd):
    """Per profile x batch x kernel x variant: median tokens/s, speedup over dense on the same kernel
    (95% bootstrap), weights read per step and the achieved fraction of the copy bandwidth."""
    import pandas as pd

    cd = with_kernel(cd)
    rows = []
    for (prof, b, k), g in cd.groupby(["profile", "batch", "kernel"]) if not cd.empty else []:
        for v, gv in g.groupby("variant"):
            e = speedup_vs_dense(g, v, b)
            rows.append({"profile": prof, "batch": b, "kernel": k, "variant": v,
                         "tokens/s": gv["decode_tokens_per_s"].median(),
                         "speedup vs dense (same kernel)": f"{e.value:.2f} [{e.lo:.2f}, {e.hi:.2f}]" if e else "—",
                         "GB read / step": gv["bytes_per_step"].iloc[0] / 1e9,
                         "achieved / copy BW": (gv["achieved_Bps"] / gv["copy_bandwidth_Bps"]).median()})
    return pd.DataFrame(rows)


def best_kernel_table(cd):
    """Each variant on its fastest measured kernel (what Table 6's CPU row is judged on): tokens/s and
    speedup over dense on its own fastest kernel."""
    import pandas as pd

    best = fastest_kernel(cd)
    rows = []
    for (prof, b), g in best.groupby(["profile", "batch"]) if not best.empty else []:
        for v, gv in g.groupby("variant"):
            e = speedup_vs_dense(g, v, b)
            rows.append({"profile": prof, "batch": b, "variant": v, "kernel": gv["kernel"].iloc[0],
                         "tokens/s": gv["decode_tokens_per_s"].median(),
                         "speedup vs dense": f"{e.value:.2f} [{e.lo:.2f}, {e.hi:.2f}]" if e else "—"})
    return pd.DataFrame(rows)
