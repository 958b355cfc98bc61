"""HubSpot CRM v3 API source: deals, their stage history, pipelines and stages, owners and
the calls, emails and meetings of deals, landed in raw and merged by key each night.

Three parts, as every API source: the client (extract.http, a private-app token as
`Authorization: Bearer`), the endpoints below (what is read, keyed how), and the night
(window, paging, merge through extract.api_load). Field meanings: docs/fake_servers/hubspot.md.

A first night (or a full refresh) lists every deal with `propertiesWithHistory=dealstage`
(pages of at most 50) and its companies, live and archived. Later nights ask the search
endpoint for the deals modified in the window and re-read those with `batch/read` (search
returns neither history nor associations). Search serves at most 10,000 results per query:
every search here is keyset-paged instead, each page a new query `hs_object_id > last id
read` sorted by id, so no query ever pages (no offset to reach the cap), ids never tie,
and a record that changes while the window is read cannot shift another out of the pages.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb

from extract.api_load import ApiNight, api_object, watermark
from extract.api_settings import validate_api_settings
from extract.credentials import resolve_token
from extract.file_formats import NUMBER, TIMESTAMP, Plausible
from extract.http import BearerAuth, HttpClient, HttpError
from extract.pagination import PaginationError, batched, paginate
from extract.sources.hubspot_policy import HubSpotPolicy
from extract.warehouse import LoadReport

log = logging.getLogger(__name__)

TYPE = "hubspot"


@dataclass(frozen=True)
class Endpoint:
    path: str
    table: str
    replace_all: bool  # small lookups are re-read whole every night


DEALS = Endpoint("/crm/v3/objects/deals", "hubspot__deals", False)
# Values checked at the merge (extract.api_load): a deal outside any real range is
# quarantined, not left to fail the night's cast in dbt.
TYPED_FIELDS = {
    "hubspot__deals": (
        ("properties.amount", NUMBER),
        ("properties.createdate", TIMESTAMP),
        ("properties.closedate", TIMESTAMP),
        ("properties.hs_lastmodifieddate", TIMESTAMP),
    ),
}
# One record per entry of a deal's `propertiesWithHistory.dealstage`, merged per deal.
STAGE_HISTORY = Endpoint("/crm/v3/objects/deals", "hubspot__deal_stage_history", False)
PIPELINES = Endpoint("/crm/v3/pipelines/deals", "hubspot__pipelines", True)
# The stages of every pipeline, one record per stage (with its pipeline's id added).
STAGES = Endpoint("/crm/v3/pipelines/deals", "hubspot__pipeline_stages", True)
OWNERS = Endpoint("/crm/v3/owners", "hubspot__owners", True)
# Calls, emails and meetings in one table; record_id "<object type>:<id>".
ACTIVITIES = Endpoint("/crm/v3/objects/{kind}", "hubspot__activities", False)

DEAL_SEARCH = "/crm/v3/objects/deals/search"
DEAL_BATCH_READ = "/crm/v3/objects/deals/batch/read"
DEAL_COMPANIES = "/crm/v4/associations/deals/companies/batch/read"
ACTIVITY_KINDS = ("calls", "emails", "meetings")

ENDPOINTS = (DEALS, STAGE_HISTORY, PIPELINES, STAGES, OWNERS, ACTIVITIES)
RAW_OBJECTS = tuple(api_object(e.table) for e in ENDPOINTS)
_OBJECTS = {e.table: obj for e, obj in zip(ENDPOINTS, RAW_OBJECTS, strict=True)}

# HubSpot's per-request maxima.
LIST_MAX = 100
HISTORY_MAX = 50  # objects per page or batch read when propertiesWithHistory is asked
SEARCH_MAX = 200
BATCH_READ_MAX = 100
ASSOCIATIONS_MAX = 100
OWNERS_MAX = 500

DEAL_PROPERTIES = (
    "dealname",
    "amount",
    "deal_currency_code",
    "pipeline",
    "dealstage",
    "closedate",
    "createdate",
    "hs_lastmodifieddate",
    "hubspot_owner_id",
)
ACTIVITY_PROPERTIES = ("hs_timestamp", "hubspot_owner_id", "hs_lastmodifieddate")
MODIFIED = "hs_lastmodifieddate"

DEFAULTS = {  # besides extract.api_settings.API_DEFAULTS
    "token_env": "HUBSPOT_ACCESS_TOKEN",
    # Records per request, cut to each endpoint's maximum (lists 100, with history 50,
    # search 200).
    "page_size": 200,
    "connect_timeout_seconds": 5,
    "read_timeout_seconds": 30,
    # HubSpot has no standard free-text lead source: the custom deal property holding it
    # (staging reads the dbt var `hubspot_lead_source_property`, same default).
    "lead_source_property": "lead_source",
}


def validate_settings(settings: dict[str, Any], where: Any) -> dict[str, Any]:
    """Settings: base_url (required); the token from `airflow_conn_id` (a connection's
    password) or `token_env` (an environment variable); lookback_hours, full_refresh, ..."""
    return validate_api_settings(settings, where, DEFAULTS)


# --------------------------------------------------------------------------------------------
# Paging
# --------------------------------------------------------------------------------------------


def _list_pages(client: HttpClient, path: str, params: dict, max_pages: int) -> Iterator[dict]:
    """A v3 list (objects, owners): cursor `paging.next.after`, absent on the last page."""

    def fetch(after: str | None) -> dict:
        return client.get(path, {**params, **({"after": after} if after else {})})

    return paginate(fetch, _next_after, max_pages=max_pages)


def _next_after(page: dict) -> str | None:
    return ((page.get("paging") or {}).get("next") or {}).get("after")


def _search_pages(
    client: HttpClient,
    path: str,
    filters: list[dict],
    properties: Iterable[str],
    limit: int,
    max_pages: int,
) -> Iterator[dict]:
    """Every result of a search, however many: keyset pages on hs_object_id.

    HubSpot serves at most 10,000 results per query (paging further is a 400). Each page
    here is a new query for the ids after the last one read, so no query ever pages and
    the cap is never reached; ids are unique, so no result is read twice or skipped, even
    when records change between pages.
    """

    def fetch(last_id: str | None) -> dict:
        after_last = [{"propertyName": "hs_object_id", "operator": "GT", "value": last_id}]
        return client.post(
            path,
            {
                "filterGroups": [{"filters": [*filters, *(after_last if last_id else [])]}],
                "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
                "properties": list(properties),
                "limit": limit,
            },
        )

    read_up_to = -1

    def next_last_id(page: dict) -> str | None:
        nonlocal read_up_to
        ids = [int(r["id"]) for r in page.get("results") or []]
        # Keyset paging is only complete if results come in id order, as sorted (the same
        # page served again is left to paginate's repeated-cursor guard).
        if any(i < before for before, i in zip([read_up_to, *ids], ids, strict=False)):
            raise PaginationError(
                f"POST {path}: results are not in ascending id order after id {read_up_to}; "
                "paging on the last id read could skip records, stopping"
            )
        if not _next_after(page):
            return None
        if not ids:
            raise PaginationError(
                f"POST {path}: an empty page announces more results; stopping instead of looping"
            )
        read_up_to = ids[-1]
        return str(ids[-1])

    return paginate(fetch, next_last_id, max_pages=max_pages)


def _results(page: dict) -> list[dict]:
    results = page.get("results")
    if results is None:
        return []
    if not isinstance(results, list):
        raise PaginationError(f"expected a list of results, got {type(results).__name__}")
    return results


# --------------------------------------------------------------------------------------------
# Window and times
# --------------------------------------------------------------------------------------------


def _hs_time(at: datetime) -> str:
    """HubSpot's text for a time: UTC with milliseconds, `2026-07-01T00:00:00.000Z`."""
    at = at.astimezone(UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def _millis(at: datetime) -> str:
    return str(int(at.timestamp() * 1000))


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True)
class _Window:
    since: datetime | None  # None: everything (first night or full refresh)
    until: datetime

    @property
    def until_text(self) -> str:
        return _hs_time(self.until)

    def filters(self) -> list[dict]:
        """`hs_lastmodifieddate` within [since, until], as search filters."""
        bound = [{"propertyName": MODIFIED, "operator": "LTE", "value": _millis(self.until)}]
        if self.since is not None:
            bound.insert(
                0, {"propertyName": MODIFIED, "operator": "GTE", "value": _millis(self.since)}
            )
        return bound

    def holds(self, text: str | None) -> bool:
        """Whether a HubSpot time (e.g. `archivedAt`) falls in the window."""
        if not text:
            return self.since is None
        at = _parse_time(text)
        return (self.since is None or at >= self.since) and at <= self.until

    def high_water(self, record: dict) -> str | None:
        """A record's modification time, never past the as-of time: the next night's window
        starts from what this one was asked to cover."""
        value = (record.get("properties") or {}).get(MODIFIED) or record.get("updatedAt")
        return min(value, self.until_text) if value else None


