"""A night through the Pipedrive API (the fake server, over real HTTP) gives the same
figures as the same generated data loaded through the canonical CSV path."""

from __future__ import annotations

import shutil

import duckdb
import pytest
from api_nights import (
    ALL_MARTS,
    SAME_ROWS,
    TEST_BACKOFF,
    apply_a_day_of_changes,
    assert_backoff_within,
    marts,
    pipeline_config,
    raw_counts,
    served_first_night,
)

from devkit.fake_servers.dataset import SampleDataset
from devkit.fake_servers.pipedrive import Account, build_server

pytestmark = pytest.mark.slow(seconds=61)

TOKEN = "pd-test-token-3141592653"


# A real account since July 2025: deals closed before 2026 archived (served only by
# /api/v2/deals/archived), deleted deals keeping their last status beside is_deleted, and
# deal flow pages of at most 2 entries without next_start.
REAL_ACCOUNT = Account(
    archive_closed_before="2026-01-01T00:00:00Z",
    deleted_keep_status=True,
    flow_next_start=False,
    flow_page_cap=2,
)


def test_pipedrive_night_gives_the_canonical_figures(
    sample, canonical_sample_night, tmp_path, monkeypatch
):
    from night.tasks import parse_as_of, run_night

    as_of = parse_as_of("2026-07-01T00:00:00Z")
    # GIVEN the canonical path: all four files of the generated data (shared, as of
    # 2026-07-01)
    canonical = canonical_sample_night
    # AND the API path: deals, history and activities from Pipedrive, spend from its file
    spend_only = tmp_path / "spend"
    spend_only.mkdir()
    shutil.copy(sample / "spend.csv", spend_only / "spend.csv")
    monkeypatch.setenv("PIPEDRIVE_TEST_TOKEN", TOKEN)
    dataset = SampleDataset(sample)
    with build_server(dataset, token=TOKEN, account=REAL_ACCOUNT) as server:
        api = pipeline_config(
            tmp_path / "api",
            f"  - {{name: demo_crm, type: pipedrive, base_url: '{server.url}',"
            " token_env: PIPEDRIVE_TEST_TOKEN, page_size: 100}\n"
            f"  - {{name: demo_spend, type: canonical_csv, landing_dir: {spend_only}}}\n",
        )
        result = run_night(as_of=as_of, run_id="api", config=api)
    # THEN every deal was read, the archived ones from their own endpoint
    assert result["loads"][0]["api_rows"]["pipedrive__deals"] == 300
    archived = dataset.scalar(
        """select count(*) from deals where deleted_at is null and status in ('won', 'lost')
           and closed_at < '2026-01-01T00:00:00Z'"""
    )
    wh = duckdb.connect(str(api.warehouse_path), read_only=True)
    try:
        by_endpoint = dict(
            wh.execute(
                "select _source_file, count(*) from raw.pipedrive__deals group by all"
            ).fetchall()
        )
    finally:
        wh.close()
    assert archived > 0
    assert by_endpoint == {"/api/v2/deals": 300 - archived, "/api/v2/deals/archived": archived}
    # AND every aggregate mart is the same, row for row
    expected = marts(canonical.published_path, SAME_ROWS)
    actual = marts(api.published_path, SAME_ROWS)
    assert all(expected[name] for name in SAME_ROWS)  # nothing compared empty to empty
    for name in SAME_ROWS:
        assert actual[name] == expected[name], name


def _api_config(root, url, *, full_refresh=False, extra=""):
    flag = "true" if full_refresh else "false"
    return pipeline_config(
        root,
        f"  - {{name: demo_crm, type: pipedrive, base_url: '{url}',"
        f" token_env: PIPEDRIVE_TEST_TOKEN, page_size: 100, full_refresh: {flag}{extra}}}\n",
    )


