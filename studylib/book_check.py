"""The built book as a reader sees it: every page opened in headless Chromium (`make book-check`).

Fails a page on a Python traceback or error cell, stderr output, the string "nan", a code cell
open by default, a broken image or local link, or content wider than the viewport; saves a
full-page screenshot of each page. Playwright drives the system's Chromium (Debian's package);
no browser is downloaded.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

VIEWPORT = {"width": 1280, "height": 900}
NAN = re.compile(r"\bnan\b", re.IGNORECASE)

# Evaluated in the page: what a reader would see that is wrong.
_PROBE = """() => {
  const visible = el => !el.closest('details:not([open])') && !!(el.offsetWidth || el.offsetHeight || el.getClientRects().length);
  const text = document.querySelector('main') ? document.querySelector('main').innerText : document.body.innerText;
  return {
    text: text,
    overflow: document.documentElement.scrollWidth - window.innerWidth,
    open_inputs: [...document.querySelectorAll('div.cell_input')].filter(visible).length,
    errors: [...document.querySelectorAll('.output.traceback, .output.error')].length,
    stderr: [...document.querySelectorAll('.output.stderr')].filter(visible).map(e => e.innerText.slice(0, 120)),
    broken_images: [...document.querySelectorAll('img')].filter(i => i.complete && i.naturalWidth === 0).map(i => i.src),
    links: [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href')),
  };
}"""


def browser() -> str | None:
    """Path of a Chromium the check can drive, or None."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    return None


def pages(html_dir: Path) -> list[Path]:
    """The book's own pages (not Sphinx's search/genindex)."""
    skip = {"search.html", "genindex.html", "py-modindex.html"}
    return sorted(p for p in html_dir.rglob("*.html")
                  if p.name not in skip and "_static" not in p.parts and "_sources" not in p.parts)


def _broken_link(page: Path, href: str, html_dir: Path) -> bool:
    url = urlparse(href)
    if url.scheme or href.startswith(("#", "mailto:")) or not url.path:
        return False
    target = (page.parent / unquote(url.path)).resolve()
    return not target.exists() or html_dir.resolve() not in target.parents and target != html_dir.resolve()


def check_page(pw_page, page: Path, html_dir: Path, shots: Path) -> list[str]:
    pw_page.goto(page.resolve().as_uri(), wait_until="load")
    pw_page.wait_for_timeout(200)
    r = pw_page.evaluate(_PROBE)
    name = str(page.relative_to(html_dir))
    shots.mkdir(parents=True, exist_ok=True)
    pw_page.screenshot(path=str(shots / (name.replace("/", "__")[:-5] + ".png")), full_page=True)
    problems = []
    if "Traceback (most recent call last)" in r["text"] or r["errors"]:
        problems.append("a Python traceback or error cell")
    if r["stderr"]:
        problems.append(f"stderr output shown: {r['stderr'][:2]}")
    if m := NAN.search(r["text"]):
        problems.append(f"the string 'nan': ...{r['text'][max(0, m.start() - 60):m.end() + 20]!r}...")
    if r["open_inputs"]:
        problems.append(f"{r['open_inputs']} code cell(s) open by default")
    if r["broken_images"]:
        problems.append(f"broken images: {r['broken_images'][:3]}")
    bad = [h for h in r["links"] if _broken_link(page, h, html_dir)]
    if bad:
        problems.append(f"broken links: {bad[:3]}")
    if r["overflow"] > 1:
        problems.append(f"page wider than the viewport by {r['overflow']} px")
    return [f"{name}: {p}" for p in problems]


def check_book(html_dir: Path, shots: Path) -> list[str]:
    from playwright.sync_api import sync_playwright

    problems = []
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=browser(), args=["--no-sandbox"])
        page = b.new_page(viewport=VIEWPORT)
        for p in pages(html_dir):
            problems += check_page(page, p, html_dir, shots)
        b.close()
    return problems
