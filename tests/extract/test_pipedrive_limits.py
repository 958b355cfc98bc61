"""Pipedrive's limits and refusals, over real HTTP against the fake server: a burst 429 is
waited out (Retry-After, else x-ratelimit-reset, else the 2 s window), a spent burst pauses
the client, a spent daily token budget fails at once as BudgetSpent naming source, budget
and reset, a 401 names where the token is stored, a 403 what is missing; a night completes
under a tight burst limit, spending the tokens its requests cost."""

from __future__ import annotations

import time

import pytest
from api_nights import pipeline_config

from devkit.fake_servers.base import Fault
from devkit.fake_servers.dataset import SampleDataset
from devkit.fake_servers.pipedrive import BURST_BODY, DAILY_BODY, RateLimits, build_server
from extract.http import BudgetSpent, HttpClient, HttpError, QueryTokenAuth
from extract.sources.pipedrive_policy import PipedrivePolicy, policy_for_night

TOKEN = "pd-limits-token-2718281828"
STAGES = "/api/v2/stages"
AS_OF = "2026-07-01T00:00:00Z"


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    from devkit.sample_data import generate

    folder = tmp_path_factory.mktemp("pd_limits")
    generate(folder, 40, seed=5, workers=1)
    return folder


@pytest.fixture(autouse=True)
def token_env(monkeypatch):
    monkeypatch.setenv("PIPEDRIVE_LIMITS_TOKEN", TOKEN)


def _client(url, waits, *, sleep=False, token_from="the environment variable PD_TOKEN"):
    def record(seconds):
        waits.append(seconds)
        if sleep:
            time.sleep(seconds)

    return HttpClient(
        url,
        auth=QueryTokenAuth("api_token", TOKEN),
        sleep=record,
        policy=PipedrivePolicy("demo_crm", token_from=token_from),
        max_retries=3,
    )


def _fault(body, headers=None, retry_after=None):
    return Fault(status=429, body=body, headers=headers or {}, retry_after=retry_after)


def test_a_burst_429_is_retried_after_retry_after_else_the_reset_else_two_seconds(sample):
    with build_server(SampleDataset(sample), token=TOKEN) as server:
        # GIVEN three burst 429s: with Retry-After 1, with only x-ratelimit-reset 0.3, bare
        server.faults.add(STAGES, _fault(BURST_BODY, {"x-ratelimit-reset": "0.3"}, 1))
        server.faults.add(STAGES, _fault(BURST_BODY, {"x-ratelimit-reset": "0.3"}))
        server.faults.add(STAGES, _fault(BURST_BODY))
        waits: list[float] = []
        # WHEN the client reads THEN it waits each as told, and reads the stages
        with _client(server.url, waits) as client:
            assert len(client.get(STAGES)["data"]) > 0
    assert waits == [1.0, 0.3, 2.0]
    assert len(server.requests_to(STAGES)) == 4


def test_a_spent_daily_budget_fails_at_once_as_budget_spent(sample):
    with build_server(SampleDataset(sample), token=TOKEN) as server:
        # GIVEN the daily budget's 429: tokens left 0 in the headers
        headers = {
            "x-daily-ratelimit-token-limit": "30000",
            "x-daily-ratelimit-token-remaining": "0",
        }
        server.faults.add(STAGES, _fault(BURST_BODY, headers))
        waits: list[float] = []
        with _client(server.url, waits) as client, pytest.raises(BudgetSpent) as failed:
            client.get(STAGES)
    message = str(failed.value)
    # THEN it is final, names source, budget, reset and what to do, in one line
    assert message.startswith("GET /api/v2/stages failed: HTTP 429: Pipedrive source 'demo_crm'")
    assert "spent the company's daily API token budget of 30,000 tokens" in message
    assert "resets at midnight, Pipedrive's server time" in message
    assert "the next night continues from what this one merged" in message
    assert "\n" not in message and TOKEN not in message
    assert failed.value.status == 429
    assert waits == [] and len(server.requests_to(STAGES)) == 1


def test_the_fakes_daily_budget_refuses_the_request_it_cannot_pay(sample):
    # GIVEN 12 tokens left today: a stages page costs 5, the users list 20
    limits = RateLimits(daily_tokens=30_000, used_today=30_000 - 12)
    with build_server(SampleDataset(sample), token=TOKEN, rate_limits=limits) as server:
        waits: list[float] = []
        with _client(server.url, waits) as client:
            client.get(STAGES)
            client.get(STAGES)
            left = client.policy.budget.daily_tokens_remaining
            # WHEN the users list is asked THEN the daily 429 fails it at once
            with pytest.raises(BudgetSpent, match="daily API token budget of 30,000 tokens"):
                client.get("/v1/users")
            # AND from then on even a 5-token request is refused until the reset
            with pytest.raises(BudgetSpent):
                client.get(STAGES)
    assert left == 2
    assert limits.used_today == 30_000 - 2 and limits.requests_served == 2
    assert waits == []
    assert server.requests[-1].path == STAGES
    assert DAILY_BODY["error"] == "Daily API token budget exceeded"


