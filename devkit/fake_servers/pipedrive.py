"""A local fake Pipedrive API serving a SampleDataset, for connector tests and the demo.

Endpoints (GET only: the subset the Pipedrive connector reads; see ENDPOINTS):

- `/api/v2/deals` (archived deals left out, as since July 2025) and `/api/v2/deals/archived`
  (only those): cursor paged (`limit` default 100, max 500; `cursor`;
  `additional_data.next_cursor`, null on the last page); filters `status` (comma list of
  open, won, lost, deleted), `updated_since` / `updated_until` (whole-second RFC 3339,
  since inclusive, until exclusive), `sort_by` (id, update_time, add_time), `sort_direction`.
- `/api/v2/activities`: cursor paged; `deal_id`, `done`, `updated_since`, `updated_until`,
  `sort_by` (id, update_time, add_time, due_date), `sort_direction`.
- `/api/v2/stages` (`pipeline_id`, `sort_by` incl. order_nr), `/api/v2/pipelines`,
  `/api/v2/dealFields` (the `channel` field's options name the lead sources): cursor paged.
- `/v1/users` (also `/api/v1/users`): every user, no paging, v1 timestamps.
- `/v1/users/me` (also `/api/v1/users/me`): the token's user and company (`TokenUser`).
- `/v1/deals/summary` (also `/api/v1/...`): `status`; `total_count` and values by currency.
- `/v1/deals/{id}/flow` (also `/api/v1/...`): v1 offset paging (`start`, `limit` default 100,
  capped at 500, `additional_data.pagination.more_items_in_collection` / `next_start`),
  newest first, `items` filter. `dealChange` entries carry `old_value` / `new_value` as
  strings: one `add_time` entry (old_value null) at the deal's creation, one `stage_id` entry
  per later stage change, one `status` entry when the deal was won or lost; `activity`
  entries too, unless `items` leaves them out.

Auth: the `api_token` query parameter or the `x-api-token` header; anything else gets the
real gateway 401 body. Errors use Pipedrive's envelope
`{"success": false, "error": ..., "error_info": ..., "data": null, "additional_data": null}`.

Id mapping (deterministic, documented in docs/fake_servers/pipedrive.md): a canonical id's
trailing digits are the Pipedrive id (deal `D0000042` -> 42, activity `A000004200` -> 4200,
user `U1003` -> 1003, company `C100067` -> org 100067). Pipelines get ids 1.. and stages
global ids 1.. in the order of sample_data.PIPELINES, each pipeline's stages followed by its
won and lost stage (the canonical data records won / lost as stages, so the fake account has
them as the last stages of each pipeline); names the generator does not know are appended.
Lead sources are the options (ids 1..) of the `channel` ("Source channel") deal field.

Simplified versus the real API: only the parameters above (any other query parameter is a
400 naming it, so a connector cannot silently rely on a filter the fake ignores); no
persons / organizations endpoints (`org_id` is just the number); deleted deals stay listable
with `status=deleted` forever (no 30-day purge); deals are archived only when asked
(`Account.archive_closed_before`, served by `/api/v2/deals/archived`); activities of a deleted
deal stay listed; a user's name is the name on the user's most recently updated deal, so a
name that changed over time (the generator renames one owner) has one current value, as in a
real CRM; no rate limiting unless `rate_limits` (a RateLimits budget: the daily token budget,
the burst window, Pipedrive's rate headers and 429s) is given or a fault is queued.

What the API cannot carry of a canonical dataset: a deal without stage history (the change
log always starts with the creation entry, in the deal's stage at creation, here its
current one: the deal enters that stage at creation); the order of two stage changes in one
second beyond their timestamps (the flow is served in dataset order).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import math
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from devkit.fake_servers.base import FakeApiServer, Request, Response
from devkit.fake_servers.cli import serve
from devkit.fake_servers.dataset import SampleDataset
from devkit.sample_data import LEAD_SOURCE_CHANNELS, OWNERS, PIPELINES
from extract.sources.pipedrive_policy import TOKEN_COSTS

ERROR_INFO = "Please check developers.pipedrive.com"
# The gateway's answer to a missing or wrong token, as the live API gives it.
UNAUTHORIZED_BODY = {
    "success": False,
    "error": "unauthorized access",
    "errorCode": 401,
    "error_info": ERROR_INFO,
}
V2_DEFAULT_LIMIT = 100
V2_MAX_LIMIT = 500
V1_DEFAULT_LIMIT = 100
V1_MAX_LIMIT = 500
# When the fake account's settings (pipelines, stages, fields) were created.
SETTINGS_TIME = "2023-12-01T09:00:00Z"

_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
_RFC3339_SECONDS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(Z|[+-]\d{2}:\d{2})")
_CANONICAL_ID = re.compile(r"([^\d]*)(\d+)")


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class ApiError(Exception):
    """An answer other than 200, with Pipedrive's error body."""

    def __init__(self, status: int, body: dict) -> None:
        super().__init__(body.get("error"))
        self.status = status
        self.body = body


def error_body(message: str, **extra: Any) -> dict:
    """Pipedrive's error envelope (also handy as a Fault body, e.g. for a 429)."""
    return {
        "success": False,
        "error": message,
        "error_info": ERROR_INFO,
        "data": None,
        "additional_data": None,
        **extra,
    }


# --------------------------------------------------------------------------------------------
# Rate limits: the company's daily token budget and the token's burst limit
# --------------------------------------------------------------------------------------------

# The live API publishes no 429 body; these are the error envelope with the words the
# connector's policy reads (a daily-budget 429 also says so in its headers).
BURST_BODY = {
    "success": False,
    "error": "Request over limit",
    "errorCode": 429,
    "error_info": ERROR_INFO,
}
DAILY_BODY = {
    "success": False,
    "error": "Daily API token budget exceeded",
    "errorCode": 429,
    "error_info": ERROR_INFO,
}


