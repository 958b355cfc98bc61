"""A night through the Salesforce REST API (the fake server, over real HTTP) gives the same
figures as the same generated data loaded through the canonical CSV path, survives the
faults a real org throws, and an incremental night converges to a full refresh."""

from __future__ import annotations

import logging
import shutil
from datetime import UTC, datetime

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

from devkit.fake_servers import Fault
from devkit.fake_servers.dataset import SampleDataset
from devkit.fake_servers.salesforce import (
    BASE_PATH,
    build_server,
    error_fault,
    request_limit_fault,
    to_sf_id,
)

pytestmark = pytest.mark.slow(seconds=75)

TOKEN = "00DTEST!AQsfPlantedAccessToken.2718281828"
QUERY = f"{BASE_PATH}/query"
QUERY_ALL = f"{BASE_PATH}/queryAll"
NEXT_BATCH = f"{BASE_PATH}/query/{{locator}}"


def _api_config(root, url, *, full_refresh=False, extra=""):
    flag = "true" if full_refresh else "false"
    return pipeline_config(
        root,
        f"  - {{name: demo_crm, type: salesforce, base_url: '{url}',"
        f" token_env: SALESFORCE_TEST_TOKEN, page_size: 200, full_refresh: {flag}{extra}}}\n",
    )


def _query(path, sql, params=()):
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


def _raw(config, sql, params=()):
    return _query(config.warehouse_path, sql, params)


def _raw_rows(config):
    """Raw Salesforce rows with their content (not their load metadata). History rows are
    read once, by CreatedDate: a deleted deal's rows keep the flags they were read with."""
    return _raw(
        config,
        """select table_name, record_id, merge_key, record from (
               select 'opportunities' as table_name, record_id, merge_key, record
                   from raw.salesforce__opportunities
               union all select 'history', record_id, merge_key,
                   json_object('OpportunityId', json_extract_string(record, '$.OpportunityId'),
                       'StageName', json_extract_string(record, '$.StageName'),
                       'CreatedDate', json_extract_string(record, '$.CreatedDate'))
               from raw.salesforce__opportunity_history
               union all select 'tasks', record_id, merge_key, record
                   from raw.salesforce__tasks
               union all select 'events', record_id, merge_key, record
                   from raw.salesforce__events
               union all select 'stages', record_id, merge_key, record
                   from raw.salesforce__opportunity_stages
               union all select 'users', record_id, merge_key, record
                   from raw.salesforce__users
           ) order by all""",
    )


@pytest.fixture
def token(monkeypatch):
    monkeypatch.setenv("SALESFORCE_TEST_TOKEN", TOKEN)
    return TOKEN


@pytest.fixture(scope="module")
def first_night(sample, tmp_path_factory):
    """An incremental night through the API as of 2026-07-01 on the unchanged sample, with
    its fake org still serving, its result and what it wrote to stdout and stderr, and the
    deals it published: the incremental test carries on from it (changing the org's data),
    the paging test compares with its deals, the token test reads what it left behind."""
    with served_first_night(
        sample,
        tmp_path_factory,
        build_server,
        _api_config,
        token=TOKEN,
        token_env="SALESFORCE_TEST_TOKEN",
    ) as night:
        night.deals = marts(night.config.published_path, ["fct_deals"])["fct_deals"]
        yield night


