"""Draft-and-verify decoding returns the target's own greedy tokens (fp32, real SmolLM2-135M)."""
import copy

import pytest
import torch

from studylib.decoding.speculative import greedy_tokens, speculative_greedy
from studylib.models import load_model
from studylib.stats import first_divergence


@pytest.fixture(scope="module")
def pair():
    target, tok = load_model("smollm2-135m")
    draft = copy.deepcopy(target)   # a draft that agrees often but not always: perturbed weights
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in draft.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.15 * p.std())
    return target, draft, tok


def test_own_loop_and_transformers_assisted_equal_the_target_alone(pair):
    target, draft, tok = pair
    ids = tok("The three primary colours are", return_tensors=None)["input_ids"]
    alone, _ = greedy_tokens(target, ids, 16)
    for gamma in (1, 4):
        r = speculative_greedy(target, draft, ids, 16, gamma)
        assert first_divergence(r.tokens, alone) is None, gamma
        assert r.cycles < len(alone) or gamma == 1
        assert 0 < sum(r.accepted) < sum(r.reached)          # both paths exercised
        assert all(r.reached[i] >= r.reached[i + 1] for i in range(gamma - 1))
        assert r.tokens_per_cycle == pytest.approx(len(r.tokens) / r.cycles)
    ref, _ = greedy_tokens(target, ids, 16, assistant=draft, gamma=3)
    assert ref == alone


def test_identical_draft_accepts_everything(pair):
    target, _, tok = pair
    ids = tok("Once upon a time", return_tensors=None)["input_ids"]
    r = speculative_greedy(target, target, ids, 20, 4)
    assert r.accepted == r.reached and r.tokens_per_cycle == pytest.approx(20 / r.cycles) and r.cycles == 4


def test_bad_gamma_is_refused_before_work(pair):
    target, draft, _ = pair
    with pytest.raises(ValueError, match="gamma"):
        speculative_greedy(target, draft, [1, 2], 4, 0)


@pytest.mark.slow
def test_early_exit_self_draft_keeps_the_target_output():
    """SmolLM2 has no smaller sibling: its draft is its own first layers. Greedy speculative decoding
    with it returns exactly the target's greedy tokens in fp32."""
    import torch

    from studylib.decoding.spec_sweep import early_exit_draft, early_exit_layers
    from studylib.decoding.speculative import greedy_tokens, speculative_greedy
    from studylib.models import load_model

    assert early_exit_layers("early-exit:15") == 15 and early_exit_layers("qwen2.5-coder-0.5b") is None
    target, tok = load_model("smollm2-135m")
    draft = early_exit_draft(target, 15)
    assert len(draft.model.layers) == 15 and len(target.model.layers) == 30
    ids = tok("The capital of France is", return_tensors="pt").input_ids[0].tolist()
    alone, _ = greedy_tokens(target, ids, 12, tok.eos_token_id)
    r = speculative_greedy(target, draft, ids, 12, 3, tok.eos_token_id)
    assert r.tokens == alone
    with torch.no_grad():   # the draft really is a different (shallower) model
        assert not torch.allclose(draft(torch.tensor([ids])).logits, target(torch.tensor([ids])).logits)
