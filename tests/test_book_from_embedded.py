"""The book builds from any data the study can produce (issue 37): every chapter and the front page
execute against a data directory that holds only what the embedded default writes (the
``data/*/embedded/`` units, the same tables `make all FRESH=1` fills), with no error cell.

`make all FRESH=1` failed in chapter 5 on such data (an empty list used as a row mask selected no
columns); this test keeps any chapter from assuming another profile's data is there."""
import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "book" / "index.py", *sorted((ROOT / "book" / "chapters").glob("*.py"))]


@pytest.fixture(scope="module")
def embedded_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("embedded_only") / "data"
    for unit_dir in sorted((ROOT / "data").glob("*/embedded")):
        shutil.copytree(unit_dir, out / unit_dir.parent.name / "embedded")
    old = os.environ.get("STUDY_DATA_DIR")
    os.environ["STUDY_DATA_DIR"] = str(out)
    try:
        from studylib.claims import verdicts
        verdicts.write()
        yield out
    finally:
        if old is None:
            os.environ.pop("STUDY_DATA_DIR", None)
        else:
            os.environ["STUDY_DATA_DIR"] = old


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_every_page_executes_on_embedded_data_alone(embedded_data, page):
    import jupytext
    import nbclient

    assert not any(p.name != "embedded" for p in embedded_data.glob("*/*")), "fixture holds another profile"
    nb = jupytext.read(page)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(page.parent)}})
    client.execute()   # the kernel inherits STUDY_DATA_DIR from the fixture
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors, f"{page.name}: {errors[0]['ename']}: {errors[0]['evalue']}"
