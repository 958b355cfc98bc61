"""A first load bigger than the company's daily Pipedrive API budget: loaded over several
nights from committed progress (the fake server over real HTTP, with a token budget)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import duckdb
import pytest
from api_nights import ALL_MARTS, marts, pipeline_config

from devkit.fake_servers.dataset import SampleDataset
from devkit.fake_servers.pipedrive import RateLimits, build_server

pytestmark = pytest.mark.slow(seconds=16)

TOKEN = "pd-test-token-2718281828"


def sources(url: str) -> str:
    """The Pipedrive source in pages of 100 deals, each page merged as it completes."""
    return (
        f"  - {{name: demo_crm, type: pipedrive, base_url: '{url}',"
        " token_env: PIPEDRIVE_TEST_TOKEN, page_size: 100, chunk_pages: 1}\n"
    )


def test_a_first_load_beyond_the_daily_budget_resumes_next_night(sample, tmp_path, monkeypatch):
    """A company whose daily token budget ends in the middle of the deals: the night keeps
    the chunks it merged, the marts say the source is still loading, and the next night
    (a new day's budget) continues from the mark instead of starting over."""
    from night.tasks import parse_as_of, run_night

    monkeypatch.setenv("PIPEDRIVE_TEST_TOKEN", TOKEN)
    dataset = SampleDataset(sample)
    live = dataset.scalar("select count(*) from deals where deleted_at is null")
    assert live > 200
    # GIVEN 9,000 tokens a day, no burst limit in the way: the lookups cost 40 (stages and
    # pipelines 5 each, users 20, deal fields 10), a page of 100 deals 10 plus 40 per flow,
    # so two pages (8,060) fit and the third's flows exhaust the budget.
    limits = RateLimits(burst=100_000, window_seconds=1.0, daily_tokens=9_000)
    with build_server(dataset, token=TOKEN, rate_limits=limits) as server:
        config = pipeline_config(tmp_path / "resume", sources(server.url))
        # WHEN the first night runs
        first = run_night(as_of=parse_as_of("2026-07-01T00:00:00Z"), run_id="n1", config=config)
        # THEN it published what it merged: the first two pages, each deal with its flow
        load = first["loads"][0]
        assert load["api_rows"]["pipedrive__deals"] == 200
        assert [s.split(" loaded through ")[0] for s in load["still_loading"]] == [
            "pipedrive__deals",
            "pipedrive__deals:archived",
            "pipedrive__deals:deleted",
            "pipedrive__activities",
        ]
        wh = duckdb.connect(str(config.warehouse_path), read_only=True)
        try:
            read = [
                json.loads(r[0])["update_time"]
                for r in wh.execute("select record from raw.pipedrive__deals").fetchall()
            ]
            flow_rows, with_flow = wh.execute(
                "select count(*), count(distinct merge_key) from raw.pipedrive__deal_flow"
            ).fetchall()[0]
            (mark,) = wh.execute(
                "select high_water from raw._api_watermarks where raw_table = 'pipedrive__deals'"
            ).fetchall()[0]
        finally:
            wh.close()
        assert with_flow == 200
        assert load["api_rows"]["pipedrive__deal_flow"] == flow_rows > 200
        assert mark == max(read)
        published = marts(config.published_path, ("mart_data_quality", "fct_deals"))
        assert len(published["fct_deals"]) == 200
        loading = {r[0]: r for r in published["mart_data_quality"]}["sources_still_loading"]
        assert loading[1] == 4
        assert f"demo_crm pipedrive__deals through {mark}" in loading[2]
        assert "demo_crm pipedrive__activities through nothing yet" in loading[2]

        # WHEN a new day's budget (the Lite plan's 30,000 tokens) lets the next night run
        limits.daily_tokens = 30_000
        limits.new_day()
        as_of = parse_as_of("2026-07-02T00:00:00Z")
        second = run_night(as_of=as_of, run_id="n2", config=config)
    # THEN it read only the deals after the mark (less the 24-hour lookback), not all again
    since = (datetime.fromisoformat(mark.replace("Z", "+00:00")) - timedelta(hours=24)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    overlap = sum(1 for at in read if at >= since)
    deleted = 300 - live
    load = second["loads"][0]
    assert load["still_loading"] == []
    assert load["api_rows"]["pipedrive__deals"] == (live - 200 + overlap) + deleted
    # AND its marts equal one full night on an unlimited budget, the warning row at 0
    with build_server(dataset, token=TOKEN) as server:
        full = pipeline_config(tmp_path / "full", sources(server.url))
        run_night(as_of=as_of, run_id="full", config=full)
    resumed, reference = (
        marts(config.published_path, ALL_MARTS),
        marts(full.published_path, ALL_MARTS),
    )
    for name in ALL_MARTS:
        assert resumed[name] == reference[name], name
    checks = {r[0]: r[1] for r in resumed["mart_data_quality"]}
    assert checks["sources_still_loading"] == 0
