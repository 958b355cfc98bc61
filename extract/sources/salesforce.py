"""Salesforce REST API source: opportunities, their stage history (OpportunityHistory), the
opportunity stages, record types (the pipelines), users, accounts, and tasks and events,
landed in raw and merged by key each night.

Three parts, as every API source: the client (extract.http, the OAuth access token as a
Bearer token against the org's instance URL), the objects below (what SOQL reads, keyed how,
windowed on which field), and the night (window, `nextRecordsUrl` paging, merge through
extract.api_load). Field meanings: docs/fake_servers/salesforce.md.

The window of a night is (last high-water mark - lookback, as-of], on SystemModstamp (on
CreatedDate for OpportunityHistory, whose rows never change), read with `queryAll` so that
deleted records come back flagged `IsDeleted` and are dropped in staging. A query locator
fixes the matching records when the query runs but serves each batch with their current
values: a record that changed after the as-of time while the night paged is left out (its
previous version stays in raw) and read by the next night, whose window covers the change,
so a night never holds a version newer than its own as-of time.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import duckdb

from extract.api_load import ApiNight, api_object, watermark
from extract.api_settings import validate_api_settings
from extract.credentials import resolve_token
from extract.file_formats import DATE, NUMBER, TIMESTAMP, Plausible
from extract.http import BearerAuth, HttpClient, HttpError
from extract.pagination import PaginationError, paginate
from extract.warehouse import LoadReport

log = logging.getLogger(__name__)

TYPE = "salesforce"

# Salesforce's own bounds for `Sforce-Query-Options: batchSize` (REST API guide).
MIN_BATCH_SIZE = 200
MAX_BATCH_SIZE = 2000


@dataclass(frozen=True)
class SObject:
    """One object read by SOQL: its raw table, the fields selected, how it is windowed."""

    name: str
    table: str
    fields: tuple[str, ...]
    # The field a night's window filters on; None: a lookup, re-read whole every night.
    window_field: str | None
    where: str = ""

    def soql(self, since: str | None = None, until: str | None = None) -> str:
        conditions = [self.where] if self.where else []
        if since is not None:
            conditions.append(f"{self.window_field} > {since}")
        if until is not None:
            conditions.append(f"{self.window_field} <= {until}")
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        return f"SELECT {', '.join(self.fields)} FROM {self.name}{where}"


def _fields(text: str) -> tuple[str, ...]:
    return tuple(text.split())


OPPORTUNITIES = SObject(
    "Opportunity",
    "salesforce__opportunities",
    _fields("""Id IsDeleted Name RecordTypeId StageName Amount CurrencyIsoCode Probability
        CloseDate IsClosed IsWon ForecastCategoryName OwnerId AccountId LeadSource CreatedDate
        LastModifiedDate SystemModstamp LastStageChangeDate"""),
    "SystemModstamp",
)
# Stage history rows are immutable: each is read once, by the night whose window holds its
# CreatedDate, and merged by its Id (queryAll: rows of a deleted deal are read as well, so a
# deal restored from the recycle bin keeps its history).
# Values checked at the merge (extract.api_load): an opportunity outside any real range is
# quarantined, not left to fail the night's cast in dbt.
TYPED_FIELDS = {
    "salesforce__opportunities": (
        ("Amount", NUMBER),
        ("CloseDate", DATE),
        ("CreatedDate", TIMESTAMP),
        ("LastModifiedDate", TIMESTAMP),
        ("LastStageChangeDate", TIMESTAMP),
    ),
}

HISTORY = SObject(
    "OpportunityHistory",
    "salesforce__opportunity_history",
    _fields("Id IsDeleted OpportunityId StageName Probability CreatedDate SystemModstamp"),
    "CreatedDate",
)
TASKS = SObject(
    "Task",
    "salesforce__tasks",
    _fields("""Id IsDeleted WhatId AccountId OwnerId Subject Type TaskSubtype Status
        ActivityDate CompletedDateTime CreatedDate LastModifiedDate SystemModstamp"""),
    "SystemModstamp",
)
EVENTS = SObject(
    "Event",
    "salesforce__events",
    _fields("""Id IsDeleted WhatId AccountId OwnerId Subject Type ActivityDate ActivityDateTime
        DurationInMinutes CreatedDate LastModifiedDate SystemModstamp"""),
    "SystemModstamp",
)
STAGES = SObject(
    "OpportunityStage",
    "salesforce__opportunity_stages",
    _fields("""Id MasterLabel ApiName IsActive SortOrder IsClosed IsWon DefaultProbability
        ForecastCategoryName"""),
    None,
)
RECORD_TYPES = SObject(
    "RecordType",
    "salesforce__record_types",
    _fields("Id Name DeveloperName BusinessProcessId SobjectType IsActive"),
    None,
    where="SobjectType = 'Opportunity'",
)
USERS = SObject(
    "User",
    "salesforce__users",
    _fields("Id Name FirstName LastName IsActive"),
    None,
)
# Accounts are re-read whole: the marts need only AccountId (on the opportunity), the table
# is there for BI joins, and a whole read also drops deleted and merged accounts.
ACCOUNTS = SObject(
    "Account",
    "salesforce__accounts",
    _fields("Id Name CreatedDate SystemModstamp"),
    None,
)

INCREMENTAL = (OPPORTUNITIES, HISTORY, TASKS, EVENTS)
LOOKUPS = (STAGES, RECORD_TYPES, USERS, ACCOUNTS)
SOBJECTS = (*INCREMENTAL, *LOOKUPS)
RAW_OBJECTS = tuple(api_object(o.table) for o in SOBJECTS)
_OBJECTS = {o.table: obj for o, obj in zip(SOBJECTS, RAW_OBJECTS, strict=True)}

DEFAULTS = {  # besides extract.api_settings.API_DEFAULTS
    "api_version": "v60.0",
    "token_env": "SALESFORCE_ACCESS_TOKEN",
    "page_size": MAX_BATCH_SIZE,
    # A SOQL query over a large object may think for a while before its first byte
    # (Salesforce allows a query 120 s).
    "read_timeout_seconds": 120,
}

_VERSION = re.compile(r"v?(\d{2,3}\.\d)")
_REST_PATH = re.compile(r"/services/data/(v\d{2,3}\.\d)/?")
_SF_DATETIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000")


def validate_settings(settings: dict[str, Any], where: Any) -> dict[str, Any]:
    """Settings: base_url (required, the org's instance URL); api_version (v60.0); the access
    token from `airflow_conn_id` (a connection's password) or `token_env`; lookback_hours,
    full_refresh, page_size (the batch size, 200 to 2000), deadline_minutes, max_pages,
    read_timeout_seconds."""
    out = validate_api_settings(settings, where, DEFAULTS)
    base_url = out["base_url"].rstrip("/")
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
        raise where.error("base_url", f"must be the org's instance URL, got {base_url!r}")
    # The REST root pasted whole (https://x.my.salesforce.com/services/data/v60.0) is fine.
    rest = _REST_PATH.fullmatch(parts.path) if parts.path else None
    if parts.path and rest is None:
        raise where.error(
            "base_url",
            f"must be the org's instance URL (https://<domain>.my.salesforce.com), got "
            f"{base_url!r}",
        )
    version = out["api_version"]
    if _VERSION.fullmatch(version) is None:
        raise where.error("api_version", f"must look like v60.0, got {version!r}")
    version = "v" + version.lstrip("v")
    if rest is not None:
        if "api_version" in settings and rest.group(1) != version:
            raise where.error(
                "api_version", f"{version} contradicts the version in base_url ({rest.group(1)})"
            )
        version = rest.group(1)
    out["base_url"] = f"{parts.scheme}://{parts.netloc}"
    out["api_version"] = version
    if not MIN_BATCH_SIZE <= out["page_size"] <= MAX_BATCH_SIZE:
        raise where.error(
            "page_size",
            f"must be within Salesforce's batch sizes {MIN_BATCH_SIZE}..{MAX_BATCH_SIZE}, "
            f"got {out['page_size']}",
        )
    return out


def _soql_datetime(at: datetime) -> str:
    """A SOQL dateTime literal (UTC, unquoted)."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _sf_datetime(at: datetime) -> str:
    """Salesforce's dateTime text, `2026-01-05T09:00:00.000+0000`, which sorts as it reads."""
    at = at.astimezone(UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}+0000"


def _parse_sf_datetime(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z")


def _comparable(value: Any) -> str | None:
    """A dateTime field's value in the one text form that compares chronologically."""
    if not isinstance(value, str) or not value:
        return None
    if _SF_DATETIME.fullmatch(value):  # what the REST API returns: UTC, milliseconds
        return value
    try:
        return _sf_datetime(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        return None


def _query_pages(client: HttpClient, path: str, soql: str, max_pages: int) -> Iterator[list[dict]]:
    """The records of a SOQL query, a batch at a time, following `nextRecordsUrl`."""
    served = 0
    total: int | None = None

    def fetch(next_url: str | None) -> dict:
        return client.get(next_url) if next_url else client.get(path, {"q": soql})

    def next_url(page: dict) -> str | None:
        nonlocal served, total
        records = page.get("records")
        if not isinstance(records, list):
            raise PaginationError(f"a batch without a records list (keys: {sorted(page)})")
        if total is None and isinstance(page.get("totalSize"), int):
            total = page["totalSize"]
        served += len(records)
        done, following = page.get("done"), page.get("nextRecordsUrl")
        if done is True:
            if following:
                raise PaginationError(
                    f"a batch says done yet carries nextRecordsUrl {following!r}: stopping "
                    "rather than guess whether more records exist"
                )
            return None
        if done is not False:
            raise PaginationError(f"a batch without a done flag (done: {done!r})")
        if not following:
            raise PaginationError(
                f"a batch says not done but has no nextRecordsUrl after {served} of "
                f"{total} records: the rest of the result cannot be read"
            )
        if total is not None and served >= total:
            raise PaginationError(
                f"a next link {following!r} after all {total} records of the result were "
                "served (a next link on the last page)"
            )
        return following

    for page in paginate(fetch, next_url, max_pages=max_pages):
        yield page["records"]
    if total is not None and served < total:
        # `query` leaves out rows deleted while it paged; anything else is worth a look.
        log.warning(
            "%s: %d of totalSize %d records served", soql.split(" WHERE ")[0], served, total
        )


def extract(con: duckdb.DuckDBPyConnection, source: Any, *, as_of: datetime) -> LoadReport:
    """Read each object's window up to the as-of time (from its last high-water mark minus
    the lookback, or everything on a full refresh) and merge it into raw."""
    s = source.settings
    deadline = time.monotonic() + 60 * s["deadline_minutes"]
    until, until_text = _soql_datetime(as_of), _sf_datetime(as_of)
    lookback = timedelta(hours=s["lookback_hours"])
    base = f"/services/data/{s['api_version']}"
    night = ApiNight(con, source.name, Plausible.around(as_of))
    windows: dict[str, str] = {}
    left_for_next_night: dict[str, int] = {}

    with _client(source, deadline) as client:
        for sobject in INCREMENTAL:
            obj = _OBJECTS[sobject.table]
            mark = None if s["full_refresh"] else watermark(con, source.name, sobject.table)
            since = _soql_datetime(_parse_sf_datetime(mark) - lookback) if mark else None
            soql = sobject.soql(since, until)
            windows[sobject.name] = f"({since or '-inf'}, {until}]"
            night.begin(obj, fields=TYPED_FIELDS.get(obj.table, ()))
            field = sobject.window_field
            for records in _read(client, f"{base}/queryAll", soql, sobject, s["max_pages"]):
                # Changed after the as-of time while the night paged: the next night reads it.
                kept = [r for r in records if (_comparable(r.get(field)) or "") <= until_text]
                if len(kept) < len(records):
                    left = left_for_next_night.get(sobject.name, 0) + len(records) - len(kept)
                    left_for_next_night[sobject.name] = left
                night.add(
                    obj,
                    kept,
                    endpoint=f"{base}/queryAll {sobject.name}",
                    record_id=lambda r: r["Id"],
                    cursor_value=lambda r, f=field: _comparable(r.get(f)),
                )

        for sobject in LOOKUPS:
            obj = _OBJECTS[sobject.table]
            night.begin(obj, replace_all=True)
            for records in _read(client, f"{base}/query", sobject.soql(), sobject, s["max_pages"]):
                night.add(
                    obj,
                    records,
                    endpoint=f"{base}/query {sobject.name}",
                    record_id=lambda r: r["Id"],
                )

    if left_for_next_night:
        log.info(
            "%s: records changed after %s while the night read them, left to the next night: %s",
            source.name,
            until,
            left_for_next_night,
        )
    report = LoadReport(source.name, api_rows=night.merge())
    log.info("%s: windows %s, merged %s", source.name, windows, report.api_rows)
    return report


def _read(
    client: HttpClient, path: str, soql: str, sobject: SObject, max_pages: int
) -> Iterator[list[dict]]:
    """`_query_pages` with failures that say which object's query failed and what to do."""
    try:
        yield from _query_pages(client, path, soql, max_pages)
    except PaginationError as exc:
        raise PaginationError(f"{sobject.name} query ({path}): {exc}") from None
    except HttpError as exc:
        hint = _hint(exc)
        if hint is None:
            raise
        raise HttpError(f"{exc}; {hint}", request=exc.request, status=exc.status) from None


def _hint(error: HttpError) -> str | None:
    """What to do about the Salesforce errors that a rerun alone does not fix."""
    text = str(error)
    if error.status == 401 or "INVALID_SESSION_ID" in text:
        return (
            "the access token expired or was revoked: put a fresh one in the Airflow "
            "connection or environment variable, then rerun the night"
        )
    if error.status == 403 and "REQUEST_LIMIT_EXCEEDED" in text:
        # Not retried: the org's API request allowance is counted over a rolling 24 hours,
        # so waiting minutes within the night's deadline would only spend more of it.
        return (
            "the org's API request limit is used up (REQUEST_LIMIT_EXCEEDED, counted over a "
            "rolling 24 hours; see Setup > System Overview): rerun the night once it frees up"
        )
    return None


def _client(source: Any, deadline: float) -> HttpClient:
    s = source.settings
    return HttpClient(
        s["base_url"],
        auth=BearerAuth(
            resolve_token(source.name, env_var=s["token_env"], airflow_conn_id=s["airflow_conn_id"])
        ),
        read_timeout=float(s["read_timeout_seconds"]),
        deadline=deadline,
        headers={"Sforce-Query-Options": f"batchSize={s['page_size']}"},
    )
