"""HubSpot's limits and refusals, over real HTTP against the fake server: a 429 without
Retry-After is read by its `policyName` (the ten-second window waited out, the daily limit
failing at once), a spent burst budget pauses the client, a 403 MISSING_SCOPES names the
scope and the endpoint; a night fails with raw untouched or completes under the budget."""

from __future__ import annotations

import time

import pytest
from api_nights import pipeline_config, raw_counts

from devkit.fake_servers.dataset import SampleDataset
from devkit.fake_servers.hubspot import RateLimits, build_server, rate_limit_fault
from extract.http import BearerAuth, HttpClient, HttpError
from extract.sources.hubspot_policy import HubSpotPolicy

TOKEN = "hs-limits-token-1618033988"
PIPELINES = "/crm/v3/pipelines/deals"
AS_OF = "2026-07-01T00:00:00Z"


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    from devkit.sample_data import generate

    folder = tmp_path_factory.mktemp("hs_limits")
    generate(folder, 40, seed=5, workers=1)
    return folder


@pytest.fixture(autouse=True)
def token_env(monkeypatch):
    monkeypatch.setenv("HUBSPOT_LIMITS_TOKEN", TOKEN)


def _client(url, waits, *, sleep=None):
    def record(seconds):
        waits.append(seconds)
        if sleep:
            time.sleep(seconds)

    return HttpClient(
        url, auth=BearerAuth(TOKEN), sleep=record, policy=HubSpotPolicy("demo_crm"), max_retries=2
    )


def _config(root, url):
    return pipeline_config(
        root,
        f"  - {{name: demo_crm, type: hubspot, base_url: '{url}',"
        " token_env: HUBSPOT_LIMITS_TOKEN}\n",
    )


def _as_of():
    from night.tasks import parse_as_of

    return parse_as_of(AS_OF)


def test_a_ten_secondly_429_is_waited_out_for_its_window(sample):
    with build_server(SampleDataset(sample), token=TOKEN) as server:
        # GIVEN HubSpot's burst-limit 429, no Retry-After: once with the window's length
        # in its rate headers (300 ms), once without any
        server.faults.add(
            PIPELINES,
            rate_limit_fault(
                None,
                policy="TEN_SECONDLY_ROLLING",
                headers={
                    "X-HubSpot-RateLimit-Interval-Milliseconds": "300",
                    "X-HubSpot-RateLimit-Max": "190",
                    "X-HubSpot-RateLimit-Remaining": "0",
                },
            ),
        )
        server.faults.add(PIPELINES, rate_limit_fault(None, policy="TEN_SECONDLY_ROLLING"))
        waits: list[float] = []
        # WHEN the client reads THEN it waits the window each time, and reads
        with _client(server.url, waits) as client:
            assert len(client.get(PIPELINES)["results"]) == 3
    assert waits == [0.3, 10.0]  # the header's window, else HubSpot's 10 s
    assert len(server.requests_to(PIPELINES)) == 3


def test_the_daily_limit_fails_at_once_naming_source_endpoint_and_reset(sample):
    with build_server(SampleDataset(sample), token=TOKEN) as server:
        server.faults.add(
            PIPELINES,
            rate_limit_fault(None, policy="DAILY", headers={"X-HubSpot-RateLimit-Daily": "250000"}),
        )
        waits: list[float] = []
        with _client(server.url, waits) as client, pytest.raises(HttpError) as failed:
            client.get(PIPELINES)
    message = str(failed.value)
    assert message.startswith("GET /crm/v3/pipelines/deals failed: HTTP 429 (policy DAILY): ")
    assert "HubSpot source 'demo_crm'" in message
    assert "daily API limit of 250,000 requests" in message
    assert "resets at midnight in the HubSpot account's time zone" in message
    assert "\n" not in message
    assert waits == [] and len(server.requests_to(PIPELINES)) == 1  # no retry spends more