def test_salesforce_night_gives_the_canonical_figures(
    sample, canonical_sample_night, tmp_path, token
):
    from night.tasks import parse_as_of, run_night

    as_of = parse_as_of("2026-07-01T00:00:00Z")
    # GIVEN the canonical path: all four files of the generated data (shared, as of
    # 2026-07-01)
    canonical = canonical_sample_night
    # AND the API path: deals, history and activities from Salesforce, spend from its file
    spend_only = tmp_path / "spend"
    spend_only.mkdir()
    shutil.copy(sample / "spend.csv", spend_only / "spend.csv")
    with build_server(SampleDataset(sample), token=token) as server:
        api = pipeline_config(
            tmp_path / "api",
            f"  - {{name: demo_crm, type: salesforce, base_url: '{server.url}',"
            " token_env: SALESFORCE_TEST_TOKEN, page_size: 200}\n"
            f"  - {{name: demo_spend, type: canonical_csv, landing_dir: {spend_only}}}\n",
        )
        result = run_night(as_of=as_of, run_id="api", config=api)
    # THEN every aggregate mart is the same, row for row
    rows = result["loads"][0]["api_rows"]
    assert rows["salesforce__opportunities"] == 300
    assert rows["salesforce__opportunity_history"] > 300
    assert rows["salesforce__tasks"] > 0 and rows["salesforce__events"] > 0
    expected = marts(canonical.published_path, SAME_ROWS)
    actual = marts(api.published_path, SAME_ROWS)
    assert all(expected[name] for name in SAME_ROWS)  # nothing compared empty to empty
    for name in SAME_ROWS:
        assert actual[name] == expected[name], name
    # AND deal-level facts agree too, ids aside: Salesforce's 18-character ids stay the ids
    deals = _query(
        api.published_path,
        "select crm_deal_id, status, crm_stage, amount, created_at, closed_at "
        "from marts.fct_deals order by 1",
    )
    canonical_deals = _query(
        canonical.published_path,
        "select crm_deal_id, status, crm_stage, amount, created_at, closed_at "
        "from marts.fct_deals order by 1",
    )
    assert [(to_sf_id("Opportunity", d[0]), *d[1:]) for d in canonical_deals] == deals


def test_incremental_night_after_changes_equals_a_full_refresh(first_night, tmp_path, token):
    from night.tasks import parse_as_of, run_night

    # GIVEN a first night (first_night: n1, as of 2026-07-01), then a day of changes in the CRM
    dataset, server, incremental = first_night.dataset, first_night.server, first_night.config
    at = datetime(2026, 7, 1, 10, 0, tzinfo=UTC)
    changes = apply_a_day_of_changes(dataset, at)
    # WHEN the next night runs incrementally, and another warehouse refreshes fully
    as_of = parse_as_of("2026-07-02T00:00:00Z")
    second = run_night(as_of=as_of, run_id="n2", config=incremental)
    full = _api_config(tmp_path / "full", server.url, full_refresh=True)
    run_night(as_of=as_of, run_id="full", config=full)
    # AND the same night is rerun (idempotent)
    run_night(as_of=as_of, run_id="n2-rerun", config=incremental)
    # THEN the incremental night read only the changed records and gives the same marts
    rows = second["loads"][0]["api_rows"]
    assert rows["salesforce__opportunities"] < 300
    assert rows["salesforce__opportunity_history"] < 50
    incremental_marts = marts(incremental.published_path, ALL_MARTS)
    full_marts = marts(full.published_path, ALL_MARTS)
    assert all(full_marts[name] for name in ALL_MARTS)
    for name in ALL_MARTS:
        assert incremental_marts[name] == full_marts[name], name
    assert _raw_rows(incremental) == _raw_rows(full)
    deals = {row[0]: row for row in full_marts["fct_deals"]}
    assert f"demo_crm:{to_sf_id('Opportunity', 'D0900001')}" in deals
    assert f"demo_crm:{to_sf_id('Opportunity', changes.deleted)}" not in deals
    # AND the deleted opportunity stays in raw, flagged
    [(flag,)] = _raw(
        incremental,
        "select json_extract_string(record, '$.IsDeleted') from raw.salesforce__opportunities "
        "where record_id = ?",
        [to_sf_id("Opportunity", changes.deleted)],
    )
    assert flag == "true"


