"""How Pipedrive signals its limits and refusals, read for extract.http (a ResponsePolicy).

Pipedrive's token-based rate limiting (pipedrive.readme.io/docs/core-api-concepts-rate-limiting):

- **The daily budget** is the company's: 30,000 base tokens x the plan's multiplier x seats
  (plus bought top-ups), shared by every user, app and integration of the company; each
  request spends its endpoint's token cost (`TOKEN_COSTS`, from the `x-token-cost` of each
  operation in Pipedrive's OpenAPI specs). Once spent, every request gets 429 until the
  budget resets at midnight, Pipedrive's server time (which the docs say may differ from
  the company's time zone): no wait within a night helps, so the failure is final and says
  the budget is spent (`Failure(budget_spent=True)`, raised as extract.http.BudgetSpent: a
  night loading in chunks keeps what it merged and continues the next night). The budget
  left is sent as `x-daily-ratelimit-token-remaining` (of `x-daily-ratelimit-token-limit`);
  the rate-limiting page does not name these two headers and Pipedrive staff said they may
  be missing for a few requests after a long idle time, so both are optional here.
- **The burst limit** is per token, over a rolling 2-second window (API token: Lite 20,
  Growth 40, Premium 100, Ultimate 120 requests; OAuth apps 80 / 160 / 400 / 480), sent
  as `x-ratelimit-limit`, `x-ratelimit-remaining` and `x-ratelimit-reset` (seconds until
  the window resets). The window is the token's, so every client of a night (the deal-flow
  readers' threads) shares it: when a response says `remaining` 0, or a 429 of the burst
  comes, each client pauses until the reset before its next request; the 429's request is
  retried after `Retry-After`, else the reset, else the 2-second window.
- A 429 is the daily budget's when `x-daily-ratelimit-token-remaining` says 0 or its body
  speaks of the daily budget (the docs publish no body for either 429).
- **401**: the token was regenerated, its user deactivated, or it is mistyped; the failure
  says where it is stored. **403**: the token's user lacks a permission (the body's
  `error` says which, e.g. API access turned off for its permission set), or, as an HTML
  page, Pipedrive's gateway blocked a token that kept calling after 429s.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass

import requests

from extract.http import Failure, ResponsePolicy, parse_retry_after

BURST_WINDOW_SECONDS = 2.0  # Pipedrive's rolling burst window
BASE_TOKENS = 30_000  # a company's daily budget = BASE_TOKENS x plan multiplier x seats
# Plan multipliers of the daily budget (the rate-limiting page).
PLAN_MULTIPLIERS = {"Lite": 1, "Growth": 2, "Premium": 5, "Ultimate": 7}
# Burst limit of an API token per 2-second window, by plan (the rate-limiting page).
API_TOKEN_BURST = {"Lite": 20, "Growth": 40, "Premium": 100, "Ultimate": 120}

# Tokens each endpoint the night reads costs per request ("Cost" in Pipedrive's API
# reference, developers.pipedrive.com/docs/api/v1, the `x-token-cost` of its OpenAPI specs):
# a v2 list 10 (pipelines and stages 5), a v1 list 20, the deal flow and the deals summary
# 40, a v1 single item 2. The archived deals' cost is taken as the deals list's.
TOKEN_COSTS = {
    "/api/v2/deals": 10,
    "/api/v2/deals/archived": 10,
    "/api/v2/activities": 10,
    "/api/v2/stages": 5,
    "/api/v2/pipelines": 5,
    "/api/v2/dealFields": 10,
    "/v1/users": 20,
    "/v1/users/me": 2,
    "/v1/deals/{id}/flow": 40,
    "/v1/deals/summary": 40,
}

LIMIT = "x-ratelimit-limit"
REMAINING = "x-ratelimit-remaining"
RESET = "x-ratelimit-reset"
DAILY_LIMIT = "x-daily-ratelimit-token-limit"
DAILY_REMAINING = "x-daily-ratelimit-token-remaining"


@dataclass(frozen=True)
class RateBudget:
    """The rate headers of the last response that had them (None: not sent)."""

    daily_tokens: int | None = None
    daily_tokens_remaining: int | None = None
    burst: int | None = None
    burst_remaining: int | None = None
    reset_seconds: float | None = None


def _number(response: requests.Response, name: str) -> float | None:
    value = response.headers.get(name)
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _int(response: requests.Response, name: str) -> int | None:
    number = _number(response, name)
    return int(number) if number is not None else None


def _body(body: bytes) -> dict:
    try:
        document = json.loads(body)
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


def token_location(settings: dict) -> str:
    """Where a Pipedrive source's token is stored, for messages (never the token)."""
    if settings.get("airflow_conn_id"):
        return f"the password of Airflow connection {settings['airflow_conn_id']!r}"
    return f"the environment variable {settings.get('token_env') or 'PIPEDRIVE_API_TOKEN'}"