def test_a_spent_burst_budget_pauses_before_the_next_request(sample):
    # GIVEN an account allowing 2 requests per 1 s window
    limits = RateLimits(burst=2, interval_ms=1000)
    with build_server(SampleDataset(sample), token=TOKEN, rate_limits=limits) as server:
        waits: list[float] = []
        with _client(server.url, waits, sleep=True) as client:
            # WHEN three requests follow each other
            for _ in range(3):
                client.get(PIPELINES)
            budget = client.policy.budget
    # THEN the client paused for the window once, after the second spent the budget, and
    # the third was served (no 429: the fake counts 3 served requests of 650,000)
    assert waits == [1.0]
    assert len(server.requests_to(PIPELINES)) == 3
    assert (budget.daily, budget.daily_remaining, budget.burst) == (650_000, 649_997, 2)


def test_a_night_completes_under_a_tight_budget_and_fails_cleanly_at_the_daily_limit(
    sample, tmp_path, caplog
):
    from night.tasks import extract_source

    # GIVEN an account allowing 4 requests per 200 ms window
    limits = RateLimits(burst=4, interval_ms=200)
    with build_server(SampleDataset(sample), token=TOKEN, rate_limits=limits) as server:
        config = _config(tmp_path / "tight", server.url)
        # WHEN a first night runs THEN it reads every deal
        summary = extract_source("demo_crm", as_of=_as_of(), config=config)
        assert summary["api_rows"]["hubspot__deals"] == 40
        # in 11 requests served: pipelines, owners (active, archived), deals (live,
        # archived: one page of 50 each), calls, emails, meetings (live, archived: under
        # 100 each); a client pauses when the budget is spent, so only a reader thread's
        # first request (a new client) may meet the spent window: 429, waited out
        assert limits.used_today == 11
        refused = len(server.requests) - 11
        assert 0 <= refused <= 7 and caplog.text.count("policy TEN_SECONDLY_ROLLING") == refused
    # GIVEN a day with 5 requests left WHEN a night runs
    limits = RateLimits(daily=650_000, used_today=650_000 - 5)
    with build_server(SampleDataset(sample), token=TOKEN, rate_limits=limits) as server:
        fresh = _config(tmp_path / "daily", server.url)
        with pytest.raises(HttpError, match=r"HTTP 429 \(policy DAILY\)") as failed:
            extract_source("demo_crm", as_of=_as_of(), config=fresh)
    # THEN it failed on the 6th request (the first calls page), naming it; raw is empty
    assert str(failed.value).startswith("GET /crm/v3/objects/calls?")
    assert len(server.requests) == 6
    assert {n for t, n in raw_counts(fresh).items() if t.startswith("hubspot__")} == {0}


def test_a_missing_scope_fails_the_night_naming_scope_and_endpoint(sample, tmp_path):
    from night.tasks import extract_source

    dataset = SampleDataset(sample)
    with build_server(dataset, token=TOKEN) as server:
        config = _config(tmp_path / "scopes", server.url)
        extract_source("demo_crm", as_of=_as_of(), config=config)
        before = raw_counts(config)
    # GIVEN the private app without crm.objects.contacts.read (calls, emails, meetings)
    scopes = ["crm.objects.deals.read", "crm.objects.companies.read", "crm.objects.owners.read"]
    with build_server(dataset, token=TOKEN, scopes=scopes) as server:
        config = _config(tmp_path / "scopes", server.url)
        # WHEN the next night runs THEN it fails on the calls search, naming the scope to add
        with pytest.raises(HttpError) as failed:
            extract_source("demo_crm", as_of=_as_of(), config=config)
    message = str(failed.value)
    assert message.startswith("POST /crm/v3/objects/calls/search failed: ")
    assert (
        "HTTP 403 MISSING_SCOPES: the token of HubSpot source 'demo_crm' lacks the scope(s) "
        "crm.objects.contacts.read; add them to its private app"
    ) in message
    assert "\n" not in message
    assert raw_counts(config) == before
    assert failed.value.status == 403