# --------------------------------------------------------------------------------------------
# The night
# --------------------------------------------------------------------------------------------


def extract(con: duckdb.DuckDBPyConnection, source: Any, *, as_of: datetime) -> LoadReport:
    """Read the window up to the as-of time (from the last high-water mark minus the
    lookback, or everything on a full refresh) and merge it into raw."""
    s = source.settings
    deadline = time.monotonic() + 60 * s["deadline_minutes"]
    night = ApiNight(con, source.name, Plausible.around(as_of))
    since = None if s["full_refresh"] else watermark(con, source.name, DEALS.table)
    window = _Window(
        _parse_time(since) - timedelta(hours=s["lookback_hours"]) if since else None,
        as_of.astimezone(UTC),
    )
    token = resolve_token(source.name, env_var=s["token_env"], airflow_conn_id=s["airflow_conn_id"])
    policy = HubSpotPolicy(source.name, token_from=token_location(s))
    reader = _Reader(lambda sleep: _client(s, token, deadline, sleep, policy), night, window, s)
    with reader.client:
        reader.pipelines()
        reader.owners()
        reader.deals()
        reader.activities()

    report = LoadReport(source.name, api_rows=night.merge())
    log.info(
        "%s: window %s to %s, merged %s",
        source.name,
        _hs_time(window.since) if window.since else "the beginning",
        window.until_text,
        report.api_rows,
    )
    return report


