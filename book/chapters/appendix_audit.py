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
from studylib.analysis import eq25_design
from studylib.fits import diagnostics, fit_eq25
from studylib.results import read_table

design = eq25_design(read_table("quality_items"), read_table("quality_variants"))
fits = []
for prof in design["profile"].unique():
    for outcome in ("q_loss", "lp_loss"):
        try:
            fits.append((prof, outcome, *fit_eq25(design[design["profile"] == prof], outcome)))
        except ValueError as e:
            print(f"{prof} / {outcome}: not fitted ({e})")
if not fits:
    print("Eq. 25 not fitted yet (no complete grid in data/).")

# %%
for prof, outcome, res, tests in fits:
    print(f"=== Eq. 25, profile {prof}, outcome {outcome} ===")
    print(res.summary())
    print(tests.round(4).to_string())
    print(diagnostics(res).round(4).to_string())
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    axes[0].scatter(res.fittedvalues, res.resid); axes[0].axhline(0, color="grey")
    axes[0].set_xlabel("fitted"); axes[0].set_ylabel("residual"); axes[0].set_title(f"{prof} {outcome}: residuals")
    sm.qqplot(res.resid, line="s", ax=axes[1]); axes[1].set_title("normal Q-Q")
    plt.tight_layout(); plt.show()

# %% [markdown]
# ## Eq. 19 (data: `data/timing/h100/`) — pending the GPU sweep.