def test_incremental_night_after_changes_equals_a_full_refresh(sample, tmp_path, monkeypatch):
    from datetime import UTC, datetime

    from night.tasks import parse_as_of, run_night

    monkeypatch.setenv("PIPEDRIVE_TEST_TOKEN", TOKEN)
    dataset = SampleDataset(sample)
    with build_server(dataset, token=TOKEN, account=REAL_ACCOUNT) as server:
        # GIVEN a first night, then a day of changes in the CRM (one deal deleted: it keeps
        # its status, only is_deleted says so)
        incremental = _api_config(tmp_path / "incremental", server.url)
        run_night(as_of=parse_as_of("2026-07-01T00:00:00Z"), run_id="n1", config=incremental)
        at = datetime(2026, 7, 1, 10, 0, tzinfo=UTC)
        changes = apply_a_day_of_changes(dataset, at)
        # WHEN the next night runs incrementally, and another warehouse refreshes fully
        as_of = parse_as_of("2026-07-02T00:00:00Z")
        second = run_night(as_of=as_of, run_id="n2", config=incremental)
        full = _api_config(tmp_path / "full", server.url, full_refresh=True)
        run_night(as_of=as_of, run_id="full", config=full)
    # THEN the incremental night read only the changed deals and gives the same marts
    assert second["loads"][0]["api_rows"]["pipedrive__deals"] < 300
    incremental_marts = marts(incremental.published_path, ALL_MARTS)
    full_marts = marts(full.published_path, ALL_MARTS)
    assert all(full_marts[name] for name in ALL_MARTS)
    for name in ALL_MARTS:
        assert incremental_marts[name] == full_marts[name], name
    deals = {row[0]: row for row in full_marts["fct_deals"]}
    assert "demo_crm:900001" in deals
    assert f"demo_crm:{int(changes.deleted[1:])}" not in deals


def test_faults_are_retried_or_fail_cleanly_and_a_rerun_completes(
    sample, tmp_path, monkeypatch, caplog
):
    import logging

    from devkit.fake_servers.base import Fault
    from extract.http import HttpError
    from night.tasks import extract_source, parse_as_of

    monkeypatch.setenv("PIPEDRIVE_TEST_TOKEN", TOKEN)
    caplog.set_level(logging.DEBUG)
    as_of = parse_as_of("2026-07-01T00:00:00Z")
    with build_server(SampleDataset(sample), token=TOKEN) as server:
        config = _api_config(
            tmp_path / "faults", server.url, extra=f", retry_backoff_seconds: {TEST_BACKOFF}"
        )
        # GIVEN transient faults: a 429 with Retry-After, a burst of 503s, a cut-off body
        server.faults.add("/api/v2/deals", Fault(status=429, retry_after=1, body={"error": "x"}))
        server.faults.add("/v1/deals/5/flow", Fault(status=503, body="busy", times=3))
        server.faults.add("/api/v2/activities", Fault(truncate="half_json"))
        # WHEN the night extracts THEN it completes with every record
        first = extract_source("demo_crm", as_of=as_of, config=config)
        assert first["api_rows"]["pipedrive__deals"] == 300
        assert assert_backoff_within(caplog.records) == 4  # all but the 429's Retry-After
        complete = raw_counts(config)
        # GIVEN a fault that does not pass (a 400 on activities, after deals were paged)
        server.faults.add(
            "/api/v2/activities", Fault(status=400, body={"success": False, "error": "bad"})
        )
        # WHEN the next night runs THEN it fails naming the request; the deal chunks it
        # merged are whole (each deal with its flow), so raw holds the same records
        with pytest.raises(HttpError) as failure:
            extract_source("demo_crm", as_of=as_of, config=config)
        assert "GET /api/v2/activities" in str(failure.value)
        assert "400" in str(failure.value)
        failed = raw_counts(config)
        assert failed.pop("_batches") > complete["_batches"]
        assert failed == {k: v for k, v in complete.items() if k != "_batches"}
        # AND a rerun (its window from the unchanged high-water mark) completes the night
        extract_source("demo_crm", as_of=as_of, config=config)
        after = raw_counts(config)
        assert after.pop("_batches") > complete["_batches"]  # its own batch records
        assert after == {k: v for k, v in complete.items() if k != "_batches"}
    # The planted token is nowhere: not in logs, not in the error, not in raw.
    assert TOKEN not in caplog.text
    assert TOKEN not in str(failure.value)
    raw = duckdb.connect(str(config.warehouse_path), read_only=True)
    try:
        hits = raw.execute(
            "select count(*) from raw.pipedrive__deals where record like ? or _source_file like ?",
            [f"%{TOKEN}%", f"%{TOKEN}%"],
        ).fetchall()[0][0]
    finally:
        raw.close()
    assert hits == 0


@pytest.fixture(scope="module")
def first_night(sample, tmp_path_factory):
    """A night through the API as of 2026-07-01 on the unchanged sample, with its fake
    account still serving, its result and what it wrote to stdout and stderr: the token
    test reads what it left behind, the quarantine test carries on from it."""
    with served_first_night(
        sample,
        tmp_path_factory,
        build_server,
        _api_config,
        token=TOKEN,
        token_env="PIPEDRIVE_TEST_TOKEN",
    ) as night:
        yield night


