"""Salesforce REST API source: opportunities, their stage history (OpportunityHistory), the
opportunity stages, record types (the pipelines), users, accounts, and tasks and events,
landed in raw and merged by key each night.

Three parts, as every API source: the client (extract.http with the sign-in and Salesforce's
own failures of extract/sources/salesforce_auth.py: an OAuth session from the Airflow
connection, renewed once when a call meets 401 INVALID_SESSION_ID, against the org's
instance URL), the objects below (what SOQL reads, keyed how, windowed on which field), and
the night (describe, window, `nextRecordsUrl` paging, merge through extract.api_load). Field
meanings: docs/fake_servers/salesforce.md; setting up a real org: docs/setup/salesforce.md.

Not every org has every field: `CurrencyIsoCode` exists only with multi-currency enabled,
`Opportunity.RecordTypeId` only once the org has an Opportunity record type. A night
describes Opportunity and Organization first and selects only the optional fields that
exist (a SOQL query naming a missing field fails whole with INVALID_FIELD); a single-currency
org's deals take the org's corporate currency (`Organization.DefaultCurrencyIsoCode`, in raw
as salesforce__organization) in staging.

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
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import duckdb
import requests

from extract.api_load import ApiNight, api_object, watermark
from extract.api_settings import validate_api_settings
from extract.errors import LoadError
from extract.file_formats import DATE, NUMBER, TIMESTAMP, Plausible
from extract.http import HttpClient, HttpError
from extract.pagination import PaginationError, paginate
from extract.preflight import CrmStage, Preflight
from extract.sources.salesforce_auth import OAuthSession, SalesforcePolicy, authenticate
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
# The org itself: its corporate currency, for orgs whose records carry no CurrencyIsoCode.
ORGANIZATION = SObject(
    "Organization",
    "salesforce__organization",
    _fields("Id Name DefaultCurrencyIsoCode"),
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
LOOKUPS = (STAGES, RECORD_TYPES, USERS, ACCOUNTS, ORGANIZATION)
# Fields some orgs lack (Salesforce Object Reference): selected only where describe lists
# them. LastStageChangeDate is optional too: staging falls back to the history without it.
OPTIONAL_FIELDS = {
    "Opportunity": ("CurrencyIsoCode", "RecordTypeId", "LastStageChangeDate"),
    "Organization": ("DefaultCurrencyIsoCode",),
}
SOBJECTS = (*INCREMENTAL, *LOOKUPS)
RAW_OBJECTS = tuple(api_object(o.table) for o in SOBJECTS)
_OBJECTS = {o.table: obj for o, obj in zip(SOBJECTS, RAW_OBJECTS, strict=True)}

DEFAULTS = {  # besides extract.api_settings.API_DEFAULTS
    # Spring '26; a newer org serves it too (Salesforce keeps versions for years).
    "api_version": "v66.0",
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
    """Settings: base_url (required, the org's My Domain URL); api_version (v66.0); sign-in
    from `airflow_conn_id` (an OAuth flow in its extra, or an access token as its password:
    salesforce_auth) or an access token in `token_env`; lookback_hours,
    full_refresh, page_size (the batch size, 200 to 2000), deadline_minutes, max_pages,
    read_timeout_seconds, retry_backoff_seconds."""
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


class Org:
    """One signed-in conversation with the org: its client (at the instance URL), the REST
    root of the configured version, the policy that watched its answers, the sign-in."""

    def __init__(self, source: Any, client: HttpClient, policy: SalesforcePolicy, auth: Any):
        self.source = source
        self.client = client
        self.policy = policy
        self.auth = auth
        self.base = f"/services/data/{source.settings['api_version']}"

    @property
    def sign_in(self) -> str:
        if isinstance(self.auth, OAuthSession):
            return self.auth.words
        conn = self.source.settings["airflow_conn_id"]
        where = (
            f"Airflow connection {conn!r}"
            if conn
            else f"environment variable {self.source.settings['token_env']}"
        )
        return f"the access token of {where}"

    def get(self, path: str, params: dict[str, Any] | None = None) -> dict:
        """GET under the REST root, failures worded as `read` words them."""
        try:
            return self.client.get(f"{self.base}{path}", params)
        except HttpError as exc:
            raise self.explained(exc) from None

    def fields(self, sobject: str) -> set[str]:
        """The fields of an object this user can see (describe honours field-level security)."""
        answer = self.get(f"/sobjects/{sobject}/describe")
        return {f["name"] for f in answer.get("fields", ()) if isinstance(f, dict)}

    def selectable(self, sobject: SObject, present: set[str]) -> SObject:
        """The object's query without the optional fields this org lacks; a missing required
        field fails naming it and what to grant."""
        optional = OPTIONAL_FIELDS.get(sobject.name, ())
        lacking = [f for f in sobject.fields if f not in present and f not in optional]
        if lacking:
            raise HttpError(
                f"{self.source.name}: {sobject.name} has no field {', '.join(lacking)} that "
                f"{self.sign_in} can read (GET {self.base}/sobjects/{sobject.name}/describe): "
                "grant the integration user read access to it (field-level security in its "
                "profile or a permission set)",
                request=f"GET {self.base}/sobjects/{sobject.name}/describe",
            )
        return replace(sobject, fields=tuple(f for f in sobject.fields if f in present))

    def limits(self) -> tuple[int, int] | None:
        """(Remaining, Max) of DailyApiRequests, or None when /limits cannot be read (the
        user lacks View Setup and Configuration, or the org refuses every request)."""
        try:
            daily = self.client.get(f"{self.base}/limits").get("DailyApiRequests") or {}
            return int(daily["Remaining"]), int(daily["Max"])
        except (HttpError, KeyError, TypeError, ValueError):
            return None

    def explained(self, error: HttpError) -> HttpError:
        """The error with what to do about the Salesforce failures a rerun alone does not fix."""
        hint = self._hint(error)
        if hint is None:
            return error
        return HttpError(f"{error}; {hint}", request=error.request, status=error.status)

    def _hint(self, error: HttpError) -> str | None:
        text = str(error)
        if error.status == 401 or "INVALID_SESSION_ID" in text:
            if isinstance(self.auth, OAuthSession):
                return (
                    f"the org refused the session it had just issued ({self.sign_in}): check "
                    "that the run-as/integration user is active with API Enabled and that "
                    "the app's IP and session policies admit this host, then rerun the night"
                )
            return (
                f"the access token expired or was revoked ({self.sign_in}): put a fresh one "
                "there, or set extra.flow in the Airflow connection so the night signs in "
                "itself (docs/setup/salesforce.md), then rerun the night"
            )
        if error.status == 403 and "REQUEST_LIMIT_EXCEEDED" in text:
            left = self.limits()
            usage = self.policy.usage
            counts = []
            if left is not None:
                counts.append(f"DailyApiRequests {left[0]} of {left[1]} remaining")
            if usage is not None:
                counts.append(f"Sforce-Limit-Info api-usage={usage[0]}/{usage[1]}")
            known = f" ({'; '.join(counts)})" if counts else ""
            return (
                f"the org's daily API request allowance is spent{known}: it is counted over a "
                "rolling 24 hours across every integration of the org (Setup > System "
                "Overview), so rerun the night once usage drops, or raise the allowance"
            )
        if error.status == 404 and "NOT_FOUND" in text and self.base in text:
            return (
                f"the org may not serve API version {self.source.settings['api_version']}: "
                "set api_version to one listed by GET /services/data"
            )
        return None


@contextmanager
def connect(source: Any, deadline: float) -> Iterator[Org]:
    """Sign in (salesforce_auth) and open a client on the org's instance URL."""
    s = source.settings
    auth, instance_url = authenticate(source)
    policy = SalesforcePolicy()
    client = HttpClient(
        instance_url,
        auth=auth,
        read_timeout=float(s["read_timeout_seconds"]),
        backoff_base=s["retry_backoff_seconds"],
        deadline=deadline,
        headers={"Sforce-Query-Options": f"batchSize={s['page_size']}"},
        policy=policy,
    )
    with client:
        yield Org(source, client, policy, auth)


def _queried(org: Org) -> dict[str, SObject]:
    """Every object as this org can query it: describe first, optional fields only if there."""
    present = {name: org.fields(name) for name in OPTIONAL_FIELDS}
    return {
        o.table: org.selectable(o, present[o.name]) if o.name in present else o for o in SOBJECTS
    }


def extract(con: duckdb.DuckDBPyConnection, source: Any, *, as_of: datetime) -> LoadReport:
    """Read each object's window up to the as-of time (from its last high-water mark minus
    the lookback, or everything on a full refresh) and merge it into raw."""
    s = source.settings
    deadline = time.monotonic() + 60 * s["deadline_minutes"]
    until, until_text = _soql_datetime(as_of), _sf_datetime(as_of)
    lookback = timedelta(hours=s["lookback_hours"])
    night = ApiNight(con, source.name, Plausible.around(as_of))
    windows: dict[str, str] = {}
    left_for_next_night: dict[str, int] = {}

    with connect(source, deadline) as org:
        queried = _queried(org)
        for sobject in (queried[o.table] for o in INCREMENTAL):
            obj = _OBJECTS[sobject.table]
            mark = None if s["full_refresh"] else watermark(con, source.name, sobject.table)
            since = _soql_datetime(_parse_sf_datetime(mark) - lookback) if mark else None
            soql = sobject.soql(since, until)
            windows[sobject.name] = f"({since or '-inf'}, {until}]"
            night.begin(obj, fields=TYPED_FIELDS.get(obj.table, ()))
            field = sobject.window_field
            for records in _read(org, "/queryAll", soql, sobject, s["max_pages"]):
                # Changed after the as-of time while the night paged: the next night reads it.
                kept = [r for r in records if (_comparable(r.get(field)) or "") <= until_text]
                if len(kept) < len(records):
                    left = left_for_next_night.get(sobject.name, 0) + len(records) - len(kept)
                    left_for_next_night[sobject.name] = left
                night.add(
                    obj,
                    kept,
                    endpoint=f"{org.base}/queryAll {sobject.name}",
                    record_id=lambda r: r["Id"],
                    cursor_value=lambda r, f=field: _comparable(r.get(f)),
                )

        for sobject in (queried[o.table] for o in LOOKUPS):
            obj = _OBJECTS[sobject.table]
            night.begin(obj, replace_all=True)
            for records in _read(org, "/query", sobject.soql(), sobject, s["max_pages"]):
                night.add(
                    obj,
                    records,
                    endpoint=f"{org.base}/query {sobject.name}",
                    record_id=lambda r: r["Id"],
                )
        renewed = org.auth.sessions - 1 if isinstance(org.auth, OAuthSession) else 0

    if left_for_next_night:
        log.info(
            "%s: records changed after %s while the night read them, left to the next night: %s",
            source.name,
            until,
            left_for_next_night,
        )
    if renewed:
        log.info("%s: the session expired %d time(s) and was renewed", source.name, renewed)
    report = LoadReport(source.name, api_rows=night.merge())
    log.info("%s: windows %s, merged %s", source.name, windows, report.api_rows)
    return report


def _read(
    org: Org, resource: str, soql: str, sobject: SObject, max_pages: int
) -> Iterator[list[dict]]:
    """`_query_pages` with failures that say which object's query failed and what to do."""
    path = f"{org.base}{resource}"
    try:
        yield from _query_pages(org.client, path, soql, max_pages)
    except PaginationError as exc:
        raise PaginationError(f"{sobject.name} query ({path}): {exc}") from None
    except HttpError as exc:
        raise org.explained(exc) from None


# --------------------------------------------------------------------------------------------
# Preflight: what a first night would meet, read before it, written nowhere
# --------------------------------------------------------------------------------------------

MASTER = "Master"  # the pipeline of opportunities without a record type (staging's word)
MASTER_RECORD_TYPE = "012000000000000AAA"  # Salesforce's id of the Master record type


def preflight(source: Any, *, as_of: datetime) -> Preflight:
    """Sign in, check the API version and the fields this org has, read the first batch of
    every query a first night sends, count the opportunities, list the stages per pipeline
    (record type) and the daily API requests left."""
    found = Preflight(source.name)
    deadline = time.monotonic() + 60 * min(source.settings["deadline_minutes"], 10)
    try:
        with connect(source, deadline) as org:
            _preflight_steps(org, found, as_of)
    except LoadError as exc:
        found.problems.append(str(exc))
    except (HttpError, PaginationError) as exc:
        found.problems.append(str(exc))
    return found


def _preflight_steps(org: Org, found: Preflight, as_of: datetime) -> None:
    s = org.source.settings
    found.fact("sign-in", org.sign_in)
    found.fact("instance", org.client.base_url)
    served = _versions(org)
    version = s["api_version"].lstrip("v")
    latest = served[-1] if served else "?"
    found.fact("API version", f"v{version} (the org serves up to v{latest})")
    if served and version not in served:
        found.problems.append(
            f"the org does not serve API version v{version}: set api_version to one of "
            f"v{served[0]}..v{latest}"
        )
        return
    present = {name: org.fields(name) for name in OPTIONAL_FIELDS}
    queried = {}
    for o in SOBJECTS:
        try:
            queried[o.table] = org.selectable(o, present[o.name]) if o.name in present else o
        except HttpError as exc:
            found.problems.append(str(exc))
            return
    opportunity = present["Opportunity"]
    organization = _first(org, queried[ORGANIZATION.table])
    currency = organization.get("DefaultCurrencyIsoCode")
    found.fact("org", f"{organization.get('Name')} ({organization.get('Id')})")
    if "CurrencyIsoCode" in opportunity:
        found.fact("currencies", f"multi-currency (corporate {currency or 'unknown'})")
    else:
        found.fact("currencies", f"single currency {currency}")
        found.notes.append(
            "Opportunity has no CurrencyIsoCode (multi-currency is off): every amount counts "
            f"in the org's corporate currency {currency}"
        )
    if "RecordTypeId" not in opportunity:
        found.notes.append(
            "Opportunity has no RecordTypeId (no record types): every deal is in pipeline "
            f"{MASTER!r}"
        )
    if "LastStageChangeDate" not in opportunity:
        found.notes.append(
            "Opportunity has no LastStageChangeDate: close times come from OpportunityHistory"
        )
    until = _soql_datetime(as_of)
    # A first night: two describes, then every batch of every query (a full read).
    requests_needed = len(OPTIONAL_FIELDS)
    for o in SOBJECTS:
        sobject = queried[o.table]
        resource = "/queryAll" if sobject.window_field else "/query"
        soql = sobject.soql(None, until if sobject.window_field else None)
        first = org.get(resource, {"q": soql})
        total = int(first.get("totalSize") or 0)
        requests_needed += max(1, -(-total // s["page_size"]))
        found.fact(sobject.name, f"{total} ({len(first.get('records') or [])} in the first batch)")
    count = org.get("/query", {"q": "SELECT COUNT() FROM Opportunity"}).get("totalSize")
    found.fact("opportunities (COUNT())", count)
    found.stages.extend(_stages(org))
    left = org.limits()
    share = ""
    if left is None:
        found.notes.append(
            "the daily API allowance is unknown: /limits needs the View Setup and "
            "Configuration permission"
        )
    else:
        found.fact("API requests left", f"{left[0]:,} of {left[1]:,} in the last 24 hours")
        share = f", {requests_needed / left[1]:.1%} of the daily allowance"
        if requests_needed > left[0]:
            found.problems.append(
                f"a first night needs about {requests_needed:,} API requests and the org has "
                f"{left[0]:,} left: run it once usage drops (counted over a rolling 24 hours)"
            )
    found.fact(
        "a first night",
        f"about {requests_needed:,} API requests in batches of {s['page_size']}{share}",
    )


def _versions(org: Org) -> list[str]:
    """The API versions the org serves, oldest first (GET /services/data, a JSON list)."""
    # A JSON list, which HttpClient (objects only) does not take; it needs no sign-in.
    try:
        answer = org.client.session.get(
            f"{org.client.base_url}/services/data", timeout=(5, 30), allow_redirects=False
        ).json()
    except (requests.RequestException, ValueError):
        return []
    versions = (
        [v.get("version") for v in answer if isinstance(v, dict)]
        if isinstance(answer, list)
        else []
    )
    return sorted((v for v in versions if isinstance(v, str)), key=float)


def _first(org: Org, sobject: SObject) -> dict:
    records = org.get("/query", {"q": sobject.soql()}).get("records") or [{}]
    return records[0]


def _stages(org: Org) -> list[CrmStage]:
    """Each pipeline's stages in the stage mapping's words: the record type's name (Master
    without record types) and the StageName values its sales process offers (UI API)."""
    record_types = org.get("/query", {"q": RECORD_TYPES.soql() + " AND IsActive = true"})
    pipelines = [(r["Id"], r["Name"]) for r in record_types.get("records") or []]
    if not pipelines:
        pipelines = [(MASTER_RECORD_TYPE, MASTER)]
    stages = []
    for record_type, name in pipelines:
        values = (
            org.get(f"/ui-api/object-info/Opportunity/picklist-values/{record_type}/StageName").get(
                "values"
            )
            or []
        )
        stages += [CrmStage(pipeline=name, crm_stage=v["value"]) for v in values]
    return stages
