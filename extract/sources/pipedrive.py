"""Pipedrive API source: deals (live, archived and deleted), their stage history (deal
flow), stages, pipelines, users, the lead-source options and activities, landed in raw and
merged by key each night.

Three parts, as every API source: the client (extract.http, token as `api_token`), the
endpoints below (what is read, keyed how), and the night (window, paging, merge through
extract.api_load). Field meanings: docs/fake_servers/pipedrive.md.

Deals and activities are read as streams sorted by update time, each from its own
high-water mark, and merged in chunks of `chunk_pages` pages (a deal always with its whole
flow). When the company's daily API budget is spent (extract.http.BudgetSpent) the night
keeps every chunk it merged, names the streams it left in raw._api_loading (the marts say
the source is still loading) and the next night continues from their marks: a first load
bigger than a day's budget takes several nights and never starts over.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import duckdb

from extract.api_load import ApiNight, api_object, mark_loading, watermark
from extract.api_settings import validate_api_settings
from extract.credentials import resolve_token
from extract.file_formats import NUMBER, TIMESTAMP, Plausible
from extract.http import BudgetSpent, HttpClient, QueryTokenAuth
from extract.pagination import PaginationError, paginate
from extract.sources.pipedrive_policy import policy_for_night, token_location
from extract.warehouse import LoadReport

log = logging.getLogger(__name__)

TYPE = "pipedrive"


@dataclass(frozen=True)
class Endpoint:
    path: str
    table: str
    replace_all: bool  # small lookups are re-read whole every night


DEALS = Endpoint("/api/v2/deals", "pipedrive__deals", False)
# Since July 2025 /api/v2/deals leaves archived deals out; they are read here.
ARCHIVED_DEALS = Endpoint("/api/v2/deals/archived", "pipedrive__deals", False)
ACTIVITIES = Endpoint("/api/v2/activities", "pipedrive__activities", False)
STAGES = Endpoint("/api/v2/stages", "pipedrive__stages", True)
PIPELINES = Endpoint("/api/v2/pipelines", "pipedrive__pipelines", True)
DEAL_FIELDS = Endpoint("/api/v2/dealFields", "pipedrive__deal_field_options", True)
USERS = Endpoint("/v1/users", "pipedrive__users", True)
FLOW = Endpoint("/v1/deals/{id}/flow", "pipedrive__deal_flow", False)
# Values checked at the merge (extract.api_load): a deal outside any real range is
# quarantined, not left to fail the night's cast in dbt.
DEAL_VALUES = (
    ("value", NUMBER),
    ("add_time", TIMESTAMP),
    ("close_time", TIMESTAMP),
    ("update_time", TIMESTAMP),
)

ENDPOINTS = (DEALS, ACTIVITIES, STAGES, PIPELINES, DEAL_FIELDS, USERS, FLOW)
RAW_OBJECTS = tuple(api_object(e.table) for e in ENDPOINTS)
_OBJECTS = {e.table: obj for e, obj in zip(ENDPOINTS, RAW_OBJECTS, strict=True)}


@dataclass(frozen=True)
class Stream:
    """Records of one endpoint and filter, read by update time from their own mark."""

    key: str  # the high-water mark's key in raw._api_watermarks / raw._api_loading
    endpoint: Endpoint
    params: tuple[tuple[str, str], ...]  # the filter besides the window
    with_flow: bool  # deals: each live one's flow is read and merged with it


STREAMS = (
    Stream("pipedrive__deals", DEALS, (("status", "open,won,lost"),), True),
    Stream("pipedrive__deals:archived", ARCHIVED_DEALS, (), True),
    # Deleted deals (listed for 30 days): kept in raw, left out of the figures by staging.
    Stream("pipedrive__deals:deleted", DEALS, (("status", "deleted"),), False),
    Stream("pipedrive__activities", ACTIVITIES, (), False),
)

DEFAULTS = {  # besides extract.api_settings.API_DEFAULTS
    "token_env": "PIPEDRIVE_API_TOKEN",
    "page_size": 500,
    "flow_workers": 4,
    "chunk_pages": 4,  # pages merged per transaction: at most this much work is read again
}


def validate_settings(settings: dict[str, Any], where: Any) -> dict[str, Any]:
    """Settings: base_url (required); the token from `airflow_conn_id` (a connection's
    password) or `token_env` (an environment variable); lookback_hours, full_refresh,
    page_size, flow_workers, chunk_pages, ..."""
    return validate_api_settings(settings, where, DEFAULTS)


def _v2_pages(client: HttpClient, path: str, params: dict, max_pages: int) -> Iterator[dict]:
    def fetch(cursor: str | None) -> dict:
        return client.get(path, {**params, **({"cursor": cursor} if cursor else {})})

    return paginate(
        fetch,
        lambda page: (page.get("additional_data") or {}).get("next_cursor"),
        max_pages=max_pages,
    )


def _v1_pages(
    client: HttpClient, path: str, params: dict, limit: int, max_pages: int
) -> Iterator[dict]:
    """v1 offset paging. While `more_items_in_collection` is true the next page starts at
    `next_start`, or, when Pipedrive leaves that out, right after the entries served (the
    server may cap `limit`, so never start + limit)."""
    served = {"start": 0}

    def fetch(start: str | None) -> dict:
        served["start"] = int(start or 0)
        return client.get(path, {**params, "start": served["start"], "limit": limit})

    def next_start(page: dict) -> str | None:
        paging = ((page.get("additional_data") or {}).get("pagination")) or {}
        if not paging.get("more_items_in_collection"):
            return None
        if paging.get("next_start") is not None:
            return str(paging["next_start"])
        entries = page.get("data") or []
        if not entries:
            raise PaginationError(
                f"{path}: more items announced at start {served['start']} but none served"
            )
        return str(served["start"] + len(entries))

    return paginate(fetch, next_start, max_pages=max_pages)


def _rfc3339(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def _is_live(deal: dict) -> bool:
    """Not deleted: Pipedrive says so by status `deleted` or by `is_deleted`."""
    return deal.get("status") != "deleted" and not deal.get("is_deleted")


def extract(con: duckdb.DuckDBPyConnection, source: Any, *, as_of: datetime) -> LoadReport:
    """Read each stream from its high-water mark minus the lookback (everything on a full
    refresh or a first night) up to the as-of time, merging chunks into raw as they
    complete; a spent daily budget ends the night's reading, keeping what was merged."""
    s = source.settings
    deadline = time.monotonic() + 60 * s["deadline_minutes"]
    client = _client(source, deadline)
    night = ApiNight(con, source.name, Plausible.around(as_of))
    merged: Counter[str] = Counter()
    left: list[Stream] = list(STREAMS)
    flows = _FlowReader(lambda: _client(source, deadline), s["max_pages"])
    try:
        with client, ThreadPoolExecutor(s["flow_workers"]) as pool:
            _read_lookups(night, client, s["page_size"], s["max_pages"])
            merged.update(night.merge())
            while left:
                _read_stream(night, client, left[0], source, as_of, pool, flows, merged)
                left.pop(0)
    except BudgetSpent as exc:
        if not merged:
            raise  # nothing read at all tonight: the budget was gone before the night began
        # Pages staged so far are whole (a page is staged once its flows are read): keep them.
        merged.update(night.merge(as_of=as_of, complete=False))
        mark_loading(con, source.name, [st.key for st in left], as_of=as_of, reason=str(exc))
        still_loading = [
            f"{st.key} loaded through {watermark(con, source.name, st.key) or 'nothing yet'}"
            for st in left
        ]
        log.warning("%s: %s; stopped reading, continued next night", source.name, exc)
        return LoadReport(source.name, api_rows=dict(merged), still_loading=still_loading)
    finally:
        flows.close()
    report = LoadReport(source.name, api_rows=dict(merged))
    log.info("%s: merged %s", source.name, report.api_rows)
    return report


