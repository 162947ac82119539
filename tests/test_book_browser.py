"""The built book in a real browser (run by `make book-check`, which builds the book first)."""
import os
from pathlib import Path

import pytest

from studylib.book import check as book_check

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "book" / "_build" / "html"

pytestmark = pytest.mark.skipif(
    os.environ.get("BOOK_CHECK") != "1" or book_check.browser() is None or not (HTML / "index.html").exists(),
    reason="browser check: run `make book-check` (needs chromium and a built book)")


def test_every_page_reads_cleanly_in_chromium():
    problems = book_check.check_book(HTML, ROOT / "book" / "_build" / "screenshots")
    assert not problems, "\n".join(problems)


def test_the_pdf_has_every_page_and_links_to_its_chapters():
    """`make book-pdf` output (book/_build/book.pdf), opened: every TOC page present, internal links."""
    problems = book_check.check_pdf(ROOT / "book" / "_build" / "book.pdf", ROOT / "book")
    cut = ROOT / "book" / "_build" / "book.cut_off.txt"
    if cut.exists() and cut.read_text().strip():
        problems.append("cut off in print: " + cut.read_text()[:400])
    assert not problems, "\n".join(problems)