def test_transient_faults_are_retried_and_the_night_completes(sample, tmp_path, token, caplog):
    from night.tasks import extract_source, parse_as_of

    caplog.set_level(logging.DEBUG)
    as_of = parse_as_of("2026-07-01T00:00:00Z")
    with build_server(SampleDataset(sample), token=token) as server:
        clean = _api_config(tmp_path / "clean", server.url)
        extract_source("demo_crm", as_of=as_of, config=clean)
        # GIVEN every transient fault, on the opportunity query and its next batches
        server.faults.add(QUERY_ALL, Fault(status=429, retry_after=1, body=[{"x": "slow"}]))
        server.faults.add(QUERY_ALL, Fault(delay=2.5))  # past the 1 s read timeout
        server.faults.add(
            NEXT_BATCH, error_fault(503, "SERVER_UNAVAILABLE", "Server unavailable", times=3)
        )
        server.faults.add(NEXT_BATCH, Fault(truncate="half_json"))
        server.faults.add(QUERY, Fault(truncate="close"))  # a lookup cut off mid-transfer
        faulty = _api_config(
            tmp_path / "faulty",
            server.url,
            extra=f", read_timeout_seconds: 1, retry_backoff_seconds: {TEST_BACKOFF}",
        )
        # WHEN the night extracts THEN it completes with every record, as a clean night
        summary = extract_source("demo_crm", as_of=as_of, config=faulty)
        assert server.faults.pending() == 0
    assert summary["api_rows"]["salesforce__opportunities"] == 300
    assert _raw_rows(faulty) == _raw_rows(clean)
    retried = [r.getMessage() for r in caplog.records if "; retry " in r.getMessage()]
    assert len(retried) == 7
    assert assert_backoff_within(caplog.records) == 6  # all but the 429's Retry-After
    assert any("HTTP 429" in m for m in retried) and any("read timed out" in m for m in retried)
    assert TOKEN not in caplog.text


@pytest.mark.parametrize(
    ("path", "fault", "says"),
    [
        (
            QUERY_ALL,  # the first query of the night, the opportunities
            error_fault(400, "MALFORMED_QUERY", "unexpected token: OR"),
            ("GET /services/data/v66.0/queryAll?q=SELECT Id,", "FROM Opportunity WHERE", "400"),
        ),
        (
            QUERY,  # the first lookup, once every windowed object was staged
            error_fault(401, "INVALID_SESSION_ID", "Session expired or invalid"),
            ("GET /services/data/v66.0/query?q=SELECT", "HTTP 401", "access token expired"),
        ),
        (
            QUERY,
            request_limit_fault(),
            ("FROM OpportunityStage", "HTTP 403", "REQUEST_LIMIT_EXCEEDED", "rolling 24 hours"),
        ),
    ],
    ids=["malformed-query", "invalid-session", "request-limit"],
)
def test_a_request_the_org_refuses_fails_naming_it_and_a_rerun_completes(
    sample, tmp_path, token, caplog, path, fault, says
):
    from extract.http import HttpError
    from night.tasks import extract_source, parse_as_of

    caplog.set_level(logging.DEBUG)
    dataset = SampleDataset(sample)
    first, second = parse_as_of("2026-07-01T00:00:00Z"), parse_as_of("2026-07-02T00:00:00Z")
    with build_server(dataset, token=token) as server:
        config = _api_config(tmp_path / "refused", server.url)
        reference = _api_config(tmp_path / "reference", server.url)
        extract_source("demo_crm", as_of=first, config=config)
        extract_source("demo_crm", as_of=first, config=reference)
        before = raw_counts(config), _raw_rows(config)
        apply_a_day_of_changes(dataset, datetime(2026, 7, 1, 10, tzinfo=UTC))
        # GIVEN a refusal that no retry fixes, once the night has staged some pages
        server.faults.add(path, fault)
        # WHEN the night runs THEN it fails at once, naming the request and why
        with pytest.raises(HttpError) as failure:
            extract_source("demo_crm", as_of=second, config=config)
        # AND raw is exactly as before the night
        assert (raw_counts(config), _raw_rows(config)) == before
        # AND a rerun completes the night, as a night that met no refusal
        extract_source("demo_crm", as_of=second, config=config)
        extract_source("demo_crm", as_of=second, config=reference)
    message = str(failure.value)
    for text in says:
        assert text in message, (text, message)
    assert len([r for r in server.requests if r.path == path]) >= 1
    assert not [r for r in caplog.records if "; retry " in r.getMessage()]  # not retried
    assert _raw_rows(config) == _raw_rows(reference)
    assert TOKEN not in message and TOKEN not in caplog.text