def test_token_never_reaches_task_output_or_dbt_artifacts(first_night):
    # GIVEN the first night (and, when the quarantine test ran, the night after it)
    config = first_night.config
    # XCom is the returned summary; dbt writes manifests, run results and logs.
    assert TOKEN not in repr(first_night.result)
    assert "Completed successfully" in first_night.output.text  # dbt's output was read
    assert TOKEN not in first_night.output.text
    artifacts = [p for p in config.state_dir.rglob("*") if p.is_file()]
    assert any(p.name == "manifest.json" for p in artifacts)
    for path in artifacts:
        assert TOKEN.encode() not in path.read_bytes(), path


def test_token_from_an_airflow_connection(sample, tmp_path, monkeypatch):
    # GIVEN the token only in an Airflow connection (here from AIRFLOW_CONN_<ID>)
    from night.config import load_config
    from night.tasks import extract_source, parse_as_of

    monkeypatch.delenv("PIPEDRIVE_TEST_TOKEN", raising=False)
    monkeypatch.setenv(
        "AIRFLOW_CONN_PIPEDRIVE_DEMO", f'{{"conn_type": "http", "password": "{TOKEN}"}}'
    )
    with build_server(SampleDataset(sample), token=TOKEN) as server:
        root = tmp_path / "conn"
        root.mkdir()
        (root / "pipeline.yml").write_text(
            "reporting_currency: USD\n"
            f"warehouse: {{path: {root}/wh.duckdb, publish_dir: {root}/published}}\n"
            f"sources: [{{name: demo_crm, type: pipedrive, base_url: '{server.url}',"
            " airflow_conn_id: pipedrive_demo}]\n"
        )
        config = load_config(root / "pipeline.yml")
        # WHEN the source extracts THEN it authenticates with the connection's password
        summary = extract_source(
            "demo_crm", as_of=parse_as_of("2026-07-01T00:00:00Z"), config=config
        )
    assert summary["api_rows"]["pipedrive__deals"] == 300


def test_missing_token_fails_naming_where_it_looked(sample, tmp_path, monkeypatch):
    from extract.errors import LoadError
    from night.tasks import extract_source, parse_as_of

    monkeypatch.delenv("PIPEDRIVE_TEST_TOKEN", raising=False)
    config = _api_config(tmp_path / "none", "http://127.0.0.1:9")
    with pytest.raises(LoadError, match="set the environment variable PIPEDRIVE_TEST_TOKEN"):
        extract_source("demo_crm", as_of=parse_as_of("2026-07-01T00:00:00Z"), config=config)


def test_a_deal_value_outside_any_real_range_is_quarantined_not_failing_the_night(
    first_night, monkeypatch
):
    from datetime import UTC, datetime

    from night.tasks import parse_as_of, run_night

    # GIVEN a first night (first_night, as of 2026-07-01), then the CRM holds a deal whose
    # value is 10^40
    monkeypatch.setenv("PIPEDRIVE_TEST_TOKEN", TOKEN)
    dataset, config = first_night.dataset, first_night.config
    at = datetime(2026, 7, 1, 10, 0, tzinfo=UTC)
    changes = apply_a_day_of_changes(dataset, at, new_amount="1" + "0" * 40)
    # WHEN the next night runs THEN it publishes, without that deal
    run_night(as_of=parse_as_of("2026-07-02T00:00:00Z"), run_id="n2", config=config)
    con = duckdb.connect(str(config.warehouse_path), read_only=True)
    try:
        quarantined = con.execute(
            "select _source_file, raw_table, reason, record_key from raw._quarantine"
        ).fetchall()
    finally:
        con.close()
    # ... and the deal is quarantined with its endpoint, the field and the value
    assert quarantined == [
        (
            "/api/v2/deals",
            "pipedrive__deals",
            # The fake serves the value as Pipedrive does, a JSON number (a double).
            "value is beyond the plausible amount (less than 1,000,000,000,000,000 either way):"
            " '10000000000000000303786028427003666890752'",
            "900001",
        )
    ]
    published = marts(config.published_path, ["fct_deals", "mart_data_quality"])
    assert f"demo_crm:{int(changes.new[1:])}" not in {r[0] for r in published["fct_deals"]}