@dataclass
class RateLimits:
    """A company's API budget (build_server's `rate_limits`), as a Lite company of one seat
    has it by default: `daily_tokens` a day (`used_today` spent already; each request costs
    its route's `TOKEN_COSTS`) and `burst` requests per `window_seconds` window per token (a
    window opens with its first request, and all of its requests are free again when it
    ends: the docs' example shows `x-ratelimit-reset: 2` right after a request).

    Every authenticated response carries `x-ratelimit-limit`, `x-ratelimit-remaining`,
    `x-ratelimit-reset` (seconds until the window ends) and
    `x-daily-ratelimit-token-limit` / `-remaining`. A request whose cost exceeds the tokens
    left gets a 429 with `DAILY_BODY` (tokens left 0 in its headers from then on, as the
    company is blocked until the reset); one over the burst a 429 with `BURST_BODY` and
    `Retry-After`. Refused requests spend nothing."""

    burst: int = 20
    window_seconds: float = 2.0
    daily_tokens: int = 30_000
    used_today: int = 0
    requests_served: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._window_start: float | None = None
        self._in_window = 0
        self._blocked = False

    def new_day(self) -> None:
        """The daily budget resets (Pipedrive: at midnight, its server time)."""
        with self._lock:
            self.used_today, self._blocked = 0, False

    def take(self, route: str) -> tuple[dict[str, str], Response | None]:
        """Count one request to `route`: its rate headers, and the 429 if over a limit."""
        # The published costs, the connector's own table (other routes: a v2 list's 10).
        cost = TOKEN_COSTS.get(route, 10)
        with self._lock:
            now = time.monotonic()
            if self._window_start is None or now - self._window_start >= self.window_seconds:
                self._window_start, self._in_window = now, 0
            body = None
            if self._blocked or self.daily_tokens - self.used_today < cost:
                self._blocked = True
                body = DAILY_BODY
            elif self._in_window >= self.burst:
                body = BURST_BODY
            else:
                self.used_today += cost
                self.requests_served += 1
                self._in_window += 1
            headers = self._headers(now)
        if body is None:
            return headers, None
        if body is BURST_BODY:
            headers = {**headers, "Retry-After": headers["x-ratelimit-reset"]}
        return headers, (429, headers, body)

    def _headers(self, now: float) -> dict[str, str]:
        left = max(self.burst - self._in_window, 0)
        start = self._window_start if self._window_start is not None else now
        reset = self.window_seconds - (now - start)
        # Whole seconds as the live API sends them; a test's sub-second window in ms.
        shown = math.ceil(reset) if self.window_seconds >= 1 else math.ceil(reset * 1000) / 1000
        return {
            "x-ratelimit-limit": str(self.burst),
            "x-ratelimit-remaining": str(left),
            "x-ratelimit-reset": f"{shown:g}",
            "x-daily-ratelimit-token-limit": str(self.daily_tokens),
            "x-daily-ratelimit-token-remaining": str(
                0 if self._blocked else max(self.daily_tokens - self.used_today, 0)
            ),
        }


def _invalid(param: str, reason: str) -> ApiError:
    # v2 input validation failures carry this code; the message names the parameter.
    return ApiError(
        400,
        error_body(f"Validation failed: {param}: {reason}", code="ERR_SCHEMA_VALIDATION_FAILED"),
    )


# --------------------------------------------------------------------------------------------
# Ids and timestamps
# --------------------------------------------------------------------------------------------


def pipedrive_id(canonical: str) -> int:
    """The Pipedrive id of a canonical id: its trailing digits (`D0000042` -> 42)."""
    match = _CANONICAL_ID.fullmatch(canonical or "")
    if match is None:
        raise ValueError(f"canonical id {canonical!r} does not end in digits")
    return int(match.group(2))


@dataclass(frozen=True)
class IdScheme:
    """How one table's canonical ids are spelt, so a Pipedrive id maps back to one."""

    prefix: str
    width: int  # zero-padded width of the digits (1: not padded)

    @classmethod
    def detect(cls, table: str, ids: Iterable[str]) -> IdScheme:
        """The single scheme all `ids` follow; ValueError naming the table otherwise."""
        prefixes, lengths, padded = set(), set(), False
        for canonical in ids:
            match = _CANONICAL_ID.fullmatch(canonical or "")
            if match is None:
                raise ValueError(f"{table}: id {canonical!r} does not end in digits")
            prefix, digits = match.groups()
            prefixes.add(prefix)
            lengths.add(len(digits))
            padded = padded or (digits.startswith("0") and len(digits) > 1)
        if len(prefixes) > 1 or (padded and len(lengths) > 1):
            raise ValueError(
                f"{table}: ids are not spelt one way ({sorted(prefixes)}, digits "
                f"{sorted(lengths)} long); cannot map them"
            )
        return cls(prefixes.pop() if prefixes else "", lengths.pop() if padded else 1)

    @property
    def sorts_as_text(self) -> bool:
        """True when all ids have one length, so text order is numeric order."""
        return self.width > 1

    def canonical(self, number: int) -> str:
        return f"{self.prefix}{number:0{self.width}d}"


def _rfc3339(value: str | None) -> str | None:
    """A dataset timestamp as the v2 API writes it (`2024-01-01T09:00:00Z`)."""
    if not value:
        return None
    at = datetime.fromisoformat(value)
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _v1_time(value: str | None) -> str | None:
    """A dataset timestamp as v1 writes it (`2024-01-01 09:00:00`, UTC)."""
    iso = _rfc3339(value)
    return f"{iso[:10]} {iso[11:19]}" if iso else None


def _since_param(request: Request, name: str) -> str | None:
    """`updated_since` / `updated_until` as a dataset timestamp; whole seconds, as Pipedrive."""
    raw = request.param(name)
    if raw is None:
        return None
    if not _RFC3339_SECONDS.fullmatch(raw):
        raise _invalid(name, f"{raw!r} is not a valid datetime (RFC 3339, whole seconds)")
    return _rfc3339(raw)


