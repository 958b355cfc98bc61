"""Reference data handed to dbt as seeds: the configured files are checked for their columns and
copied, as one folder, into state_dir/reference."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from night.config import ConfigError, PipelineConfig, load_config
from night.reference import prepare_seed_dir

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


def test_prepare_seed_dir_copies_the_configured_files_into_state_reference(tmp_path):
    config = make_config(tmp_path, REFERENCE)

    target = prepare_seed_dir(config)

    assert target == tmp_path.resolve() / "var" / "state" / "reference"
    assert sorted(p.name for p in target.iterdir()) == [
        "channel_mapping.csv",
        "funnel_stages.csv",
        "fx_rates.csv",
        "stage_mapping.csv",
    ]
    for name, content in REFERENCE.items():
        assert (target / f"{name}.csv").read_text(encoding="utf-8") == content
    assert sorted(p.name for p in config.state_dir.iterdir()) == ["reference"]


def test_default_reference_files_are_the_repo_seeds(tmp_path):
    path = tmp_path / "pipeline.yml"
    path.write_text(
        "reporting_currency: EUR\n"
        "warehouse: {path: wh.duckdb, publish_dir: pub}\n"
        "sources: [{name: crm, type: canonical_csv, landing_dir: landing}]\n",
        encoding="utf-8",
    )
    config = load_config(path)

    target = prepare_seed_dir(config)

    assert target == tmp_path.resolve() / "state" / "reference"
    for name, source in config.reference.items():
        assert (target / f"{name}.csv").read_bytes() == source.read_bytes()


def test_second_prepare_replaces_the_folder_whole(tmp_path):
    # GIVEN a prepared seed folder that has since gained a stray file
    config = make_config(tmp_path, REFERENCE)
    target = prepare_seed_dir(config)
    (target / "stale.csv").write_text("a\n1\n", encoding="utf-8")

    # WHEN the fx rates change and the folder is prepared again
    fx = REFERENCE["fx_rates"] + "2026-02-01,USD,0.93\n"
    make_config(tmp_path, {"fx_rates": fx})
    prepare_seed_dir(config)

    # THEN it holds exactly the four current files
    assert sorted(p.name for p in target.iterdir()) == [
        "channel_mapping.csv",
        "funnel_stages.csv",
        "fx_rates.csv",
        "stage_mapping.csv",
    ]
    assert (target / "fx_rates.csv").read_text(encoding="utf-8") == fx


def test_reference_file_missing_a_column_fails_naming_file_and_column(tmp_path):
    config = make_config(
        tmp_path, {**REFERENCE, "fx_rates": "month,currency,rate\n2026-01-01,USD,0.92\n"}
    )

    with pytest.raises(ConfigError) as excinfo:
        prepare_seed_dir(config)

    assert str(excinfo.value) == (
        f"{config.reference['fx_rates']}: reference data fx_rates is missing column(s) "
        "rate_to_reporting (needs: month, currency, rate_to_reporting)"
    )


def test_reference_file_missing_several_columns_names_them_all(tmp_path):
    config = make_config(
        tmp_path, {**REFERENCE, "stage_mapping": "Pipeline, CRM_Stage ,stage\ndirect,Lead,x\n"}
    )

    with pytest.raises(ConfigError) as excinfo:
        prepare_seed_dir(config)

    assert str(excinfo.value) == (
        f"{tmp_path.resolve() / 'my_funnel' / 'my_stage_mapping.csv'}: reference data "
        "stage_mapping is missing column(s) source_system, funnel_stage, probability "
        "(needs: source_system, pipeline, crm_stage, funnel_stage, probability)"
    )


def test_missing_reference_file_fails_naming_the_key(tmp_path):
    config = make_config(tmp_path, {k: v for k, v in REFERENCE.items() if k != "channel_mapping"})

    with pytest.raises(ConfigError) as excinfo:
        prepare_seed_dir(config)

    missing = tmp_path.resolve() / "my_funnel" / "my_channel_mapping.csv"
    assert str(excinfo.value) == (
        f"{config.path}: reference.channel_mapping: file {missing} does not exist"
    )


def test_failed_prepare_keeps_the_previous_reference_folder(tmp_path):
    # GIVEN a prepared seed folder
    config = make_config(tmp_path, REFERENCE)
    target = prepare_seed_dir(config)

    # WHEN a later version of the channel mapping lost its channel column
    make_config(tmp_path, {"channel_mapping": "lead_source\nGoogle Ads\n"})
    with pytest.raises(ConfigError, match="missing column"):
        prepare_seed_dir(config)

    # THEN dbt still finds the last good set
    for name, content in REFERENCE.items():
        assert (target / f"{name}.csv").read_text(encoding="utf-8") == content