def test_a_spent_burst_pauses_before_the_next_request(sample):
    # GIVEN a token allowed 2 requests per 0.4 s window
    limits = RateLimits(burst=2, window_seconds=0.4)
    with build_server(SampleDataset(sample), token=TOKEN, rate_limits=limits) as server:
        waits: list[float] = []
        with _client(server.url, waits, sleep=True) as client:
            # WHEN three requests follow each other
            for _ in range(3):
                client.get(STAGES)
            budget = client.policy.budget
    # THEN the client paused once, for what was left of the window, and no 429 was served
    assert len(waits) == 1 and 0 < waits[0] <= 0.4
    assert len(server.requests_to(STAGES)) == 3 == limits.requests_served
    assert (budget.daily_tokens, budget.daily_tokens_remaining) == (30_000, 30_000 - 15)
    assert budget.burst == 2


def test_a_401_names_where_the_token_is_stored(sample):
    with build_server(SampleDataset(sample), token="another-token") as server:
        waits: list[float] = []
        where = "the password of Airflow connection 'pipedrive_crm'"
        with _client(server.url, waits, token_from=where) as client:
            with pytest.raises(HttpError) as failed:
                client.get(STAGES)
    message = str(failed.value)
    assert message.startswith("GET /api/v2/stages failed: HTTP 401 unauthorized access: ")
    assert "Pipedrive refused the API token of source 'demo_crm'" in message
    assert f"in {where} and rerun" in message
    assert TOKEN not in message and waits == []


def test_a_403_says_what_is_missing_or_that_the_gateway_blocked(sample):
    with build_server(SampleDataset(sample), token=TOKEN) as server:
        server.faults.add(
            STAGES,
            Fault(
                status=403,
                body={
                    "success": False,
                    "error": "You do not have permission to use the API",
                    "error_info": "Please check developers.pipedrive.com",
                },
            ),
        )
        server.faults.add(STAGES, Fault(status=403, body="<html>Access denied</html>"))
        waits: list[float] = []
        with _client(server.url, waits) as client:
            with pytest.raises(HttpError) as refused:
                client.get(STAGES)
            with pytest.raises(HttpError) as blocked:
                client.get(STAGES)
    assert "HTTP 403 You do not have permission to use the API: the API token of Pipedrive " in (
        str(refused.value)
    )
    assert "store an admin's token in the environment variable PD_TOKEN" in str(refused.value)
    assert "HTTP 403 (not JSON: Pipedrive's gateway block): source 'demo_crm'" in str(blocked.value)
    assert waits == [] and len(server.requests_to(STAGES)) == 2


def test_one_policy_per_source_and_night():
    first = policy_for_night("crm_a", 100.0, token_from="x")
    assert policy_for_night("crm_a", 100.0, token_from="x") is first
    assert policy_for_night("crm_b", 100.0, token_from="x") is not first
    assert policy_for_night("crm_a", 200.0, token_from="x") is not first


def test_a_night_completes_under_a_tight_burst_limit(sample, tmp_path):
    from night.tasks import extract_source, parse_as_of

    # GIVEN a token allowed 6 requests per 0.2 s window
    limits = RateLimits(burst=6, window_seconds=0.2)
    dataset = SampleDataset(sample)
    with build_server(dataset, token=TOKEN, rate_limits=limits) as server:
        config = pipeline_config(
            tmp_path / "tight",
            f"  - {{name: demo_crm, type: pipedrive, base_url: '{server.url}',"
            " token_env: PIPEDRIVE_LIMITS_TOKEN}\n",
        )
        # WHEN a first night runs THEN it reads every deal
        summary = extract_source("demo_crm", as_of=parse_as_of(AS_OF), config=config)
    live = dataset.scalar("select count(*) from deals where deleted_at is null")
    assert summary["api_rows"]["pipedrive__deals"] == 40
    # in 8 list requests (stages, pipelines, users, dealFields; deals live, archived and
    # deleted; activities: one page of 500 each) and one flow request per live deal
    assert limits.requests_served == 8 + live
    # costing 5 + 5 + 20 + 10 + 4 x 10 tokens, and 40 a flow
    assert limits.used_today == 80 + 40 * live
    # four flow readers share the window: a 429 when two spend its last request at once,
    # retried after the reset (only ever the burst's)
    refused = len(server.requests) - limits.requests_served
    assert refused >= 0 and limits.used_today < limits.daily_tokens