_LOOPING = f"{BASE_PATH}/query/01gLOOPLOOPLOOPAAA-400"
_PAST_THE_END = f"{BASE_PATH}/query/01gENDENDENDENDAAA-2000"


@pytest.mark.parametrize(
    ("path", "fault", "says"),
    [
        (
            NEXT_BATCH,  # opportunities' second batch points at a third that points at itself
            Fault(
                status=200,
                body={"totalSize": 300, "done": False, "nextRecordsUrl": _LOOPING, "records": []},
                times=2,
            ),
            ("Opportunity query", "repeated", "01gLOOPLOOPLOOPAAA-400"),
        ),
        (
            QUERY,  # the whole (one-record) stage list, with a next link all the same
            Fault(
                status=200,
                body={
                    "totalSize": 1,
                    "done": False,
                    "nextRecordsUrl": _PAST_THE_END,
                    "records": [{"attributes": {"type": "OpportunityStage"}, "Id": "01J"}],
                },
            ),
            ("OpportunityStage query", "after all 1 records", "last page"),
        ),
        (
            QUERY,
            Fault(
                status=200,
                body={"totalSize": 0, "done": True, "nextRecordsUrl": _PAST_THE_END, "records": []},
            ),
            ("OpportunityStage query", "says done yet carries nextRecordsUrl"),
        ),
        (
            QUERY,  # more to come, but no way to ask for it: stopping beats a silent gap
            Fault(status=200, body={"totalSize": 40, "done": False, "records": []}),
            ("OpportunityStage query", "not done but has no nextRecordsUrl after 0 of 40"),
        ),
    ],
    ids=["repeated-next-url", "next-link-on-last-page", "done-with-next-link", "no-next-link"],
)
def test_broken_paging_stops_with_a_clear_error_and_raw_untouched(
    sample, tmp_path, token, path, fault, says
):
    from extract.pagination import PaginationError
    from night.tasks import extract_source, parse_as_of

    as_of = parse_as_of("2026-07-01T00:00:00Z")
    with build_server(SampleDataset(sample), token=token) as server:
        # (full refreshes: every night pages through all 300 opportunities)
        config = _api_config(tmp_path / "paging", server.url, full_refresh=True)
        extract_source("demo_crm", as_of=as_of, config=config)
        before = raw_counts(config), _raw_rows(config)
        server.faults.add(path, fault)
        with pytest.raises(PaginationError) as failure:
            extract_source("demo_crm", as_of=as_of, config=config)
        assert (raw_counts(config), _raw_rows(config)) == before
        rerun = extract_source("demo_crm", as_of=as_of, config=config)
    for text in says:
        assert text in str(failure.value), (text, str(failure.value))
    assert rerun["api_rows"]["salesforce__opportunity_stages"] > 1
    assert _raw_rows(config) == before[1]


