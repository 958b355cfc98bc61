"""Reference data: the configured files are checked (columns, each value's type) and loaded,
typed, into the warehouse's reference schema in one transaction."""

from __future__ import annotations

import textwrap
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from extract.warehouse import connect
from night import REPO_ROOT
from night.config import ConfigError, PipelineConfig, load_config
from night.reference import load_reference

REFERENCE = {
    "funnel_stages": "stage_order,funnel_stage,description\n1,prospecting,found\n2,won,signed\n",
    "stage_mapping": (
        "source_system,pipeline,crm_stage,funnel_stage,probability\n"
        "crm,direct,Lead,prospecting,0.1\n"
        "crm,direct,Closed Won,won,1\n"
    ),
    "channel_mapping": "lead_source,channel\nGoogle Ads,google_ads\n",
    "fx_rates": "month,currency,rate_to_reporting\n2026-01-01,USD,0.92\n2026-01-01,EUR,1\n",
}


def make_config(tmp_path: Path, files: dict[str, str]) -> PipelineConfig:
    """A config whose reference keys point at `files` (name -> content) under my_funnel/."""
    folder = tmp_path / "my_funnel"
    folder.mkdir(exist_ok=True)
    for name, content in files.items():
        (folder / f"my_{name}.csv").write_text(content, encoding="utf-8")
    reference = "".join(f"\n  {name}: my_funnel/my_{name}.csv" for name in REFERENCE)
    path = tmp_path / "pipeline.yml"
    path.write_text(
        textwrap.dedent(
            """\
            reporting_currency: EUR
            warehouse:
              path: var/warehouse.duckdb
              publish_dir: var/published
              state_dir: var/state
            sources:
              - name: crm
                type: canonical_csv
                landing_dir: landing
            reference:"""
        )
        + reference
        + "\n",
        encoding="utf-8",
    )
    return load_config(path)


def load(config: PipelineConfig) -> dict[str, int]:
    con = connect(config.warehouse_path)
    try:
        return load_reference(con, config)
    finally:
        con.close()


def tables(config: PipelineConfig) -> dict[str, list[tuple]]:
    con = duckdb.connect(str(config.warehouse_path), read_only=True)
    try:
        return {
            name: con.execute(f"select * from reference.{name} order by all").fetchall()
            for name in REFERENCE
        }
    finally:
        con.close()


def test_load_reference_writes_the_configured_files_typed(tmp_path):
    config = make_config(tmp_path, REFERENCE)

    rows = load(config)

    assert rows == {"funnel_stages": 2, "stage_mapping": 2, "channel_mapping": 1, "fx_rates": 2}
    assert tables(config) == {
        "funnel_stages": [(1, "prospecting", "found"), (2, "won", "signed")],
        "stage_mapping": [
            ("crm", "direct", "Closed Won", "won", Decimal("1.000000")),
            ("crm", "direct", "Lead", "prospecting", Decimal("0.100000")),
        ],
        "channel_mapping": [("Google Ads", "google_ads")],
        "fx_rates": [
            (date(2026, 1, 1), "EUR", Decimal("1.0000000000")),
            (date(2026, 1, 1), "USD", Decimal("0.9200000000")),
        ],
    }


def test_default_reference_files_are_the_demo_reference_folder(tmp_path):
    path = tmp_path / "pipeline.yml"
    path.write_text(
        "reporting_currency: EUR\n"
        "warehouse: {path: wh.duckdb, publish_dir: pub}\n"
        "sources: [{name: crm, type: canonical_csv, landing_dir: landing}]\n",
        encoding="utf-8",
    )
    config = load_config(path)

    assert config.reference == {
        name: REPO_ROOT / "config" / "reference" / f"{name}.csv" for name in REFERENCE
    }
    assert load(config)["funnel_stages"] == 8


