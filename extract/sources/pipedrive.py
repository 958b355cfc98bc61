"""Pipedrive API source: deals, their stage history (deal flow), stages, pipelines, users,
the lead-source options and activities, landed in raw and merged by key each night.

Three parts, as every API source: the client (extract.http, token as `api_token`), the
endpoints below (what is read, keyed how), and the night (window, paging, merge through
extract.api_load). Field meanings: docs/fake_servers/pipedrive.md.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import duckdb

from extract.api_load import ApiNight, api_object, watermark
from extract.api_settings import validate_api_settings
from extract.credentials import resolve_token
from extract.file_formats import NUMBER, TIMESTAMP, Plausible
from extract.http import HttpClient, QueryTokenAuth
from extract.pagination import paginate
from extract.warehouse import LoadReport

log = logging.getLogger(__name__)

TYPE = "pipedrive"


@dataclass(frozen=True)
class Endpoint:
    path: str
    table: str
    replace_all: bool  # small lookups are re-read whole every night


DEALS = Endpoint("/api/v2/deals", "pipedrive__deals", False)
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

DEFAULTS = {  # besides extract.api_settings.API_DEFAULTS
    "token_env": "PIPEDRIVE_API_TOKEN",
    "page_size": 500,
    "flow_workers": 4,
}


def validate_settings(settings: dict[str, Any], where: Any) -> dict[str, Any]:
    """Settings: base_url (required); the token from `airflow_conn_id` (a connection's
    password) or `token_env` (an environment variable); lookback_hours, full_refresh, ..."""
    return validate_api_settings(settings, where, DEFAULTS)


def _v2_pages(client: HttpClient, path: str, params: dict, max_pages: int) -> Iterator[dict]:
    def fetch(cursor: str | None) -> dict:
        return client.get(path, {**params, **({"cursor": cursor} if cursor else {})})

    return paginate(
        fetch,
        lambda page: (page.get("additional_data") or {}).get("next_cursor"),
        max_pages=max_pages,
    )


def _v1_pages(client: HttpClient, path: str, limit: int, max_pages: int) -> Iterator[dict]:
    def fetch(start: str | None) -> dict:
        return client.get(path, {"start": start or "0", "limit": limit})

    def next_start(page: dict) -> str | None:
        paging = ((page.get("additional_data") or {}).get("pagination")) or {}
        more = paging.get("more_items_in_collection")
        return str(paging["next_start"]) if more and "next_start" in paging else None

    return paginate(fetch, next_start, max_pages=max_pages)


def _rfc3339(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def extract(con: duckdb.DuckDBPyConnection, source: Any, *, as_of: datetime) -> LoadReport:
    """Read the window up to the as-of time (from the last high-water mark minus the
    lookback, or everything on a full refresh) and merge it into raw."""
    s = source.settings
    deadline = time.monotonic() + 60 * s["deadline_minutes"]
    client = _client(source, deadline)
    night = ApiNight(con, source.name, Plausible.around(as_of))
    since = None if s["full_refresh"] else watermark(con, source.name, DEALS.table)
    window = {"updated_until": _rfc3339(as_of)}
    if since:
        start = datetime.fromisoformat(since.replace("Z", "+00:00"))
        window["updated_since"] = _rfc3339(start - timedelta(hours=s["lookback_hours"]))
    size, cap = s["page_size"], s["max_pages"]

    with client, ExitStack() as stack:
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

        # Deals changed in the window, deleted ones included (kept, flagged by status).
        night.begin(_OBJECTS[DEALS.table], fields=DEAL_VALUES)
        night.begin(_OBJECTS[FLOW.table])
        flows = _FlowReader(lambda: _client(source, deadline), cap)
        stack.callback(flows.close)  # after the pool below has shut down
        pool = stack.enter_context(ThreadPoolExecutor(s["flow_workers"]))
        for status in ("open,won,lost", "deleted"):
            params = {"limit": size, "status": status, **window}
            for page in _v2_pages(client, DEALS.path, params, cap):
                deals = page.get("data") or []
                night.add(
                    _OBJECTS[DEALS.table],
                    deals,
                    endpoint=DEALS.path,
                    record_id=lambda r: r["id"],
                    cursor_value=lambda r: r.get("update_time"),
                )
                # A deal's whole flow is re-read and replaces the old one (merge by deal),
                # fetched by a few threads (each its own client); added in page order.
                live = [d for d in deals if d.get("status") != "deleted"]
                for deal, entries in zip(live, pool.map(flows.read, live), strict=True):
                    night.add(
                        _OBJECTS[FLOW.table],
                        entries,
                        endpoint=FLOW.path,
                        record_id=lambda r: r["data"]["id"],
                        merge_key=lambda r, d=deal["id"]: d,
                    )

        night.begin(_OBJECTS[ACTIVITIES.table])
        for page in _v2_pages(client, ACTIVITIES.path, {"limit": size, **window}, cap):
            night.add(
                _OBJECTS[ACTIVITIES.table],
                page.get("data") or [],
                endpoint=ACTIVITIES.path,
                record_id=lambda r: r["id"],
            )

    report = LoadReport(source.name, api_rows=night.merge())
    log.info("%s: window %s, merged %s", source.name, window, report.api_rows)
    return report


def _client(source: Any, deadline: float) -> HttpClient:
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
        deadline=deadline,
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
            for page in _v1_pages(client, path, 500, self._max_pages)
            for entry in page.get("data") or []
            if entry.get("object") == "dealChange"
        ]

    def close(self) -> None:
        for client in self._clients:
            client.close()
