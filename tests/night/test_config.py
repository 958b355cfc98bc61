"""The pipeline config: a valid file parses with paths relative to it, the environment variable
picks the file, and every kind of mistake fails naming the file and the exact key."""

from __future__ import annotations

import copy
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from extract.landing import Landing
from night import REPO_ROOT
from night.config import (
    CONFIG_ENV_VAR,
    ConfigError,
    PipelineConfig,
    SourceConfig,
    config_path,
    load_config,
)

DEMO_REFERENCE = REPO_ROOT / "config" / "reference"

VALID = {
    "reporting_currency": "EUR",
    "warehouse": {"path": "var/warehouse.duckdb", "publish_dir": "var/published"},
    "sources": [{"name": "crm", "type": "canonical_csv", "landing_dir": "landing/crm"}],
}


def write_config(directory: Path, data: Any) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "pipeline.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def test_valid_config_parses_with_paths_relative_to_the_config_file(tmp_path):
    # GIVEN a config in conf/ pointing up and down from its own folder, one reference file set
    conf = tmp_path.resolve() / "conf"
    path = conf / "pipeline.yml"
    conf.mkdir()
    path.write_text(
        textwrap.dedent(
            """\
            reporting_currency: USD
            schedule: "30 3 * * *"
            warehouse:
              path: ../var/wh/warehouse.duckdb
              publish_dir: ../var/published
            reference:
              fx_rates: ref/my_fx.csv
            sources:
              - name: hubspot_export
                type: canonical_csv
                landing_dir: ../landing/hubspot
              - name: legacy_crm
                type: canonical_csv
                landing_dir: /data/legacy
            """
        ),
        encoding="utf-8",
    )

    # WHEN loaded
    config = load_config(path)

    # THEN relative paths hang off conf/, absent keys take their defaults
    assert config == PipelineConfig(
        path=path,
        reporting_currency="USD",
        schedule="30 3 * * *",
        warehouse_path=tmp_path.resolve() / "var" / "wh" / "warehouse.duckdb",
        publish_dir=tmp_path.resolve() / "var" / "published",
        state_dir=tmp_path.resolve() / "var" / "wh" / "state",
        reference={
            "funnel_stages": DEMO_REFERENCE / "funnel_stages.csv",
            "stage_mapping": DEMO_REFERENCE / "stage_mapping.csv",
            "channel_mapping": DEMO_REFERENCE / "channel_mapping.csv",
            "fx_rates": conf / "ref" / "my_fx.csv",
        },
        sources=(
            SourceConfig(
                "hubspot_export",
                "canonical_csv",
                _landing(tmp_path.resolve() / "landing" / "hubspot"),
            ),
            SourceConfig("legacy_crm", "canonical_csv", _landing(Path("/data/legacy"))),
        ),
    )
    assert config.published_path == tmp_path.resolve() / "var" / "published" / "sales_funnel.duckdb"
    assert config.source("legacy_crm").settings == _landing(Path("/data/legacy"))


def _landing(folder: Path) -> dict:
    """A canonical source's settings with the landing defaults: no archiving, no settling,
    the canonical file format."""
    return {"landing_dir": folder, "landing": Landing(landing_dir=folder)}


def test_minimal_config_takes_default_schedule_state_dir_and_reference_files(tmp_path):
    path = write_config(tmp_path / "conf", VALID)

    config = load_config(path)

    assert config.schedule == "0 2 * * *"
    assert config.state_dir == tmp_path.resolve() / "conf" / "var" / "state"
    assert config.reference == {
        "funnel_stages": DEMO_REFERENCE / "funnel_stages.csv",
        "stage_mapping": DEMO_REFERENCE / "stage_mapping.csv",
        "channel_mapping": DEMO_REFERENCE / "channel_mapping.csv",
        "fx_rates": DEMO_REFERENCE / "fx_rates.csv",
    }


def test_explicit_state_dir_is_relative_to_the_config_file(tmp_path):
    data = copy.deepcopy(VALID)
    data["warehouse"]["state_dir"] = "../state"
    path = write_config(tmp_path / "conf", data)

    assert load_config(path).state_dir == tmp_path.resolve() / "state"


