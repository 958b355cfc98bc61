"""A night through the HubSpot API (the fake server, over real HTTP) gives the same figures
as the same generated data loaded through the canonical CSV path; incremental nights (the
search endpoint, its 10,000-result cap included) equal a full refresh."""

from __future__ import annotations

import csv
import shutil
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import duckdb
import pytest
from api_nights import (
    ALL_MARTS,
    FIRST_NIGHT,
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
from devkit.fake_servers.hubspot import StageCatalog, build_server, encode_cursor

pytestmark = pytest.mark.slow(seconds=45)

TOKEN = "hs-test-token-2718281828"
DEALS = "/crm/v3/objects/deals"
SEARCH = "/crm/v3/objects/deals/search"
HUBSPOT_TABLES = (
    "hubspot__deals",
    "hubspot__deal_stage_history",
    "hubspot__pipelines",
    "hubspot__pipeline_stages",
    "hubspot__owners",
    "hubspot__activities",
)


@pytest.fixture(scope="module")
def csv_counts(sample):
    """Rows of the generated deals, stage history and activities files."""
    counts = {}
    for name in ("deals", "deal_stage_history", "activities"):
        with open(sample / f"{name}.csv", newline="", encoding="utf-8") as f:
            counts[name] = sum(1 for _ in csv.DictReader(f))
    return counts


@pytest.fixture(autouse=True)
def token_env(monkeypatch):
    monkeypatch.setenv("HUBSPOT_TEST_TOKEN", TOKEN)


def _api_config(root, url, **settings):
    options = {"token_env": "HUBSPOT_TEST_TOKEN", "page_size": 100, **settings}
    extra = "".join(
        f", {key}: {str(v).lower() if isinstance(v, bool) else v}" for key, v in options.items()
    )
    return pipeline_config(
        root, f"  - {{name: demo_crm, type: hubspot, base_url: '{url}'{extra}}}\n"
    )


def _as_of(text=FIRST_NIGHT):
    from night.tasks import parse_as_of

    return parse_as_of(text)


def _query(config, sql, params=()):
    con = duckdb.connect(str(config.warehouse_path), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


# --------------------------------------------------------------------------------------------
# The same figures as the canonical CSV path
# --------------------------------------------------------------------------------------------


def test_hubspot_night_gives_the_canonical_figures(
    sample, canonical_sample_night, csv_counts, tmp_path
):
    from night.config import DEFAULT_REFERENCE_DIR, load_config
    from night.tasks import build_marts, extract_source, publish_marts
    from night.transform import DbtError

    # GIVEN the canonical path: all four files of the generated data (shared, as of
    # 2026-07-01)
    canonical = canonical_sample_night
    # AND the API path: deals, history and activities from HubSpot, spend from its file;
    # Partner's stage Commercials was deleted from the pipeline since its 17 deals moved
    # on: HubSpot lists it no more, their stage history still names its id
    spend_only = tmp_path / "spend"
    spend_only.mkdir()
    shutil.copy(sample / "spend.csv", spend_only / "spend.csv")
    deleted = StageCatalog().stage("Partner", "Commercials").id
    mapping = tmp_path / "stage_mapping.csv"
    shutil.copy(DEFAULT_REFERENCE_DIR / "stage_mapping.csv", mapping)
    with build_server(
        SampleDataset(sample), token=TOKEN, deleted_stages=[("Partner", "Commercials")]
    ) as server:
        api = pipeline_config(
            tmp_path / "api",
            f"  - {{name: demo_crm, type: hubspot, base_url: '{server.url}',"
            " token_env: HUBSPOT_TEST_TOKEN, page_size: 100}\n"
            f"  - {{name: demo_spend, type: canonical_csv, landing_dir: {spend_only}}}\n",
        )
        _use_stage_mapping(api.path, mapping)
        api = load_config(api.path)
        loads = [extract_source(s.name, as_of=_as_of(), config=api) for s in api.sources]
    # WHEN the build runs with no stage mapping row for the deleted stage's id
    # THEN it fails naming the id, like any unmapped stage
    with pytest.raises(DbtError) as unmapped:
        build_marts(as_of=_as_of(), config=api)
    assert (
        f"source_system=demo_crm, pipeline=Partner, crm_stage={deleted} "
        "(0 deals now, 17 stage changes)" in str(unmapped.value)
    )
    # AND once the id is mapped as Commercials was, the night builds and publishes
    with open(mapping, "a", encoding="utf-8") as f:
        f.write(f"demo_crm,Partner,{deleted},negotiation,0.80\n")
    build_marts(as_of=_as_of(), config=api)
    publish_marts(as_of=_as_of(), run_id="api", config=api)
    # THEN every record came over, with history read 50 deals a page
    rows = loads[0]["api_rows"]
    assert rows["hubspot__deals"] == csv_counts["deals"] == 300
    assert rows["hubspot__deal_stage_history"] == csv_counts["deal_stage_history"]
    assert rows["hubspot__activities"] == csv_counts["activities"]
    history_pages = [r for r in server.requests_to(DEALS) if r.param("archived") == "false"]
    assert [r.param("limit") for r in history_pages] == ["50"] * 6
    # AND every aggregate mart is the same, row for row: the 17 moves into the deleted
    # stage count as the canonical path counts them (dropped, they would shorten 17
    # negotiation spells and the marts would differ)
    expected = marts(canonical.published_path, SAME_ROWS)
    actual = marts(api.published_path, SAME_ROWS)
    assert all(expected[name] for name in SAME_ROWS)  # nothing compared empty to empty
    for name in SAME_ROWS:
        assert actual[name] == expected[name], name
    assert _query(
        api,
        "select count(*) from staging.stg_hubspot__deal_stage_changes where crm_stage = ?",
        [deleted],
    ) == [(17,)]
    # AND staging holds every deal, stage change and activity of the CSV, value for value
    # (HubSpot's ids are the canonical ones without their letter prefix and leading zeros;
    # the deleted stage by its id)
    for canonical_sql, hubspot_sql in STAGED_THE_SAME:
        csv_rows = _query(canonical, canonical_sql.format(source="canonical_csv"))
        hubspot_sql = hubspot_sql.replace(
            "crm_stage,", f"replace(crm_stage, '{deleted}', 'Commercials'),"
        )
        api_rows = _query(api, hubspot_sql.format(source="hubspot"))
        assert csv_rows and api_rows == csv_rows, hubspot_sql


def _use_stage_mapping(config_path, mapping):
    """Point a pipeline config at its own stage mapping file."""
    text = config_path.read_text()
    config_path.write_text(
        text.replace("sources:\n", f"reference: {{stage_mapping: {mapping}}}\nsources:\n", 1)
    )


_HS_ID = "regexp_extract({column}, '([1-9][0-9]*)$', 1)"
_DEAL_COLUMNS = (
    "deal_name, pipeline, crm_stage, status, lead_source, amount, currency,"
    " created_at, closed_at, updated_at"
)
STAGED_THE_SAME = [
    # HubSpot keeps one name per owner (the fake: the one on their latest deal), where the
    # CSV keeps the name each deal was last saved with (docs/fake_servers/hubspot.md).
    (
        f"""select {_HS_ID.format(column="owner_id")}, owner_name from (
                select owner_id, owner_name, row_number() over (
                    partition by owner_id order by updated_at desc, deal_id desc
                ) as name_rank
                from staging.stg_{{source}}__deals where owner_id is not null
            ) where name_rank = 1 order by all""",
        f"""select distinct {_HS_ID.format(column="owner_id")}, owner_name
            from staging.stg_{{source}}__deals where owner_id is not null order by all""",
    ),
    (
        f"""select {_HS_ID.format(column="deal_id")}, {_HS_ID.format(column="owner_id")},
                {_HS_ID.format(column="company_id")}, {_DEAL_COLUMNS}
            from staging.stg_{{source}}__deals order by all""",
        f"""select crm_deal_id, {_HS_ID.format(column="owner_id")}, company_id, {_DEAL_COLUMNS}
            from staging.stg_{{source}}__deals order by all""",
    ),
    (
        f"""select {_HS_ID.format(column="deal_id")}, crm_stage, changed_at
            from staging.stg_{{source}}__deal_stage_changes order by all""",
        f"""select {_HS_ID.format(column="deal_id")}, crm_stage, changed_at
            from staging.stg_{{source}}__deal_stage_changes order by all""",
    ),
    (
        f"""select {_HS_ID.format(column="activity_id")}, {_HS_ID.format(column="deal_id")},
                activity_type, occurred_at, {_HS_ID.format(column="owner_id")}
            from staging.stg_{{source}}__activities order by all""",
        f"""select {_HS_ID.format(column="activity_id")}, {_HS_ID.format(column="deal_id")},
                activity_type, occurred_at, {_HS_ID.format(column="owner_id")}
            from staging.stg_{{source}}__activities order by all""",
    ),
]


# --------------------------------------------------------------------------------------------
# Incremental nights
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def first_night(sample, tmp_path_factory):
    """A night through the API as of FIRST_NIGHT on the unchanged sample, with its fake
    portal still serving, its result and what it wrote to stdout and stderr: the
    incremental test carries on from it (changing the portal's data), the token test reads
    what it left behind."""
    with served_first_night(
        sample,
        tmp_path_factory,
        build_server,
        _api_config,
        token=TOKEN,
        token_env="HUBSPOT_TEST_TOKEN",
    ) as night:
        yield night


def test_incremental_night_after_changes_equals_a_full_refresh(first_night, tmp_path):
    from night.tasks import run_night

    # GIVEN a first night (first_night), then a day of changes in the CRM: two moves (one a
    # win), an archived deal with activities, and a new deal
    dataset, server, incremental = first_night.dataset, first_night.server, first_night.config
    at = datetime(2026, 7, 1, 10, 0, tzinfo=UTC)
    changes = apply_a_day_of_changes(
        dataset, at, deleted_with_activities=True, new_amount="1000.50"
    )
    archived = changes.deleted
    # WHEN the next night runs incrementally, and another warehouse refreshes fully
    as_of = _as_of("2026-07-02T00:00:00Z")
    window_start = _window_start(incremental)
    requests_before = len(server.requests_to(DEALS))
    second = run_night(as_of=as_of, run_id="n2", config=incremental)
    incremental_lists = server.requests_to(DEALS)[requests_before:]
    full = _api_config(tmp_path / "full", server.url, full_refresh=True)
    full_night = run_night(as_of=as_of, run_id="full", config=full)
    # THEN the incremental night read exactly the deals modified in its window (from the
    # high-water mark minus the 24 h lookback) plus the one archived in it, by search
    in_window = dataset.scalar(
        "select count(*) from deals where deleted_at is null "
        "and cast(updated_at as timestamptz) between ? and ?",
        [window_start, as_of],
    )
    assert second["loads"][0]["api_rows"]["hubspot__deals"] == in_window + 1 < 300
    assert full_night["loads"][0]["api_rows"]["hubspot__deals"] == 301
    assert [r.param("archived") for r in incremental_lists] == ["true"]  # no full re-list
    assert all(r.param("propertiesWithHistory") is None for r in incremental_lists)
    # AND gives the same marts as the full refresh
    incremental_marts = marts(incremental.published_path, ALL_MARTS)
    full_marts = marts(full.published_path, ALL_MARTS)
    assert all(full_marts[name] for name in ALL_MARTS)
    for name in ALL_MARTS:
        assert incremental_marts[name] == full_marts[name], name
    deals = {row[0]: row for row in full_marts["fct_deals"]}
    assert "demo_crm:900001" in deals
    assert f"demo_crm:{int(archived[1:])}" not in deals
    assert f"demo_crm:{int(changes.won[1:])}" in deals
    # The archived deal is kept in raw, flagged.
    flagged = _query(
        incremental,
        "select json_extract_string(record, '$.archived') from raw.hubspot__deals "
        "where record_id = ?",
        [str(int(archived[1:]))],
    )
    assert flagged == [("true",)]


def _window_start(config, lookback_hours=24):
    """Where an incremental night's window starts: the high-water mark minus the lookback."""
    since = _query(
        config,
        "select high_water from raw._api_watermarks where raw_table = 'hubspot__deals'",
    )[0][0]
    return datetime.fromisoformat(since.replace("Z", "+00:00")) - timedelta(hours=lookback_hours)


def _changed_deals(dataset, count, *, at, amount):
    """Give `count` deals a new amount at `at`; returns their HubSpot ids."""
    ids = [
        r["deal_id"]
        for r in dataset.rows(
            "select deal_id from deals where deleted_at is null order by deal_id limit ?", [count]
        )
    ]
    for deal_id in ids:
        dataset.update_deal(deal_id, at=at, amount=amount)
    return [str(int(d[1:])) for d in ids]


def test_a_window_with_more_changes_than_the_search_cap_is_read_completely(sample, tmp_path):
    from night.tasks import extract_source

    # GIVEN a HubSpot whose search serves at most 120 results per query (10,000 in reality)
    dataset = SampleDataset(sample)
    with build_server(dataset, token=TOKEN, search_result_cap=120) as server:
        config = _api_config(tmp_path / "cap", server.url, page_size=50)
        extract_source("demo_crm", as_of=_as_of(), config=config)
        # AND 250 deals changed since the first night, twice the cap
        changed = _changed_deals(
            dataset, 250, at=datetime(2026, 7, 1, 9, 0, tzinfo=UTC), amount="1234.56"
        )
        in_window = dataset.scalar(
            "select count(*) from deals where cast(updated_at as timestamptz) >= ?",
            [_window_start(config)],
        )
        # WHEN the next night runs
        summary = extract_source("demo_crm", as_of=_as_of("2026-07-02T00:00:00Z"), config=config)
    # THEN every deal of the window was read, each once, none of them refused
    assert summary["api_rows"]["hubspot__deals"] == in_window > 250
    searches = server.requests_to(SEARCH)
    assert len(searches) == -(-in_window // 50)  # keyset pages of 50: no query pages at all
    assert all("after" not in r.json() for r in searches)
    # AND raw holds the changed figures
    total, count = _query(
        config,
        "select sum(cast(json_extract_string(record, '$.properties.amount') as decimal(18, 2))),"
        " count(*) from raw.hubspot__deals where record_id in (select unnest(?))",
        [changed],
    )[0]
    assert (count, total) == (250, 250 * Decimal("1234.56"))


def test_a_deal_changing_while_the_window_is_paged_skips_no_other(sample, tmp_path):
    from night.tasks import extract_source

    dataset = SampleDataset(sample)
    with build_server(dataset, token=TOKEN) as server:
        config = _api_config(tmp_path / "moving", server.url, page_size=50)
        extract_source("demo_crm", as_of=_as_of(), config=config)
        changed = _changed_deals(
            dataset, 150, at=datetime(2026, 7, 1, 9, 0, tzinfo=UTC), amount="10.00"
        )
        # GIVEN a deal already read that changes again (after the night's as-of time)
        # while the next pages of the search are being read: with offset paging every
        # later result would shift one place and one deal would be skipped
        search = server.routes[("POST", SEARCH)]
        calls = []

        def search_then_change(request):
            response = search(request)
            calls.append(request)
            if len(calls) == 1:
                dataset.update_deal(
                    "D0000001", at=datetime(2026, 7, 2, 6, 0, tzinfo=UTC), amount="99.00"
                )
            return response

        server.route("POST", SEARCH, search_then_change)
        # WHEN the night runs
        extract_source("demo_crm", as_of=_as_of("2026-07-02T00:00:00Z"), config=config)
    # THEN every other changed deal was read with its new amount
    amounts = dict(
        _query(
            config,
            "select record_id, json_extract_string(record, '$.properties.amount') "
            "from raw.hubspot__deals where record_id in (select unnest(?))",
            [changed],
        )
    )
    assert len(calls) >= 3
    assert {amounts[i] for i in changed[1:]} == {"10.00"}


# --------------------------------------------------------------------------------------------
# Faults
# --------------------------------------------------------------------------------------------


def test_faults_are_retried_or_fail_cleanly_and_a_rerun_completes(
    sample, csv_counts, tmp_path, caplog
):
    import logging

    from devkit.fake_servers.base import Fault
    from devkit.fake_servers.hubspot import rate_limit_fault
    from extract.http import HttpError
    from night.tasks import extract_source

    caplog.set_level(logging.DEBUG)
    with build_server(SampleDataset(sample), token=TOKEN) as server:
        config = _api_config(
            tmp_path / "faults",
            server.url,
            read_timeout_seconds=1,
            retry_backoff_seconds=TEST_BACKOFF,
        )
        # GIVEN transient faults: HubSpot's 429 with Retry-After, a burst of 502s, a slow
        # response past the 1 s read timeout, bodies cut off mid-JSON and mid-transfer
        server.faults.add(DEALS, rate_limit_fault(retry_after=1))
        server.faults.add("/crm/v3/pipelines/deals", Fault(status=502, body="busy", times=3))
        server.faults.add("/crm/v3/owners", Fault(delay=2.5))
        server.faults.add("/crm/v3/objects/calls", Fault(truncate="half_json"))
        server.faults.add("/crm/v3/objects/emails", Fault(truncate="close"))
        # WHEN the night extracts THEN it completes with every record
        first = extract_source("demo_crm", as_of=_as_of(), config=config)
        assert server.faults.pending() == 0
        assert first["api_rows"]["hubspot__deals"] == 300
        assert (
            first["api_rows"]["hubspot__deal_stage_history"] == (csv_counts["deal_stage_history"])
        )
        assert first["api_rows"]["hubspot__activities"] == csv_counts["activities"]
        retried = caplog.text
        for reason in ("HTTP 429", "HTTP 502", "read timed out", "not valid JSON", "cut off"):
            assert reason in retried, reason
        assert assert_backoff_within(caplog.records) == 6  # all but the 429's Retry-After
        complete = raw_counts(config)
        watermark = _query(config, "select * from raw._api_watermarks")

        # GIVEN a fault that does not pass: a 400 on the meetings search of the next night,
        # after deals, calls and emails were read
        server.faults.add(
            "/crm/v3/objects/meetings/search",
            Fault(status=400, body={"status": "error", "category": "VALIDATION_ERROR"}),
        )
        # WHEN the night runs THEN it fails naming the request, and raw is untouched
        with pytest.raises(HttpError) as bad_request:
            extract_source("demo_crm", as_of=_as_of("2026-07-02T00:00:00Z"), config=config)
        assert "POST /crm/v3/objects/meetings/search failed: HTTP 400" in str(bad_request.value)
        assert raw_counts(config) == complete
        # AND so does a 401 (a revoked token) on the deal search
        server.faults.add(
            SEARCH,
            Fault(status=401, body={"status": "error", "category": "INVALID_AUTHENTICATION"}),
        )
        with pytest.raises(HttpError) as unauthorized:
            extract_source("demo_crm", as_of=_as_of("2026-07-02T00:00:00Z"), config=config)
        assert "POST /crm/v3/objects/deals/search failed: HTTP 401" in str(unauthorized.value)
        assert raw_counts(config) == complete
        assert _query(config, "select * from raw._api_watermarks") == watermark
        # AND a rerun (its window from the unchanged high-water mark) completes the night
        extract_source("demo_crm", as_of=_as_of("2026-07-02T00:00:00Z"), config=config)
        after = raw_counts(config)
        assert after.pop("_batches") > complete["_batches"]  # its own batch records
        assert after == {k: v for k, v in complete.items() if k != "_batches"}
    # The planted token is nowhere: not in logs, not in the errors, not in raw.
    assert TOKEN not in caplog.text
    assert TOKEN not in str(bad_request.value) + str(unauthorized.value)
    for table in HUBSPOT_TABLES:
        hits = _query(
            config,
            f"select count(*) from raw.{table} where record like ? or _source_file like ?",
            [f"%{TOKEN}%", f"%{TOKEN}%"],
        )
        assert hits == [(0,)], table


def test_a_repeated_cursor_fails_clearly_with_raw_untouched(sample, tmp_path):
    from devkit.fake_servers.base import Fault
    from extract.pagination import PaginationError
    from night.tasks import extract_source

    with build_server(SampleDataset(sample), token=TOKEN) as server:
        config = _api_config(tmp_path / "cursor", server.url)
        extract_source("demo_crm", as_of=_as_of(), config=config)
        complete = raw_counts(config)
        # GIVEN a deal list whose next link points back at the page it is on (a list
        # that never ends), on a full refresh of the same warehouse
        stuck = encode_cursor("deals", "D0000050")
        page = {
            "results": [{"id": "1", "properties": {}, "archived": False}],
            "paging": {"next": {"after": stuck, "link": f"{server.url}{DEALS}?after={stuck}"}},
        }
        server.faults.add(DEALS, Fault(status=200, body=page, times=2))
        refresh = _api_config(tmp_path / "cursor", server.url, full_refresh=True)
        # WHEN the night runs THEN it stops with a clear error instead of looping
        with pytest.raises(PaginationError, match="repeated after 2 page"):
            extract_source("demo_crm", as_of=_as_of(), config=refresh)
        assert raw_counts(config) == complete
        # AND the same on a search that keeps serving the same page (same last id)
        found = {"total": 999, "results": [{"id": "7"}], "paging": {"next": {"after": "1"}}}
        server.faults.add(SEARCH, Fault(status=200, body=found, times=2))
        with pytest.raises(PaginationError, match="'7' repeated"):
            extract_source("demo_crm", as_of=_as_of("2026-07-02T00:00:00Z"), config=config)
        assert raw_counts(config) == complete
        # AND on a search whose results come out of id order (paging on the last id read
        # would skip the ones in between)
        unordered = {"results": [{"id": "9"}, {"id": "3"}], "paging": {"next": {"after": "2"}}}
        server.faults.add(SEARCH, Fault(status=200, body=unordered))
        with pytest.raises(PaginationError, match="not in ascending id order"):
            extract_source("demo_crm", as_of=_as_of("2026-07-02T00:00:00Z"), config=config)
        assert raw_counts(config) == complete
        # AND a rerun completes
        extract_source("demo_crm", as_of=_as_of("2026-07-02T00:00:00Z"), config=config)
        assert raw_counts(config)["hubspot__deals"] == 300


def test_a_next_link_on_the_last_page_ends_in_an_empty_page_and_a_complete_night(sample, tmp_path):
    from devkit.fake_servers.base import Fault
    from night.tasks import extract_source

    with build_server(SampleDataset(sample), token=TOKEN) as server:
        # GIVEN the (empty) archived owners list announcing a next page past the last owner
        after = encode_cursor("owners", "99999")
        link = {"after": after, "link": f"{server.url}/crm/v3/owners?archived=true&after={after}"}
        server.faults.add(
            "/crm/v3/owners", Fault(status=200, body={"results": [], "paging": {"next": link}})
        )
        config = _api_config(tmp_path / "link", server.url)
        # WHEN the night runs THEN it follows it to the empty page and completes
        summary = extract_source("demo_crm", as_of=_as_of(), config=config)
    owners = server.requests_to("/crm/v3/owners")
    assert [(r.param("archived"), r.param("after")) for r in owners[:2]] == [
        ("true", None),
        ("true", after),
    ]
    assert summary["api_rows"]["hubspot__deals"] == 300
    assert summary["api_rows"]["hubspot__owners"] == 36


# --------------------------------------------------------------------------------------------
# Secrets and settings
# --------------------------------------------------------------------------------------------


def test_token_never_reaches_task_output_or_dbt_artifacts(
    first_night, tmp_path, capfd, monkeypatch
):
    from extract.http import HttpError
    from night.tasks import extract_source

    # GIVEN the first night (and, when the incremental test ran, the nights after it)
    config, server = first_night.config, first_night.server
    # A token HubSpot refuses: the 401 names the request, never the token.
    wrong = _api_config(tmp_path / "wrong", server.url, token_env="HUBSPOT_WRONG_TOKEN")
    monkeypatch.setenv("HUBSPOT_WRONG_TOKEN", TOKEN + "-revoked")
    with pytest.raises(HttpError, match=r"GET /crm/v3/pipelines/deals failed: HTTP 401"):
        extract_source("demo_crm", as_of=_as_of(), config=wrong)
    # XCom is the returned summary; dbt writes manifests, run results and logs.
    assert TOKEN not in repr(first_night.result)
    assert "Completed successfully" in first_night.output.text  # dbt's output was read
    out, err = capfd.readouterr()
    assert TOKEN not in first_night.output.text + out + err
    artifacts = [p for p in config.state_dir.rglob("*") if p.is_file()]
    assert any(p.name == "manifest.json" for p in artifacts)
    for path in artifacts:
        assert TOKEN.encode() not in path.read_bytes(), path
    recorded = repr(server.requests)
    assert TOKEN not in recorded and "Bearer ***" in recorded


def test_token_from_an_airflow_connection(sample, tmp_path, monkeypatch):
    from night.tasks import extract_source

    # GIVEN the token only in an Airflow connection (here from AIRFLOW_CONN_<ID>)
    monkeypatch.delenv("HUBSPOT_TEST_TOKEN")
    monkeypatch.setenv(
        "AIRFLOW_CONN_HUBSPOT_DEMO", f'{{"conn_type": "http", "password": "{TOKEN}"}}'
    )
    with build_server(SampleDataset(sample), token=TOKEN) as server:
        config = pipeline_config(
            tmp_path / "conn",
            f"  - {{name: demo_crm, type: hubspot, base_url: '{server.url}',"
            " airflow_conn_id: hubspot_demo}\n",
        )
        # WHEN the source extracts THEN it authenticates with the connection's password
        summary = extract_source("demo_crm", as_of=_as_of(), config=config)
    assert summary["api_rows"]["hubspot__deals"] == 300


def test_missing_token_fails_naming_where_it_looked(tmp_path, monkeypatch):
    from extract.errors import LoadError
    from night.tasks import extract_source

    monkeypatch.delenv("HUBSPOT_TEST_TOKEN")
    config = _api_config(tmp_path / "none", "http://127.0.0.1:9")
    with pytest.raises(LoadError, match="set the environment variable HUBSPOT_TEST_TOKEN"):
        extract_source("demo_crm", as_of=_as_of(), config=config)


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("page_limit: 5", r"sources\[0\]\.page_limit: unknown key"),
        ("page_size: 0", r"sources\[0\]\.page_size: must be a positive integer"),
        ("full_refresh: 'yes'", r"sources\[0\]\.full_refresh: must be true or false"),
        ("retry_backoff_seconds: 0", r"retry_backoff_seconds: must be a positive number, got 0"),
        ("retry_backoff_seconds: .nan", r"retry_backoff_seconds: must be a positive number"),
        ("retry_backoff_seconds: true", r"retry_backoff_seconds: must be a positive number"),
        ("retry_backoff_seconds: '1'", r"retry_backoff_seconds: must be a positive number"),
    ],
)
def test_settings_are_validated_naming_the_key(tmp_path, setting, message):
    from night.config import ConfigError

    with pytest.raises(ConfigError, match=message):
        pipeline_config(
            tmp_path, f"  - {{name: demo_crm, type: hubspot, base_url: 'http://x', {setting}}}\n"
        )


@pytest.mark.parametrize(("setting", "backoff"), [("", 0.5), (", retry_backoff_seconds: 2", 2.0)])
def test_the_retry_backoff_is_half_a_second_unless_set(tmp_path, setting, backoff):
    config = pipeline_config(
        tmp_path, f"  - {{name: demo_crm, type: hubspot, base_url: 'http://x'{setting}}}\n"
    )
    assert config.source("demo_crm").settings["retry_backoff_seconds"] == backoff
