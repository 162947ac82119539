"""The Phase 3 row's best conversion against the next best, paired item by item."""
import numpy as np
import pandas as pd
from scipy.stats import binomtest

from studylib.estimates import sweet_spot as S


def _quality(*rows):
    return pd.DataFrame([{"profile": "p", "model": "m", "variant": v, "task": "mmlu", "n_items": 100,
                          "acc_loss_pp": loss, "acc_loss_lo": loss - 3, "acc_loss_hi": loss + 3, "bound": bound}
                         for v, loss, bound in rows])


def _items(outcomes: dict[str, np.ndarray]):
    return pd.concat([pd.DataFrame({"profile": "p", "model": "m", "variant": v, "task": "mmlu",
                                    "task_type": "factual", "item_id": [f"i{k}" for k in range(len(c))],
                                    "correct": c.astype(float), "gold_logprob": np.nan, "n_tokens": 1})
                      for v, c in outcomes.items()], ignore_index=True)


def test_best_versus_next_counts_the_discordant_items_and_never_collapses():
    best = np.r_[np.ones(10), np.zeros(6), np.ones(40), np.zeros(44)]   # right where next is wrong on 10
    nxt = np.r_[np.zeros(10), np.ones(6), np.ones(40), np.zeros(44)]    # ... and wrong where next is right on 6
    q = _quality(("oracle", 1.0, True), ("next", 21.6, False), ("best", 20.0, False))
    vs = S.best_versus_next(q, _items({"best": best, "next": nxt, "oracle": nxt}))
    assert (vs["best"], vs["next"], vs["n"], vs["discordant"]) == ("best", "next", 100, (10, 6))
    assert vs["diff"].value == -4.0                      # loss(best) - loss(next) = acc(next) - acc(best)
    assert vs["diff"].lo < -4.0 < vs["diff"].hi < 10     # an interval, not a point
    assert abs(vs["p"] - binomtest(6, 16).pvalue) < 1e-12
    same = S.best_versus_next(q, _items({"best": nxt, "next": nxt}))
    assert same["discordant"] == (0, 0) and same["diff"].lo < 0 < same["diff"].hi and same["p"] == 1.0
    assert S.best_versus_next(_quality(("best", 20.0, False), ("oracle", 1.0, True)), _items({"best": best})) is None


def test_best_versus_next_pairs_only_the_items_both_answered():
    """A variant measured on a subset (one 250-item chunk) against one measured on all items: the
    paired difference counts the common items only, and both sample sizes are reported."""
    nxt = np.r_[np.ones(60), np.zeros(40)]
    best = np.r_[np.ones(15), np.zeros(10)]              # only the first 25 items were run
    q = _quality(("next", 20.0, False), ("best", 18.8, False))
    q.loc[q["variant"] == "best", "n_items"] = 25
    vs = S.best_versus_next(q, _items({"best": best, "next": nxt}))
    assert (vs["n"], vs["best_n"], vs["next_n"]) == (25, 25, 100)
    assert vs["discordant"] == (0, 10)                   # items 15-24: right with next only
    assert vs["diff"].value == 40.0
