"""The built book as a reader sees it: every page opened in headless Chromium (`make book-check`).

Fails a page on a Python traceback or error cell, stderr output, the string "nan", a code cell
open by default, a broken image or local link, or content wider than the viewport; saves a
full-page screenshot of each page. The front page also: an abstract of at most 250 words, Figure 1
above the verdict table, no verdict row taller than MAX_ROW_PX (screenshots at 1280 and 390 px).
``print_pdf`` prints the whole book into one PDF (`make book-pdf`), ``check_pdf`` opens it. Playwright drives the system's Chromium (Debian's package);
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
        problems += check_front(page, html_dir, shots)
        b.close()
    return problems


# ----------------------------------------------------------------------------- the front page
#: no row of a front-page table may be taller than this at 1280 px (issue 37: one line per claim)
MAX_ROW_PX = 48
_FRONT = """() => {
  const adm = [...document.querySelectorAll('.admonition')].find(a => /Abstract/.test(a.innerText.slice(0, 40)));
  const table = document.querySelector('table.verdict-table');
  const figs = [...document.querySelectorAll('img')].filter(i => table && (i.compareDocumentPosition(table) & Node.DOCUMENT_POSITION_FOLLOWING));
  const rows = [...document.querySelectorAll('table.verdict-table tbody tr')].map(r => [r.innerText.slice(0, 50), r.getBoundingClientRect().height]);
  return {abstract: adm ? adm.innerText.replace(/^\\s*Abstract\\s*/, '') : null, figure_above_table: figs.length > 0,
          has_table: !!table, rows: rows};
}"""


def check_front(pw_page, html_dir: Path, shots: Path) -> list[str]:
    """The front page: an abstract of at most 250 words, Figure 1 above the verdict table, no
    verdict row taller than MAX_ROW_PX at 1280 px; screenshots at 1280 and 390 px."""
    from studylib.book.abstract import MAX_WORDS

    index = html_dir / "index.html"
    problems = []
    for width in (1280, 390):
        pw_page.set_viewport_size({"width": width, "height": 900})
        pw_page.goto(index.resolve().as_uri(), wait_until="load")
        pw_page.wait_for_timeout(200)
        shots.mkdir(parents=True, exist_ok=True)
        pw_page.screenshot(path=str(shots / f"front_{width}.png"), full_page=True)
        r = pw_page.evaluate(_FRONT)
        if width == 1280:
            if r["abstract"] is None:
                problems.append("index.html: no abstract")
            elif len(r["abstract"].split()) > MAX_WORDS:
                problems.append(f"index.html: the abstract has {len(r['abstract'].split())} words (> {MAX_WORDS})")
            if not r["has_table"] or not r["figure_above_table"]:
                problems.append("index.html: Figure 1 is not above the verdict table")
            tall = [(t, h) for t, h in r["rows"] if h > MAX_ROW_PX]
            if tall:
                problems.append(f"index.html: {len(tall)} verdict row(s) taller than {MAX_ROW_PX} px, e.g. {tall[0]}")
    pw_page.set_viewport_size(VIEWPORT)
    return problems


# ----------------------------------------------------------------------------- the PDF
_PRINT_CSS = """
@page { size: A4; margin: 14mm 12mm; }
section.book-page { break-before: page; }
.table-scroll, div.cell_output, div.output { overflow: visible !important; max-width: 100% !important; }
table { font-size: 7pt !important; max-width: 100%; } td, th { white-space: normal !important; word-break: break-word; }
pre { white-space: pre-wrap !important; word-break: break-all; font-size: 7pt; }
img { max-width: 100% !important; height: auto !important; }
table.verdict-table .vt-cell, table.verdict-table .vt-ci { white-space: normal !important; }
.headerlink, .prev-next-area, nav, .bd-sidebar-primary, .bd-sidebar-secondary, .bd-header { display: none !important; }
"""
_CONTENT = """(prefix) => {
  const main = document.querySelector('article.bd-article') || document.querySelector('main') || document.body;
  const out = main.cloneNode(true);
  out.querySelectorAll('details').forEach(d => d.setAttribute('open', ''));
  out.querySelectorAll('img').forEach(i => i.setAttribute('src', i.src));
  out.querySelectorAll('a[href]').forEach(a => {
    const href = a.getAttribute('href');
    if (/^[a-z]+:/.test(href) || href.startsWith('#')) return;
    const file = new URL(href, document.baseURI).pathname.split('/').pop().replace(/\\.html$/, '');
    a.setAttribute('href', '#' + prefix + file);
  });
  return out.innerHTML;
}"""
_OVERFLOW = """() => [...document.querySelectorAll('section.book-page table, section.book-page pre, section.book-page img')]
  .filter(e => e.scrollWidth > e.parentElement.clientWidth + 2 || e.getBoundingClientRect().right > document.documentElement.clientWidth + 2)
  .map(e => e.closest('section').id + ': ' + e.tagName + ' ' + (e.innerText || e.src || '').slice(0, 60))"""


def toc_pages(book_dir: Path) -> list[str]:
    """The book's pages in table-of-contents order (``_toc.yml``), as paths without suffix."""
    import yaml

    toc = yaml.safe_load((book_dir / "_toc.yml").read_text())
    return [toc["root"], *[c["file"] for c in toc.get("chapters", [])]]


