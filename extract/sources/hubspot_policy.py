"""How HubSpot signals its limits and refusals, read for extract.http (a ResponsePolicy).

- **429** carries no `Retry-After`; the body names the limit hit in `policyName`
  (HubSpot's API usage guidelines, developers.hubspot.com/docs/api/usage-details):
  `TEN_SECONDLY_ROLLING` (the burst limit: 100 requests per 10 s on Free/Starter, 190 on
  Professional/Enterprise, 250 with the API limit increase) is waited out: the window's
  length from `X-HubSpot-RateLimit-Interval-Milliseconds`, else 10 s; `SECONDLY` (the
  search endpoints' per-second limit) after 1 s; `DAILY` (250,000 / 650,000 / 1,000,000
  requests a day by tier) fails at once: waiting within the night cannot help, the count
  resets at midnight in the HubSpot account's time zone.
- **401**: the token was revoked, rotated or mistyped; the failure says where it is stored.
- **403** `MISSING_SCOPES` lists the scopes the call needs in
  `errors[].context.requiredGranularScopes` (or `requiredScopes`): the failure names them.
- Every response but search's carries `X-HubSpot-RateLimit-Max`, `-Remaining`,
  `-Interval-Milliseconds` and, for private apps, `-Daily` / `-Daily-Remaining`: when
  `-Remaining` reaches 0 the client pauses for the window before its next request, and the
  last values seen are kept (`budget`) for the preflight's report.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass

import requests

from extract.http import Failure, ResponsePolicy, parse_retry_after

BURST_WINDOW_SECONDS = 10.0  # HubSpot's rolling burst window when no header says otherwise
SECONDLY_WAIT_SECONDS = 1.0

DAILY = "X-HubSpot-RateLimit-Daily"
DAILY_REMAINING = "X-HubSpot-RateLimit-Daily-Remaining"
INTERVAL = "X-HubSpot-RateLimit-Interval-Milliseconds"
BURST_MAX = "X-HubSpot-RateLimit-Max"
BURST_REMAINING = "X-HubSpot-RateLimit-Remaining"


@dataclass(frozen=True)
class RateBudget:
    """The rate headers of the last response that had them (None: not sent)."""

    daily: int | None = None
    daily_remaining: int | None = None
    burst: int | None = None
    burst_remaining: int | None = None
    interval_seconds: float | None = None


def _int(response: requests.Response, name: str) -> int | None:
    value = response.headers.get(name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _body(body: bytes) -> dict:
    try:
        document = json.loads(body)
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


def required_scopes(document: dict) -> list[str]:
    """The scopes a MISSING_SCOPES body names, in order, without repeats."""
    contexts = [document.get("context") or {}]
    contexts += [(e or {}).get("context") or {} for e in document.get("errors") or []]
    scopes: dict[str, None] = {}
    for context in contexts:
        for key in ("requiredGranularScopes", "requiredScopes", "missingScopes"):
            for scope in context.get(key) or []:
                scopes[str(scope)] = None
    return list(scopes)


class HubSpotPolicy(ResponsePolicy):
    """HubSpot's rate-limit policies, scope refusals and rate headers, for one source.

    One instance may serve every client of a night (one per reader thread): it only keeps
    the last budget seen, under a lock."""

    def __init__(self, source: str, *, token_from: str = "its token setting") -> None:
        self.source = source
        self.token_from = token_from  # where the token is stored, for the 401's message
        self._lock = threading.Lock()
        self._budget = RateBudget()

    @property
    def budget(self) -> RateBudget:
        with self._lock:
            return self._budget

    def failure(self, response: requests.Response, body: bytes) -> Failure | None:
        self._record(response)
        if response.status_code == 429:
            return self._rate_limited(response, _body(body))
        if response.status_code == 401:
            return Failure(
                f"HTTP 401 {_body(body).get('category') or 'unauthorized'}: HubSpot refused the "
                f"token of source {self.source!r} (revoked, rotated or mistyped): store the "
                f"private app's current access token in {self.token_from} and rerun",
                retryable=False,
                status=401,
            )
        if response.status_code == 403:
            document = _body(body)
            if document.get("category") == "MISSING_SCOPES":
                return self._missing_scopes(document)
        return None

    def pause(self, response: requests.Response) -> float:
        """The rest of the burst window when the last response spent its last request."""
        if _int(response, BURST_REMAINING) == 0:
            return self._interval(response)
        return 0.0

    # ----------------------------------------------------------------------------------

    def _record(self, response: requests.Response) -> None:
        if BURST_MAX not in response.headers and DAILY not in response.headers:
            return  # search responses carry no rate headers: keep the last budget seen
        interval = _int(response, INTERVAL)
        budget = RateBudget(
            daily=_int(response, DAILY),
            daily_remaining=_int(response, DAILY_REMAINING),
            burst=_int(response, BURST_MAX),
            burst_remaining=_int(response, BURST_REMAINING),
            interval_seconds=interval / 1000 if interval else None,
        )
        with self._lock:
            self._budget = budget

    @staticmethod
    def _interval(response: requests.Response) -> float:
        interval = _int(response, INTERVAL)
        return interval / 1000 if interval and interval > 0 else BURST_WINDOW_SECONDS

    def _rate_limited(self, response: requests.Response, document: dict) -> Failure | None:
        policy = str(document.get("policyName") or "").upper()
        if policy == "DAILY":
            daily = _int(response, DAILY)
            limit = f" of {daily:,} requests" if daily else ""
            return Failure(
                f"HTTP 429 (policy DAILY): HubSpot source {self.source!r} has used up the "
                f"account's daily API limit{limit}. It resets at midnight in the HubSpot "
                "account's time zone (python -m night.check_source shows it): rerun the night "
                "after that; if other integrations share the account's limit, give this one "
                "the night hours or buy HubSpot's API limit increase",
                retryable=False,
                status=429,
            )
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if "TEN_SECONDLY" in policy:
            wait = retry_after if retry_after is not None else self._interval(response)
            return Failure(
                f"HTTP 429 (policy {policy}): the burst limit of "
                f"{_int(response, BURST_MAX) or 'its'} requests per {wait:g}s window is spent",
                retryable=True,
                status=429,
                retry_after=wait,
            )
        if policy == "SECONDLY":
            wait = retry_after if retry_after is not None else SECONDLY_WAIT_SECONDS
            return Failure(
                "HTTP 429 (policy SECONDLY): the search endpoints' per-second limit is spent",
                retryable=True,
                status=429,
                retry_after=wait,
            )
        return None  # an unknown policy: the generic 429 rules (Retry-After or backoff)

    def _missing_scopes(self, document: dict) -> Failure:
        scopes = required_scopes(document)
        named = ", ".join(scopes) if scopes else "(HubSpot named none)"
        return Failure(
            f"HTTP 403 MISSING_SCOPES: the token of HubSpot source {self.source!r} lacks the "
            f"scope(s) {named}; add them to its private app (Development > Legacy apps > the "
            "app > Scopes; a service key: Development > Keys) and, if the token changed, "
            "store the new one; then rerun",
            retryable=False,
            status=403,
        )
