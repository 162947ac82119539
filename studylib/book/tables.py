"""How the book shows things: tables that fit, numbers rounded to what their interval supports,
Markdown instead of print, statsmodels summaries as folded HTML.

Chapters call these so that every page looks the same and no cell prints raw text. Formatting
only: every number shown comes from the caller's data.
"""
from __future__ import annotations

import html
import math

import pandas as pd
from IPython.display import HTML, Markdown, display

MISSING = "—"


def md(text: str) -> None:
    """Show Markdown (the book's replacement for print)."""
    display(Markdown(text))


def digits_for(lo: float, hi: float, minimum: int = 0, maximum: int = 4) -> int:
    """Decimals an interval [lo, hi] supports: its width to one significant figure."""
    width = abs(hi - lo)
    if not math.isfinite(width) or width == 0:
        return maximum
    return int(min(maximum, max(minimum, -math.floor(math.log10(width)))))


def ci(value: float, lo: float | None = None, hi: float | None = None, unit: str = "", digits: int | None = None,
       max_digits: int = 4) -> str:
    """'1.83x [1.80, 1.86]': value and interval rounded to what the interval supports (at most
    ``max_digits`` decimals: a replay-noise interval supports more digits than a reader needs)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    if lo is None or hi is None or any(isinstance(v, float) and math.isnan(v) for v in (lo, hi)):
        d = 2 if digits is None else digits
        return f"{value:,.{d}f}{unit}"
    d = digits_for(lo, hi, maximum=max_digits) if digits is None else digits
    f = lambda x: _unsigned_zero(f"{x:,.{d}f}")  # noqa: E731
    return f"{f(value)}{unit} [{f(lo)}, {f(hi)}]"


def _unsigned_zero(text: str) -> str:
    """'-0' / '-0.0' (a small negative rounded away) printed as '0' / '0.0'."""
    return text[1:] if text.startswith("-") and not text.strip("-0.,") else text


def est(e, unit: str = "", digits: int | None = None, max_digits: int = 4) -> str:
    """ci() for an object with .value/.lo/.hi (stats.Estimate)."""
    return MISSING if e is None else ci(e.value, e.lo, e.hi, unit, digits, max_digits)


def table(df: pd.DataFrame, caption: str | None = None, index: bool = False, digits: int | dict | None = 3,
          empty: str | None = None) -> None:
    """A table that fits the page: scrolls inside its own box, no NaN (shown as '—'), rounded.
    ``empty``: the Markdown shown instead when there is nothing to tabulate yet."""
    if df is None or df.empty:
        if empty:
            md(empty)
        return
    out = df.copy() if digits is None else df.round(digits)
    if isinstance(out.columns, pd.MultiIndex):
        out.columns = [" ".join(str(c) for c in col if str(c) != "") for col in out.columns]
    body = out.to_html(index=index, na_rep=MISSING, escape=False, border=0, classes="study-table")
    cap = f"<p class='table-caption'><em>{html.escape(caption)}</em></p>" if caption else ""
    display(HTML(f"<div class='table-scroll'>{body}</div>{cap}"))


def fit_summary(title: str, res, extra: list[pd.DataFrame] | None = None) -> None:
    """A statsmodels result's full summary as HTML, folded under a title (the audit stays one click away)."""
    import re
    import warnings

    with warnings.catch_warnings(record=True) as caught:   # e.g. "omni_normtest is not valid with n < 8"
        warnings.simplefilter("always")
        summary = res.summary().as_html()
    # statsmodels prints "nan" where a statistic is undefined (e.g. F with clustered errors and
    # few clusters); say so in words
    parts = [re.sub(r"(?<![\w.])nan(?![\w.])", "n/a", summary)]
    parts += [f"<p><small>statsmodels: {html.escape(str(w.message))}</small></p>" for w in caught]
    for df in extra or []:
        df = df.to_frame() if isinstance(df, pd.Series) else df
        parts.append(df.to_html(na_rep=MISSING, border=0, classes="study-table"))
    display(HTML(f"<details class='fit-summary'><summary>{html.escape(title)}</summary>"
                 f"<div class='table-scroll'>{''.join(parts)}</div></details>"))


def setup() -> None:
    """Quiet, consistent pages: no progress-bar widget warnings, figures sized for the column."""
    import warnings

    import matplotlib as mpl
    from tqdm import TqdmWarning

    warnings.filterwarnings("ignore", category=TqdmWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    mpl.rcParams.update({"figure.dpi": 100, "figure.figsize": (7.5, 4.0), "axes.grid": True, "grid.alpha": 0.3})
    pd.set_option("display.max_columns", 30)


def verdict_table(vt: pd.DataFrame, link_prefix: str | None = None) -> None:
    """Verdict rows grouped by hypothesis and phase (``claims.GROUPS``), one line per claim: the
    claim, the prediction, the measurement and its 95% interval (cut to one line, whole on hover),
    the coloured badge; the source, the whole measurement, its scale and the verdict's full wording
    fold into a details element under the claim (issue 37: a reader scans 29 rows at a glance)."""
    from studylib.claims import GROUPS, verdicts

    vt = vt.fillna("")
    esc = html.escape
    link = (lambda c: f' · <a href="{link_prefix}{c}.html">{c.split("_")[0]}&nbsp;→</a>' if c else "") \
        if link_prefix is not None else (lambda c: "")

    def one_line(text: str, cls: str) -> str:
        return f'<div class="{cls}" title="{esc(text)}">{esc(text) or MISSING}</div>'

    def row(r) -> str:
        folded = (f'<details class="vt-more"><summary>{esc(r["claim"])}</summary><small>{esc(r["source"])}'
                  f'{link(r["chapter"])}<br>measured: {esc(r["measured"])}'
                  + (f' {esc(r["95% CI"])}' if r["95% CI"] not in ("", "—") else "")
                  + (f'<br><em>{esc(r["scale"])}</em>' if r["scale"] else "")
                  + f'<br>verdict: {esc(r["verdict"])}</small></details>')
        return (f'<tr><td class="vt-claim">{folded}</td><td>{one_line(r["prediction"], "vt-cell")}</td>'
                f'<td>{one_line(r["measured"], "vt-cell")}</td><td>{one_line(r["95% CI"], "vt-ci")}</td>'
                f'<td class="vt-badge">{verdicts.badge_html(r["verdict"], compact=True)}</td></tr>')

    groups = [g for g in GROUPS if "group" in vt and (vt["group"] == g).any()]
    body = []
    for g in groups or [None]:
        rows = vt if g is None else vt[vt["group"] == g]
        if g is not None and len(groups) > 1:
            body.append(f'<tr class="vt-group"><th colspan="5">{esc(g)}</th></tr>')
        body += [row(r) for _, r in rows.iterrows()]
    head = "<tr><th>claim</th><th>prediction</th><th>measured</th><th>95% CI</th><th>verdict</th></tr>"
    display(HTML(f"<div class='table-scroll'><table class='verdict-table'><thead>{head}</thead>"
                 f"<tbody>{''.join(body)}</tbody></table></div>"))


def chapter_verdicts(chapter: str) -> None:
    """The verdict-table rows a chapter decides, with their badges (each chapter opens with them)."""
    from studylib.claims import verdicts

    vt = verdicts.committed()
    if (vt["chapter"] == chapter).any():
        verdict_table(vt[vt["chapter"] == chapter])
