"""Reference data gaps fail the night with a message naming what is missing."""

from __future__ import annotations

import csv

import pytest

from conftest import copy_golden_landing, write_golden_config
from golden_marts import GOLDEN_DIR, data_quality_counts, query


def _night(tmp_path, as_of, **kwargs):
    from night.config import load_config
    from night.tasks import run_night

    config = load_config(write_golden_config(tmp_path / "night", **kwargs))
    return config, lambda: run_night(as_of=as_of, run_id="guard", config=config)


def test_unmapped_crm_stage_fails_the_build_naming_it(tmp_path, golden_as_of):
    # GIVEN a stage change to a CRM stage the mapping does not know
    from night.transform import DbtError

    landing = copy_golden_landing(tmp_path / "landing")
    with (landing / "deal_stage_history.csv").open("a") as fh:
        fh.write("D1,Legal Review,2026-02-20T10:00:00Z\n")
    config, night = _night(tmp_path, golden_as_of, landing=landing)
    # WHEN the night runs THEN dbt fails and names source, pipeline and stage
    with pytest.raises(DbtError) as failure:
        night()
    message = str(failure.value)
    assert "Unmapped CRM stage(s)" in message
    assert "source_system=golden, pipeline=direct, crm_stage=Legal Review" in message
    assert not config.published_path.exists()
    # AND the SQL dbt ran before it failed is in its target folder (written when the
    # command ends, night/transform.py), for whoever looks into the failure
    run = config.state_dir / "dbt_target_duckdb" / "run" / "crm_funnel" / "models"
    staged = (run / "staging" / "canonical_csv" / "stg_canonical_csv__deals.sql").read_text()
    assert staged.split()[:3] == ["create", "or", "replace"]


def test_an_unmapped_stage_arriving_on_an_incremental_night_fails_naming_it(
    tmp_path, golden_as_of, caplog
):
    # GIVEN a first night that passed (every stage mapped)
    from datetime import timedelta

    from night.transform import DbtError

    landing = copy_golden_landing(tmp_path / "landing")
    config, night = _night(tmp_path, golden_as_of, landing=landing)
    night()
    published = config.published_path.read_bytes()
    # WHEN the next night's file brings D2 a change to a stage the mapping does not know
    (landing / "deal_stage_history_20260702.csv").write_text(
        "deal_id,stage,changed_at\nD2,Legal Review,2026-05-19T10:00:00Z\n"
    )
    from night.tasks import run_night

    caplog.set_level("INFO", logger="night.tasks")
    with pytest.raises(DbtError) as failure:
        run_night(as_of=golden_as_of + timedelta(days=1), run_id="next", config=config)
    # THEN the incremental build fails naming it, with tonight's count, and nothing is
    # published
    assert any(r.getMessage().startswith("incremental build:") for r in caplog.records)
    message = str(failure.value)
    assert "Unmapped CRM stage(s)" in message
    assert (
        "source_system=golden, pipeline=direct, crm_stage=Legal Review (0 deals now, "
        "1 stage changes)" in message
    )
    assert config.published_path.read_bytes() == published


def test_missing_fx_rate_fails_the_build_naming_currency_and_month(tmp_path, golden_as_of):
    # GIVEN fx rates without USD for April 2026 (D4 closed in April in USD)
    from night.transform import DbtError

    fx = tmp_path / "fx_rates.csv"
    with (GOLDEN_DIR / "reference" / "fx_rates.csv").open() as src, fx.open("w") as dst:
        rows = list(csv.reader(src))
        csv.writer(dst, lineterminator="\n").writerows(
            r for r in rows if not (r[0] == "2026-04-01" and r[1] == "USD")
        )
    config, night = _night(tmp_path, golden_as_of, fx_rates=fx)
    with pytest.raises(DbtError) as failure:
        night()
    message = str(failure.value)
    assert "Missing FX rate(s) to EUR" in message
    assert "currency=USD, month=2026-04-01" in message
    assert not config.published_path.exists()


def test_rows_that_cannot_reach_the_marts_are_counted_in_data_quality(tmp_path, golden_as_of):
    # GIVEN a deal line with a bad amount (quarantined) and activities of two unknown deals
    landing = copy_golden_landing(tmp_path / "landing")
    with (landing / "deals.csv").open("a") as fh:
        fh.write("D99,Bad,direct,Qualified,open,12 000,EUR,u1,Alice,C9,,2026-02-01T00:00:00Z,,\n")
    with (landing / "activities.csv").open("a") as fh:
        fh.write("A999,D98,call,2026-02-02T00:00:00Z,u1\nA997,D95,call,2026-02-02T00:00:00Z,u1\n")
    config, night = _night(tmp_path, golden_as_of, landing=landing)
    # WHEN the night runs
    result = night()
    # THEN the load reports the quarantined row and the mart counts both
    assert result["loads"][0]["rows_quarantined"] == 1
    counts = data_quality_counts(config.published_path)
    assert counts["quarantined_rows"] == 1
    assert counts["activities_without_deal"] == 2
    quarantined = query(
        config.warehouse_path, "select _source_file, line_number, reason from raw._quarantine"
    )
    assert quarantined == [("deals.csv", 17, "amount is not a number: '12 000'")]
    # WHEN the next night's files bring the unknown deal D98, a stage change of another
    # unknown deal (D97) and an activity of a third (D96)
    from datetime import timedelta

    from night.tasks import run_night

    (landing / "deals_20260702.csv").write_text(
        (landing / "deals.csv").read_text().splitlines()[0]
        + "\nD98,Late,direct,Qualified,open,100.00,EUR,u1,Alice,C9,,2026-02-01T00:00:00Z,,\n"
    )
    (landing / "deal_stage_history_20260702.csv").write_text(
        "deal_id,stage,changed_at\nD97,Qualified,2026-02-03T00:00:00Z\n"
    )
    (landing / "activities_20260702.csv").write_text(
        "activity_id,deal_id,activity_type,occurred_at,owner_id\n"
        "A998,D96,call,2026-02-03T00:00:00Z,u1\n"
    )
    second = run_night(as_of=golden_as_of + timedelta(days=1), run_id="next", config=config)
    # THEN the night is incremental; D98's activity is no orphan any more, D95's still is,
    # and the new ones are
    assert second["built"]["incremental"] is True
    counts = data_quality_counts(config.published_path)
    assert counts["activities_without_deal"] == 2
    assert counts["stage_changes_without_deal"] == 1
    # (which orphans: D98's gone, D95's kept from the first night, D96's and D97's new,
    # written tonight: their mark is the incremental night's, macros/incremental.sql)
    orphans = query(
        config.warehouse_path,
        """select deal_id, stage_changes_without_deal, activities_without_deal,
                  _build_mark > 0 as written_tonight
           from intermediate.int_orphan_rows__counted order by deal_id""",
    )
    assert orphans == [
        ("golden:D95", 0, 1, False),
        ("golden:D96", 0, 1, True),
        ("golden:D97", 1, 0, True),
    ]
