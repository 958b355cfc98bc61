"""Reference data gaps fail the night with a message naming what is missing."""

from __future__ import annotations

import csv

import pytest

from conftest import copy_golden_landing, write_golden_config
from golden_marts import GOLDEN_DIR


def _night(tmp_path, as_of, **kwargs):
    from extract.config import load_config
    from extract.pipeline import run_night

    config = load_config(write_golden_config(tmp_path / "night", **kwargs))
    return config, lambda: run_night(as_of=as_of, run_id="guard", config=config)


def test_unmapped_crm_stage_fails_the_build_naming_it(tmp_path, golden_as_of):
    # GIVEN a stage change to a CRM stage the mapping does not know
    from extract.transform import DbtError

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


def test_missing_fx_rate_fails_the_build_naming_currency_and_month(tmp_path, golden_as_of):
    # GIVEN fx rates without USD for April 2026 (D4 closed in April in USD)
    from extract.transform import DbtError

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
