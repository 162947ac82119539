# %% [markdown]
# # Appendix A — Audit: full fit summaries and diagnostics
#
# Every fit in the book, with its full statsmodels summary, residual plots and the data file
# behind it.
#
# ## Eq. 25 (data: `data/quality_variants/*/`, `data/quality_items/*/`)

# %%
import matplotlib.pyplot as plt
import pandas as pd
import statsmodels.api as sm
from studylib.analysis import quality_deltas
from studylib.fits import fit_eq25
from studylib.results import read_table

variants = read_table("quality_variants")
deltas = quality_deltas(read_table("quality_items"))
grid = variants[variants["variant"].str.startswith("grid_")]
acc = deltas.dropna(subset=["acc_loss_pp"]).groupby(["profile", "variant"])["acc_loss_pp"].mean().rename("q_loss")
fitdf = grid.merge(acc.reset_index(), on=["profile", "variant"]).rename(columns={"ratio": "p"})
fitdf = fitdf.assign(imbalance=1 - fitdf["balance"])
if len(fitdf) >= 5:
    res, tests = fit_eq25(fitdf)
    print(res.summary())
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    axes[0].scatter(res.fittedvalues, res.resid); axes[0].axhline(0, color="grey")
    axes[0].set_xlabel("fitted"); axes[0].set_ylabel("residual"); axes[0].set_title("residuals vs fitted")
    sm.qqplot(res.resid, line="s", ax=axes[1]); axes[1].set_title("normal Q-Q")
    plt.tight_layout(); plt.show()
else:
    print("Eq. 25 not fitted yet (fewer than 5 grid configurations in data/).")

# %% [markdown]
# ## Eq. 19 (data: `data/timing/h100/`) — pending the GPU sweep.
