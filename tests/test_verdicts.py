"""The claims registry and the committed verdict table (data/verdicts.csv)."""
from studylib import claims
from studylib.claims import verdicts
from studylib.paper import criteria as C


def test_committed_verdict_table_is_not_stale():
    """Regenerates the table from data/; fails when a change to data/ or to the judging code
    was committed without `make verdicts`."""
    stale = verdicts.stale_rows()
    assert stale.empty, f"data/verdicts.csv is stale (run `make verdicts`):\n{stale[['id', 'measured', 'verdict']]}"
    assert verdicts.committed()["git_commit"].str.fullmatch(r"[0-9a-f]{40}").all()


def test_registry_has_one_entry_per_claim_with_code_to_judge_it():
    reg = claims.registry()
    assert len({c.id for c in reg}) == len(reg)
    for c in reg:
        assert callable(c.measure) and callable(c.criterion) and c.source and c.prediction and c.chapter
    vt = claims.verdict_table()
    assert not vt["verdict"].str.fullmatch(r"(?i)pending.*").any()


def test_write_only_when_a_row_changes(data_dir):
    assert verdicts.write() is True                   # empty data/: every row 'not yet measured'
    first = verdicts.committed()
    from_code = {"s31_arithmetic", "table7_vram"}     # arithmetic and byte counts need no data/
    assert first.loc[~first["id"].isin(from_code), "verdict"].str.startswith(C.NOT_MEASURED).all()
    assert verdicts.write() is False and verdicts.stale_rows().empty
    edited = first.copy()
    edited.loc[0, "verdict"] = "supported"
    edited.to_csv(verdicts.path(), index=False)
    assert list(verdicts.stale_rows()["id"]) == [first.loc[0, "id"]]
    assert verdicts.write() is True and verdicts.stale_rows().empty


def test_a_claim_without_data_says_why():
    row = claims.Claim("x", "w", "Eq. 0", "1x", "ch", lambda d: claims.Measured(), lambda m: "supported",
                       "not yet measured (because)").row(claims.Data())
    assert row["verdict"] == "not yet measured (because)" and row["measured"] == "—"


def test_every_committed_verdict_gets_a_labelled_badge():
    from studylib.claims import verdicts

    for v in verdicts.committed()["verdict"]:
        b = verdicts.badge_html(v)
        assert b.startswith("<span") and ">not<" not in b and "nan" not in b.lower()


def test_abort2_judges_the_combination_on_the_largest_scale_and_shows_the_conversion_alone():
    import pandas as pd

    rows = [("cpu-real", "sparsegpt30_literal_moe4_top1", 0.99), ("cpu-qwen", "sparsegpt30_literal_moe4_top1", 0.68),
            ("cpu-qwen", "literal_moe4_top1", 0.88), ("cpu-real", "literal_moe4_top1", 0.50)]
    d = claims.Data()
    d._memo["table:quality_variants"] = pd.DataFrame(
        [{"profile": p, "variant": v, "max_expert_fraction": x, "model": "m"} for p, v, x in rows])
    row = next(c for c in claims.registry() if c.id == "abort2").row(d)
    assert row["verdict"] == "not triggered"
    assert row["measured"].startswith("0.68") and "literal_moe4_top1): 0.88" in row["measured"]
    d._memo["table:quality_variants"] = d._memo["table:quality_variants"].assign(max_expert_fraction=0.71)
    assert next(c for c in claims.registry() if c.id == "abort2").row(d)["verdict"] == "triggered"


def test_a_tight_interval_is_never_printed_as_a_point():
    from studylib.stats import Estimate as E

    assert claims.ci_text(E(1.3216, 1.3212, 1.3221)) == "[1.3212, 1.3221]"
    assert claims.ci_text(E(1.5, 1.2, 1.9)) == "[1.20, 1.90]"
    assert claims.ci_text(E(102.1, 102.04, 102.16), "{:.0f}") == "[102.0, 102.2]"
