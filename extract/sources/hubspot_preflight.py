"""The HubSpot preflight (`python -m night.check_source <source>`): what a first night will
find, read before it runs, written nowhere.

It asks HubSpot who the token is (a private app token's account, app and scopes), the
account's time zone (the daily limit resets at midnight there), then reads one page of each
endpoint a night reads: pipelines and their stages (the stage mapping's words: pipeline label,
stage label; a stage deleted from its pipeline but still named by stage history by its id),
owners, deals with stage history and companies, archived deals, the deal search (its `total`
is the deal count), the batch read, calls, emails and meetings with their deals. A 403
MISSING_SCOPES on any of them is a problem naming the scope; the rate headers give the
budget left, and the counts what a first night costs.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import extract.sources.hubspot as hubspot
from extract.credentials import resolve_token
from extract.errors import LoadError
from extract.http import HttpClient, HttpError
from extract.preflight import CrmStage, Preflight
from extract.sources.hubspot_policy import BURST_WINDOW_SECONDS, HubSpotPolicy

# Every scope a night needs, and what for (HubSpot's API reference, "Scope requirements").
REQUIRED_SCOPES = {
    "crm.objects.deals.read": "deals, their stage history and pipelines",
    "crm.objects.companies.read": "the companies of deals (customers, CAC, retention)",
    "crm.objects.owners.read": "owners (rep performance)",
    "crm.objects.contacts.read": "calls, emails and meetings (touches)",
}
TOKEN_INFO = "/oauth/v2/private-apps/get/access-token-info"
ACCOUNT_DETAILS = "/account-info/v3/details"
PREFLIGHT_MINUTES = 5


def preflight(source: Any, *, as_of: datetime) -> Preflight:
    """Authenticate, check scopes, read one page of each endpoint; see the module docstring."""
    found = Preflight(source.name)
    s = source.settings
    try:
        token = resolve_token(
            source.name, env_var=s["token_env"], airflow_conn_id=s["airflow_conn_id"]
        )
    except LoadError as exc:
        found.problems.append(str(exc))
        return found
    policy = HubSpotPolicy(source.name, token_from=hubspot.token_location(s))
    deadline = time.monotonic() + 60 * PREFLIGHT_MINUTES
    with hubspot._client(s, token, deadline, time.sleep, policy) as client:
        check = _Check(client, found, s, as_of.astimezone(UTC))
        check.token(token)
        check.account()
        check.pipelines()
        check.owners()
        check.deals()
        check.activities()
        check.budget(policy)
        check.first_night()
    return found


class _Check:
    """One preflight's reads, each adding facts, stages, problems or notes to `found`."""

    def __init__(self, client: HttpClient, found: Preflight, settings: dict, as_of: datetime):
        self.client = client
        self.found = found
        self.settings = settings
        self.as_of = as_of
        self.granted: set[str] | None = None  # None: the token could not be introspected
        self.stage_ids: dict[str, CrmStage] = {}
        self.pipeline_labels: dict[str, str] = {}
        self.deals_total: int | None = None
        self.activity_totals: dict[str, int] = {}
        self.time_zone: str | None = None
        self.burst: int | None = None
        self.daily: int | None = None
        self.window = BURST_WINDOW_SECONDS

    def _read(self, scope: str, call: Callable[[], dict]) -> dict | None:
        """`call()`, or None when the token lacks `scope` (said once, by `token`) or HubSpot
        refuses it with 403 MISSING_SCOPES (a problem naming the endpoint and scope)."""
        if self.granted is not None and scope not in self.granted:
            return None
        try:
            return call()
        except HttpError as exc:
            if exc.status == 403:
                self.found.problems.append(str(exc))
                return None
            raise

    # -- who -------------------------------------------------------------------------------

    def token(self, token: str) -> None:
        """A private app token's account, app and scopes; a missing scope is a problem."""
        try:
            info = self.client.post(TOKEN_INFO, {"tokenKey": token})
        except HttpError as exc:
            self.found.notes.append(
                f"the token could not be introspected ({exc}); a service key or OAuth token "
                "is checked by reading each endpoint instead"
            )
            return
        self.granted = {str(s) for s in info.get("scopes") or []}
        self.found.fact(
            "token", f"private app {info.get('appId')} of HubSpot account {info.get('hubId')}"
        )
        self.found.fact("scopes the night needs", ", ".join(REQUIRED_SCOPES))
        for scope, why in REQUIRED_SCOPES.items():
            if scope not in self.granted:
                self.found.problems.append(
                    f"the token lacks scope {scope} ({why}): add it to the private app's "
                    "scopes (Development > Legacy apps > the app > Scopes), or to the service "
                    "key's"
                )

    def account(self) -> None:
        try:
            details = self.client.get(ACCOUNT_DETAILS)
        except HttpError as exc:
            if exc.status == 401:
                raise
            self.found.notes.append(f"account details not readable: {exc}")
            return
        self.time_zone = details.get("timeZone")
        self.found.fact(
            "account",
            f"{details.get('portalId')} ({details.get('accountType')}), time zone "
            f"{self.time_zone}, company currency {details.get('companyCurrency')}",
        )

    # -- lookups ---------------------------------------------------------------------------

    def pipelines(self) -> None:
        page = self._read("crm.objects.deals.read", lambda: self.client.get(hubspot.PIPELINES.path))
        if page is None:
            return
        described = []
        for pipeline in hubspot._results(page):
            label = pipeline.get("label") or pipeline["id"]
            self.pipeline_labels[pipeline["id"]] = label
            stages = pipeline.get("stages") or []
            described.append(f"{label} ({len(stages)} stages)")
            for stage in stages:
                crm_stage = CrmStage(label, stage.get("label") or stage["id"])
                self.stage_ids[stage["id"]] = crm_stage
                self.found.stages.append(crm_stage)
        self.found.fact("pipelines", ", ".join(described) or "none")

    def owners(self) -> None:
        page = self._read(
            "crm.objects.owners.read",
            lambda: self.client.get(
                hubspot.OWNERS.path, {"limit": hubspot.OWNERS_MAX, "archived": "false"}
            ),
        )
        if page is not None:
            more = " (more follow)" if hubspot._next_after(page) else ""
            self.found.fact("owners", f"{len(hubspot._results(page))}{more}")

    # -- deals -----------------------------------------------------------------------------

    def deals(self) -> None:
        scope = "crm.objects.deals.read"
        properties = ",".join(
            dict.fromkeys([*hubspot.DEAL_PROPERTIES, self.settings["lead_source_property"]])
        )
        page = self._read(
            scope,
            lambda: self.client.get(
                hubspot.DEALS.path,
                {
                    "limit": hubspot.HISTORY_MAX,
                    "properties": properties,
                    "propertiesWithHistory": "dealstage",
                    "associations": "companies",
                    "archived": "false",
                },
            ),
        )
        if page is None:
            return
        deals = hubspot._results(page)
        entries = sum(
            len((d.get("propertiesWithHistory") or {}).get("dealstage") or []) for d in deals
        )
        self.found.fact("deals, first page", f"{len(deals)} with {entries} stage history entries")
        self._deleted_stages(deals)
        self._lead_source(deals)
        ids = [str(d["id"]) for d in deals]
        if ids:
            self._read(
                scope,
                lambda: self.client.post(
                    hubspot.DEAL_BATCH_READ,
                    {"inputs": [{"id": i} for i in ids[:2]], "properties": ["dealstage"]},
                ),
            )
            linked = self._read(
                "crm.objects.companies.read",
                lambda: self.client.post(
                    hubspot.DEAL_COMPANIES, {"inputs": [{"id": i} for i in ids]}
                ),
            )
            if linked is not None:
                self.found.fact(
                    "deals with a company", f"{len(hubspot._results(linked))} of {len(ids)}"
                )
        archived = self._read(
            scope, lambda: self.client.get(hubspot.DEALS.path, {"limit": 1, "archived": "true"})
        )
        if archived is not None:
            self.found.fact(
                "archived deals",
                "some (read on every night)" if archived.get("results") else "none",
            )
        searched = self._read(scope, lambda: self._search(hubspot.DEAL_SEARCH))
        if searched is not None:
            self.deals_total = int(searched.get("total") or 0)
            self.found.fact("deals (search total)", f"{self.deals_total:,}")

    def _search(self, path: str) -> dict:
        window = hubspot._Window(None, self.as_of)
        return self.client.post(
            path,
            {
                "filterGroups": [{"filters": window.filters()}],
                "properties": ["hs_object_id"],
                "limit": 1,
            },
        )

    def _deleted_stages(self, deals: list[dict]) -> None:
        """Stage ids the history names that no pipeline has any more: deleted stages, mapped
        by their id (docs/setup/hubspot.md)."""
        if not self.stage_ids:
            return
        for deal in deals:
            pipeline = self.pipeline_labels.get((deal.get("properties") or {}).get("pipeline"))
            for entry in (deal.get("propertiesWithHistory") or {}).get("dealstage") or []:
                stage_id = entry.get("value")
                if stage_id and stage_id not in self.stage_ids:
                    crm_stage = CrmStage(pipeline or "?", stage_id, deleted=True)
                    self.stage_ids[stage_id] = crm_stage
                    self.found.stages.append(crm_stage)

    def _lead_source(self, deals: list[dict]) -> None:
        name = self.settings["lead_source_property"]
        if deals and not any(name in (d.get("properties") or {}) for d in deals):
            self.found.notes.append(
                f"no deal read has the property {name!r} (HubSpot leaves unknown properties "
                "out): set lead_source_property (and the dbt var hubspot_lead_source_property) "
                "to the deal property holding the lead source, or every deal's channel stays "
                "unattributed"
            )

    # -- activities ------------------------------------------------------------------------

    def activities(self) -> None:
        scope = "crm.objects.contacts.read"
        for kind in hubspot.ACTIVITY_KINDS:
            path = hubspot.ACTIVITIES.path.format(kind=kind)
            page = self._read(
                scope, lambda p=path: self.client.get(p, {"limit": 1, "associations": "deals"})
            )
            if page is None:
                continue
            ids = [str(a["id"]) for a in hubspot._results(page)]
            if ids:
                self._read(
                    scope,
                    lambda k=kind, i=ids: self.client.post(
                        f"/crm/v4/associations/{k}/deals/batch/read",
                        {"inputs": [{"id": x} for x in i]},
                    ),
                )
            searched = self._read(scope, lambda p=path: self._search(f"{p}/search"))
            if searched is not None:
                self.activity_totals[kind] = int(searched.get("total") or 0)
                self.found.fact(kind, f"{self.activity_totals[kind]:,}")

    # -- what a night costs ----------------------------------------------------------------

    def budget(self, policy: HubSpotPolicy) -> None:
        budget = policy.budget
        self.burst = budget.burst
        self.window = budget.interval_seconds or BURST_WINDOW_SECONDS
        self.daily = budget.daily
        if budget.daily is not None and budget.daily_remaining is not None:
            zone = f" ({self.time_zone})" if self.time_zone else ""
            self.found.fact(
                "daily API budget",
                f"{budget.daily_remaining:,} of {budget.daily:,} requests left; resets at "
                f"midnight, account time{zone}",
            )
        if budget.burst is not None:
            self.found.fact("burst limit", f"{budget.burst} requests per {self.window:g} s")
        if budget.daily is None and budget.burst is None:
            self.found.notes.append("HubSpot sent no X-HubSpot-RateLimit-* headers")

    def first_night(self) -> None:
        """Requests of a first night, counted as the connector makes them (docs/setup)."""
        if self.deals_total is None:
            return
        calls = first_night_requests(self.deals_total, self.activity_totals)
        line = f"about {calls:,} requests"
        if self.daily:
            share = 100 * calls / self.daily
            line += (
                f" ({share:.1f}% of the daily limit)"
                if share >= 0.1
                else " (<0.1% of the daily limit)"
            )
        if self.burst:
            seconds = math.ceil(calls / self.burst) * self.window
            took = f"{seconds / 60:.0f} min" if seconds >= 120 else f"{seconds:g} s"
            line += f", at least {took} at the burst limit"
        self.found.fact("a first night", line)


def first_night_requests(deals: int, activities: dict[str, int]) -> int:
    """Requests of a first night (or full refresh) over `deals` live deals and `activities`
    per kind, as extract/sources/hubspot.py makes them: pipelines 1; owners live and
    archived, 500 a page (2 up to 500 owners); deals with stage history 50 a page, and a
    page of archived ones; each activity kind 100 a page, and a page of archived ones."""
    pages = 1 + 2
    pages += max(1, math.ceil(deals / hubspot.HISTORY_MAX)) + 1
    pages += sum(
        max(1, math.ceil(activities.get(kind, 0) / hubspot.LIST_MAX)) + 1
        for kind in hubspot.ACTIVITY_KINDS
    )
    return pages
