"""The one HTTP client every API connector uses: timeouts, retries, a deadline, no leaked tokens.

Retry policy (see HttpClient.request): 429, 5xx, connection errors, read timeouts and bodies
that are not valid JSON (a transfer cut off mid-document) are retried with capped exponential
backoff and full jitter, or after exactly the server's `Retry-After` when it sends one; any
other 4xx (and 3xx: redirects are not followed, so a token never travels to another URL)
fails at once. Every failure raises HttpError naming the request (method, path, query) with
secrets replaced by `***` (extract/redaction.py).

HttpClient.request reads as its steps: the time left before the deadline, one attempt
(`_attempt`: send, read the body, `_interpret` the status and JSON), then `_retry_wait`:
give up, or the wait before the next attempt.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests
import requests.auth

from extract.redaction import REDACTED, SECRET_PARAM, guard_library_logs, redact

log = logging.getLogger(__name__)

USER_AGENT = "crm-funnel-warehouse/0.1 (+requests)"

BODY_EXCERPT_CHARS = 300
# Enough of an error body to hold the excerpt and any token crossing its end.
_EXCERPT_SCAN_BYTES = 64 * 1024
# A single body is read in chunks so that the deadline also bounds a server trickling bytes.
_CHUNK_BYTES = 64 * 1024


class HttpError(RuntimeError):
    """A request failed for good; the message names the request and why, never a secret."""

    def __init__(self, message: str, *, request: str, status: int | None = None) -> None:
        super().__init__(message)
        self.request = request  # redacted "METHOD /path?query"
        self.status = status


class BudgetSpent(HttpError):
    """The API's allowance for the period (a day's requests or tokens) is used up: no retry
    within the night can help. A connector that loads in committed chunks may stop here,
    keep what it merged, and continue on the next night."""


class BearerAuth(requests.auth.AuthBase):
    """`Authorization: Bearer <token>` (HubSpot private apps, Salesforce OAuth access tokens)."""

    def __init__(self, token: str) -> None:
        if not token:
            raise ValueError("BearerAuth needs a non-empty token")
        self._token = token

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = f"Bearer {self._token}"
        return r

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values to scrub from any message or log line this client produces."""
        return (self._token,)

    def __repr__(self) -> str:
        return f"BearerAuth(token={REDACTED!r})"


class QueryTokenAuth(requests.auth.AuthBase):
    """The token as a query parameter (Pipedrive's `api_token`)."""

    def __init__(self, param: str, token: str) -> None:
        if not param or not token:
            raise ValueError("QueryTokenAuth needs a parameter name and a non-empty token")
        self.param = param
        self._token = token

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.prepare_url(r.url, {self.param: self._token})
        return r

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values to scrub from any message or log line this client produces."""
        return (self._token,)

    def __repr__(self) -> str:
        return f"QueryTokenAuth(param={self.param!r}, token={REDACTED!r})"


@dataclass(frozen=True)
class Failure:
    """Why one attempt failed, whether another attempt may help, and the server's wait if any."""

    reason: str
    retryable: bool
    status: int | None = None
    retry_after: float | None = None
    budget_spent: bool = False  # the period's allowance is used up (raised as BudgetSpent)


class ResponsePolicy:
    """One API's own reading of its responses, consulted before the generic rules.

    The generic rules (module docstring) fit every API; what an API signals its own way is
    read by a subclass in its connector: a rate-limit policy named in a 429 body, a missing
    scope in a 403, a burst budget in response headers.
    """

    def failure(self, response: requests.Response, body: bytes) -> Failure | None:
        """This API's failure for a response (any status), or None to apply the generic rules."""
        return None

    def pause(self, response: requests.Response) -> float:
        """Seconds to wait before this client's next request (0: none), e.g. when the
        response's headers say the rate budget is nearly spent."""
        return 0.0