def test_records_changing_between_pages_leave_a_consistent_night(
    sample, first_night, tmp_path, token
):
    from night.tasks import parse_as_of, run_night

    dataset = SampleDataset(sample)
    as_of, next_as_of = parse_as_of("2026-07-01T00:00:00Z"), parse_as_of("2026-07-02T00:00:00Z")
    # Open deals in file order: the first is on the first batch of opportunities, the last
    # two on the second (batches of 200, in Id order).
    open_deals = dataset.rows("select deal_id, seq from deals where status = 'open' order by seq")
    early, late_won, late_deleted = (open_deals[i]["deal_id"] for i in (0, -1, -2))
    assert open_deals[0]["seq"] <= 200 < open_deals[-2]["seq"]
    at = datetime(2026, 7, 1, 6, tzinfo=UTC)  # while the night runs, after its as-of time
    with build_server(dataset, token=token) as server:
        # GIVEN the CRM as of the night's end, read before anything changed (first_night:
        # the same night, on the same sample, by its own fake org)
        before_deals = first_night.deals
        # AND a night during whose paging of opportunities, after the first batch, deals change
        queries: list[str] = []
        query_all = server.routes[("GET", "/services/data/{version}/queryAll")]
        next_batch = server.routes[("GET", "/services/data/{version}/query/{locator}")]

        def remember(request):
            queries.append(request.param("q"))
            return query_all(request)

        def change_first(request):
            if " FROM Opportunity WHERE" in queries[-1] and not dataset.scalar(
                "select count(*) from deals where deleted_at is not null"
            ):
                from devkit.sample_data import PIPELINES

                pipeline = dataset.scalar(
                    "select pipeline from deals where deal_id = ?", [late_won]
                )
                won_stage = next(p.won_stage for p in PIPELINES if p.name == pipeline)
                dataset.move_deal(late_won, won_stage, at=at, status="won")
                dataset.delete_deal(late_deleted, at=at)
                dataset.update_deal(early, at=at, deal_name="Renamed while paging")
            return next_batch(request)

        server.route("GET", "/services/data/{version}/queryAll", remember)
        server.route("GET", "/services/data/{version}/query/{locator}", change_first)
        during = _api_config(tmp_path / "during", server.url)
        run_night(as_of=as_of, run_id="during", config=during)
        night = marts(during.published_path, ["fct_deals"])["fct_deals"]
        # WHEN the next night runs, and another warehouse refreshes fully
        run_night(as_of=next_as_of, run_id="next", config=during)
        full = _api_config(tmp_path / "full", server.url, full_refresh=True)
        run_night(as_of=next_as_of, run_id="full", config=full)
    assert dataset.scalar("select count(*) from deals where deleted_at is not null") == 1
    won, deleted, renamed = (
        f"demo_crm:{to_sf_id('Opportunity', d)}" for d in (late_won, late_deleted, early)
    )
    # THEN the night held every deal as of its end: the early deal as read before it changed,
    # and the two deals that changed after the night's end while it paged left to the next
    # night (not half-changed: no win without its stage change in the history)
    assert night == [d for d in before_deals if d[0] not in (won, deleted)]
    # AND the next night, whose window covers the changes, equals a full refresh
    next_marts = marts(during.published_path, ALL_MARTS)
    full_marts = marts(full.published_path, ALL_MARTS)
    for name in ALL_MARTS:
        assert next_marts[name] == full_marts[name], name
    deals = dict(
        _query(
            full.published_path, "select deal_id, deal_name || ' / ' || status from marts.fct_deals"
        )
    )
    assert deleted not in deals and deals[won].endswith(" / won")
    assert deals[renamed] == "Renamed while paging / open"


def test_token_never_reaches_task_output_raw_or_dbt_artifacts(first_night):
    # GIVEN the first night (and, when the incremental test ran, the nights after it)
    config, server = first_night.config, first_night.server
    # The fake server saw the token on every request, in the Authorization header only.
    assert server.requests
    assert all(r.headers.get("Authorization") == "Bearer ***" for r in server.requests)
    # XCom is the returned summary; dbt writes manifests, run results and logs.
    assert TOKEN not in repr(first_night.result)
    assert "Completed successfully" in first_night.output.text  # dbt's output was read
    assert TOKEN not in first_night.output.text
    artifacts = [p for p in config.state_dir.rglob("*") if p.is_file()]
    assert any(p.name == "manifest.json" for p in artifacts)
    for path in artifacts:
        assert TOKEN.encode() not in path.read_bytes(), path
    tables = [t for (t,) in _raw(config, "select table_name from duckdb_tables()")]
    for table in (t for t in tables if t.startswith("salesforce__")):
        hits = _raw(
            config,
            f"select count(*) from raw.{table} where record like ? or _source_file like ?",
            [f"%{TOKEN}%", f"%{TOKEN}%"],
        )
        assert hits == [(0,)], table