def _read_lookups(night: ApiNight, client: HttpClient, size: int, cap: int) -> None:
    """Stages, pipelines, users and the lead-source options: small, re-read whole."""
    for endpoint in (STAGES, PIPELINES):
        night.begin(_OBJECTS[endpoint.table], replace_all=True)
        for page in _v2_pages(client, endpoint.path, {"limit": size}, cap):
            night.add(
                _OBJECTS[endpoint.table],
                page.get("data") or [],
                endpoint=endpoint.path,
                record_id=lambda r: r["id"],
            )

    night.begin(_OBJECTS[USERS.table], replace_all=True)
    night.add(
        _OBJECTS[USERS.table],
        client.get(USERS.path).get("data") or [],
        endpoint=USERS.path,
        record_id=lambda r: r["id"],
    )

    # Lead sources are the options of the `channel` deal field, one record per option.
    night.begin(_OBJECTS[DEAL_FIELDS.table], replace_all=True)
    for page in _v2_pages(client, DEAL_FIELDS.path, {"limit": size}, cap):
        options = [
            {"field_code": f["field_code"], **option}
            for f in page.get("data") or []
            if f.get("field_code") == "channel"
            for option in f.get("options") or []
        ]
        night.add(
            _OBJECTS[DEAL_FIELDS.table],
            options,
            endpoint=DEAL_FIELDS.path,
            record_id=lambda r: f"{r['field_code']}:{r['id']}",
        )