GENERIC = ResponsePolicy()


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait per a `Retry-After` header (delta-seconds or HTTP-date); None if unusable."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # RFC 9110 dates are GMT; a naive parse means "assume UTC"
            when = when.replace(tzinfo=UTC)
        # An HTTP-date is wall-clock by definition; this is the one place the wall clock is read.
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


class HttpClient:
    """A requests session bound to one API's base URL, with timeouts, retries and a deadline.

    One client per thread (requests.Session is not thread-safe). `deadline` is an absolute
    time.monotonic() value for the whole extraction: no wait or read runs past it.
    """

    def __init__(
        self,
        base_url: str,
        *,
        auth: requests.auth.AuthBase | None,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        max_retries: int = 5,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        deadline: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        headers: Mapping[str, str] | None = None,
        policy: ResponsePolicy = GENERIC,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
        if max_retries < 0 or connect_timeout <= 0 or read_timeout <= 0:
            raise ValueError("max_retries must be >= 0 and timeouts > 0")
        self.base_url = base_url.rstrip("/")
        self._origin = (parts.scheme, parts.netloc)
        self.auth = auth
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.deadline = deadline
        self._sleep = sleep
        self._rng = rng if rng is not None else random.Random()
        self.policy = policy
        self._pause_due = 0.0
        self._secret_params = {auth.param} if isinstance(auth, QueryTokenAuth) else set()
        guard_library_logs(self._secrets)
        self.session = requests.Session()
        self.session.headers.update(
            {"Accept": "application/json", "User-Agent": USER_AGENT, **(headers or {})}
        )

    @property
    def _secrets(self) -> tuple[str, ...]:
        # Read each time: an auth that refreshes its token (see `request`) has new secrets.
        return tuple(getattr(self.auth, "secrets", ()) or ())

    def __repr__(self) -> str:
        return f"HttpClient({self.base_url!r}, auth={self.auth!r})"

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release pooled connections."""
        self.session.close()

    def get(self, path_or_url: str, params: Mapping[str, Any] | None = None) -> dict:
        """GET a path under base_url (or a same-origin absolute URL, e.g. a next link) as JSON."""
        return self.request("GET", path_or_url, params=params)

    def post(self, path: str, json: Any = None) -> dict:
        """POST a JSON body (e.g. a search query) and return the JSON response."""
        return self.request("POST", path, json_body=json)

    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
    ) -> dict:
        """Send one logical request, retrying transient failures; return the JSON object.

        A 401 when the auth can `refresh()` (an expired OAuth session) re-authenticates once
        and sends the request again; a second 401 is final.
        """
        url = self._url(method, path_or_url)
        described = self.describe(method, url, params)
        self._pause(described)
        attempts = 0
        refreshed = False
        while True:
            remaining = self._time_left(described, attempts)
            attempts += 1
            outcome = self._attempt(method, url, params, json_body, remaining)
            if not isinstance(outcome, Failure):
                return outcome
            if outcome.status == 401 and not refreshed and hasattr(self.auth, "refresh"):
                log.warning("%s: %s; re-authenticating once", described, outcome.reason)
                self.auth.refresh()
                guard_library_logs(self._secrets)
                refreshed = True
                continue
            self._sleep(self._retry_wait(described, outcome, attempts))

    def _time_left(self, described: str, attempts: int) -> float | None:
        """Seconds left before the deadline (None: no deadline); raise once it has passed."""
        remaining = self._remaining()
        if remaining is not None and remaining <= 0:
            raise HttpError(
                f"{described}: the extraction deadline has passed"
                + (f" (after {attempts} attempt(s))" if attempts else ""),
                request=described,
            )
        return remaining

    def _retry_wait(self, described: str, outcome: Failure, attempts: int) -> float:
        """The wait before the next attempt; raise when the failure is final, the retries
        are spent, or the wait would pass the deadline."""
        if not outcome.retryable:
            raise (BudgetSpent if outcome.budget_spent else HttpError)(
                f"{described} failed: {outcome.reason}",
                request=described,
                status=outcome.status,
            )
        if attempts > self.max_retries:
            raise HttpError(
                f"{described} failed after {attempts} attempt{'s' * (attempts > 1)}: "
                f"{outcome.reason}",
                request=described,
                status=outcome.status,
            )
        wait = self._wait(attempts, outcome.retry_after)
        remaining = self._remaining()
        if remaining is not None and wait >= remaining:
            # Waiting past the deadline (or retrying before the server allows) cannot help.
            raise HttpError(
                f"{described} failed: {outcome.reason}; the next attempt in {wait:.1f}s "
                f"would pass the extraction deadline ({max(remaining, 0):.1f}s left)",
                request=described,
                status=outcome.status,
            )
        log.warning(
            "%s: %s; retry %d of %d in %.2fs",
            described,
            outcome.reason,
            attempts,
            self.max_retries,
            wait,
        )
        return wait

    def describe(self, method: str, url: str, params: Mapping[str, Any] | None = None) -> str:
        """`METHOD /path?query` for messages: no host, secret params and tokens as `***`."""
        split = urlsplit(url)
        pairs = parse_qsl(split.query, keep_blank_values=True)
        for key, value in (params or {}).items():
            values = value if isinstance(value, list | tuple) else [value]
            pairs.extend((key, str(v)) for v in values if v is not None)
        query = "&".join(f"{k}={REDACTED if self._is_secret_param(k) else v}" for k, v in pairs)
        return self._redact(f"{method} {split.path or '/'}" + (f"?{query}" if query else ""))

    def _is_secret_param(self, name: str) -> bool:
        return name in self._secret_params or bool(SECRET_PARAM.search(name))

    def _redact(self, text: str) -> str:
        return redact(text, self._secrets)

    def _url(self, method: str, path_or_url: str) -> str:
        if "://" not in path_or_url:
            return f"{self.base_url}/{path_or_url.lstrip('/')}"
        split = urlsplit(path_or_url)
        if (split.scheme, split.netloc) != self._origin:
            # Next links come from the server; the token must never follow one off-site.
            raise HttpError(
                f"refusing to send credentials to {split.scheme}://{split.netloc}: "
                f"not the API's origin {self._origin[0]}://{self._origin[1]}",
                request=self.describe(method, path_or_url),
            )
        return path_or_url

    def _remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()

    def _wait(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return retry_after
        # Full jitter: spreads retries of parallel tasks instead of synchronising them.
        ceiling = min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1))
        return self._rng.uniform(0, ceiling)

    def _attempt(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        json_body: Any,
        remaining: float | None,
    ) -> dict | Failure:
        read_timeout = self.read_timeout if remaining is None else min(self.read_timeout, remaining)
        connect_timeout = (
            self.connect_timeout if remaining is None else min(self.connect_timeout, remaining)
        )
        deadline_bound = remaining is not None and remaining < self.read_timeout
        try:
            with self.session.request(
                method,
                url,
                params=params,
                json=json_body,
                auth=self.auth,
                timeout=(connect_timeout, read_timeout),
                allow_redirects=False,
                stream=True,
            ) as response:
                body = self._read_body(response)
        except requests.exceptions.ConnectTimeout:
            return Failure(f"connect timed out after {connect_timeout:.1f}s", retryable=True)
        except requests.exceptions.ReadTimeout:
            why = " (cut to the extraction deadline)" if deadline_bound else ""
            return Failure(f"read timed out after {read_timeout:.1f}s{why}", retryable=True)
        except requests.exceptions.SSLError as exc:
            # A certificate problem does not fix itself between retries.
            return Failure(f"TLS error: {self._short(exc)}", retryable=False)
        except (
            requests.exceptions.ConnectionError,
            requests.exceptions.ContentDecodingError,
        ) as exc:
            # requests wraps urllib3's reason in "Max retries exceeded" (urllib3 does no
            # retries here); the reason alone is what a reader needs.
            inner = exc.args[0] if exc.args else None
            cause = getattr(inner, "reason", None) or exc
            return Failure(f"connection error: {self._short(cause)}", retryable=True)
        except _BodyFailed as exc:
            return Failure(str(exc), retryable=True)
        except requests.exceptions.RequestException as exc:
            return Failure(f"{type(exc).__name__}: {self._short(exc)}", retryable=False)
        own = self.policy.failure(response, body)
        if own is not None:
            return own
        outcome = self._interpret(response, body)
        if not isinstance(outcome, Failure):
            self._pause_due = self.policy.pause(response)
        return outcome

    def _pause(self, described: str) -> None:
        """Wait as the API's policy asked after the last response, before this request;
        never past the deadline."""
        seconds, self._pause_due = self._pause_due, 0.0
        if seconds <= 0:
            return
        remaining = self._remaining()
        if remaining is not None and seconds >= remaining:
            raise HttpError(
                f"{described}: the API's rate budget asks for a {seconds:.1f}s pause, past the "
                f"extraction deadline ({max(remaining, 0):.1f}s left)",
                request=described,
            )
        log.info("%s: rate budget nearly spent, pausing %.1fs first", described, seconds)
        self._sleep(seconds)

    def _read_body(self, response: requests.Response) -> bytes:
        chunks = []
        try:
            for chunk in response.iter_content(_CHUNK_BYTES):
                chunks.append(chunk)
                if self.deadline is not None and time.monotonic() > self.deadline:
                    raise _BodyFailed("response body still arriving at the extraction deadline")
        except requests.exceptions.ChunkedEncodingError:
            # urllib3's IncompleteRead repr is unreadable in a task log; say what happened.
            declared = response.headers.get("Content-Length")
            of = f" of the {declared} bytes declared" if declared else ""
            raise _BodyFailed(
                f"HTTP {response.status_code} body cut off: the connection closed before all{of}"
                " arrived"
            ) from None
        return b"".join(chunks)

    def _interpret(self, response: requests.Response, body: bytes) -> dict | Failure:
        status = response.status_code
        if status == 429 or status >= 500:
            return Failure(
                f"HTTP {status}{self._excerpt(body)}",
                retryable=True,
                status=status,
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
            )
        if 300 <= status < 400:
            location = self._redact(response.headers.get("Location", "?"))
            return Failure(
                f"HTTP {status} redirect to {location} (redirects are not followed)",
                retryable=False,
                status=status,
            )
        if status >= 400 or status < 200:
            return Failure(f"HTTP {status}{self._excerpt(body)}", retryable=False, status=status)
        if status == 204:
            return {}
        try:
            document = json.loads(body)
        except ValueError:
            declared = response.headers.get("Content-Length")
            size = f"{len(body)} bytes" + (f" of {declared} declared" if declared else "")
            return Failure(
                f"HTTP {status} body is not valid JSON ({size}, truncated?){self._excerpt(body)}",
                retryable=True,
                status=status,
            )
        if not isinstance(document, dict):
            return Failure(
                f"HTTP {status} body is JSON {type(document).__name__}, expected an object",
                retryable=False,
                status=status,
            )
        return document

    def _excerpt(self, body: bytes) -> str:
        if not body:
            return ""
        # Redact, then cut: a cut first could leave a token's head that no longer matches it.
        text = self._redact(body[:_EXCERPT_SCAN_BYTES].decode("utf-8", errors="replace"))
        text = " ".join(text.split())  # one line in the task log
        if len(text) > BODY_EXCERPT_CHARS:
            text = text[:BODY_EXCERPT_CHARS] + "..."
        return f": {text}"

    def _short(self, exc: BaseException) -> str:
        return self._redact(str(exc))[:BODY_EXCERPT_CHARS]


class _BodyFailed(Exception):
    """The body was cut off, or the deadline passed while it was still streaming in."""
