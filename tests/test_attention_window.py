"""The attention-side variants of §4.5 (sinks + recent window, local or evicting after prefill):
a window covering the whole context is exactly dense, padding included; a narrower one changes
what is seen and nothing else."""
import copy

import pytest
import torch

from studylib.quality.transforms.attention_window import band, kv_window


@pytest.fixture(scope="module")
def smol4():
    from studylib.models import load_model

    model, tok = load_model("smollm2-135m")
    model.model.layers = model.model.layers[:4]
    ids = torch.randint(100, 5000, (2, 40), generator=torch.Generator().manual_seed(0))
    mask = torch.ones_like(ids)
    mask[1, :7] = 0                                            # left padding, as in batched generation
    return model, ids, mask


def _with(model, **kw):
    m = copy.deepcopy(model)
    kv_window(m, None, **kw)
    return m


def test_the_band_keeps_sinks_and_the_recent_fraction_of_each_rows_own_context():
    b = band(None, 1, 6, 6, sinks=1, window=0.34, device="cpu")[0, 0].int().tolist()
    assert b == [[1, 0, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0], [1, 1, 1, 0, 0, 0],
                 [1, 0, 1, 1, 0, 0], [1, 0, 0, 1, 1, 0], [1, 0, 0, 1, 1, 1]]
    # a left-padded row: its sink is its first real token, not a pad, and pads stay invisible
    allowed = torch.tril(torch.ones(6, 6, dtype=torch.bool))[None, None].clone()
    allowed[..., :2] = False
    padded = band(allowed, 1, 6, 6, sinks=1, window=0.01, device="cpu")[0, 0].int()
    assert padded[5].tolist() == [0, 0, 1, 0, 0, 1] and padded[:, :2].sum() == 0


@torch.no_grad()
def test_a_window_over_the_whole_context_is_exactly_dense(smol4):
    model, ids, mask = smol4
    ref = model(input_ids=ids, attention_mask=mask).logits
    for mode in ("local", "evict"):
        full = _with(model, window=1.0, sinks=0, mode=mode)
        out = full(input_ids=ids, attention_mask=mask).logits
        assert torch.equal(out[0], ref[0]) and torch.equal(out[1, 7:], ref[1, 7:])
        assert torch.equal(full.generate(ids[:1], max_new_tokens=6, do_sample=False),
                           model.generate(ids[:1], max_new_tokens=6, do_sample=False))


@torch.no_grad()
def test_a_narrow_window_changes_what_is_seen_and_eviction_spares_the_prompt(smol4):
    model, ids, mask = smol4
    ref = model(input_ids=ids, attention_mask=mask).logits
    local = _with(model, window=0.25, sinks=4, mode="local")(input_ids=ids, attention_mask=mask).logits
    assert torch.equal(local[0, :5], ref[0, :5])               # sinks + window still cover the first tokens
    assert (local[0, 10:] - ref[0, 10:]).abs().max() > 1e-2    # later ones lose most of their context
    evict = _with(model, window=0.25, sinks=4, mode="evict")
    assert torch.equal(evict(input_ids=ids, attention_mask=mask).logits, ref)   # the prompt is read whole


def test_bad_window_settings_fail_before_any_work(smol4):
    model, _, _ = smol4
    with pytest.raises(ValueError, match="mode"):
        kv_window(copy.deepcopy(model), None, mode="sliding")
    with pytest.raises(ValueError, match="window"):
        kv_window(copy.deepcopy(model), None, window=0.0)