def print_pdf(book_dir: Path, out: Path) -> dict:
    """Every page of the built book printed by headless Chromium into one PDF, in TOC order: each
    page's article is taken from the rendered HTML (details opened, image sources absolute, links
    between pages turned into links to the page's section), the sections are joined with the book's
    own CSS plus print rules, and printed once, so the links to chapters work inside the PDF.
    Returns {"pages": [stems], "cut_off": [elements wider than the printed page]}."""
    from playwright.sync_api import sync_playwright

    html_dir = book_dir / "_build" / "html"
    stems = toc_pages(book_dir)
    css = "".join(f'<link rel="stylesheet" href="{p.resolve().as_uri()}">'
                  for p in sorted((html_dir / "_static").rglob("*.css")) if "study" in p.name or "book" in p.name)
    sections = []
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=browser(), args=["--no-sandbox"])
        page = b.new_page(viewport=VIEWPORT)
        for stem in stems:
            page.goto((html_dir / f"{stem}.html").resolve().as_uri(), wait_until="load")
            body = page.evaluate(_CONTENT, "page-")
            sections.append(f'<section class="book-page" id="page-{Path(stem).name}">{body}</section>')
        doc = out.with_suffix(".html")
        doc.write_text(f"<!doctype html><html><head><meta charset='utf-8'>{css}<style>{_PRINT_CSS}</style></head>"
                       f"<body>{''.join(sections)}</body></html>")
        page.goto(doc.resolve().as_uri(), wait_until="load")
        page.emulate_media(media="print")
        page.set_viewport_size({"width": 794, "height": 1123})   # A4 at 96 dpi
        cut = page.evaluate(_OVERFLOW)
        page.pdf(path=str(out), format="A4", print_background=True, outline=True, tagged=True)
        b.close()
    return {"pages": stems, "cut_off": cut}


def check_pdf(pdf: Path, book_dir: Path) -> list[str]:
    """The PDF opened with pypdf: it has pages, every TOC page's title is in it, and it links to
    its chapters (internal link annotations)."""
    from pypdf import PdfReader

    if not pdf.exists():
        return [f"{pdf}: missing (run `make book-pdf`)"]
    reader = PdfReader(str(pdf))
    text = "\n".join(p.extract_text() or "" for p in reader.pages)
    problems = []
    norm = lambda s: re.sub(r"\s+", " ", s).strip().lower()  # noqa: E731
    for stem in toc_pages(book_dir):
        title = _page_title(book_dir / "_build" / "html" / f"{stem}.html")
        if title and norm(title)[:30] not in norm(text):
            problems.append(f"{pdf.name}: page {stem!r} ({title!r}) is missing")
    links = sum(1 for p in reader.pages for a in (p.get("/Annots") or [])
                if a.get_object().get("/Subtype") == "/Link" and "/Dest" in a.get_object())
    if links == 0:
        problems.append(f"{pdf.name}: no internal link (the links to chapters do not work)")
    return problems


def _page_title(html: Path) -> str:
    m = re.search(r"<h1[^>]*>(.*?)</h1>", html.read_text(errors="ignore"), re.S)
    return re.sub(r"<[^>]+>|#|¶", "", m.group(1)).strip() if m else ""