def test_token_from_an_airflow_connection(sample, tmp_path, monkeypatch):
    from night.tasks import extract_source, parse_as_of

    # GIVEN the token only in an Airflow connection (here from AIRFLOW_CONN_<ID>)
    monkeypatch.delenv("SALESFORCE_TEST_TOKEN", raising=False)
    monkeypatch.setenv(
        "AIRFLOW_CONN_SALESFORCE_DEMO", f'{{"conn_type": "http", "password": "{TOKEN}"}}'
    )
    with build_server(SampleDataset(sample), token=TOKEN) as server:
        config = pipeline_config(
            tmp_path / "conn",
            f"  - {{name: demo_crm, type: salesforce, base_url: '{server.url}',"
            " airflow_conn_id: salesforce_demo}\n",
        )
        # WHEN the source extracts THEN it authenticates with the connection's password
        summary = extract_source(
            "demo_crm", as_of=parse_as_of("2026-07-01T00:00:00Z"), config=config
        )
    assert summary["api_rows"]["salesforce__opportunities"] == 300


def test_missing_token_fails_naming_where_it_looked(tmp_path, monkeypatch):
    from extract.errors import LoadError
    from night.tasks import extract_source, parse_as_of

    monkeypatch.delenv("SALESFORCE_TEST_TOKEN", raising=False)
    config = _api_config(tmp_path / "none", "http://127.0.0.1:9")
    with pytest.raises(LoadError, match="set the environment variable SALESFORCE_TEST_TOKEN"):
        extract_source("demo_crm", as_of=parse_as_of("2026-07-01T00:00:00Z"), config=config)


@pytest.mark.parametrize(
    ("settings", "error"),
    [
        ("page_size: 100", "page_size: must be within Salesforce's batch sizes 200..2000"),
        ("api_version: '60'", "api_version: must look like v60.0"),
        ("base_url: 'https://x.my.salesforce.com/lightning'", "must be the org's instance URL"),
        (
            "base_url: 'https://x.my.salesforce.com/services/data/v59.0', api_version: v60.0",
            "contradicts the version in base_url",
        ),
        ("lookback_hours: 0", "lookback_hours: must be a positive integer"),
        ("token: abc", "unknown key"),
    ],
)
def test_bad_settings_fail_naming_the_key(tmp_path, settings, error):
    from night.config import ConfigError

    if "base_url" not in settings:
        settings = f"base_url: 'https://x.my.salesforce.com', {settings}"
    with pytest.raises(ConfigError, match=error.replace(".", r"\.")):
        pipeline_config(tmp_path, f"  - {{name: sf, type: salesforce, {settings}}}\n")


def test_the_rest_root_as_base_url_gives_the_instance_url_and_its_version(tmp_path):
    config = pipeline_config(
        tmp_path,
        "  - {name: sf, type: salesforce, base_url: 'https://x.my.salesforce.com/services/data/v59.0/'}\n",
    )
    settings = config.source("sf").settings
    assert (settings["base_url"], settings["api_version"]) == (
        "https://x.my.salesforce.com",
        "v59.0",
    )
    assert settings["token_env"] == "SALESFORCE_ACCESS_TOKEN"


def test_the_page_cap_stops_a_query_longer_than_allowed(sample, tmp_path, token):
    from extract.pagination import PaginationError
    from night.tasks import extract_source, parse_as_of

    with build_server(SampleDataset(sample), token=token) as server:
        config = _api_config(tmp_path / "cap", server.url, extra=", max_pages: 1")
        with pytest.raises(PaginationError, match="Opportunity query .* page cap of 1 reached"):
            extract_source("demo_crm", as_of=parse_as_of("2026-07-01T00:00:00Z"), config=config)
    assert raw_counts(config)["salesforce__opportunities"] == 0
