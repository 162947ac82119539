"""Greedy draft-and-verify decoding (Leviathan et al. 2023; Chen et al. 2023), instrumented.

transformers' assisted generation (``generate(assistant_model=...)``) is the reference
implementation and ``assisted_tokens`` calls it. It does not report which draft positions were
accepted, and the study needs exactly that (acceptance per position, tokens per target step for
each draft length γ), so ``speculative_greedy`` writes the loop out — gpt-fast style, a few
lines with both KV caches visible — and ``tests/test_speculative.py`` checks that it returns the
very tokens of the target alone and of transformers' implementation.

One cycle: the draft proposes γ tokens greedily; the target scores the last accepted token and
the γ proposals in one forward pass (γ+1 positions); the longest prefix of proposals equal to
the target's own greedy choices is kept, plus the target's token after it (a correction or a
bonus). Both caches are then cut back to the accepted sequence.
"""
from __future__ import annotations

import inspect
import time
from dataclasses import dataclass, field

import torch


@dataclass
class SpecResult:
    tokens: list[int]                       # new tokens only
    gamma: int
    cycles: int = 0                         # target forward passes after the prompt
    reached: list[int] = field(default_factory=list)   # per draft position: cycles that got that far
    accepted: list[int] = field(default_factory=list)  # per draft position: proposals accepted there
    wall_s: float = 0.0

    @property
    def tokens_per_cycle(self) -> float:
        return len(self.tokens) / max(self.cycles, 1)

    @property
    def acceptance(self) -> list[float]:
        """P(proposal i accepted | proposals 1..i-1 accepted), per position i = 1..γ."""
        return [a / r if r else float("nan") for a, r in zip(self.accepted, self.reached)]


def _crop(cache, length: int) -> None:
    """Cut a transformers cache back to ``length`` tokens. A negative argument removes that many
    tokens in every transformers version (a positive one meant max_length before 5.x and is
    refused since)."""
    n = cache.get_seq_length()
    if n > length:
        cache.crop(length - n)


def _new_cache(model):
    from transformers import DynamicCache

    return DynamicCache(config=model.config)


@torch.inference_mode()
def _forward(model, cache, ids: list[int]) -> torch.Tensor:
    """Logits for each of ``ids`` appended to what ``cache`` holds (batch 1)."""
    x = torch.tensor([ids], dtype=torch.long)
    # transformers renamed past_key_values to cache (5.2x); either is accepted while both exist
    kw = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    return model(input_ids=x, use_cache=True, **{kw: cache}).logits[0]


@torch.inference_mode()
def speculative_greedy(target, draft, prompt_ids: list[int], max_new_tokens: int, gamma: int,
                       eos_token_id: int | None = None) -> SpecResult:
    if gamma < 1:
        raise ValueError(f"gamma must be >= 1, got {gamma}")
    t0 = time.perf_counter()
    res = SpecResult(tokens=[], gamma=gamma, reached=[0] * gamma, accepted=[0] * gamma)
    seq = list(prompt_ids)
    tc, dc = _new_cache(target), _new_cache(draft)
    if len(seq) > 1:   # both caches hold everything but the last token
        _forward(target, tc, seq[:-1])
        _forward(draft, dc, seq[:-1])
    while len(res.tokens) < max_new_tokens:
        proposals = []
        feed = seq[dc.get_seq_length():]
        for _ in range(gamma):
            nxt = int(_forward(draft, dc, feed)[-1].argmax())
            proposals.append(nxt)
            feed = [nxt]
        pending = seq[tc.get_seq_length():]
        logits = _forward(target, tc, pending + proposals)[len(pending) - 1:]
        choice = logits.argmax(-1).tolist()            # target's token after seq, after d1, ..., after dγ
        n = 0
        while n < gamma and proposals[n] == choice[n]:
            n += 1
        for i in range(min(n + 1, gamma)):
            res.reached[i] += 1
            res.accepted[i] += i < n
        new = proposals[:n] + [choice[n]]
        res.cycles += 1
        if eos_token_id is not None and eos_token_id in new:
            new = new[:new.index(eos_token_id) + 1]
        new = new[:max_new_tokens - len(res.tokens)]
        seq += new
        res.tokens += new
        _crop(tc, len(seq) - 1)
        _crop(dc, len(seq) - 1)
        if eos_token_id is not None and new[-1] == eos_token_id:
            break
    res.wall_s = time.perf_counter() - t0
    return res


@torch.inference_mode()
def greedy_tokens(model, prompt_ids: list[int], max_new_tokens: int, eos_token_id: int | None = None,
                  assistant=None, gamma: int | None = None) -> tuple[list[int], float]:
    """(new tokens, wall seconds) of transformers' greedy ``generate``: the target alone, or with
    ``assistant`` drafting ``gamma`` tokens per step (constant schedule) — the reference."""
    x = torch.tensor([prompt_ids], dtype=torch.long)
    kw = dict(max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=eos_token_id,
              pad_token_id=eos_token_id, attention_mask=torch.ones_like(x))
    if assistant is not None:
        assistant.generation_config.num_assistant_tokens = gamma
        assistant.generation_config.num_assistant_tokens_schedule = "constant"
        assistant.generation_config.assistant_confidence_threshold = 0.0
        kw["assistant_model"] = assistant
    t0 = time.perf_counter()
    out = model.generate(x, **kw)
    return out[0, x.shape[1]:].tolist(), time.perf_counter() - t0
