"""The Pipedrive preflight (`python -m night.check_source <source>`): what a first night will
find, read before it runs, written nowhere.

It asks Pipedrive whose token it is (`/v1/users/me`: the user, the company, admin or not: a
non-admin's token sees only what its user may see), then reads one page of each endpoint a
night reads: pipelines and stages (the stage mapping's words: pipeline name, stage name),
users, the deal fields (the `channel` options are the lead sources), deals (live, archived,
deleted), the first deal's flow and activities; the deal count from `/v1/deals/summary`.
The rate headers give the daily token budget left and the burst limit, and the count what
a first night costs in tokens, and in nights on this budget and on the smallest plan's.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import extract.sources.pipedrive as pipedrive
from extract.errors import LoadError
from extract.http import BudgetSpent, HttpClient, HttpError
from extract.preflight import CrmStage, Preflight
from extract.sources.pipedrive_policy import (
    API_TOKEN_BURST,
    BASE_TOKENS,
    BURST_WINDOW_SECONDS,
    TOKEN_COSTS,
    PipedrivePolicy,
)

USERS_ME = "/v1/users/me"
DEALS_SUMMARY = "/v1/deals/summary"
PREFLIGHT_MINUTES = 5
FLOW_PAGE = 500  # dealChange entries a flow page holds (the connector asks 500)


def preflight(source: Any, *, as_of: datetime) -> Preflight:
    """Authenticate, read one page of each endpoint; see the module docstring."""
    found = Preflight(source.name)
    deadline = time.monotonic() + 60 * PREFLIGHT_MINUTES
    try:
        client = pipedrive._client(source, deadline)
    except LoadError as exc:
        found.problems.append(str(exc))
        return found
    with client:
        check = _Check(client, found, source.settings)
        try:
            check.who()
            check.lookups()
            check.deals()
            check.activities()
        except BudgetSpent as exc:
            found.problems.append(f"{exc}; run the preflight again after the reset")
        assert isinstance(client.policy, PipedrivePolicy)
        check.budget(client.policy)
        check.first_night()
    return found


class _Check:
    """One preflight's reads, each adding facts, stages, problems or notes to `found`."""

    def __init__(self, client: HttpClient, found: Preflight, settings: dict):
        self.client = client
        self.found = found
        self.settings = settings
        self.page_size = settings["page_size"]
        self.deals_total: int | None = None
        self.daily: int | None = None
        self.burst: int | None = None

    def _read(self, what: str, call: Callable[[], dict]) -> dict | None:
        """`call()`, or None when Pipedrive refuses it with 403 (a problem naming it)."""
        try:
            return call()
        except BudgetSpent:
            raise
        except HttpError as exc:
            if exc.status in (403, 404):
                self.found.problems.append(f"{what}: {exc}")
                return None
            raise

    # -- who -------------------------------------------------------------------------------

    def who(self) -> None:
        me = self.client.get(USERS_ME).get("data") or {}
        admin = bool(me.get("is_admin"))
        self.found.fact(
            "token",
            f"user {me.get('name')} ({me.get('email')}, id {me.get('id')}), "
            f"{'an admin' if admin else 'not an admin'}, of company {me.get('company_name')} "
            f"({me.get('company_domain')}.pipedrive.com, id {me.get('company_id')})",
        )
        if not admin:
            self.found.notes.append(
                "the token's user is not an admin: a night reads only the deals, activities "
                "and users this user may see (their visibility groups and permission set); "
                "use an admin's API token to read the whole company"
            )

    # -- lookups ---------------------------------------------------------------------------

    def lookups(self) -> None:
        limit = {"limit": self.page_size}
        pipelines = self._read(
            "pipelines", lambda: self.client.get(pipedrive.PIPELINES.path, limit)
        )
        stages = self._read("stages", lambda: self.client.get(pipedrive.STAGES.path, limit))
        if pipelines is not None and stages is not None:
            self._stages(pipelines.get("data") or [], stages.get("data") or [])
        users = self._read("users", lambda: self.client.get(pipedrive.USERS.path))
        if users is not None:
            self.found.fact("users", len(users.get("data") or []))
        fields = self._read(
            "deal fields", lambda: self.client.get(pipedrive.DEAL_FIELDS.path, limit)
        )
        if fields is not None:
            channel = next(
                (f for f in fields.get("data") or [] if f.get("field_code") == "channel"), None
            )
            if channel is None:
                self.found.notes.append(
                    "the deal field 'channel' (Source channel) is not on the first page of "
                    "deal fields: every deal's lead source stays unattributed"
                )
            else:
                self.found.fact("lead sources (channel options)", len(channel.get("options") or []))

    def _stages(self, pipelines: list[dict], stages: list[dict]) -> None:
        names = {p["id"]: p.get("name") or str(p["id"]) for p in pipelines}
        counts = {pid: 0 for pid in names}
        for stage in sorted(stages, key=lambda s: (s.get("pipeline_id"), s.get("order_nr"))):
            if stage.get("is_deleted"):
                continue
            pipeline = names.get(stage.get("pipeline_id"), str(stage.get("pipeline_id")))
            counts[stage.get("pipeline_id")] = counts.get(stage.get("pipeline_id"), 0) + 1
            self.found.stages.append(CrmStage(pipeline, stage.get("name") or str(stage["id"])))
        described = [f"{names.get(pid, pid)} ({n} stages)" for pid, n in counts.items()]
        self.found.fact("pipelines", ", ".join(described) or "none")

    # -- deals -----------------------------------------------------------------------------

    def deals(self) -> None:
        params = {"limit": self.page_size, "sort_by": "update_time", "sort_direction": "asc"}
        live = self._read(
            "deals",
            lambda: self.client.get(pipedrive.DEALS.path, {**params, "status": "open,won,lost"}),
        )
        if live is None:
            return
        deals = live.get("data") or []
        more = " (more follow)" if (live.get("additional_data") or {}).get("next_cursor") else ""
        self.found.fact("deals, first page", f"{len(deals)}{more}")
        archived = self._read(
            "archived deals",
            lambda: self.client.get(pipedrive.ARCHIVED_DEALS.path, {**params, "limit": 1}),
        )
        if archived is not None:
            self.found.fact(
                "archived deals",
                "some (read on every night)" if archived.get("data") else "none",
            )
        deleted = self._read(
            "deleted deals",
            lambda: self.client.get(
                pipedrive.DEALS.path, {**params, "limit": 1, "status": "deleted"}
            ),
        )
        if deleted is not None:
            self.found.fact(
                "deleted deals (last 30 days)", "some" if deleted.get("data") else "none"
            )
        if deals:
            first = deals[0]["id"]
            flow = self._read(
                "deal flow",
                lambda: self.client.get(
                    pipedrive.FLOW.path.format(id=first),
                    {"items": "dealChange", "start": 0, "limit": FLOW_PAGE},
                ),
            )
            if flow is not None:
                self.found.fact(f"deal {first}'s flow", f"{len(flow.get('data') or [])} changes")
        summary = self._read("deals summary", lambda: self.client.get(DEALS_SUMMARY))
        if summary is not None:
            self.deals_total = int((summary.get("data") or {}).get("total_count") or 0)
            self.found.fact("deals (summary total)", f"{self.deals_total:,}")

    def activities(self) -> None:
        page = self._read(
            "activities",
            lambda: self.client.get(pipedrive.ACTIVITIES.path, {"limit": self.page_size}),
        )
        if page is not None:
            more = (
                " (more follow)" if (page.get("additional_data") or {}).get("next_cursor") else ""
            )
            self.found.fact("activities, first page", f"{len(page.get('data') or [])}{more}")

    # -- what a night costs ----------------------------------------------------------------

    def budget(self, policy: PipedrivePolicy) -> None:
        budget = policy.budget
        self.daily = budget.daily_tokens
        self.burst = budget.burst
        if budget.daily_tokens is not None and budget.daily_tokens_remaining is not None:
            self.found.fact(
                "daily token budget",
                f"{budget.daily_tokens_remaining:,} of {budget.daily_tokens:,} tokens left; "
                "resets at midnight, Pipedrive's server time",
            )
        if budget.burst is not None:
            self.found.fact(
                "burst limit", f"{budget.burst} requests per {BURST_WINDOW_SECONDS:g} s"
            )
        if budget.daily_tokens is None and budget.burst is None:
            self.found.notes.append("Pipedrive sent no x-ratelimit / x-daily-ratelimit headers")

    def first_night(self) -> None:
        """Requests and tokens of a first night, counted as the connector makes them."""
        if self.deals_total is None:
            return
        requests, tokens = first_night_cost(self.deals_total, 0, self.page_size)
        per_page = TOKEN_COSTS[pipedrive.ACTIVITIES.path]
        line = (
            f"about {requests:,} requests and {tokens:,} tokens "
            f"(+{per_page} tokens per {self.page_size} activities)"
        )
        if self.daily:
            line += f"; {math.ceil(tokens / self.daily)} night(s) at {self.daily:,} tokens a day"
        smallest = BASE_TOKENS  # Lite, one seat
        line += f", {math.ceil(tokens / smallest)} on the smallest plan ({smallest:,} a day)"
        burst = self.burst or API_TOKEN_BURST["Lite"]
        seconds = math.ceil(requests / burst) * BURST_WINDOW_SECONDS
        took = f"{seconds / 60:.0f} min" if seconds >= 120 else f"{seconds:g} s"
        line += f"; at least {took} at the burst limit"
        self.found.fact("a first night", line)


def first_night_cost(deals: int, activities: int, page_size: int = 500) -> tuple[int, int]:
    """(requests, tokens) of a first night (or full refresh) over `deals` deals (live and
    archived, not deleted) and `activities`, as extract/sources/pipedrive.py reads them:
    stages, pipelines, users and deal fields once each; deals live and archived `page_size`
    a page (at least a page each), a page of deleted deals, activities `page_size` a page;
    one flow request per deal (its dealChange entries fit one page of 500)."""
    costs = TOKEN_COSTS
    lookups = [pipedrive.STAGES, pipedrive.PIPELINES, pipedrive.USERS, pipedrive.DEAL_FIELDS]
    requests = len(lookups)
    tokens = sum(costs[e.path] for e in lookups)
    deal_pages = max(1, math.ceil(deals / page_size)) + 1 + 1  # + archived's last, deleted
    activity_pages = max(1, math.ceil(activities / page_size))
    requests += deal_pages + activity_pages + deals
    tokens += costs[pipedrive.DEALS.path] * deal_pages
    tokens += costs[pipedrive.ACTIVITIES.path] * activity_pages
    tokens += costs[pipedrive.FLOW.path] * deals
    return requests, tokens
