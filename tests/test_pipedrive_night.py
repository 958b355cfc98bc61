"""A night through the Pipedrive API (the fake server, over real HTTP) gives the same
figures as the same generated data loaded through the canonical CSV path."""

from __future__ import annotations

import shutil

import duckdb
import pytest

from extract.fake_servers.dataset import SampleDataset
from extract.fake_servers.pipedrive import build_server

TOKEN = "pd-test-token-3141592653"

# Aggregate marts: they do not carry CRM ids, so both doors must give the same rows.
SAME_ROWS = (
    "mart_funnel_conversion",
    "mart_stage_duration",
    "mart_stage_open_spells",
    "mart_sales_velocity",
    "mart_cac",
    "mart_cac_by_channel",
    "mart_pipeline_snapshot",
)


def _marts(path, names):
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {
            name: con.sql(f"select * from marts.{name} order by all").fetchall() for name in names
        }
    finally:
        con.close()


def _config(root, sources_yaml):
    from extract.config import load_config

    root.mkdir(parents=True, exist_ok=True)
    (root / "pipeline.yml").write_text(
        "reporting_currency: USD\n"
        f"warehouse: {{path: {root}/wh.duckdb, publish_dir: {root}/published}}\n"
        f"sources:\n{sources_yaml}"
    )
    return load_config(root / "pipeline.yml")


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    from extract.sample_data import generate

    folder = tmp_path_factory.mktemp("sample")
    generate(folder, 300, seed=11, workers=1)
    return folder


def test_pipedrive_night_gives_the_canonical_figures(sample, tmp_path, monkeypatch):
    from extract.pipeline import parse_as_of, run_night

    as_of = parse_as_of("2026-07-01T00:00:00Z")
    # GIVEN the canonical path: all four files of the generated data
    canonical = _config(
        tmp_path / "canonical",
        f"  - {{name: demo_crm, type: canonical_csv, landing_dir: {sample}}}\n",
    )
    run_night(as_of=as_of, run_id="csv", config=canonical)
    # AND the API path: deals, history and activities from Pipedrive, spend from its file
    spend_only = tmp_path / "spend"
    spend_only.mkdir()
    shutil.copy(sample / "spend.csv", spend_only / "spend.csv")
    monkeypatch.setenv("PIPEDRIVE_TEST_TOKEN", TOKEN)
    with build_server(SampleDataset(sample), token=TOKEN) as server:
        api = _config(
            tmp_path / "api",
            f"  - {{name: demo_crm, type: pipedrive, base_url: '{server.url}',"
            " token_env: PIPEDRIVE_TEST_TOKEN, page_size: 100}\n"
            f"  - {{name: demo_spend, type: canonical_csv, landing_dir: {spend_only}}}\n",
        )
        result = run_night(as_of=as_of, run_id="api", config=api)
    # THEN every aggregate mart is the same, row for row
    assert result["loads"][0]["api_rows"]["pipedrive__deals"] == 300
    expected = _marts(canonical.published_path, SAME_ROWS)
    actual = _marts(api.published_path, SAME_ROWS)
    for name in SAME_ROWS:
        assert actual[name] == expected[name], name
