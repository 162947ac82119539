from studylib import book


def test_ci_rounds_to_what_the_interval_supports():
    assert book.ci(1.8349, 1.80, 1.87, "x") == "1.83x [1.80, 1.87]"
    assert book.ci(12.34, 2.0, 25.0) == "12 [2, 25]"
    assert book.ci(0.51234, 0.5120, 0.5127) == "0.5123 [0.5120, 0.5127]"


def test_ci_never_prints_nan():
    assert book.ci(float("nan")) == book.MISSING
    assert book.ci(2.0, float("nan"), 3.0) == "2.00"


def test_local_link_check(tmp_path):
    (tmp_path / "a.html").write_text("x")
    page = tmp_path / "index.html"
    from studylib.book_check import _broken_link
    assert not _broken_link(page, "a.html#x", tmp_path)
    assert _broken_link(page, "missing.html", tmp_path)
    assert not _broken_link(page, "https://example.org/x", tmp_path)