def _client(
    settings: dict,
    token: str,
    deadline: float,
    sleep: Callable[[float], None],
    policy: HubSpotPolicy,
) -> HttpClient:
    """A client of the source's API; `policy` reads HubSpot's rate-limit policies, scope
    refusals and rate headers (extract/sources/hubspot_policy.py)."""
    return HttpClient(
        settings["base_url"],
        auth=BearerAuth(token),
        connect_timeout=settings["connect_timeout_seconds"],
        read_timeout=settings["read_timeout_seconds"],
        backoff_base=settings["retry_backoff_seconds"],
        deadline=deadline,
        sleep=sleep,
        policy=policy,
    )


def token_location(settings: dict) -> str:
    """Where the source's token is stored, for messages (never the token)."""
    if settings["airflow_conn_id"]:
        return f"the password of Airflow connection {settings['airflow_conn_id']!r}"
    return f"the environment variable {settings['token_env']}"


# Records staged per insert: a few pages at once (an insert costs the same for 1 or 1,000).
WRITE_BATCH = 1_000
# Pages a reader thread may run ahead of the writer; bounds the memory of a night.
PAGES_AHEAD = 4


class _Stopped(Exception):
    """The writer stopped reading (it failed): a reader thread's retry wait is cut short."""


class _Reader:
    """One night's reads. Each paged sequence is read by a thread with its own client, a
    few pages ahead, while this thread stages what arrived (requests and writes overlap);
    a requests session is not thread-safe, and the warehouse connection stays here."""

    def __init__(
        self,
        make_client: Callable[[Callable[[float], None]], HttpClient],
        night: ApiNight,
        window: _Window,
        settings: dict,
    ) -> None:
        self._make_client = make_client
        self.client = make_client(time.sleep)
        self.night = night
        self.window = window
        self.size = settings["page_size"]
        self.max_pages = settings["max_pages"]
        self.deal_properties = ",".join(
            dict.fromkeys([*DEAL_PROPERTIES, settings["lead_source_property"]])
        )

    def _ahead(self, read: Callable[[HttpClient], Iterator[list[dict]]]) -> Iterator[list[dict]]:
        """The record lists `read(client)` yields, read by a thread up to PAGES_AHEAD ahead;
        its error is raised here, and leaving early stops it (a retry wait included)."""
        stop = threading.Event()
        handoff: queue.Queue[tuple[str, Any]] = queue.Queue(PAGES_AHEAD)

        def wait(seconds: float) -> None:
            if stop.wait(seconds):
                raise _Stopped

        def put(item: tuple[str, Any]) -> bool:
            while not stop.is_set():
                try:
                    handoff.put(item, timeout=0.05)
                    return True
                except queue.Full:
                    continue
            return False

        def run() -> None:
            try:
                with self._make_client(wait) as client:
                    for records in read(client):
                        if not put(("records", records)):
                            return
                put(("end", None))
            except BaseException as exc:  # handed to the writer, which raises it
                put(("error", exc))

        thread = threading.Thread(target=run, name="hubspot-reader", daemon=True)
        thread.start()
        try:
            while True:
                kind, value = handoff.get()
                if kind == "records":
                    yield value
                elif kind == "end":
                    return
                else:
                    raise value
        finally:
            stop.set()
            thread.join()

    def _stage(
        self, read: Callable[[HttpClient], Iterator[list[dict]]], add: Callable[[list], None]
    ) -> None:
        """Stage what `read` yields, in batches of at least WRITE_BATCH records."""
        batch: list[dict] = []
        for records in self._ahead(read):
            batch.extend(records)
            if len(batch) >= WRITE_BATCH:
                add(batch)
                batch = []
        if batch:
            add(batch)

    # -- lookups, re-read whole ------------------------------------------------------------

    def pipelines(self) -> None:
        """Pipelines, and their stages one record each (the stage's pipeline id added)."""
        pipelines = _results(self.client.get(PIPELINES.path))
        self._begin(PIPELINES)
        self._add(PIPELINES, pipelines, record_id=lambda r: r["id"])
        stages = [
            {"pipelineId": p["id"], **stage} for p in pipelines for stage in p.get("stages") or []
        ]
        self._begin(STAGES)
        self._add(STAGES, stages, record_id=lambda r: r["id"], endpoint=STAGES.path)

    def owners(self) -> None:
        """Active owners and archived (deactivated) ones, so old deals keep their owner."""
        self._begin(OWNERS)
        # Archived first: should an owner show up in both lists, the active record wins.
        for archived in ("true", "false"):
            params = {"limit": min(self.size, OWNERS_MAX), "archived": archived}
            for page in _list_pages(self.client, OWNERS.path, params, self.max_pages):
                self._add(OWNERS, _results(page), record_id=lambda r: r["id"])

    # -- deals -----------------------------------------------------------------------------

    def deals(self) -> None:
        """Every deal on a first night, else those changed in the window; live and
        archived, with their stage history (its own table) and companies."""
        self._begin(DEALS)
        self._begin(STAGE_HISTORY)
        if self.window.since is None:
            for archived in ("false", "true"):
                self._stage(lambda c, a=archived: self._all_deals(c, a), self._add_deals)
        else:
            self._stage(self._changed_deals, self._add_deals)
            # Archived deals cannot be searched: list them (no filter exists) and keep
            # those archived in the window; the others were merged on an earlier night.
            params = {
                "limit": min(self.size, LIST_MAX),
                "properties": self.deal_properties,
                "archived": "true",
            }
            self._stage(
                lambda c: self._archived_in_window(c, DEALS.path, params, "companies"),
                self._add_deals,
            )

    def _all_deals(self, client: HttpClient, archived: str) -> Iterator[list[dict]]:
        params = {
            "limit": min(self.size, HISTORY_MAX),
            "properties": self.deal_properties,
            "propertiesWithHistory": "dealstage",
            "associations": "companies",
            "archived": archived,
        }
        for page in _list_pages(client, DEALS.path, params, self.max_pages):
            yield [_associated(d, "companies") for d in _results(page)]

    def _changed_deals(self, client: HttpClient) -> Iterator[list[dict]]:
        """Deals modified in the window, found by search and re-read with their history and
        companies (search returns neither)."""
        pages = _search_pages(
            client,
            DEAL_SEARCH,
            self.window.filters(),
            ("hs_object_id", MODIFIED),
            min(self.size, SEARCH_MAX),
            self.max_pages,
        )
        for page in pages:
            ids = [str(r["id"]) for r in _results(page)]
            deals = [
                d
                for chunk in batched(ids, HISTORY_MAX)
                for d in _reread(client, chunk, self.deal_properties)
            ]
            companies = _associations(client, DEAL_COMPANIES, [d["id"] for d in deals])
            yield [_associated(d, "companies", companies.get(d["id"], [])) for d in deals]

    def _archived_in_window(
        self, client: HttpClient, path: str, params: dict, kind: str
    ) -> Iterator[list[dict]]:
        for page in _list_pages(client, path, {**params, "associations": kind}, self.max_pages):
            yield [
                _associated(r, kind)
                for r in _results(page)
                if self.window.holds(r.get("archivedAt"))
            ]

    def _add_deals(self, deals: list[dict]) -> None:
        """Stage deals (their history moved to its own table) and their history entries,
        each entry keyed by its deal so a re-read history replaces the old one."""
        records, entries, deal_of = [], [], {}
        for deal in deals:
            history = deal.pop("propertiesWithHistory", None)
            records.append(deal)
            for entry in (history or {}).get("dealstage") or []:
                entries.append(entry)
                deal_of[id(entry)] = deal["id"]
        self._add(DEALS, records, record_id=lambda r: r["id"], cursor_value=self.window.high_water)
        self._add(
            STAGE_HISTORY,
            entries,
            record_id=lambda e: f"{deal_of[id(e)]}:{e.get('timestamp')}:{e.get('value')}",
            merge_key=lambda e: deal_of[id(e)],
        )

    # -- activities ------------------------------------------------------------------------

    def activities(self) -> None:
        """Calls, emails and meetings: all on a first night, else those modified in the
        window (with their deals from the v4 associations) and those archived in it."""
        self._begin(ACTIVITIES)
        for kind in ACTIVITY_KINDS:
            path = ACTIVITIES.path.format(kind=kind)

            def add(records: list[dict], kind: str = kind, path: str = path) -> None:
                self._add(
                    ACTIVITIES, records, record_id=lambda r: f"{kind}:{r['id']}", endpoint=path
                )

            params = {
                "limit": min(self.size, LIST_MAX),
                "properties": ",".join(ACTIVITY_PROPERTIES),
            }
            if self.window.since is None:
                for archived in ("false", "true"):
                    listed = {**params, "associations": "deals", "archived": archived}
                    self._stage(lambda c, p=path, q=listed: self._listed(c, p, q), add)
            else:
                self._stage(lambda c, k=kind, p=path: self._changed_activities(c, k, p), add)
                archived = {**params, "archived": "true"}
                self._stage(
                    lambda c, p=path, q=archived: self._archived_in_window(c, p, q, "deals"), add
                )

    def _listed(self, client: HttpClient, path: str, params: dict) -> Iterator[list[dict]]:
        for page in _list_pages(client, path, params, self.max_pages):
            yield [_associated(a, "deals") for a in _results(page)]

    def _changed_activities(self, client: HttpClient, kind: str, path: str) -> Iterator[list[dict]]:
        """Activities modified in the window, with their deals from the v4 associations
        (search returns none)."""
        pages = _search_pages(
            client,
            f"{path}/search",
            self.window.filters(),
            ACTIVITY_PROPERTIES,
            min(self.size, SEARCH_MAX),
            self.max_pages,
        )
        for page in pages:
            activities = _results(page)
            deals = _associations(
                client,
                f"/crm/v4/associations/{kind}/deals/batch/read",
                [a["id"] for a in activities],
            )
            yield [_associated(a, "deals", deals.get(a["id"], [])) for a in activities]

    # -- staging ---------------------------------------------------------------------------

    def _begin(self, endpoint: Endpoint) -> None:
        self.night.begin(
            _OBJECTS[endpoint.table],
            replace_all=endpoint.replace_all,
            fields=TYPED_FIELDS.get(endpoint.table, ()),
        )

    def _add(
        self,
        target: Endpoint,
        records: list[dict],
        *,
        record_id: Callable[[dict], object],
        endpoint: str | None = None,
        **keys: Any,
    ) -> None:
        """Stage a batch of records of `target`; `endpoint` defaults to its path."""
        self.night.add(
            _OBJECTS[target.table],
            records,
            endpoint=endpoint or target.path,
            record_id=record_id,
            **keys,
        )