def test_second_load_replaces_the_tables_whole(tmp_path):
    # GIVEN loaded reference data
    config = make_config(tmp_path, REFERENCE)
    load(config)

    # WHEN the fx rates change and the data is loaded again
    make_config(tmp_path, {"fx_rates": REFERENCE["fx_rates"] + "2026-02-01,USD,0.93\n"})
    load(config)

    # THEN the table holds exactly the current file's rows
    assert tables(config)["fx_rates"] == [
        (date(2026, 1, 1), "EUR", Decimal("1.0000000000")),
        (date(2026, 1, 1), "USD", Decimal("0.9200000000")),
        (date(2026, 2, 1), "USD", Decimal("0.9300000000")),
    ]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "fx_rates",
            "month,currency,rate_to_reporting\n2026-01-01,USD,0.92\n2026-13-01,USD,0.9\n",
            "line 3, column month: '2026-13-01' is not a date (YYYY-MM-DD)",
        ),
        (
            "stage_mapping",
            "source_system,pipeline,crm_stage,funnel_stage,probability\ncrm,d,Lead,x,ten\n",
            "line 2, column probability: 'ten' is not a number",
        ),
        (
            "funnel_stages",
            'stage_order,funnel_stage,description\n1,a,b\n"2\n",c,"multi\nline"\n3.5,d,e\n',
            "line 6, column stage_order: '3.5' is not an integer",
        ),
    ],
)
def test_a_value_of_the_wrong_type_fails_naming_file_line_and_column(
    tmp_path, name, content, message
):
    config = make_config(tmp_path, {**REFERENCE, name: content})

    with pytest.raises(ConfigError) as excinfo:
        load(config)

    assert str(excinfo.value) == f"{config.reference[name]}, {message}"


def test_a_reference_file_mixing_line_breaks_loads_and_errors_name_the_editor_line(tmp_path):
    # GIVEN reference files edited on two systems: CRLF, LF and a lone CR in one file
    mixed = "month,currency,rate_to_reporting\r\n2026-01-01,USD,0.92\n2026-01-01,EUR,1\r"
    config = make_config(tmp_path, {**REFERENCE, "fx_rates": mixed})
    # WHEN loaded THEN every line is a row
    assert load(config)["fx_rates"] == 2
    assert tables(config)["fx_rates"] == [
        (date(2026, 1, 1), "EUR", Decimal("1.0000000000")),
        (date(2026, 1, 1), "USD", Decimal("0.9200000000")),
    ]
    # ... and a bad value after the lone CR is named at the line an editor shows
    bad = mixed + "2026-02-01,USD,n/a\r\n"
    config = make_config(tmp_path, {**REFERENCE, "fx_rates": bad})
    with pytest.raises(ConfigError) as excinfo:
        load(config)
    assert str(excinfo.value) == (
        f"{config.reference['fx_rates']}, line 4, column rate_to_reporting: 'n/a' is not a number"
    )


def test_reference_file_missing_a_column_fails_naming_file_and_column(tmp_path):
    config = make_config(
        tmp_path, {**REFERENCE, "fx_rates": "month,currency,rate\n2026-01-01,USD,0.92\n"}
    )

    with pytest.raises(ConfigError) as excinfo:
        load(config)

    assert str(excinfo.value) == (
        f"{config.reference['fx_rates']}: reference data fx_rates is missing column(s) "
        "rate_to_reporting (needs: month, currency, rate_to_reporting)"
    )


def test_reference_file_missing_several_columns_names_them_all(tmp_path):
    config = make_config(
        tmp_path, {**REFERENCE, "stage_mapping": "Pipeline, CRM_Stage ,stage\ndirect,Lead,x\n"}
    )

    with pytest.raises(ConfigError) as excinfo:
        load(config)

    assert str(excinfo.value) == (
        f"{tmp_path.resolve() / 'my_funnel' / 'my_stage_mapping.csv'}: reference data "
        "stage_mapping is missing column(s) source_system, funnel_stage, probability "
        "(needs: source_system, pipeline, crm_stage, funnel_stage, probability)"
    )


def test_missing_reference_file_fails_naming_the_key(tmp_path):
    config = make_config(tmp_path, {k: v for k, v in REFERENCE.items() if k != "channel_mapping"})

    with pytest.raises(ConfigError) as excinfo:
        load(config)

    missing = tmp_path.resolve() / "my_funnel" / "my_channel_mapping.csv"
    assert str(excinfo.value) == (
        f"{config.path}: reference.channel_mapping: file {missing} does not exist"
    )


