"""A night on generated sample data: the demo's reference data cover it, and a rebuild of
the same night gives the same marts, value for value (no order-dependent arithmetic)."""

from __future__ import annotations

import duckdb
import pytest

from golden_marts import GRAIN

pytestmark = pytest.mark.slow(seconds=9)


def _all_marts(path):
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {m: con.sql(f"select * from marts.{m} order by all").fetchall() for m in GRAIN}
    finally:
        con.close()


def _run_id(path):
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.sql("select run_id from meta.publish_info").fetchall()[0][0]
    finally:
        con.close()


def test_rebuilding_a_sample_night_gives_identical_marts(tmp_path):
    # GIVEN 5,000 generated deals and the default (demo) reference data
    from devkit.sample_data import generate
    from night.config import load_config
    from night.tasks import build_marts, parse_as_of, publish_marts, run_night

    generate(tmp_path / "landing", 5_000, seed=7, workers=1)
    (tmp_path / "pipeline.yml").write_text(
        "reporting_currency: USD\n"
        f"warehouse: {{path: {tmp_path}/wh.duckdb, publish_dir: {tmp_path}/published}}\n"
        f"sources: [{{name: demo_crm, type: canonical_csv, landing_dir: {tmp_path}/landing}}]\n"
    )
    config = load_config(tmp_path / "pipeline.yml")
    as_of = parse_as_of("2026-07-01T00:00:00Z")
    result = run_night(as_of=as_of, run_id="first", config=config)
    assert result["loads"][0]["rows_quarantined"] == 0
    first = _all_marts(config.published_path)
    # WHEN the same night is built and published again (forced: nothing changed)
    assert build_marts(as_of=as_of, config=config, full_refresh=True)["built"]
    publish_marts(as_of=as_of, run_id="second", config=config, full_refresh=True)
    # THEN every mart is identical, value for value
    second = _all_marts(config.published_path)
    assert _run_id(config.published_path) == "second"
    assert sum(len(rows) for rows in first.values()) > 10_000
    for mart in GRAIN:
        assert second[mart] == first[mart], mart
