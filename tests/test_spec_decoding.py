"""Stacked speculative decoding (Eq. 34): η from per-prompt speeds, kept apart from the plain pair."""
import pandas as pd
import pytest

from studylib.config import StudyConfigError
from studylib.decoding.spec_sweep import check_config
from studylib.estimates import spec_analysis as S


def _rows(noise=0.0):
    rows = []
    for i in range(6):
        base = 10 + i           # per-prompt speeds: variant 1.5x, draft 2x, stack 2.4x -> eta 0.8
        for tv, method, gamma, tps in (("", "alone", 0, base), ("", "own_loop", 4, 2 * base),
                                       ("v", "alone", 0, 1.5 * base), ("v", "own_loop", 4, 2.4 * base * (1 + noise * (i % 2)))):
            rows.append({"profile": "cpu-qwen", "target_variant": tv, "dtype": "bfloat16", "prompt_id": f"p{i}",
                         "method": method, "gamma": gamma, "tokens_per_s": tps})
    return pd.DataFrame(rows)


def test_eta_recovers_the_interaction_of_a_stack_and_keeps_it_out_of_the_main_pair():
    df = _rows()
    e = S.eta(df, "v")
    assert e["eta"].value == pytest.approx(0.8) and e["gamma"] == 4 and e["prompts"] == 6
    assert set(S.main_pair(df)["target_variant"]) == {""}
    assert S.eta(df, "absent") is None
    noisy = S.eta(_rows(noise=0.2), "v")["eta"]
    assert noisy.lo < noisy.value < noisy.hi           # prompts that disagree give an interval, not a point


def test_a_stack_without_an_executable_form_is_refused_before_loading():
    with pytest.raises(StudyConfigError, match="no executable form"):
        check_config({"target": "x", "draft": "y", "runs": [{"dtype": "bfloat16", "gammas": [4],
                                                              "target_variant": "neuron_oracle_a25"}]})
    with pytest.raises(StudyConfigError, match="unknown"):
        check_config({"target": "x", "draft": "y", "runs": [{"dtype": "bfloat16", "gammas": [4],
                                                              "target_variant": "no_such_variant"}]})


def test_each_target_is_read_on_its_fastest_kernel_and_no_prompt_twice():
    eager = _rows()
    packed = _rows().assign(kernel="onednn_packed")
    packed["tokens_per_s"] *= 1.6                        # every speed 1.6x: ratios unchanged
    packed.loc[packed["target_variant"] == "v", "tokens_per_s"] /= 2.0   # the variant is faster eager
    df = pd.concat([eager.drop(columns=[]), packed], ignore_index=True)
    picked = S.on_fastest_kernel(df)
    kernels = picked.groupby("target_variant")["kernel"].unique()
    assert list(kernels[""]) == ["onednn_packed"] and list(kernels["v"]) == ["eager"]
    assert len(picked) == len(eager)                     # one kernel per target: no prompt counted twice
    main = S.main_pair(df)
    assert set(main["kernel"]) == {"onednn_packed"} and len(main) == 12
    with pytest.raises(StudyConfigError, match="kernel"):
        check_config({"target": "x", "draft": "y", "runs": [{"dtype": "bfloat16", "gammas": [4], "kernel": "fast"}]})