def test_failed_load_keeps_the_previous_reference_tables(tmp_path):
    # GIVEN loaded reference data
    config = make_config(tmp_path, REFERENCE)
    load(config)
    before = tables(config)

    # WHEN a later fx file is fine but the channel mapping lost its channel column
    make_config(tmp_path, {"fx_rates": "month,currency,rate_to_reporting\n"})
    make_config(tmp_path, {"channel_mapping": "lead_source\nGoogle Ads\n"})
    with pytest.raises(ConfigError, match="missing column"):
        load(config)

    # THEN dbt still finds the last good set, the fx rates included
    assert tables(config) == before


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "channel_mapping",
            "lead_source,channel\nGoogle Ads,google_ads\nWebsite,organic\n google ads ,paid\n",
            "line 4: channel_mapping lists lead_source 'google ads' again (line 2 has it; "
            "matched trimmed, case-insensitively)",
        ),
        (
            "fx_rates",
            "month,currency,rate_to_reporting\n2026-01-01,USD,0.92\n2026-01-01,usd ,0.93\n",
            "line 3: fx_rates lists month, currency ('2026-01-01', 'usd') again (line 2 has "
            "it; matched trimmed, case-insensitively)",
        ),
        (
            "funnel_stages",
            "stage_order,funnel_stage,description\n1,prospecting,a\n1,won,b\n",
            "line 3: funnel_stages lists stage_order '1' again (line 2 has it; matched "
            "trimmed, case-insensitively)",
        ),
        (
            "stage_mapping",
            "source_system,pipeline,crm_stage,funnel_stage,probability\n"
            "crm,direct,Lead,prospecting,0.1\ncrm, direct,Lead ,won,1\n",
            "line 3: stage_mapping lists source_system, pipeline, crm_stage ('crm', 'direct', "
            "'Lead') again (line 2 has it; matched trimmed)",
        ),
    ],
)
def test_a_key_listed_twice_fails_naming_both_lines(tmp_path, name, content, message):
    # GIVEN a reference file with a key twice, as the models match it
    config = make_config(tmp_path, {**REFERENCE, name: content})
    # WHEN it is checked THEN the error names the file, both lines and the key
    with pytest.raises(ConfigError) as excinfo:
        load(config)
    assert str(excinfo.value) == f"{config.reference[name]}, {message}"


def test_a_stage_mapping_for_no_configured_source_is_logged(tmp_path, caplog):
    mapping = REFERENCE["stage_mapping"] + "krm,direct,Lead,prospecting,0.1\n"
    config = make_config(tmp_path, {**REFERENCE, "stage_mapping": mapping})
    with caplog.at_level("WARNING", logger="night.reference"):
        load(config)
    assert caplog.messages == [
        f"{config.reference['stage_mapping']}: stage mapping rows for source_system(s) krm, "
        "which no configured source is (configured: crm): a typo leaves that source's "
        "stages unmapped"
    ]


def test_a_bad_reference_file_fails_the_night_before_anything_loads(tmp_path):
    # GIVEN a duplicated lead source in the channel mapping
    from night.tasks import extract_source, parse_as_of

    channels = "lead_source,channel\nGoogle Ads,google_ads\nGOOGLE ADS,paid\n"
    config = make_config(tmp_path, {**REFERENCE, "channel_mapping": channels})
    (tmp_path / "landing").mkdir()
    (tmp_path / "landing" / "spend.csv").write_text(
        "date,channel,category,amount,currency\n2026-01-05,google_ads,marketing,10,USD\n"
    )
    # WHEN the first task of the night runs THEN it fails on the reference file, and the
    # warehouse was not even opened
    with pytest.raises(ConfigError, match="lists lead_source 'google ads' again"):
        extract_source("crm", as_of=parse_as_of("2026-02-01T00:00:00Z"), config=config)
    assert not config.warehouse_path.exists()


def test_the_check_runs_alone_from_the_command_line(tmp_path, capsys):
    from night.reference import main

    config = make_config(tmp_path, REFERENCE)
    assert main([str(config.path)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"funnel_stages: {config.reference['funnel_stages']}: 2 rows, ok",
        f"stage_mapping: {config.reference['stage_mapping']}: 2 rows, ok",
        f"channel_mapping: {config.reference['channel_mapping']}: 1 rows, ok",
        f"fx_rates: {config.reference['fx_rates']}: 2 rows, ok",
    ]
    config = make_config(tmp_path, {**REFERENCE, "fx_rates": "month,currency\n"})
    assert main([str(config.path)]) == 1
    assert "missing column(s) rate_to_reporting" in capsys.readouterr().err
