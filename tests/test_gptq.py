"""GPTQ: on the same grid, its error compensation must beat round-to-nearest on the layer's
outputs, every group must hold at most 2^bits levels per row, and zero stays exact."""
import torch

from studylib.quality.transforms.gptq import grid, group_for, quantize_gptq, quantize_rtn


def _layer(seed=0, rows=32, cols=64, n=512):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, cols, generator=g) @ torch.randn(cols, cols, generator=g) * 0.3  # correlated inputs
    W = torch.randn(rows, cols, generator=g)
    return X, W, 2 * X.T @ X / n


def test_gptq_beats_round_to_nearest_on_the_outputs():
    X, W, H = _layer()
    err = lambda Q: float(((X @ W.T - X @ Q.T) ** 2).mean())
    rtn, gptq = quantize_rtn(W, 4, 16), quantize_gptq(W, H, 4, 16)
    assert err(gptq) < 0.8 * err(rtn)


def test_each_group_holds_at_most_2_to_the_bits_levels():
    X, W, H = _layer(1)
    Q = quantize_gptq(W, H, 3, 16)
    for c in range(0, W.shape[1], 16):
        for r in range(W.shape[0]):
            assert torch.unique(Q[r, c:c + 16]).numel() <= 8


def test_zero_is_exact_on_the_grid():
    w = torch.tensor([[-1.0, 0.0, 0.37, 2.0]])
    scale, zero = grid(w, 4)
    q = torch.clamp(torch.round(w / scale) + zero, 0, 15)
    assert float(scale[0, 0] * (q[0, 1] - zero[0, 0])) == 0.0


def test_groups_match_the_library_int4_where_128_does_not_divide_the_row():
    assert group_for(1536, 128) == 128 and group_for(576, 128) == 96 and group_for(4096, 128) == 128


def test_held_out_error_from_the_gram_matrix_and_the_overfit_it_reveals():
    """``gptq_holdout``: the error computed from XᵀX equals the direct one, and with fewer
    calibration tokens than input columns GPTQ fits its calibration set (far below RTN there)
    while on fresh tokens from the same distribution its advantage shrinks; with many tokens the
    calibration and held-out errors agree."""
    from studylib.quality.gptq_holdout import _Gram, compare, rel_error

    g = torch.Generator().manual_seed(3)
    cols, rows = 64, 16
    mix = torch.randn(cols, cols, generator=g) * 0.3
    draw = lambda n: torch.randn(n, cols, generator=g) @ mix  # noqa: E731
    W = torch.randn(rows, cols, generator=g)
    Q = quantize_rtn(W, 4, 16)
    X = draw(300)
    direct = float((X @ (Q - W).T).norm() / (X @ W.T).norm())
    assert abs(rel_error(W, Q, (X.T @ X).double()) - direct) < 1e-6

    def grams(n_calib):
        c, h = _Gram(cols), _Gram(cols)
        c.add(draw(n_calib)), h.add(draw(4096))
        return {(r["method"], r["percdamp"]): r for r in compare(W, c, h, 4, 16, (0.01,))}

    few, many = grams(24), grams(8192)              # 24 tokens < 64 columns; 8192 >> 64
    g_few, r_few = few[("gptq", 0.01)], few[("rtn", None)]
    assert g_few["err_calib"] < 0.6 * r_few["err_calib"]               # fits the calibration set
    assert g_few["err_heldout"] > 2 * g_few["err_calib"]               # ... which does not carry over
    g_many = many[("gptq", 0.01)]
    assert abs(g_many["err_heldout"] - g_many["err_calib"]) < 0.1 * g_many["err_calib"]
    assert g_many["err_heldout"] < 0.8 * many[("rtn", None)]["err_heldout"]


def test_relative_to_rtn_divides_by_the_matching_rtn_row():
    import pandas as pd

    from studylib.quality.gptq_holdout import relative_to_rtn

    t = pd.DataFrame([{"layer": 0, "linear": "mlp.down_proj", "calib_tokens": n, "method": m, "percdamp": d,
                       "err_calib": c, "err_heldout": h}
                      for n, m, d, c, h in [(16, "rtn", None, 0.10, 0.10), (16, "gptq", 0.01, 0.05, 0.09),
                                            (32, "rtn", None, 0.20, 0.20), (32, "gptq", 0.01, 0.10, 0.12)]])
    r = relative_to_rtn(t).set_index("calib_tokens")
    assert r.loc[16, "calib_vs_rtn"] == 0.5 and abs(r.loc[16, "heldout_vs_rtn"] - 0.9) < 1e-12
    assert abs(r.loc[32, "heldout_vs_rtn"] - 0.6) < 1e-12 and r.loc[32, "site"] == "layer 0 down_proj"


def test_the_gptq_step_takes_a_damping_and_refuses_one_out_of_range():
    """``percdamp`` is a declared step parameter (one YAML line makes a damped variant); an
    impossible damping is refused before any layer is calibrated."""
    import pytest

    from studylib.config import StudyConfigError
    from studylib.quality.transforms import check_steps
    from studylib.quality.transforms.gptq import gptq_model

    check_steps("v", [("gptq", {"bits": 4, "group_size": 128, "percdamp": 0.1})])
    with pytest.raises(StudyConfigError):
        check_steps("v", [("gptq", {"damping": 0.1})])
    with pytest.raises(ValueError, match="percdamp"):
        gptq_model(None, None, percdamp=1.5)
