import os

import pytest
import torch

from studylib.__main__ import section_owners

section_owners()  # every profile section's check registered, as `python -m studylib check` has them


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for it in items:
        if "gpu" in it.keywords:
            it.add_marker(skip)


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    d = tmp_path / "data"
    monkeypatch.setenv("STUDY_DATA_DIR", str(d))
    return d