def test_env_var_selects_the_config_file(tmp_path, monkeypatch):
    path = write_config(tmp_path / "elsewhere", VALID)
    monkeypatch.setenv(CONFIG_ENV_VAR, str(path))

    config = load_config()

    assert config.path == path.resolve()
    assert config.warehouse_path == tmp_path.resolve() / "elsewhere" / "var" / "warehouse.duckdb"


def test_relative_env_var_path_is_relative_to_the_working_directory(tmp_path, monkeypatch):
    write_config(tmp_path / "conf", VALID)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(CONFIG_ENV_VAR, "conf/pipeline.yml")

    assert config_path() == tmp_path.resolve() / "conf" / "pipeline.yml"
    assert load_config().sources[0].settings == _landing(
        tmp_path.resolve() / "conf" / "landing" / "crm"
    )


def test_without_env_var_the_repo_config_is_used(monkeypatch):
    monkeypatch.delenv(CONFIG_ENV_VAR, raising=False)

    assert config_path() == REPO_ROOT / "config" / "pipeline.yml"


def test_unknown_source_name_lookup_names_the_file(tmp_path):
    path = write_config(tmp_path, VALID)

    with pytest.raises(ConfigError) as excinfo:
        load_config(path).source("pipedrive")

    assert str(excinfo.value) == f"{path.resolve()}: no source named 'pipedrive' in sources"


def _set(*keys: str | int, value: Any) -> Callable[[dict], None]:
    def mutate(data: dict) -> None:
        target = data
        for key in keys[:-1]:
            target = target.setdefault(key, {}) if isinstance(target, dict) else target[key]
        target[keys[-1]] = value

    return mutate


def _drop(*keys: str | int) -> Callable[[dict], None]:
    def mutate(data: dict) -> None:
        target = data
        for key in keys[:-1]:
            target = target[key]
        del target[keys[-1]]

    return mutate


def _rename_landing(data: dict) -> None:
    data["sources"][0]["landing"] = data["sources"][0].pop("landing_dir")


