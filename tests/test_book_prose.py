"""No measured number is typed in the book's prose (issue 16): every number with a unit in a
Markdown cell is either glued from data ({glue:text}) or the paper's own (it appears in the
paper's text), or published elsewhere (the companion documents, `../shared/ANCHORS.md`), or one of the
study's declared constants below (confidence levels, decision
margins, hardware sizes). A typed measurement fails this test."""
import re
from pathlib import Path

import jupytext
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
PAPER = next(iter(sorted((SHARED / "seeds").glob("000_*.txt"))), None)

#: numbers the study itself declares (never measured): confidence levels, equivalence and
#: decision margins, abort thresholds, memory sizes of the hardware, the study's own budgets
DECLARED = {"95%", "90%", "50%", "10%", "20%", "70%", "25%", "30%", "80 GB", "80GB", "140 GB", "24 GB", "1 pp", "3 pp"}
UNIT = re.compile(r"(?<![\w.])(\d[\d,]*(?:\.\d+)?)\s?(x\b|%|pp\b|ms\b|µs\b|ns\b|tokens/s|tok/s|GB/s|TB/s|GB\b|h\b|min\b)")
CLEAN = re.compile(r"\{glue:text\}`[^`]*`|`[^`]*`|\$[^$]*\$")


def prose(path: Path) -> list[str]:
    if path.suffix == ".py":
        return [c.source for c in jupytext.read(path).cells if c.cell_type == "markdown"]
    return [path.read_text()]


def pages() -> list[Path]:
    return sorted(p for p in (ROOT / "book").rglob("*") if p.suffix in (".py", ".md") and "_build" not in p.parts)


@pytest.mark.skipif(PAPER is None, reason="needs the paper's text (../shared/seeds/000_*.txt)")
def test_no_typed_measurement_in_book_prose():
    # the paper, its companion documents and the published anchors: numbers that are not ours
    published = "".join(p.read_text() for p in [*sorted((SHARED / "seeds").glob("*.txt")), SHARED / "ANCHORS.md"]
                        if p.exists())
    paper_numbers = set(re.findall(r"\d[\d,]*(?:\.\d+)?", published))
    bad = []
    for p in pages():
        for cell in prose(p):
            for line in CLEAN.sub("", cell).splitlines():
                for m in UNIT.finditer(line):
                    token = f"{m.group(1)}{' ' if ' ' in m.group(0) else ''}{m.group(2)}"
                    if m.group(0) in DECLARED or token in DECLARED or m.group(1) in paper_numbers:
                        continue
                    bad.append(f"{p.relative_to(ROOT)}: {m.group(0)!r} in: {line.strip()[:100]}")
    assert not bad, "typed numbers in the book's prose (glue them from data):\n" + "\n".join(bad)


def test_the_check_catches_a_typed_measurement():
    line = "the measured speedup was 1.83x on the H100"
    assert [m.group(0) for m in UNIT.finditer(CLEAN.sub("", line))] == ["1.83x"]
    assert not list(UNIT.finditer(CLEAN.sub("", "speedup {glue:text}`headline` here")))


def test_every_number_the_front_page_glues_is_computed():
    """A glue name in book/index.py that abstract.values() does not produce would render as a hole."""
    from studylib.book import abstract

    used = set(re.findall(r"\{glue:text\}`([^`]+)`", "\n".join(prose(ROOT / "book" / "index.py"))))
    missing = used - set(abstract.values())
    assert used and not missing, f"glued on the front page but never computed: {sorted(missing)}"
