"""The staged variant cache: a resumed sweep rebuilds nothing it has, shares a pruned model between
the variants that start with it, and gets exactly the model a build from scratch gives."""
import pytest
import torch

from studylib.config import load_profile
from studylib.quality import transforms

PRUNE = ("wanda", {"ratio": 0.3})
CONVERT = ("teal", {"sparsity": 0.5})


@pytest.fixture
def staged(tmp_path, monkeypatch):
    import studylib.quality.units as qu

    monkeypatch.setattr(qu, "CACHE", tmp_path)
    calls = []
    real = transforms.apply

    def counting(model, steps, calib):
        calls.append([t for t, _ in steps])
        return real(model, steps, calib)

    monkeypatch.setattr(transforms, "apply", counting)
    prof = load_profile("embedded", {"quality": {"calib_tokens": 512, "cache_stages": True,
                                                 "cache_conversions": True}})
    return qu, prof, calls


def _logits(model, tok):
    ids = tok("The capital of France is Paris, and the capital of Spain is", return_tensors="pt").input_ids
    with torch.no_grad():
        return model(ids).logits


@pytest.mark.slow
def test_stages_are_cached_shared_and_equal_to_a_fresh_build(staged, tmp_path):
    qu, prof, calls = staged
    both = {"dtype": None, "steps": [PRUNE, CONVERT]}
    model, tok, info = qu.build_variant(prof, "p_then_c", both)
    fresh = _logits(model, tok)
    assert calls == [["wanda"], ["teal"]]                      # pruned, then converted on the pruned model
    assert info["method"] == "wanda" and info["conversion"] == "teal"
    stages = {p.name.split("-")[0] for p in (tmp_path / "variants" / "embedded" / "smollm2-135m").iterdir()}
    assert stages == {"wanda", "wanda+teal"}

    calls.clear()
    model, tok, info2 = qu.build_variant(prof, "p_then_c", both)   # a resumed sweep
    assert calls == [] and info2 == info
    assert torch.equal(_logits(model, tok), fresh)

    model, tok, _ = qu.build_variant(prof, "p", {"dtype": None, "steps": [PRUNE]})   # shares stage 1
    assert calls == []

    import shutil
    shutil.rmtree(next(p for p in (tmp_path / "variants" / "embedded" / "smollm2-135m").iterdir()
                       if p.name.startswith("wanda+teal")))
    # only the conversion is redone; a profile that does not keep conversions leaves none on disk
    lean = load_profile("embedded", {"quality": {"calib_tokens": 512, "cache_stages": True}})
    model, tok, _ = qu.build_variant(lean, "p_then_c", both)
    assert calls == [["teal"]]
    assert torch.equal(_logits(model, tok), fresh)
    assert not any(p.name.startswith("wanda+teal") for p in (tmp_path / "variants" / "embedded" / "smollm2-135m").iterdir())

    other = load_profile("embedded", {"quality": {"calib_tokens": 1024, "cache_stages": True}})   # another recipe: another cache
    assert qu._stage_cache(other, [PRUNE])[0] != qu._stage_cache(prof, [PRUNE])[0]
    where, _ = qu._stage_cache(prof, [PRUNE])
    assert qu._load_stage(where, "another recipe", "cpu", torch.float32) is None