def _duplicate_source(data: dict) -> None:
    data["sources"].append({"name": "crm", "type": "canonical_csv", "landing_dir": "other"})


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        pytest.param(
            _set("extra_key", value=1),
            "extra_key: unknown key (allowed here: notifications, publish, publish_guard, "
            "reference, reporting_currency, schedule, sources, warehouse)",
            id="unknown-top-level-key",
        ),
        pytest.param(
            _set("warehouse", "pth", value="x.duckdb"),
            "warehouse.pth: unknown key (allowed here: path, publish_dir, state_dir)",
            id="unknown-warehouse-key",
        ),
        pytest.param(
            _drop("warehouse", "publish_dir"),
            "warehouse.publish_dir: is required",
            id="missing-publish-dir",
        ),
        pytest.param(
            _drop("reporting_currency"),
            "reporting_currency: is required",
            id="missing-reporting-currency",
        ),
        pytest.param(
            _set("reporting_currency", value="eur"),
            "reporting_currency: must be a 3-letter ISO code, got 'eur'",
            id="lowercase-currency",
        ),
        pytest.param(
            _set("reporting_currency", value="EURO"),
            "reporting_currency: must be a 3-letter ISO code, got 'EURO'",
            id="four-letter-currency",
        ),
        pytest.param(
            _set("reporting_currency", value=978),
            "reporting_currency: must be a non-empty string, got 978",
            id="numeric-currency",
        ),
        pytest.param(
            _set("reference", "fx", value="fx.csv"),
            "reference.fx: unknown key "
            "(allowed here: channel_mapping, funnel_stages, fx_rates, stage_mapping)",
            id="unknown-reference-key",
        ),
        pytest.param(
            _set("publish_guard", "deal_count_drop", value="20%"),
            "publish_guard.deal_count_drop: must be a fraction above 0 (0.2 = 20%) or off,"
            " got '20%'",
            id="guard-threshold-not-a-fraction",
        ),
        pytest.param(
            _set("publish_guard", "deal_count_drop", value=float("nan")),
            "publish_guard.deal_count_drop: must be a fraction above 0 (0.2 = 20%) or off, got nan",
            id="guard-threshold-nan",
        ),
        pytest.param(
            _set("publish_guard", "deals", value=0.1),
            "publish_guard.deals: unknown key (allowed here: deal_count_drop, "
            "open_pipeline_change, won_amount_change)",
            id="unknown-guard-key",
        ),
        pytest.param(
            _set("sources", value=[]),
            "sources: must be a non-empty list of sources",
            id="empty-sources",
        ),
        pytest.param(
            _set("sources", value={"name": "crm"}),
            "sources: must be a non-empty list of sources",
            id="sources-not-a-list",
        ),
        pytest.param(
            _drop("sources", 0, "type"),
            "sources[0].type: is required",
            id="missing-source-type",
        ),
        pytest.param(
            _duplicate_source,
            "sources[1].name: duplicate source name 'crm'",
            id="duplicate-source-name",
        ),
        pytest.param(
            _set("sources", 0, "name", value="My-CRM"),
            "sources[0].name: must be lowercase snake_case, got 'My-CRM'",
            id="bad-source-name",
        ),
        pytest.param(
            _drop("sources", 0, "landing_dir"),
            "sources[0].landing_dir: is required",
            id="missing-landing-dir",
        ),
        pytest.param(
            _rename_landing,
            "sources[0].landing: unknown key "
            "(allowed here: archive, format, landing_dir, plausible, settle_seconds)",
            id="unknown-source-key",
        ),
        pytest.param(
            _set("sources", 0, "plausible", value={"years_before": -1}),
            "sources[0].plausible.years_before: must be a whole number of years 0-200, got -1",
            id="negative-plausible-years",
        ),
        pytest.param(
            _set("sources", 0, "plausible", value={"max_amount": "1e16"}),
            "sources[0].plausible.max_amount: must be a number above 0 and at most 10^15,"
            " got '1e16'",
            id="plausible-amount-past-the-warehouse",
        ),
        pytest.param(
            _set("sources", 0, "plausible", value={"years": 3}),
            "sources[0].plausible.years: unknown key "
            "(allowed here: max_amount, years_after, years_before)",
            id="unknown-plausible-key",
        ),
        pytest.param(
            _set("sources", 0, "landing_dir", value=""),
            "sources[0].landing_dir: must be a non-empty string, got ''",
            id="empty-landing-dir",
        ),
    ],
)
def test_invalid_config_fails_naming_file_and_key(tmp_path, mutate, expected):
    data = copy.deepcopy(VALID)
    mutate(data)
    path = write_config(tmp_path, data)

    with pytest.raises(ConfigError) as excinfo:
        load_config(path)

    assert str(excinfo.value) == f"{path.resolve()}: {expected}"


def test_unknown_source_type_fails_naming_the_key_and_the_known_types(tmp_path):
    data = copy.deepcopy(VALID)
    data["sources"][0]["type"] = "no_such_crm"
    path = write_config(tmp_path, data)

    with pytest.raises(ConfigError) as excinfo:
        load_config(path)

    # Other source types are being added; the known list must at least hold canonical_csv.
    message = str(excinfo.value)
    prefix = f"{path.resolve()}: sources[0].type: unknown source type 'no_such_crm' (known: "
    assert message.startswith(prefix)
    assert "canonical_csv" in message[len(prefix) :].rstrip(")").split(", ")


def test_invalid_yaml_fails_naming_the_file_and_the_line(tmp_path):
    path = tmp_path / "pipeline.yml"
    path.write_text("reporting_currency: EUR\nwarehouse: [path\n", encoding="utf-8")

    with pytest.raises(ConfigError) as excinfo:
        load_config(path)

    message = str(excinfo.value)
    assert message.startswith(f"{path.resolve()}: not valid YAML: ")
    assert "line 2, column 12" in message


def test_empty_file_fails_at_the_top_level(tmp_path):
    path = tmp_path / "pipeline.yml"
    path.write_text("", encoding="utf-8")

    with pytest.raises(ConfigError) as excinfo:
        load_config(path)

    assert str(excinfo.value) == f"{path.resolve()}: (top level): must be a mapping"


def test_missing_file_fails_naming_it(tmp_path):
    path = tmp_path / "nowhere.yml"

    with pytest.raises(ConfigError) as excinfo:
        load_config(path)

    assert str(excinfo.value) == (
        f"{path.resolve()}: cannot read the pipeline config: No such file or directory"
    )
