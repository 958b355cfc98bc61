"""The golden dataset through the whole pipeline on DuckDB gives the hand-computed marts."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import duckdb
import pytest

from golden_marts import GRAIN, data_quality_counts, mart_differences
from night import REPO_ROOT


def _mart_rows(path: Path, mart: str) -> tuple[list[str], list[tuple]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        rel = con.sql(f"select * from marts.{mart} order by all")
        return rel.columns, rel.fetchall()
    finally:
        con.close()


@pytest.mark.parametrize("mart", sorted(GRAIN))
def test_published_mart_equals_hand_computed_figures(golden_night, mart):
    config, _ = golden_night
    columns, rows = _mart_rows(config.published_path, mart)
    assert mart_differences(mart, columns, rows) == []


def test_night_reports_rows_loaded_and_nothing_quarantined(golden_night):
    _, result = golden_night
    (load,) = result["loads"]
    assert load["source_system"] == "golden"
    assert load["files_loaded"] == 4
    assert load["rows_quarantined"] == 0
    deals, history, activities, spend = (
        sum(1 for _ in (REPO_ROOT / "tests/golden/landing" / name).open()) - 1
        for name in ("deals.csv", "deal_stage_history.csv", "activities.csv", "spend.csv")
    )
    assert load["rows_loaded"] == deals + history + activities + spend


def test_rerunning_the_same_night_gives_identical_marts(golden_night, golden_as_of):
    # GIVEN the golden night has run and published
    from night.tasks import run_night

    config, _ = golden_night
    before = {mart: _mart_rows(config.published_path, mart) for mart in GRAIN}
    # WHEN the same night runs again, rebuilt although nothing changed
    again = run_night(as_of=golden_as_of, run_id="golden-rerun", config=config, full_refresh=True)
    # THEN nothing new is loaded and every mart is identical, row for row
    assert again["loads"][0]["files_unchanged"] == 4
    assert again["loads"][0]["rows_loaded"] == 0
    assert again["built"]["built"] and not again["published"].get("skipped")
    after = {mart: _mart_rows(config.published_path, mart) for mart in GRAIN}
    assert after == before


def test_published_file_opens_in_duckdb_1_x(golden_night):
    """BI drivers often bundle DuckDB 1.x, which cannot read DuckDB 2 storage."""
    python = REPO_ROOT / ".venv-bi" / "bin" / "python"
    if not python.exists():
        pytest.skip("no .venv-bi (DuckDB 1.1): `make test` creates it")
    config, _ = golden_night
    script = (
        "import duckdb, sys; con = duckdb.connect(sys.argv[1], read_only=True); "
        "print(duckdb.__version__, con.execute('select count(*), sum(amount_reporting) "
        "from marts.fct_deals').fetchall()[0])"
    )
    out = subprocess.run(
        [str(python), "-c", script, str(config.published_path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split(" ", 1)
    assert out[0] == "1.1.3"
    assert out[1].strip() == f"(15, Decimal('{_golden_amount_total()}'))"


def _golden_amount_total() -> str:
    import csv
    from decimal import Decimal

    with (REPO_ROOT / "tests/golden/expected/fct_deals.csv").open() as fh:
        total = sum(
            Decimal(r["amount_reporting"]) for r in csv.DictReader(fh) if r["amount_reporting"]
        )
    return f"{total:.2f}"


def test_data_quality_mart_counts_what_left_the_figures(golden_night):
    # The golden data load cleanly; D6 is the one deal without an amount.
    config, _ = golden_night
    counts = data_quality_counts(config.published_path)
    assert counts == {
        "quarantined_rows": 0,
        "stage_changes_without_deal": 0,
        "activities_without_deal": 0,
        "deals_without_amount": 1,
        "open_deals_now_in_lost_stage": 0,
        "sources_still_loading": 0,
    }


def test_a_night_stages_only_the_source_types_its_config_names(golden_night):
    # GIVEN the golden night, whose only source is of type canonical_csv
    config, _ = golden_night
    con = duckdb.connect(str(config.warehouse_path), read_only=True)
    try:
        staged = con.execute(
            """select distinct split_part(table_name, '__', 1) from information_schema.tables
               where table_schema = 'staging' order by 1"""
        ).fetchall()
    finally:
        con.close()
    # THEN only its staging models (and the shared ones) were built, no other type's
    assert [row[0] for row in staged] == [
        "stg_canonical_csv",
        "stg_load_audit",
        "stg_reference",
    ]


def test_row_checks_name_each_broken_rule_and_its_value(golden_night, tmp_path):
    """A model's row checks run as one test (tests/generic/build_guards.sql, row_checks):
    each rule it breaks is a failing row naming the rule and the offending value."""
    config, _ = golden_night
    compiled = config.state_dir / "dbt_target_duckdb/compiled/crm_funnel/models/marts"
    spells = (compiled / "_marts__models.yml/row_checks_fct_deal_stage_spells.sql").read_text()
    deals = (compiled / "_marts__models.yml/row_checks_fct_deals.sql").read_text()
    # GIVEN a copy of the warehouse whose spells and deals pass, then break every rule once
    copy = tmp_path / "wh.duckdb"  # the name the compiled SQL's relations carry
    shutil.copy(config.warehouse_path, copy)
    con = duckdb.connect(str(copy))
    try:
        assert con.sql(spells).fetchall() == []
        assert con.sql(deals).fetchall() == []
        # (fct_deal_stage_spells and fct_deals are views of int_deal_stage_spells and
        # int_deals__measured: broken there)
        con.execute(
            """insert into intermediate.int_deal_stage_spells by name
               select deal_id, spell_number, funnel_stage, stage_order, entered_at, exited_at,
                      'open' as exit_kind, duration_days
               from intermediate.int_deal_stage_spells
               where deal_id = 'golden:D1' and spell_number = 1"""
        )
        con.execute(
            """insert into intermediate.int_deal_stage_spells (deal_id, spell_number,
               exit_kind, duration_days) values (null, 1, 'closed', -0.5)"""
        )
        # the primary key: a deal twice, and a deal without an id
        con.execute(
            """insert into intermediate.int_deals__measured
               select * from intermediate.int_deals__measured where deal_id = 'golden:D1'
               union all
               select * replace (cast(null as varchar) as deal_id)
               from intermediate.int_deals__measured where deal_id = 'golden:D2'"""
        )
        # THEN each broken rule is one row: the rule, the value, how many rows hold it
        failing = con.sql(spells + " order by all").fetchall()
        failing_deals = con.sql(deals + " order by all").fetchall()
    finally:
        con.close()
    assert failing == [
        ("accepted_values(exit_kind)", "closed", 1),
        ("between(duration_days, 0, 100000)", "-0.5", 1),
        ("not_null(deal_id)", None, 1),
        ("unique(deal_id, spell_number)", "golden:D1, 1", 2),
    ]
    assert failing_deals == [
        ("primary_key(deal_id)", "NULL", 1),
        ("primary_key(deal_id)", "golden:D1", 2),
    ]


def test_dbt_lines_reach_stdout_and_dbt_log_at_info_and_dbt_log_at_debug_when_asked(
    golden_night, golden_as_of, capfd, monkeypatch
):
    """The night writes dbt's info lines itself (dbt's own loggers are off: they format
    every event, debug ones included): to stdout as dbt shows them, and to dbt.log as dbt
    writes it. DBT_LOG_LEVEL_FILE=debug hands dbt.log back to dbt's file logger, =none
    leaves it unwritten."""
    import re

    from night import transform

    config, _ = golden_night
    log = config.state_dir / "dbt_logs" / "dbt.log"
    listing = ("ls", "--select", "mart_cac", "--output", "name", "--resource-type", "model")
    monkeypatch.delenv("DBT_LOG_LEVEL_FILE", raising=False)
    # WHEN a dbt command runs
    start = log.stat().st_size
    capfd.readouterr()
    transform.dbt_command(config, golden_as_of, listing)
    out = capfd.readouterr().out.splitlines()
    added = log.read_text(encoding="utf8")[start:].splitlines()
    # THEN stdout shows its lines as dbt does: the time, two spaces, the message; and what
    # the command prints (the model it lists) as it is
    assert re.fullmatch(r"\d\d:\d\d:\d\d  Running with dbt=1\.11\.\d+", out[0]), out
    assert out[-1] == "mart_cac"
    # THEN dbt.log holds the same lines, after dbt's separator, with level and thread, and
    # no debug line
    assert re.fullmatch(r"=+ \d\d:\d\d:\d\d\.\d{6} \| [0-9a-f-]{36} =+", added[2]), added[:3]
    lines = added[3:]
    pattern = r"\d\d:\d\d:\d\d\.\d{6} \[(\w+) *\] \[MainThread\]: (.*)"
    assert [re.fullmatch(pattern, line).groups() for line in lines] == [
        ("info", line[10:] if line != "mart_cac" else line) for line in out
    ]
    # WHEN the environment asks dbt.log for debug
    monkeypatch.setenv("DBT_LOG_LEVEL_FILE", "debug")
    start = log.stat().st_size
    transform.dbt_command(config, golden_as_of, listing)
    added = log.read_text(encoding="utf8")[start:]
    # THEN dbt's file logger writes it: its debug lines too, each info line once
    assert " [debug] [MainThread]: running dbt with arguments " in added
    assert added.count("[MainThread]: Running with dbt=") == 1
    assert added.count("[info ] [MainThread]: mart_cac\n") == 1
    assert capfd.readouterr().out.splitlines()[-1] == "mart_cac"
    # WHEN it asks for no dbt.log THEN nobody writes one; stdout still shows the lines
    monkeypatch.setenv("DBT_LOG_LEVEL_FILE", "none")
    start = log.stat().st_size
    transform.dbt_command(config, golden_as_of, listing)
    assert log.stat().st_size == start
    assert capfd.readouterr().out.splitlines()[-1] == "mart_cac"