class PipedrivePolicy(ResponsePolicy):
    """Pipedrive's daily token budget, burst limit and refusals, for one source.

    One instance serves every client of a night (the deal-flow readers' threads too): it
    only keeps the last budget seen, under a lock."""

    def __init__(self, source: str, *, token_from: str = "its token setting") -> None:
        self.source = source
        self.token_from = token_from  # where the token is stored, for the 401's message
        self._lock = threading.Lock()
        self._budget = RateBudget()
        # The burst window is the token's, shared by every client of the night: once one
        # of them spends it, all of them wait for the reset (time.monotonic() value).
        self._resume_at = 0.0

    @property
    def budget(self) -> RateBudget:
        with self._lock:
            return self._budget

    def failure(self, response: requests.Response, body: bytes) -> Failure | None:
        self._record(response)
        status = response.status_code
        if status == 429:
            return self._rate_limited(response, _body(body))
        if status == 401:
            return Failure(
                f"HTTP 401 {_body(body).get('error') or 'unauthorized access'}: Pipedrive "
                f"refused the API token of source {self.source!r} (regenerated, its user "
                f"deactivated, or mistyped): store the user's current personal API token "
                f"(Personal preferences > API) in {self.token_from} and rerun",
                retryable=False,
                status=401,
            )
        if status == 403:
            return self._forbidden(response, body)
        return None

    def pause(self, response: requests.Response) -> float:
        """The rest of the burst window when this response, or another client's of the same
        token, spent its last request."""
        now = time.monotonic()
        with self._lock:
            if _int(response, REMAINING) == 0:
                self._resume_at = max(self._resume_at, now + self._reset(response))
            return max(0.0, self._resume_at - now)

    # ----------------------------------------------------------------------------------

    def _record(self, response: requests.Response) -> None:
        if LIMIT not in response.headers and DAILY_REMAINING not in response.headers:
            return  # keep the last budget seen (the headers may be missing for a while)
        last = self.budget
        budget = RateBudget(
            daily_tokens=_int(response, DAILY_LIMIT) or last.daily_tokens,
            daily_tokens_remaining=(
                _int(response, DAILY_REMAINING)
                if DAILY_REMAINING in response.headers
                else last.daily_tokens_remaining
            ),
            burst=_int(response, LIMIT),
            burst_remaining=_int(response, REMAINING),
            reset_seconds=_number(response, RESET),
        )
        with self._lock:
            self._budget = budget

    @staticmethod
    def _reset(response: requests.Response) -> float:
        reset = _number(response, RESET)
        return reset if reset is not None and reset > 0 else BURST_WINDOW_SECONDS

    def _daily_spent(self, response: requests.Response, document: dict) -> bool:
        if _int(response, DAILY_REMAINING) == 0:
            return True
        words = f"{document.get('error') or ''} {document.get('error_info') or ''}".lower()
        return "daily" in words or "budget" in words

    def _rate_limited(self, response: requests.Response, document: dict) -> Failure:
        if self._daily_spent(response, document):
            daily = _int(response, DAILY_LIMIT) or self.budget.daily_tokens
            of = f" of {daily:,} tokens" if daily else ""
            return Failure(
                f"HTTP 429: Pipedrive source {self.source!r} has spent the company's daily "
                f"API token budget{of} (shared by every user and integration of the "
                "company). It resets at midnight, Pipedrive's server time: the next night "
                "continues from what this one merged; to load faster, give this "
                "integration the night hours, raise the budget (more seats, a higher "
                "plan or an API token top-up) or see Company settings > API usage",
                retryable=False,
                status=429,
                budget_spent=True,
            )
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        wait = retry_after if retry_after is not None else self._reset(response)
        with self._lock:
            self._resume_at = max(self._resume_at, time.monotonic() + wait)
        limit = _int(response, LIMIT)
        return Failure(
            f"HTTP 429: the burst limit of {limit or 'its'} requests per "
            f"{BURST_WINDOW_SECONDS:g}s window is spent; retrying in {wait:g}s",
            retryable=True,
            status=429,
            retry_after=wait,
        )

    def _forbidden(self, response: requests.Response, body: bytes) -> Failure:
        document = _body(body)
        if not document:
            return Failure(
                f"HTTP 403 (not JSON: Pipedrive's gateway block): source {self.source!r} "
                "was blocked, as Pipedrive does with a token that keeps calling after 429s; "
                "wait for the block to lift (no retry tonight) and check that no other job "
                "uses the same token",
                retryable=False,
                status=403,
            )
        said = document.get("error") or "forbidden"
        return Failure(
            f"HTTP 403 {said}: the API token of Pipedrive source {self.source!r} lacks a "
            "permission this read needs; an admin can grant it to the user's permission set "
            "(Company settings > Permission sets: 'use API', see deals of every user), or "
            f"store an admin's token in {self.token_from}",
            retryable=False,
            status=403,
        )


_NIGHTS: dict[str, tuple[float, PipedrivePolicy]] = {}
_NIGHTS_LOCK = threading.Lock()


def policy_for_night(source: str, night: float, *, token_from: str) -> PipedrivePolicy:
    """The one policy of `source` for the night identified by `night` (its deadline): every
    client of that night (the flow readers' threads too) shares it; a new night gets a new
    one. Only the latest night of each source is kept."""
    with _NIGHTS_LOCK:
        found = _NIGHTS.get(source)
        if found is None or found[0] != night:
            found = (night, PipedrivePolicy(source, token_from=token_from))
            _NIGHTS[source] = found
        return found[1]
