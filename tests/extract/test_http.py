"""The shared HTTP client and paginator, driven over real HTTP against a local FakeApiServer."""

from __future__ import annotations

import logging
import random
import socket
import time
import traceback
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from devkit.fake_servers import FakeApiServer, Fault, Request
from extract.http import (
    BODY_EXCERPT_CHARS,
    BearerAuth,
    Failure,
    HttpClient,
    HttpError,
    QueryTokenAuth,
    parse_retry_after,
)
from extract.pagination import PaginationError, batched, paginate, records

TOKEN = "tok-SECRET-123"
SEED = 7


class Sleeps(list):
    """An injected `sleep` that records each wait instead of waiting, so retries cost no time."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def deals_api(total: int):
    """A HubSpot-shaped deals endpoint over `total` deals: `after` cursor, `paging.next.after`."""

    def handler(request: Request):
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return 401, {}, {"status": "error", "message": "Authentication credentials not found"}
        limit = int(request.param("limit", "100"))
        start = int(request.param("after", "0"))
        page = [{"id": str(i), "properties": {"amount": "10"}} for i in range(start + 1, total + 1)]
        body: dict = {"results": page[:limit]}
        if start + limit < total:
            body["paging"] = {"next": {"after": str(start + limit)}}
        return 200, {}, body

    return handler


@pytest.fixture
def server():
    routes = {
        ("GET", "/deals"): deals_api(10),
        ("POST", "/deals/search"): lambda r: (200, {}, {"echo": r.json()}),
        ("GET", "/always-502"): lambda r: (502, {}, "upstream exploded"),
    }
    with FakeApiServer(routes) as fake:
        yield fake


@pytest.fixture
def sleeps():
    return Sleeps()


def make_client(server, sleeps, **overrides) -> HttpClient:
    options = {"auth": BearerAuth(TOKEN), "sleep": sleeps, "rng": random.Random(SEED)}
    return HttpClient(server.url, **{**options, **overrides})


# --- the client ------------------------------------------------------------------------------


def test_get_returns_parsed_json_and_sends_the_bearer_token(server, sleeps):
    with make_client(server, sleeps) as client:
        page = client.get("/deals", params={"limit": 2})

    assert page == {
        "results": [
            {"id": "1", "properties": {"amount": "10"}},
            {"id": "2", "properties": {"amount": "10"}},
        ],
        "paging": {"next": {"after": "2"}},
    }
    (seen,) = server.requests
    assert (seen.method, seen.path, seen.query) == ("GET", "/deals", {"limit": ["2"]})
    assert seen.headers["Authorization"] == "Bearer ***"  # recorded redacted
    assert sleeps == []


def test_post_sends_the_json_body(server, sleeps):
    query = {"filterGroups": [{"filters": [{"propertyName": "hs_lastmodifieddate"}]}]}
    with make_client(server, sleeps) as client:
        assert client.post("/deals/search", json=query) == {"echo": query}


def test_429_waits_exactly_the_retry_after_seconds_then_succeeds(server, sleeps):
    server.faults.add("/deals", Fault(status=429, body={"message": "slow down"}, retry_after=7))
    with make_client(server, sleeps) as client:
        page = client.get("/deals", params={"limit": 1})

    assert page["results"] == [{"id": "1", "properties": {"amount": "10"}}]
    assert sleeps == [7.0]
    assert len(server.requests) == 2


def test_retry_after_as_http_date_is_honoured(server, sleeps):
    at = datetime.now(UTC) + timedelta(seconds=30)
    server.faults.add("/deals", Fault(status=429, retry_after=format_datetime(at, usegmt=True)))
    with make_client(server, sleeps) as client:
        client.get("/deals")

    # HTTP-dates have whole-second resolution, and the request itself takes a moment.
    assert len(sleeps) == 1 and 28.0 <= sleeps[0] <= 30.0


def test_retry_after_parses_seconds_and_dates_and_ignores_garbage():
    now = datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC)
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now=now) == 30.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now=now) == 0.0  # already past
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_burst_of_5xx_is_retried_with_capped_full_jitter_backoff(server, sleeps):
    server.faults.add("/deals", Fault(status=503, body="maintenance", times=3))
    with make_client(server, sleeps, backoff_base=1.0, backoff_cap=2.0) as client:
        page = client.get("/deals", params={"limit": 1})

    assert page["results"][0]["id"] == "1"
    assert len(server.requests) == 4
    # Full jitter under ceilings base*2^n capped at 2 s: 1, 2, 2.
    rng = random.Random(SEED)
    assert sleeps == [rng.uniform(0, 1.0), rng.uniform(0, 2.0), rng.uniform(0, 2.0)]


def test_5xx_forever_fails_after_max_retries_naming_request_and_status(server, sleeps, caplog):
    caplog.set_level(logging.WARNING, logger="extract.http")
    with make_client(server, sleeps, max_retries=3) as client, pytest.raises(HttpError) as caught:
        client.get("/always-502", params={"limit": 2, "archived": "false"})

    message = str(caught.value)
    assert message == (
        "GET /always-502?limit=2&archived=false failed after 4 attempts: "
        "HTTP 502: upstream exploded"
    )
    assert caught.value.status == 502
    assert len(server.requests) == 4
    assert len(sleeps) == 3
    retries = [r for r in caplog.records if r.name == "extract.http"]
    assert [r.levelno for r in retries] == [logging.WARNING] * 3
    assert "GET /always-502?limit=2&archived=false: HTTP 502" in retries[0].getMessage()
    assert f"in {sleeps[0]:.2f}s" in retries[0].getMessage()


def test_404_fails_at_once_without_retry(server, sleeps):
    with make_client(server, sleeps) as client, pytest.raises(HttpError) as caught:
        client.get("/no-such-endpoint", params={"limit": 5})

    assert str(caught.value).startswith("GET /no-such-endpoint?limit=5 failed: HTTP 404: ")
    assert caught.value.status == 404
    assert len(server.requests) == 1
    assert sleeps == []


@pytest.mark.parametrize("start", [0, 255, 280, 299, 320])
def test_a_token_in_an_error_body_is_redacted_before_the_excerpt_is_cut(server, sleeps, start):
    # GIVEN a 400 whose body echoes the token from character `start` on (46 characters)
    token = "tok-" + "S3CRET" * 7
    body = "x" * start + token + " and more text after it"
    server.faults.add("/deals", Fault(status=400, body=body))
    with make_client(server, sleeps, auth=BearerAuth(token)) as client:
        with pytest.raises(HttpError) as failure:
            client.get("/deals")
    # THEN no 8 characters of the token appear in the error, wherever the cut falls
    message = str(failure.value)
    assert not any(token[i : i + 8] in message for i in range(len(token) - 7)), message
    # AND where the token starts inside the excerpt, the excerpt shows it redacted
    assert ("***" in message) == (start + 3 <= BODY_EXCERPT_CHARS)


def test_401_fails_at_once_with_the_api_error_body(server, sleeps):
    with make_client(server, sleeps, auth=None) as client, pytest.raises(HttpError) as caught:
        client.get("/deals")

    assert "HTTP 401" in str(caught.value)
    assert "Authentication credentials not found" in str(caught.value)
    assert len(server.requests) == 1


def test_read_timeout_is_retried_then_succeeds(server, sleeps):
    server.faults.add("/deals", Fault(delay=2.0))
    started = time.monotonic()
    with make_client(server, sleeps, read_timeout=0.3) as client:
        page = client.get("/deals", params={"limit": 1})

    assert page["results"][0]["id"] == "1"
    assert time.monotonic() - started < 1.5  # gave up on the slow answer, did not wait it out
    assert len(server.requests) == 2
    assert len(sleeps) == 1


@pytest.mark.parametrize("mode", ["close", "half_json"])
def test_truncated_body_is_retried_then_succeeds(server, sleeps, mode):
    server.faults.add("/deals", Fault(truncate=mode))
    with make_client(server, sleeps) as client:
        page = client.get("/deals", params={"limit": 3})

    assert [d["id"] for d in page["results"]] == ["1", "2", "3"]
    assert len(server.requests) == 2
    assert len(sleeps) == 1


@pytest.mark.parametrize(
    ("mode", "why"),
    [
        ("half_json", "HTTP 200 body is not valid JSON (47 bytes of 47 declared, truncated?): "),
        ("close", "HTTP 200 body cut off: the connection closed before all of the 94 bytes "),
    ],
)
def test_truncated_body_forever_fails_with_a_clear_message(server, sleeps, mode, why):
    server.faults.add("/deals", Fault(truncate=mode, times=10))
    with make_client(server, sleeps, max_retries=2) as client, pytest.raises(HttpError) as caught:
        client.get("/deals", params={"limit": 1})

    assert str(caught.value).startswith(f"GET /deals?limit=1 failed after 3 attempts: {why}")
    assert len(server.requests) == 3


def test_retry_after_past_the_deadline_fails_now_naming_the_deadline(server, sleeps):
    server.faults.add("/deals", Fault(status=503, retry_after=5))
    deadline = time.monotonic() + 1.0
    with make_client(server, sleeps, deadline=deadline) as client, pytest.raises(HttpError) as c:
        client.get("/deals")

    assert "the next attempt in 5.0s would pass the extraction deadline" in str(c.value)
    assert str(c.value).startswith("GET /deals failed: HTTP 503")
    assert len(server.requests) == 1
    assert sleeps == []


def test_slow_response_is_cut_at_the_deadline_not_at_the_read_timeout(server, sleeps):
    server.faults.add("/deals", Fault(delay=3.0, times=5))
    started = time.monotonic()
    client = make_client(server, sleeps, read_timeout=30.0, deadline=started + 0.4)
    with client, pytest.raises(HttpError) as caught:
        client.get("/deals")

    assert time.monotonic() - started < 1.5
    assert "read timed out after 0.4s (cut to the extraction deadline)" in str(caught.value)
    assert "extraction deadline" in str(caught.value)


def test_deadline_already_passed_sends_nothing(server, sleeps):
    client = make_client(server, sleeps, deadline=time.monotonic() - 1)
    with client, pytest.raises(HttpError) as caught:
        client.get("/deals")

    assert str(caught.value) == "GET /deals: the extraction deadline has passed"
    assert server.requests == []


def test_secret_query_params_are_redacted_from_the_request_description(server, sleeps):
    params = {"limit": 5, "api_token": "p-secret", "hapikey": "h-secret", "client_secret": "c-s"}
    with make_client(server, sleeps) as client, pytest.raises(HttpError) as caught:
        client.get("/missing", params=params)

    assert str(caught.value).startswith(
        "GET /missing?limit=5&api_token=***&hapikey=***&client_secret=*** failed: HTTP 404"
    )
    assert server.requests[0].query == {
        "limit": ["5"],
        "api_token": ["***"],
        "hapikey": ["***"],
        "client_secret": ["***"],
    }


def test_next_link_on_the_same_origin_is_followed(server, sleeps):
    with make_client(server, sleeps) as client:
        page = client.get(f"{server.url}/deals?limit=1&after=4")

    assert page["results"][0]["id"] == "5"


def test_next_link_to_another_origin_is_refused_before_sending_the_token(server, sleeps):
    with make_client(server, sleeps) as client, pytest.raises(HttpError) as caught:
        client.get("http://127.0.0.2:9/deals?after=x")

    assert "refusing to send credentials to http://127.0.0.2:9" in str(caught.value)
    assert server.requests == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_planted_token_never_appears_in_errors_logs_or_reprs(server, sleeps, caplog):
    # GIVEN a token the server echoes back in error bodies, and failures of every kind
    caplog.set_level(logging.DEBUG)  # urllib3's DEBUG lines print full request URLs
    server.route(
        "GET",
        "/echo-401",
        lambda r: (401, {}, {"error": f"bad api_token={r.param('api_token')}", "raw": TOKEN}),
    )
    server.route("GET", "/echo-500", lambda r: (500, {}, f"Authorization: Bearer {TOKEN} rejected"))
    server.faults.add("/deals", Fault(truncate="half_json", times=10))
    query_auth, bearer_auth = QueryTokenAuth("api_token", TOKEN), BearerAuth(TOKEN)
    dead_url = f"http://127.0.0.1:{_free_port()}"
    clients = [
        make_client(server, sleeps, auth=query_auth, max_retries=1),
        make_client(server, sleeps, auth=bearer_auth, max_retries=1),
        HttpClient(dead_url, auth=query_auth, max_retries=1, sleep=sleeps),
    ]
    calls = [
        (clients[0], "/echo-401"),
        (clients[0], "/echo-500"),
        (clients[0], "/deals"),
        (clients[1], "/echo-500"),
        (clients[2], "/deals"),
    ]

    # WHEN every call fails
    errors = []
    for client, path in calls:
        with pytest.raises(HttpError) as caught:
            client.get(path, params={"limit": 1})
        errors.append(caught.value)

    # THEN the token is nowhere a person or a log collector could see it
    shown = [str(e) for e in errors]
    shown += ["".join(traceback.format_exception(e)) for e in errors]
    shown += [repr(c) for c in clients] + [repr(query_auth), repr(bearer_auth)]
    shown += [caplog.text] + [r.getMessage() for r in caplog.records]
    assert all(TOKEN not in text for text in shown)
    assert all(e.__cause__ is None and e.__context__ is None for e in errors)
    assert "bad api_token=***" in shown[0]
    assert shown[4].startswith("GET /deals?limit=1 failed after 2 attempts: connection error: ")
    assert "Connection refused" in shown[4]
    # The redaction was exercised, not vacuous: urllib3 did log the token-bearing URL.
    assert any(
        r.name == "urllib3.connectionpool" and "api_token=***" in r.getMessage()
        for r in caplog.records
    )
    assert any(r.name == "extract.http" and r.levelno == logging.WARNING for r in caplog.records)
    assert {r.headers.get("Authorization") for r in server.requests} == {None, "Bearer ***"}
    assert {r.param("api_token") for r in server.requests} == {None, "***"}


# --- pagination ------------------------------------------------------------------------------


def _hubspot_pages(client: HttpClient, *, limit: int, max_pages: int = 100):
    return paginate(
        lambda after: client.get("/deals", params={"limit": limit, "after": after}),
        lambda page: page.get("paging", {}).get("next", {}).get("after"),
        max_pages=max_pages,
    )


def test_paginate_empty_result_is_one_page_and_no_records(sleeps):
    with FakeApiServer({("GET", "/deals"): deals_api(0)}) as server:
        with make_client(server, sleeps) as client:
            pages = list(_hubspot_pages(client, limit=3))

    assert pages == [{"results": []}]
    assert list(records(pages, lambda page: page["results"])) == []


def test_paginate_one_page(server, sleeps):
    with make_client(server, sleeps) as client:
        pages = list(_hubspot_pages(client, limit=10))

    assert len(pages) == 1
    assert [d["id"] for d in pages[0]["results"]] == [str(i) for i in range(1, 11)]


def test_paginate_many_pages_follows_the_cursor_to_the_end(server, sleeps):
    with make_client(server, sleeps) as client:
        ids = [d["id"] for d in records(_hubspot_pages(client, limit=3), lambda p: p["results"])]

    assert ids == [str(i) for i in range(1, 11)]
    assert [r.param("after") for r in server.requests] == [None, "3", "6", "9"]


def test_paginate_repeated_cursor_stops_naming_the_cursor(server, sleeps):
    with make_client(server, sleeps) as client:
        pages = _hubspot_pages(client, limit=3)
        next(pages)
        # GIVEN the API hands back a cursor it already gave
        stale = {"results": [{"id": "4"}], "paging": {"next": {"after": "3"}}}
        server.faults.add("/deals", Fault(status=200, body=stale))
        with pytest.raises(PaginationError) as caught:
            next(pages)

    assert str(caught.value) == (
        "cursor '3' repeated after 2 page(s): the API would serve the same pages again, "
        "stopping instead of looping"
    )
    assert len(server.requests) == 2


def test_paginate_page_cap_with_a_next_cursor_still_present_fails(server, sleeps):
    with make_client(server, sleeps) as client, pytest.raises(PaginationError) as caught:
        list(_hubspot_pages(client, limit=3, max_pages=2))

    assert str(caught.value).startswith(
        "page cap of 2 reached with a next cursor '6' still present"
    )
    assert len(server.requests) == 2


def test_paginate_is_lazy_fetching_pages_only_as_consumed(server, sleeps):
    with make_client(server, sleeps) as client:
        pages = _hubspot_pages(client, limit=3)
        assert len(server.requests) == 0
        next(pages)
        assert len(server.requests) == 1
        next(pages)
        assert len(server.requests) == 2


def test_records_in_batches_stream_a_paged_source(server, sleeps):
    with make_client(server, sleeps) as client:
        stream = records(_hubspot_pages(client, limit=3), lambda p: p["results"])
        sizes = [len(batch) for batch in batched(stream, 4)]

    assert sizes == [4, 4, 2]


def test_records_rejects_a_page_without_a_record_list():
    pages = [{"data": [{"id": 1}]}, {"data": None}, {"data": {"id": 2}}]
    stream = records(pages, lambda p: p["data"])

    assert next(stream) == {"id": 1}
    with pytest.raises(PaginationError, match="page 3: expected a list of records, got dict"):
        next(stream)


def test_batched_edges():
    assert list(batched([], 3)) == []
    assert list(batched(range(3), 3)) == [[0, 1, 2]]
    with pytest.raises(ValueError):
        list(batched([1], 0))


# --- the hooks a connector uses: its own response policy, an auth that refreshes ------------


class _RefreshingAuth(BearerAuth):
    """A session token that expires: `refresh()` fetches the next one (counted)."""

    def __init__(self, tokens: list[str]) -> None:
        self._tokens = tokens
        self.refreshes = 0
        super().__init__(tokens.pop(0))

    def refresh(self) -> None:
        self.refreshes += 1
        self._token = self._tokens.pop(0)

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self._token,)


def test_a_401_with_a_refreshable_auth_re_authenticates_once_and_continues(server, sleeps):
    auth = _RefreshingAuth(["expired-session-1", TOKEN])
    with make_client(server, sleeps, auth=auth) as client:
        assert [d["id"] for d in client.get("/deals", params={"limit": 2})["results"]] == ["1", "2"]
    assert auth.refreshes == 1
    assert sleeps == []  # a re-authentication is not a retry: no backoff


def test_a_second_401_after_re_authenticating_is_final(server, sleeps):
    auth = _RefreshingAuth(["expired-1", "still-wrong-2", "never-used-3"])
    with make_client(server, sleeps, auth=auth) as client, pytest.raises(HttpError) as err:
        client.get("/deals")
    assert auth.refreshes == 1
    assert err.value.status == 401
    assert str(err.value).startswith("GET /deals failed: HTTP 401")
    assert "still-wrong-2" not in str(err.value)


class _BudgetPolicy:
    """Reads a 429 body's own policy name and an `x-budget-left` header, as a CRM would."""

    def failure(self, response, body):
        if response.status_code == 429 and b"DAILY" in body:
            return Failure("daily limit spent: try tomorrow", retryable=False, status=429)
        return None

    def pause(self, response):
        return 2.5 if response.headers.get("x-budget-left") == "0" else 0.0