# --------------------------------------------------------------------------------------------
# Cursors: opaque to clients, validated here (base64 of the first item of the next page)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cursor:
    value: Any  # the sort field's value of the first item of the next page
    id: int


def encode_cursor(sort_by: str, value: Any, direction: str, item_id: int) -> str:
    """A cursor shaped like Pipedrive's: unpadded base64 of a small JSON object."""
    doc = {"field": sort_by, "fieldValue": value, "sortDirection": direction, "id": item_id}
    raw = json.dumps(doc, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(raw: str, sort_by: str, direction: str) -> Cursor:
    """The cursor's position; a 400 unless it is one this server made for the same sort."""
    try:
        padded = raw + "=" * (-len(raw) % 4)
        doc = json.loads(base64.b64decode(padded, altchars=b"-_", validate=True))
    except (ValueError, UnicodeError, binascii.Error):
        raise _invalid("cursor", "Invalid cursor") from None
    if not isinstance(doc, dict) or set(doc) != {"field", "fieldValue", "sortDirection", "id"}:
        raise _invalid("cursor", "Invalid cursor")
    item_id, value = doc["id"], doc["fieldValue"]
    if doc["field"] != sort_by or doc["sortDirection"] != direction or not _is_count(item_id):
        raise _invalid("cursor", "Invalid cursor")
    if sort_by == "id":
        valid = value == item_id
    elif sort_by == "order_nr":
        valid = _is_count(value)
    else:
        valid = isinstance(value, str) and _TIMESTAMP.fullmatch(value) is not None
    if not valid:
        raise _invalid("cursor", "Invalid cursor")
    return Cursor(value, item_id)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


# --------------------------------------------------------------------------------------------
# The fake account's settings: pipelines, stages, lead-source channel options
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stage:
    id: int
    name: str
    pipeline_id: int
    order_nr: int
    deal_probability: int


class Catalogue:
    """Pipelines, stages and channel options with stable ids; an unknown name gets the next id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.pipelines: dict[str, int] = {}
        self.stages: dict[tuple[str, str], Stage] = {}
        self.channels: dict[str, int] = {}

    @classmethod
    def build(cls, dataset: SampleDataset) -> Catalogue:
        """The generator's pipelines and lead sources first, then any other name in the data."""
        catalogue = cls()
        for pipeline in PIPELINES:
            for name, _, probability in pipeline.stage_mapping():
                catalogue.stage(pipeline.name, name, round(probability * 100))
        for label in LEAD_SOURCE_CHANNELS:
            catalogue.channel(label)
        used = dataset.rows(
            """select distinct pipeline, stage from deals
               union
               select distinct d.pipeline, h.stage
               from stage_history as h join deals as d using (deal_id)
               order by 1, 2"""
        )
        for row in used:
            catalogue.stage(row["pipeline"], row["stage"])
        for row in dataset.rows("select distinct lead_source from deals order by 1"):
            catalogue.channel(row["lead_source"])
        return catalogue

    def stage(self, pipeline: str, name: str, probability: int = 0) -> Stage:
        """The stage `name` of `pipeline`, created (last in its pipeline) if new."""
        with self._lock:
            found = self.stages.get((pipeline, name))
            if found is None:
                pipeline_id = self.pipelines.setdefault(pipeline, len(self.pipelines) + 1)
                order_nr = 1 + sum(s.pipeline_id == pipeline_id for s in self.stages.values())
                found = Stage(len(self.stages) + 1, name, pipeline_id, order_nr, probability)
                self.stages[(pipeline, name)] = found
            return found

    def channel(self, label: str | None) -> int | None:
        """The channel option id of a lead source (None when the deal has none)."""
        if not label:
            return None
        with self._lock:
            return self.channels.setdefault(label, len(self.channels) + 1)

    def snapshot(self) -> tuple[dict[str, int], list[Stage], dict[str, int]]:
        with self._lock:
            return dict(self.pipelines), list(self.stages.values()), dict(self.channels)


# --------------------------------------------------------------------------------------------
# Request parsing
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Paging:
    limit: int
    sort_by: str
    direction: str
    cursor: Cursor | None


def _v2_paging(request: Request, sort_fields: tuple[str, ...] = ("id",)) -> Paging:
    limit = _int_param(request, "limit", V2_DEFAULT_LIMIT, minimum=1)
    if limit > V2_MAX_LIMIT:
        raise _invalid("limit", f"Must be less than or equal to {V2_MAX_LIMIT}")
    sort_by = request.param("sort_by", sort_fields[0])
    if sort_by not in sort_fields:
        raise _invalid("sort_by", f"Must be one of {', '.join(sort_fields)}")
    direction = request.param("sort_direction", "asc")
    if direction not in ("asc", "desc"):
        raise _invalid("sort_direction", "Must be one of asc, desc")
    raw = request.param("cursor")
    cursor = decode_cursor(raw, sort_by, direction) if raw else None
    return Paging(limit, sort_by, direction, cursor)


def _int_param(request: Request, name: str, default: int | None, *, minimum: int) -> Any:
    raw = request.param(name)
    if raw is None:
        return default
    if not re.fullmatch(r"-?\d{1,18}", raw) or int(raw) < minimum:
        raise _invalid(name, f"Must be an integer >= {minimum}")
    return int(raw)


def _bool_param(request: Request, name: str) -> bool | None:
    raw = request.param(name)
    if raw is None:
        return None
    if raw not in ("true", "false"):
        raise _invalid(name, "Must be true or false")
    return raw == "true"


def _marks(n: int) -> str:
    """SQL placeholders for n values."""
    return ", ".join("?" * n)


def _v2_list(data: list[dict], next_cursor: str | None) -> dict:
    return {"success": True, "data": data, "additional_data": {"next_cursor": next_cursor}}


# --------------------------------------------------------------------------------------------
# Paging over the dataset (keyset: a row changed between two pages is never skipped)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Table:
    name: str
    key: str
    scheme: IdScheme
    sort_columns: Mapping[str, str | None]  # API sort field -> column (None: the id)


@dataclass
class Where:
    clauses: list[str] = field(default_factory=list)
    args: list[Any] = field(default_factory=list)

    def add(self, clause: str, *args: Any) -> None:
        self.clauses.append(clause)
        self.args.extend(args)

    def sql(self) -> str:
        return " and ".join(self.clauses) or "true"


def _dataset_page(
    dataset: SampleDataset, table: Table, where: Where, paging: Paging
) -> tuple[list[dict], str | None]:
    """One page of `table` rows in API order, and the cursor of the next page (or None)."""
    key, column = table.key, table.sort_columns[paging.sort_by]
    direction = paging.direction
    op = ">" if direction == "asc" else "<"
    # Padded ids sort numerically as text (fast); others of one prefix by (length, text).
    if table.scheme.sorts_as_text:
        order = f"{key} {direction}"
        by_id = f"{key} {op}= ?"
    else:
        order = f"length({key}) {direction}, {key} {direction}"
        by_id = f"(length({key}) {op} ? or (length({key}) = ? and {key} {op}= ?))"
    if column:
        order = f"{column} {direction}, {order}"
    where = Where(list(where.clauses), list(where.args))
    if paging.cursor is not None:
        mark = table.scheme.canonical(paging.cursor.id)
        marks = [mark] if table.scheme.sorts_as_text else [len(mark), len(mark), mark]
        if column:
            value = paging.cursor.value
            where.add(f"({column} {op} ? or ({column} = ? and {by_id}))", value, value, *marks)
        else:
            where.add(by_id, *marks)
    rows = dataset.rows(
        f"select * from {table.name} where {where.sql()} order by {order} limit ?",
        [*where.args, paging.limit + 1],
    )
    if len(rows) <= paging.limit:
        return rows, None
    first = rows[paging.limit]
    first_id = pipedrive_id(first[key])
    value = first[column] if column else first_id
    return rows[: paging.limit], encode_cursor(paging.sort_by, value, direction, first_id)


def _memory_page(
    items: list[dict], paging: Paging, id_of: Callable[[dict], int] = lambda item: item["id"]
) -> tuple[list[dict], str | None]:
    """The same keyset paging over a small in-memory list (settings, fields)."""

    def position(item: dict) -> tuple[Any, int]:
        value = id_of(item) if paging.sort_by == "id" else item[paging.sort_by]
        return value, id_of(item)

    descending = paging.direction == "desc"
    ordered = sorted(items, key=position, reverse=descending)
    if paging.cursor is not None:
        mark = (paging.cursor.value, paging.cursor.id)
        ordered = [
            i for i in ordered if (position(i) <= mark if descending else position(i) >= mark)
        ]
    page, rest = ordered[: paging.limit], ordered[paging.limit :]
    if not rest:
        return page, None
    value, first_id = position(rest[0])
    return page, encode_cursor(paging.sort_by, value, paging.direction, first_id)


# --------------------------------------------------------------------------------------------
# The backend every handler reads
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Account:
    """How the fake account keeps its deals, beyond the dataset (build_server's options).

    - `archive_closed_before`: won / lost deals closed before this time (RFC 3339, UTC `Z`)
      and not deleted are archived, as Pipedrive's auto-archiving or a user does: since
      July 2025 they are left out of `/api/v2/deals` and served by `/api/v2/deals/archived`, with
      `is_archived: true` and `archive_time` (here their `updated_at`).
    - `deleted_keep_status`: a deleted deal keeps its last status (open, won, lost) and is
      told apart only by `is_deleted: true` (default: its status reads `deleted`).
    - `flow_next_start`: False leaves `next_start` out of the flow's pagination while
      `more_items_in_collection` is true (the next page then starts after the entries served).
    - `flow_page_cap`: the flow serves at most this many entries a page, whatever `limit`
      asks (a server-side cap below the documented 500).
    """

    archive_closed_before: str | None = None
    deleted_keep_status: bool = False
    flow_next_start: bool = True
    flow_page_cap: int = V1_MAX_LIMIT  # the flow serves at most this many entries a page

    def __post_init__(self) -> None:
        cutoff = self.archive_closed_before
        if cutoff is not None and not _TIMESTAMP.fullmatch(cutoff):
            raise ValueError(f"archive_closed_before: {cutoff!r} is not YYYY-MM-DDTHH:MM:SSZ")

    def is_archived(self, row: dict) -> bool:
        cutoff = self.archive_closed_before
        return (
            cutoff is not None
            and row["deleted_at"] is None
            and row["status"] in ("won", "lost")
            and row["closed_at"] is not None
            and row["closed_at"] < cutoff
        )

    def add_archive_filter(self, where: Where, *, archived: bool) -> None:
        """Deals rows of the live list (archived False) or of the archive (True)."""
        cutoff = self.archive_closed_before
        if cutoff is None:
            if archived:
                where.add("false")
            return
        clause = (
            "(deleted_at is null and status in ('won', 'lost')"
            " and closed_at is not null and closed_at < ?)"
        )
        where.add(clause if archived else f"not {clause}", cutoff)


@dataclass(frozen=True)
class Backend:
    dataset: SampleDataset
    catalogue: Catalogue
    deals: Table
    activities: Table
    account: Account = Account()

    @classmethod
    def build(cls, dataset: SampleDataset, account: Account | None = None) -> Backend:
        _check_timestamps(dataset)
        deal_ids = [r["deal_id"] for r in dataset.rows("select deal_id from deals")]
        activity_ids = [
            r["activity_id"] for r in dataset.rows("select activity_id from activities")
        ]
        for table, ids in (("deals", deal_ids), ("activities", activity_ids)):
            if len({pipedrive_id(i) for i in ids}) != len(ids):
                raise ValueError(f"{table}: two ids share the same digits; cannot map them")
        deals = Table(
            "deals",
            "deal_id",
            IdScheme.detect("deals", deal_ids),
            {"id": None, "update_time": "updated_at", "add_time": "created_at"},
        )
        activities = Table(
            "activities",
            "activity_id",
            IdScheme.detect("activities", activity_ids),
            # An activity is created, done and last updated when it happened.
            {"id": None, "update_time": "occurred_at", "add_time": "occurred_at"}
            | {"due_date": "occurred_at"},
        )
        return cls(dataset, Catalogue.build(dataset), deals, activities, account or Account())


def _check_timestamps(dataset: SampleDataset) -> None:
    # Filters compare timestamps as text, which is right only for one fixed UTC spelling.
    checks = {
        "deals": ("created_at", "updated_at", "closed_at"),
        "stage_history": ("changed_at",),
        "activities": ("occurred_at",),
    }
    for table, columns in checks.items():
        for column in columns:
            bad = dataset.scalar(
                f"select {column} from {table} where {column} is not null "
                f"and not {column} like '____-__-__T__:__:__Z' limit 1"
            )
            if bad is not None:
                raise ValueError(f"{table}.{column}: {bad!r} is not YYYY-MM-DDTHH:MM:SSZ")


# --------------------------------------------------------------------------------------------
# Records as the API gives them
# --------------------------------------------------------------------------------------------


def _value(amount: str | None) -> int | float:
    # Pipedrive has no "no value": a deal without an amount is worth 0.
    if not amount:
        return 0
    number = float(amount)
    return int(number) if number.is_integer() else number


def _org_id(company_id: str | None) -> int | None:
    return pipedrive_id(company_id) if company_id else None


def deal_item(backend: Backend, row: dict, stage_change_time: str | None) -> dict:
    """A v2 deal from a canonical deals row."""
    stage = backend.catalogue.stage(row["pipeline"], row["stage"])
    owner = pipedrive_id(row["owner_id"]) if row["owner_id"] else None
    closed = _rfc3339(row["closed_at"])
    won = closed if row["status"] == "won" else None
    lost = closed if row["status"] == "lost" else None
    archived = backend.account.is_archived(row)
    deleted = row["deleted_at"] is not None
    return {
        "id": pipedrive_id(row["deal_id"]),
        "title": row["deal_name"],
        "creator_user_id": owner,
        "owner_id": owner,
        "person_id": None,
        "org_id": _org_id(row["company_id"]),
        "pipeline_id": stage.pipeline_id,
        "stage_id": stage.id,
        "value": _value(row["amount"]),
        "currency": row["currency"],
        "add_time": _rfc3339(row["created_at"]),
        "update_time": _rfc3339(row["updated_at"]),
        "stage_change_time": _rfc3339(stage_change_time),
        "is_deleted": deleted,
        "is_archived": archived,
        "archive_time": _rfc3339(row["updated_at"]) if archived else None,
        "status": "deleted"
        if deleted and not backend.account.deleted_keep_status
        else row["status"],
        "probability": None,
        "lost_reason": None,
        "visible_to": 3,
        "close_time": closed,
        "won_time": won,
        "lost_time": lost,
        "local_won_date": won[:10] if won else None,
        "local_lost_date": lost[:10] if lost else None,
        "local_close_date": closed[:10] if closed else None,
        "expected_close_date": None,
        "label_ids": [],
        "origin": "ManuallyCreated",
        "origin_id": None,
        "channel": backend.catalogue.channel(row["lead_source"]),
        "channel_id": None,
        "custom_fields": {},
    }


def activity_item(row: dict, org_id: int | None) -> dict:
    """A v2 activity (done, due at the moment it happened) from a canonical activities row."""
    at = _rfc3339(row["occurred_at"])
    owner = pipedrive_id(row["owner_id"]) if row["owner_id"] else None
    return {
        "id": pipedrive_id(row["activity_id"]),
        "subject": row["activity_type"].capitalize() if row["activity_type"] else None,
        "type": row["activity_type"],
        "owner_id": owner,
        "creator_user_id": owner,
        "is_deleted": False,
        "add_time": at,
        "update_time": at,
        "deal_id": pipedrive_id(row["deal_id"]) if row["deal_id"] else None,
        "lead_id": None,
        "person_id": None,
        "org_id": org_id,
        "project_id": None,
        "due_date": at[:10] if at else None,
        "due_time": at[11:19] if at else None,
        "duration": None,
        "busy": False,
        "done": True,
        "marked_as_done_time": at,
        "location": None,
        "participants": [],
        "attendees": None,
        "public_description": None,
        "priority": None,
        "note": None,
    }


def _settings_times() -> dict:
    return {"add_time": SETTINGS_TIME, "update_time": SETTINGS_TIME}


def stage_item(stage: Stage) -> dict:
    return {
        "id": stage.id,
        "order_nr": stage.order_nr,
        "name": stage.name,
        "is_deleted": False,
        "deal_probability": stage.deal_probability,
        "pipeline_id": stage.pipeline_id,
        "is_deal_rot_enabled": False,
        "days_to_rotten": None,
        **_settings_times(),
    }


def pipeline_item(name: str, pipeline_id: int) -> dict:
    return {
        "id": pipeline_id,
        "name": name,
        "order_nr": pipeline_id,
        "is_deleted": False,
        "is_deal_probability_enabled": True,
        **_settings_times(),
    }


def user_item(row: dict) -> dict:
    """A v1 user; the name is the one on the user's most recently updated deal."""
    number = pipedrive_id(row["owner_id"])
    return {
        "id": number,
        "name": row["name"] or _KNOWN_OWNERS.get(row["owner_id"]) or f"User {number}",
        "default_currency": row["currency"] or "USD",
        "locale": "en_US",
        "lang": 1,
        "email": f"user{number}@example.com",
        "phone": None,
        "activated": True,
        "last_login": _v1_time(row["modified"]),
        "created": _v1_time(row["created"] or SETTINGS_TIME),
        "modified": _v1_time(row["modified"] or SETTINGS_TIME),
        "has_created_company": False,
        "access": [{"app": "sales", "admin": False, "permission_set_id": "sales-regular"}],
        "active_flag": True,
        "timezone_name": "UTC",
        "timezone_offset": "+00:00",
        "role_id": 1,
        "icon_url": None,
        "is_you": False,
        "is_deleted": False,
    }


_KNOWN_OWNERS = {owner_id: name for owner_id, name, _ in OWNERS}


# --------------------------------------------------------------------------------------------
# Handlers: (backend, request) -> success body; failures raise ApiError
# --------------------------------------------------------------------------------------------

_DEAL_STATUSES = ("open", "won", "lost", "deleted")


def list_deals(backend: Backend, request: Request, *, archived: bool = False) -> dict:
    """`/api/v2/deals` (archived deals left out) or, `archived`, `/api/v2/deals/archived`."""
    paging = _v2_paging(request, ("id", "update_time", "add_time"))
    where = Where()
    _add_status_filter(where, _deal_statuses(request.param("status")))
    backend.account.add_archive_filter(where, archived=archived)
    _add_time_window(where, request, "updated_at")
    rows, next_cursor = _dataset_page(backend.dataset, backend.deals, where, paging)
    changed = _last_stage_changes(backend.dataset, [r["deal_id"] for r in rows])
    data = [deal_item(backend, r, changed.get(r["deal_id"])) for r in rows]
    return _v2_list(data, next_cursor)


def list_archived_deals(backend: Backend, request: Request) -> dict:
    return list_deals(backend, request, archived=True)


def _deal_statuses(raw: str | None) -> tuple[str, ...]:
    if raw is None:
        return ()
    statuses = tuple(s.strip() for s in raw.split(","))
    for status in statuses:
        if status not in _DEAL_STATUSES:
            raise _invalid(
                "status", f"Must be a comma separated list of {', '.join(_DEAL_STATUSES)}"
            )
    return statuses


def _add_status_filter(where: Where, statuses: tuple[str, ...]) -> None:
    if not statuses:
        where.add("deleted_at is null")  # the default: every deal not deleted
        return
    live = [s for s in statuses if s != "deleted"]
    parts = [f"(deleted_at is null and status in ({_marks(len(live))}))"] if live else []
    if "deleted" in statuses:
        parts.append("deleted_at is not null")
    where.add(f"({' or '.join(parts)})", *live)


def _add_time_window(where: Where, request: Request, column: str) -> None:
    since = _since_param(request, "updated_since")
    until = _since_param(request, "updated_until")
    if since is not None:
        where.add(f"{column} >= ?", since)
    if until is not None:
        where.add(f"{column} < ?", until)


def _last_stage_changes(dataset: SampleDataset, deal_ids: list[str]) -> dict[str, str]:
    if not deal_ids:
        return {}
    rows = dataset.rows(
        f"""select deal_id, max(changed_at) as changed_at from stage_history
            where deal_id in ({_marks(len(deal_ids))}) group by deal_id""",
        deal_ids,
    )
    return {r["deal_id"]: r["changed_at"] for r in rows}


def list_activities(backend: Backend, request: Request) -> dict:
    paging = _v2_paging(request, ("id", "update_time", "add_time", "due_date"))
    where = Where()
    deal_number = _int_param(request, "deal_id", None, minimum=1)
    if deal_number is not None:
        where.add("deal_id = ?", backend.deals.scheme.canonical(deal_number))
    if _bool_param(request, "done") is False:
        where.add("false")  # every activity of the dataset has happened, so is done
    _add_time_window(where, request, "occurred_at")
    rows, next_cursor = _dataset_page(backend.dataset, backend.activities, where, paging)
    orgs = _deal_orgs(backend.dataset, sorted({r["deal_id"] for r in rows if r["deal_id"]}))
    data = [activity_item(r, orgs.get(r["deal_id"])) for r in rows]
    return _v2_list(data, next_cursor)


def _deal_orgs(dataset: SampleDataset, deal_ids: list[str]) -> dict[str, int | None]:
    if not deal_ids:
        return {}
    rows = dataset.rows(
        f"select deal_id, company_id from deals where deal_id in ({_marks(len(deal_ids))})",
        deal_ids,
    )
    return {r["deal_id"]: _org_id(r["company_id"]) for r in rows}


def list_stages(backend: Backend, request: Request) -> dict:
    paging = _v2_paging(request, ("id", "update_time", "add_time", "order_nr"))
    pipeline_id = _int_param(request, "pipeline_id", None, minimum=1)
    _, stages, _ = backend.catalogue.snapshot()
    items = [stage_item(s) for s in stages if pipeline_id in (None, s.pipeline_id)]
    return _v2_list(*_memory_page(items, paging))


def list_pipelines(backend: Backend, request: Request) -> dict:
    paging = _v2_paging(request, ("id", "update_time", "add_time"))
    pipelines, _, _ = backend.catalogue.snapshot()
    items = [pipeline_item(name, pipeline_id) for name, pipeline_id in pipelines.items()]
    return _v2_list(*_memory_page(items, paging))


def list_deal_fields(backend: Backend, request: Request) -> dict:
    paging = _v2_paging(request)
    _, _, channels = backend.catalogue.snapshot()
    options = [{"id": option_id, "label": label} for label, option_id in channels.items()]
    fields = [
        _deal_field("Title", "title", "varchar"),
        _deal_field("Value", "value", "monetary"),
        _deal_field("Source channel", "channel", "enum", options=options),
        _deal_field("Source channel ID", "channel_id", "varchar"),
    ]
    numbered = [{**f, "_position": i} for i, f in enumerate(fields, 1)]
    page, next_cursor = _memory_page(numbered, paging, id_of=lambda f: f["_position"])
    return _v2_list([{k: v for k, v in f.items() if k != "_position"} for f in page], next_cursor)


def _deal_field(name: str, code: str, field_type: str, *, options: list | None = None) -> dict:
    return {
        "field_name": name,
        "field_code": code,
        "description": None,
        "field_type": field_type,
        "options": options,
        "subfields": None,
        "is_custom_field": False,
        "is_optional_response_field": False,
    }


def list_users(backend: Backend, request: Request) -> dict:
    rows = backend.dataset.rows(
        """with deal_owners as (
               select
                   owner_id,
                   arg_max(owner_name, coalesce(updated_at, closed_at, created_at) || deal_id)
                       filter (where owner_name is not null) as name,
                   mode(currency) as currency,
                   min(created_at) as created,
                   max(updated_at) as modified
               from deals where owner_id is not null group by owner_id
           ),
           activity_owners as (
               select distinct owner_id from activities where owner_id is not null
           )
           select owner_id, name, currency, created, modified
           from deal_owners full join activity_owners using (owner_id)
           order by length(owner_id), owner_id"""
    )
    return {"success": True, "data": [user_item(r) for r in rows], "additional_data": None}


@dataclass(frozen=True)
class TokenUser:
    """Whose API token the fake serves (build_server's `token_user`): `/v1/users/me`
    answers with this user of the company. `user_id` None: the first user listed. A
    non-admin's token sees on the live API only what its user may see; here it still sees
    every deal (the preflight only notes the difference)."""

    user_id: int | None = None
    is_admin: bool = True
    company_id: int = 7_000_001
    company_name: str = "Demo Company"
    company_domain: str = "demo-company"


def users_me(backend: Backend, request: Request, who: TokenUser) -> dict:
    """`/v1/users/me`: the token's user with the company it belongs to."""
    users = list_users(backend, request)["data"]
    chosen = next((u for u in users if who.user_id in (None, u["id"])), None)
    if chosen is None:
        raise ApiError(404, error_body("User not found"))
    return {
        "success": True,
        "data": {
            **chosen,
            "is_you": True,
            "is_admin": 1 if who.is_admin else 0,
            "company_id": who.company_id,
            "company_name": who.company_name,
            "company_domain": who.company_domain,
            "company_country": "US",
            "company_industry": None,
            "language": {"language_code": "en", "country_code": "US"},
            "access": [
                {
                    "app": "sales",
                    "admin": who.is_admin,
                    "permission_set_id": "sales-admin" if who.is_admin else "sales-regular",
                }
            ],
        },
    }


def deals_summary(backend: Backend, request: Request) -> dict:
    """`/v1/deals/summary`: every deal not deleted (archived ones too: whether Pipedrive
    counts them is not documented), or those of `status`, counted and summed by currency."""
    status = request.param("status")
    where = Where()
    if status is not None:
        if status not in ("open", "won", "lost"):
            raise _invalid("status", "Must be one of open, won, lost")
        where.add("status = ?", status)
    where.add("deleted_at is null")
    rows = backend.dataset.rows(
        f"""select coalesce(currency, 'USD') as currency, count(*) as n,
                   coalesce(sum(cast(nullif(amount, '') as double)), 0) as total
            from deals where {where.sql()} group by all order by 1""",
        where.args,
    )
    values = {
        r["currency"]: {
            "value": _value(str(r["total"])),
            "count": r["n"],
            "value_converted": _value(str(r["total"])),
            "value_formatted": f"{r['total']:,.0f} {r['currency']}",
            "value_converted_formatted": f"{r['total']:,.0f} {r['currency']}",
        }
        for r in rows
    }
    total = sum(r["total"] for r in rows)
    return {
        "success": True,
        "data": {
            "values_total": values,
            "weighted_values_total": {},
            "total_count": sum(r["n"] for r in rows),
            "total_currency_converted_value": _value(str(total)),
            "total_weighted_currency_converted_value": 0,
            "total_currency_converted_value_formatted": f"{total:,.0f}",
            "total_weighted_currency_converted_value_formatted": "0",
        },
        "additional_data": None,
    }


def deal_flow(backend: Backend, request: Request) -> dict:
    raw_id = request.path_params["id"]
    if not re.fullmatch(r"\d{1,18}", raw_id):
        raise _invalid("id", "Must be an integer")
    deal_id = backend.deals.scheme.canonical(int(raw_id))
    found = backend.dataset.grouped("deals", "deal_id").get(deal_id)
    if not found:
        raise ApiError(404, error_body("Deal not found"))
    start = _int_param(request, "start", 0, minimum=0)
    limit = min(
        _int_param(request, "limit", V1_DEFAULT_LIMIT, minimum=1),
        V1_MAX_LIMIT,
        backend.account.flow_page_cap,
    )
    items = request.param("items")
    wanted = {i.strip() for i in items.split(",")} if items else {"dealChange", "activity"}
    entries = [e for e in _flow_entries(backend, found[0], wanted) if e["object"] in wanted]
    more = start + limit < len(entries)
    pagination: dict[str, Any] = {"start": start, "limit": limit, "more_items_in_collection": more}
    if more and backend.account.flow_next_start:
        pagination["next_start"] = start + limit
    return {
        "success": True,
        "data": entries[start : start + limit],
        "additional_data": {"pagination": pagination},
    }


def _flow_entries(backend: Backend, deal: dict, wanted: set[str]) -> list[dict]:
    """A deal's updates, newest first: its creation, stage moves, won / lost, activities."""
    number = pipedrive_id(deal["deal_id"])
    owner = pipedrive_id(deal["owner_id"]) if deal["owner_id"] else None
    history = backend.dataset.grouped("stage_history", "deal_id", "changed_at, seq").get(
        deal["deal_id"], []
    )
    # (time, field_key, old, new, additional_data), in the order they happened. The creation
    # is logged when the deal entered its first stage (the same moment, for generated data).
    created_at = history[0]["changed_at"] if history else deal["created_at"]
    changes: list[tuple[str, str, str | None, str | None, dict]] = [
        (created_at, "add_time", None, _v1_time(deal["created_at"]), {})
    ]
    stages = [backend.catalogue.stage(deal["pipeline"], h["stage"]) for h in history]
    for before, after, row in zip(stages, stages[1:], history[1:], strict=False):
        formatted = {"old_value_formatted": before.name, "new_value_formatted": after.name}
        changes.append((row["changed_at"], "stage_id", str(before.id), str(after.id), formatted))
    if deal["status"] in ("won", "lost") and deal["closed_at"]:
        changes.append((deal["closed_at"], "status", "open", deal["status"], {}))
    changes.sort(key=lambda change: change[0])  # stable: same-time changes keep their order
    entries = [
        _deal_change(number * 1000 + i, number, owner, *change) for i, change in enumerate(changes)
    ]
    if "activity" in wanted:  # only when asked for (items=activity)
        activities = backend.dataset.grouped("activities", "deal_id").get(deal["deal_id"], [])
        entries += [_activity_entry(a, number) for a in activities]
    entries.sort(key=lambda e: (e["timestamp"], e["data"]["id"]), reverse=True)
    return entries


def _deal_change(
    change_id: int,
    deal_number: int,
    user_id: int | None,
    at: str,
    field_key: str,
    old: str | None,
    new: str | None,
    additional: dict,
) -> dict:
    return {
        "object": "dealChange",
        "timestamp": _v1_time(at),
        "data": {
            "id": change_id,
            "item_id": deal_number,
            "user_id": user_id,
            "field_key": field_key,
            "old_value": old,
            "new_value": new,
            "is_bulk_update_flag": None,
            "log_time": _v1_time(at),
            "change_source": "app",
            "change_source_user_agent": None,
            "additional_data": additional,
        },
    }


def _activity_entry(row: dict, deal_number: int) -> dict:
    at = _v1_time(row["occurred_at"])
    return {
        "object": "activity",
        "timestamp": at,
        "data": {
            "id": pipedrive_id(row["activity_id"]),
            "user_id": pipedrive_id(row["owner_id"]) if row["owner_id"] else None,
            "deal_id": deal_number,
            "type": row["activity_type"],
            "subject": row["activity_type"].capitalize() if row["activity_type"] else None,
            "due_date": at[:10] if at else None,
            "due_time": at[11:16] if at else None,
            "done": True,
            "add_time": at,
            "marked_as_done_time": at,
        },
    }


# --------------------------------------------------------------------------------------------
# The endpoint table and the server
# --------------------------------------------------------------------------------------------

_V2_PAGING = frozenset({"limit", "cursor", "sort_by", "sort_direction"})
_WINDOW = frozenset({"updated_since", "updated_until"})


@dataclass(frozen=True)
class Endpoint:
    """One route: its paths, handler and accepted query parameters (besides the token)."""

    paths: tuple[str, ...]
    handler: Callable[[Backend, Request], dict]
    params: frozenset[str]


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(("/api/v2/deals",), list_deals, _V2_PAGING | _WINDOW | {"status"}),
    Endpoint(("/api/v2/deals/archived",), list_archived_deals, _V2_PAGING | _WINDOW | {"status"}),
    Endpoint(("/api/v2/activities",), list_activities, _V2_PAGING | _WINDOW | {"deal_id", "done"}),
    Endpoint(("/api/v2/stages",), list_stages, _V2_PAGING | {"pipeline_id"}),
    Endpoint(("/api/v2/pipelines",), list_pipelines, _V2_PAGING),
    Endpoint(("/api/v2/dealFields",), list_deal_fields, frozenset({"limit", "cursor"})),
    Endpoint(("/v1/users", "/api/v1/users"), list_users, frozenset()),
    Endpoint(("/v1/deals/summary", "/api/v1/deals/summary"), deals_summary, frozenset({"status"})),
    Endpoint(
        ("/v1/deals/{id}/flow", "/api/v1/deals/{id}/flow"),
        deal_flow,
        frozenset({"start", "limit", "items", "all_changes"}),
    ),
)