def _read_stream(
    night: ApiNight,
    client: HttpClient,
    stream: Stream,
    source: Any,
    as_of: datetime,
    pool: Executor,
    flows: _FlowReader,
    merged: Counter[str],
) -> None:
    """One stream, oldest change first, merged every `chunk_pages` pages and at its end."""
    s = source.settings
    since = None if s["full_refresh"] else watermark(night.con, source.name, stream.key)
    window = {"updated_until": _rfc3339(as_of)}
    if since:
        start = datetime.fromisoformat(since.replace("Z", "+00:00"))
        window["updated_since"] = _rfc3339(start - timedelta(hours=s["lookback_hours"]))
    params = {
        "limit": s["page_size"],
        "sort_by": "update_time",
        "sort_direction": "asc",
        **dict(stream.params),
        **window,
    }
    table = stream.endpoint.table

    def begin() -> None:
        if stream.with_flow or table == DEALS.table:
            night.begin(_OBJECTS[DEALS.table], fields=DEAL_VALUES, stream=stream.key)
        else:
            night.begin(_OBJECTS[table], stream=stream.key)
        if stream.with_flow:
            night.begin(_OBJECTS[FLOW.table])

    begin()
    pages = 0
    for page in _v2_pages(client, stream.endpoint.path, params, s["max_pages"]):
        records = page.get("data") or []
        # A deal's whole flow is re-read and replaces the old one (merge by deal), fetched
        # by a few threads (each its own client) before anything of the page is staged.
        live = [d for d in records if _is_live(d)] if stream.with_flow else []
        page_flows = list(pool.map(flows.read, live))
        night.add(
            _OBJECTS[table],
            records,
            endpoint=stream.endpoint.path,
            record_id=lambda r: r["id"],
            cursor_value=lambda r: r.get("update_time"),
        )
        for deal, entries in zip(live, page_flows, strict=True):
            night.add(
                _OBJECTS[FLOW.table],
                entries,
                endpoint=FLOW.path,
                record_id=lambda r: r["data"]["id"],
                merge_key=lambda r, d=deal["id"]: d,
            )
        pages += 1
        if pages % s["chunk_pages"] == 0:
            merged.update(night.merge(as_of=as_of, complete=False))
            begin()
    merged.update(night.merge())


def _client(source: Any, deadline: float) -> HttpClient:
    """A client of the source's API; every client of one night (same deadline) shares one
    policy reading Pipedrive's token budget, burst limit and refusals
    (extract/sources/pipedrive_policy.py)."""
    return HttpClient(
        source.settings["base_url"],
        auth=QueryTokenAuth(
            "api_token",
            resolve_token(
                source.name,
                env_var=source.settings["token_env"],
                airflow_conn_id=source.settings["airflow_conn_id"],
            ),
        ),
        backoff_base=source.settings["retry_backoff_seconds"],
        deadline=deadline,
        policy=policy_for_night(source.name, deadline, token_from=token_location(source.settings)),
    )


class _FlowReader:
    """Reads a deal's flow with a client per thread (a requests session is not thread-safe)."""

    def __init__(self, make_client: Any, max_pages: int) -> None:
        self._make_client = make_client
        self._max_pages = max_pages
        self._local = threading.local()
        self._clients: list[HttpClient] = []
        self._lock = threading.Lock()

    def read(self, deal: dict) -> list[dict]:
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = self._make_client()
            with self._lock:
                self._clients.append(client)
        path = FLOW.path.format(id=deal["id"])
        return [
            entry
            for page in _v1_pages(client, path, {"items": "dealChange"}, 500, self._max_pages)
            for entry in page.get("data") or []
            if entry.get("object") == "dealChange"
        ]

    def close(self) -> None:
        for client in self._clients:
            client.close()