def test_a_policy_reads_the_api_s_own_failures_and_pauses_before_the_next_request(sleeps):
    calls = []

    def budget(request):
        calls.append(request.path)
        return 200, {"x-budget-left": "0" if len(calls) == 1 else "9"}, {"ok": len(calls)}

    routes = {
        ("GET", "/budget"): budget,
        ("GET", "/daily"): lambda r: (429, {}, {"policyName": "DAILY"}),
    }
    with FakeApiServer(routes) as fake:
        with make_client(fake, sleeps, policy=_BudgetPolicy()) as client:
            assert client.get("/budget") == {"ok": 1}
            assert sleeps == []  # the pause comes before the next request, not after this one
            assert client.get("/budget") == {"ok": 2}
            assert sleeps == [2.5]
            assert client.get("/budget") == {"ok": 3}
            assert sleeps == [2.5]
            with pytest.raises(HttpError, match=r"^GET /daily failed: daily limit spent"):
                client.get("/daily")
    assert sleeps == [2.5]  # the daily limit is not retried


def test_a_pause_past_the_deadline_fails_before_sending(sleeps):
    routes = {("GET", "/budget"): lambda r: (200, {"x-budget-left": "0"}, {})}
    with FakeApiServer(routes) as fake:
        client = make_client(fake, sleeps, policy=_BudgetPolicy(), deadline=time.monotonic() + 1)
        with client:
            client.get("/budget")
            with pytest.raises(HttpError, match=r"asks for a 2.5s pause, past the extraction"):
                client.get("/budget")
    assert sleeps == []