def _token_of(request: Request) -> str | None:
    token = request.param("api_token")
    if token is not None:
        return token
    return next((v for k, v in request.headers.items() if k.lower() == "x-api-token"), None)


def _route(
    backend: Backend,
    token: str,
    endpoint: Endpoint,
    limits: RateLimits | None = None,
) -> Callable[[Request], Response]:
    def handle(request: Request) -> Response:
        given = _token_of(request)
        if given is None or not hmac.compare_digest(given.encode(), token.encode()):
            return 401, {}, UNAUTHORIZED_BODY
        headers: dict[str, str] = {}
        try:
            unknown = sorted(set(request.query) - endpoint.params - {"api_token"})
            if unknown:
                raise _invalid(unknown[0], "not supported by the local fake Pipedrive server")
            if limits is not None:
                headers, refused = limits.take(endpoint.paths[0])
                if refused is not None:
                    return refused
            return 200, headers, endpoint.handler(backend, request)
        except ApiError as exc:
            return exc.status, headers, exc.body

    return handle


def build_server(
    dataset: SampleDataset,
    *,
    token: str,
    account: Account | None = None,
    rate_limits: RateLimits | None = None,
    token_user: TokenUser | None = None,
) -> FakeApiServer:
    """A fake Pipedrive API over `dataset` (not started: `with build_server(...) as server:`);
    `account`: archived deals, deleted deals' status, flow paging (see Account);
    `rate_limits`: a daily token budget and a burst limit with Pipedrive's rate headers and
    429s (none by default); `token_user`: whose token it is (`/v1/users/me`)."""
    if not token:
        raise ValueError("the fake Pipedrive server needs a non-empty token")
    backend = Backend.build(dataset, account)
    who = token_user or TokenUser()
    endpoints = (
        *ENDPOINTS,
        Endpoint(
            ("/v1/users/me", "/api/v1/users/me"),
            lambda b, r: users_me(b, r, who),
            frozenset(),
        ),
    )
    routes = {
        ("GET", path): _route(backend, token, endpoint, rate_limits)
        for endpoint in endpoints
        for path in endpoint.paths
    }
    return FakeApiServer(routes)


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Serve the fake Pipedrive API on 127.0.0.1 until Ctrl-C, generating sample data if needed."""
    return serve("Pipedrive", build_server, argv, token_env="PIPEDRIVE_API_TOKEN")


if __name__ == "__main__":
    sys.exit(main())