def _reread(client: HttpClient, ids: list[str], properties: str) -> list[dict]:
    """Deals by id with their stage history; one deleted since the search is left out
    (HubSpot answers 207, or 404 when none is left): the archived listing has it."""
    body = {
        "inputs": [{"id": i} for i in ids],
        "properties": properties.split(","),
        "propertiesWithHistory": ["dealstage"],
    }
    return _results(_tolerating_not_found(lambda: client.post(DEAL_BATCH_READ, body)))


def _associations(client: HttpClient, path: str, ids: list[str]) -> dict[str, list[str]]:
    """The ids associated with each of these objects, per the v4 batch read."""
    found: dict[str, list[str]] = {}
    for chunk in batched(ids, ASSOCIATIONS_MAX):
        body = {"inputs": [{"id": i} for i in chunk]}
        page = _tolerating_not_found(lambda body=body: client.post(path, body))
        for result in _results(page):
            found[str(result["from"]["id"])] = _ordered_ids(
                (
                    str(target["toObjectId"]),
                    any(
                        (kind.get("label") or "").lower() == "primary"
                        for kind in target.get("associationTypes") or []
                    ),
                )
                for target in result.get("to") or []
            )
    return found


def _ordered_ids(pairs: Iterable[tuple[str, bool]]) -> list[str]:
    """Distinct associated ids, primary first, then by number."""
    primary: dict[str, bool] = {}
    for target, is_primary in pairs:
        primary[target] = primary.get(target, False) or is_primary
    return sorted(primary, key=lambda t: (not primary[t], int(t) if t.isdigit() else 0, t))


def _associated(record: dict, kind: str, ids: list[str] | None = None) -> dict:
    """The record with `associations.<kind>.results` as `[{"id": ...}]`, distinct, primary
    first: from `ids` (a v4 batch read), else from what the list endpoint gave inline (one
    entry per association type: `deal_to_company`, `deal_to_company_unlabeled`). The same
    association then gives the same record whichever endpoint read it, so rereading a
    night changes nothing in raw."""
    if ids is None:
        inline = ((record.get("associations") or {}).get(kind) or {}).get("results") or []
        ids = _ordered_ids(
            (str(r["id"]), not str(r.get("type", "")).endswith("_unlabeled")) for r in inline
        )
    record.pop("associations", None)
    if ids:
        record["associations"] = {kind: {"results": [{"id": i} for i in ids]}}
    return record


def _tolerating_not_found(request: Callable[[], dict]) -> dict:
    """A batch read where none of the ids exists any more is HubSpot's 404
    OBJECT_NOT_FOUND: no results, not a failed night."""
    try:
        return request()
    except HttpError as exc:
        if exc.status == 404 and "OBJECT_NOT_FOUND" in str(exc):
            return {"results": []}
        raise
