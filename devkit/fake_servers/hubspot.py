"""A local fake of the HubSpot CRM v3 API, serving a SampleDataset, for connector tests and demos.

Endpoints (all need `Authorization: Bearer <token>`; otherwise 401 with HubSpot's
INVALID_AUTHENTICATION body):

- `GET  /crm/v3/objects/deals`: `limit` (default 10, max 100; max 50 with
  `propertiesWithHistory`), cursor `after` -> `paging.next.after` / `paging.next.link`,
  `properties`, `propertiesWithHistory` (`dealstage`: every change, newest first),
  `associations=companies`, `archived=true` (only deleted deals, with `archivedAt`).
- `POST /crm/v3/objects/deals/search`: `filterGroups` (OR of ANDed filters; operators EQ, NEQ,
  GT, GTE, LT, LTE, BETWEEN, HAS_PROPERTY, NOT_HAS_PROPERTY on `hs_lastmodifieddate`,
  `createdate`, `closedate`, `hs_object_id`; datetimes as epoch millis or ISO strings), `sorts`,
  `properties`, `limit` (default 10, max 200), numeric `after` (an offset), `total`; at most
  10,000 results per query: a page reaching past offset 10,000 is a 400, as in HubSpot.
- `POST /crm/v3/objects/deals/batch/read`: `inputs` [{"id"}] (max 100; 50 with
  `propertiesWithHistory`), `properties`, `propertiesWithHistory`, `?archived=`; unknown or
  archived ids -> 207 with `errors` (OBJECT_NOT_FOUND), all unknown -> 404. No associations.
- `POST /crm/v4/associations/deals/companies/batch/read`: max 100 ids; `toObjectId` is a
  number; typeIds 5 ("Primary") and 341 (unlabeled); a deal without a company -> 207 error.
- `GET  /crm/v3/pipelines/deals`: pipelines and stages; `metadata.isClosed` and
  `metadata.probability` are strings ("true", "0.4").
- `GET  /crm/v3/owners`: `limit` (default 100, max 500), cursor `after`.
- `GET  /crm/v3/objects/{calls,emails,meetings,notes,tasks}` (`associations=deals`),
  `POST .../search` (filters on `hs_timestamp`, `hs_lastmodifieddate`, `hs_createdate`,
  `hs_object_id`), `POST .../batch/read`, `POST /crm/v4/associations/{kind}/deals/batch/read`.

Id mapping (deterministic): canonical ids lose their letter prefix and leading zeros: deal
`D0000042` -> "42", owner `U1003` -> "1003", company `C100067` -> "100067", activity
`A000004201` -> "4201". Pipelines keep sample_data.PIPELINES order: the first is HubSpot's
"default" pipeline whose won / lost stages are "closedwon" / "closedlost"; the others get ids
70000000 + p, and every other stage 100000000 + 1000 * p + s (p, s: 1-based pipeline number
and stage position, won then lost last). Labels are the canonical names. A pipeline or stage
the generator does not know (another dataset's, or added by a test) gets a CRC32-derived id
and metadata derived from the data served and the dataset's stage mapping (StageCatalog):
`isClosed` and `probability` 1.0 / 0.0 where deals sit in it as won / lost, the mapping's
funnel stage and probability otherwise, `displayOrder` in funnel order. All property values
are strings or null; datetimes look like "2024-11-01T14:49:25.000Z"; the lead source is the
custom deal property `lead_source`.

What the API cannot carry of a canonical dataset: a won or lost deal whose stage is open
(HubSpot takes the status from the stage's metadata); a stage history for a deal without
one is served empty (its only entry would be the current stage at creation).

Simplified versus the real API: only the objects, parameters and operators above; history
only for `dealstage` (other properties get their current value as a single entry); cursors are
opaque base64 strings bound to their endpoint; lists run in canonical id order (length, then
text: numeric order for the generator's fixed-width ids); an owner's name is the one on the
owner's most recently updated deal (HubSpot keeps no name history); deleting a deal keeps its
activities but drops their association to it; no rate limiting and no rate headers unless
`rate_limits` (a RateLimits budget: HubSpot's X-HubSpot-RateLimit-* headers and 429 policy
bodies) is given or a Fault is injected (see `rate_limit_fault`). `scopes` limits the token
(403 MISSING_SCOPES), `deleted_stages` removes stages from their pipelines while stage history
keeps their ids. Also served: `POST /oauth/v2/private-apps/get/access-token-info` and
`GET /account-info/v3/details` (the preflight's). Error messages follow HubSpot's body shape
but are paraphrased.

CLI: python -m devkit.fake_servers.hubspot --data DIR [--deals N --seed S] [--port P] --token T
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import sys
import threading
import time
import unicodedata
import uuid
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any
from urllib.parse import urlencode

from devkit.fake_servers.base import FakeApiServer, Fault, Request, Response
from devkit.fake_servers.cli import serve
from devkit.fake_servers.dataset import SampleDataset
from devkit.sample_data import FUNNEL_ORDER, FUNNEL_STAGES, LOST, OWNERS, PIPELINES, Pipeline

# --------------------------------------------------------------------------------------------
# Limits and fixed values of the real API
# --------------------------------------------------------------------------------------------

LIST_LIMIT_DEFAULT = 10
LIST_LIMIT_MAX = 100
HISTORY_LIMIT_MAX = 50  # a page asking for propertiesWithHistory holds at most 50 objects
SEARCH_LIMIT_DEFAULT = 10
SEARCH_LIMIT_MAX = 200
SEARCH_RESULT_CAP = 10_000  # no search page may reach past this offset
SEARCH_MAX_FILTER_GROUPS = 5
BATCH_READ_MAX = 100  # ids per batch read (50 with propertiesWithHistory)
ASSOCIATIONS_BATCH_MAX = 100
OWNERS_LIMIT_DEFAULT = 100
OWNERS_LIMIT_MAX = 500

CATALOG_CREATED_AT = "2024-01-01T00:00:00.000Z"
DEFAULT_PIPELINE_CREATED_AT = "1970-01-01T00:00:00.000Z"  # HubSpot: default stages have 0
OWNER_USER_ID_BASE = 9_000_000
HUB_ID = 24_681_357  # the fake account's portal (hub) id
PRIVATE_APP_ID = 3_141_592
JSON_HEADERS = {"Content-Type": "application/json;charset=utf-8"}
AUTH_MESSAGE = (
    "Authentication credentials not found. This API supports OAuth 2.0 authentication and "
    "you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
)

# --------------------------------------------------------------------------------------------
# Errors in HubSpot's shape
# --------------------------------------------------------------------------------------------


def error_body(message: str, category: str, **extra: Any) -> dict[str, Any]:
    """HubSpot's error document: status, message, correlationId, category (plus extras)."""
    return {
        "status": "error",
        "message": message,
        "correlationId": str(uuid.uuid4()),
        "category": category,
        **extra,
    }


RATE_LIMIT_MESSAGES = {
    "SECONDLY": "You have reached your secondly limit.",
    "TEN_SECONDLY_ROLLING": "You have reached your ten_secondly_rolling limit.",
    "DAILY": "You have reached your daily limit.",
}


def rate_limit_body(policy: str = "SECONDLY") -> dict[str, Any]:
    """HubSpot's 429 document: `errorType` RATE_LIMIT and the `policyName` of the limit hit."""
    return {
        "status": "error",
        "message": RATE_LIMIT_MESSAGES.get(policy, f"You have reached your {policy} limit."),
        "errorType": "RATE_LIMIT",
        "correlationId": str(uuid.uuid4()),
        "policyName": policy,
        "requestId": str(uuid.uuid4()),
    }


def rate_limit_fault(
    retry_after: float | str | None = 1,
    *,
    times: int = 1,
    policy: str = "SECONDLY",
    headers: Mapping[str, str] | None = None,
) -> Fault:
    """A Fault answering 429 with HubSpot's rate-limit body for `policy` (SECONDLY,
    TEN_SECONDLY_ROLLING, DAILY); `Retry-After` only when `retry_after` is given (HubSpot
    sends none with its policy bodies), plus any rate `headers`."""
    return Fault(
        status=429,
        body=rate_limit_body(policy),
        headers={**JSON_HEADERS, **(headers or {})},
        retry_after=retry_after,
        times=times,
    )


def missing_scopes_body(scopes: Sequence[str]) -> dict[str, Any]:
    """HubSpot's 403 for a token without the scopes a call needs."""
    return error_body(
        "This app hasn't been granted all required scopes to make this call. Read more about "
        "required scopes here: https://developers.hubspot.com/scopes.",
        "MISSING_SCOPES",
        errors=[
            {
                "message": "One or more of the following scopes are required.",
                "context": {"requiredGranularScopes": list(scopes)},
            }
        ],
        links={"scopes": "https://developers.hubspot.com/scopes"},
    )


# Scopes each path needs (HubSpot's API reference, "Scope requirements"): deals and their
# pipelines need deals read; owners their own; calls, emails and meetings the contacts
# scope (engagements); an association batch read needs both objects' read scopes.
DEALS_READ = "crm.objects.deals.read"
COMPANIES_READ = "crm.objects.companies.read"
OWNERS_READ = "crm.objects.owners.read"
CONTACTS_READ = "crm.objects.contacts.read"
ALL_SCOPES = (DEALS_READ, COMPANIES_READ, OWNERS_READ, CONTACTS_READ)


def scopes_for(path: str) -> tuple[str, ...]:
    """The read scopes a request to `path` needs (none for the account and token info)."""
    parts = path.strip("/").split("/")
    if path.startswith("/crm/v4/associations/"):
        return tuple(dict.fromkeys(_object_scope(p) for p in parts[3:5]))
    if path.startswith("/crm/v3/objects/"):
        return (_object_scope(parts[3]),)
    if path.startswith("/crm/v3/pipelines/deals"):
        return (DEALS_READ,)
    if path.startswith("/crm/v3/owners"):
        return (OWNERS_READ,)
    return ()


def _object_scope(kind: str) -> str:
    return {"deals": DEALS_READ, "companies": COMPANIES_READ}.get(kind, CONTACTS_READ)


@dataclass
class RateLimits:
    """An account's request budget, as a Professional account has it by default: `burst`
    requests per rolling `interval_ms`, `daily` a day (`used_today` spent already).

    Every response but search's carries the X-HubSpot-RateLimit-* headers; a request past
    the burst gets 429 TEN_SECONDLY_ROLLING, past the daily limit 429 DAILY (HubSpot's
    policy bodies, no Retry-After). Search counts against the daily limit only (HubSpot
    limits it per second on its own and sends no rate headers with it)."""

    burst: int = 190
    interval_ms: int = 10_000
    daily: int = 650_000
    used_today: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._recent: deque[float] = deque()

    def take(self, path: str) -> tuple[dict[str, str], Response | None]:
        """Count one request: its rate headers, and the 429 if it is over a limit."""
        search = path.endswith("/search")
        with self._lock:
            now = time.monotonic()
            while self._recent and now - self._recent[0] >= self.interval_ms / 1000:
                self._recent.popleft()
            policy = None
            if self.used_today >= self.daily:
                policy = "DAILY"
            elif not search and len(self._recent) >= self.burst:
                policy = "TEN_SECONDLY_ROLLING"
            else:
                self.used_today += 1
                if not search:
                    self._recent.append(now)
            headers = {} if search else self._headers()
        if policy is None:
            return headers, None
        return headers, (429, {**JSON_HEADERS, **headers}, rate_limit_body(policy))

    def _headers(self) -> dict[str, str]:
        return {
            "X-HubSpot-RateLimit-Daily": str(self.daily),
            "X-HubSpot-RateLimit-Daily-Remaining": str(max(self.daily - self.used_today, 0)),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(self.interval_ms),
            "X-HubSpot-RateLimit-Max": str(self.burst),
            "X-HubSpot-RateLimit-Remaining": str(max(self.burst - len(self._recent), 0)),
        }


class ApiError(Exception):
    """A request the real API would refuse: rendered as HubSpot's error body."""

    def __init__(self, status: int, message: str, category: str = "VALIDATION_ERROR") -> None:
        super().__init__(message)
        self.status = status
        self.category = category

    def response(self) -> Response:
        return self.status, JSON_HEADERS, error_body(str(self), self.category)


# --------------------------------------------------------------------------------------------
# Id and value mapping
# --------------------------------------------------------------------------------------------

_CANONICAL_ID = re.compile(r"^[A-Za-z]*(\d+)$")


def hubspot_id(canonical: str | None) -> str | None:
    """`D0000042` -> "42": the canonical id without its letter prefix and leading zeros."""
    if canonical is None or canonical == "":
        return None
    match = _CANONICAL_ID.match(canonical)
    if match is None:
        raise ValueError(f"canonical id {canonical!r} is not a letter prefix plus digits")
    return str(int(match.group(1)))


def hubspot_time(value: str | None) -> str | None:
    """A canonical ISO timestamp as HubSpot writes it: UTC with milliseconds, `...00.000Z`."""
    if value is None or value == "":
        return None
    at = datetime.fromisoformat(value)
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def _epoch_millis(value: Any, what: str) -> int:
    """A filter value for a datetime property: epoch millis (number or string) or ISO text."""
    text = str(value).strip()
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise ApiError(400, f"{what}: {value!r} is neither epoch millis nor ISO-8601") from None
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at
    return int(at.timestamp() * 1000)


def _flag(value: bool) -> str:
    return "true" if value else "false"


# --------------------------------------------------------------------------------------------
# Pipelines and stages
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HsStage:
    """A deal stage as HubSpot describes it."""

    id: str
    label: str
    display_order: int
    is_closed: bool
    probability: float

    def to_json(self, created_at: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "label": self.label,
            "displayOrder": self.display_order,
            "metadata": {"isClosed": _flag(self.is_closed), "probability": str(self.probability)},
            "createdAt": created_at,
            "updatedAt": created_at,
            "archived": False,
            "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
        }


@dataclass(frozen=True)
class HsPipeline:
    """A deal pipeline with its stages in display order."""

    id: str
    label: str
    display_order: int
    stages: tuple[HsStage, ...]

    @property
    def created_at(self) -> str:
        return DEFAULT_PIPELINE_CREATED_AT if self.id == "default" else CATALOG_CREATED_AT

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "label": self.label,
            "displayOrder": self.display_order,
            "stages": [s.to_json(self.created_at) for s in self.stages],
            "createdAt": self.created_at,
            "updatedAt": self.created_at,
            "archived": False,
        }


def _hs_pipeline(p: int, pipeline: Pipeline) -> HsPipeline:
    """Pipeline number `p` (1-based) of sample_data.PIPELINES with HubSpot-style ids."""
    default = p == 1
    open_stages = [
        HsStage(str(100_000_000 + 1000 * p + s), stage.name, s - 1, False, stage.probability)
        for s, stage in enumerate(pipeline.stages, start=1)
    ]
    n = len(open_stages)
    won_id = "closedwon" if default else str(100_000_000 + 1000 * p + n + 1)
    lost_id = "closedlost" if default else str(100_000_000 + 1000 * p + n + 2)
    closed = [
        HsStage(won_id, pipeline.won_stage, n, True, 1.0),
        HsStage(lost_id, pipeline.lost_stage, n + 1, True, 0.0),
    ]
    pipeline_id = "default" if default else str(70_000_000 + p)
    return HsPipeline(pipeline_id, pipeline.name, p - 1, tuple(open_stages + closed))


def _crc_id(*parts: str) -> str:
    return str(900_000_000 + zlib.crc32("\x1f".join(parts).encode()) % 100_000_000)


class StageCatalog:
    """The generator's pipelines as HubSpot pipelines; unknown names get CRC32-derived ids.

    A stage the generator does not know is described by the data served: closed and won
    (probability 1) when a deal sits in it as won, closed and lost (probability 0) when one
    sits in it as lost; otherwise by the dataset's stage mapping (`lost`, the last funnel
    stage, or open with the mapping's probability), else open with probability 0. Its
    display order follows the funnel order the mapping gives, then the name."""

    def __init__(
        self, pipelines: Sequence[Pipeline] = PIPELINES, dataset: SampleDataset | None = None
    ) -> None:
        self.pipelines = tuple(_hs_pipeline(p, pl) for p, pl in enumerate(pipelines, start=1))
        self._by_label = {p.label: p for p in self.pipelines}
        self._stages = {(p.label, s.label): s for p in self.pipelines for s in p.stages}
        self._dataset = dataset
        # A stage's metadata is fixed once described, as in HubSpot.
        self._derived: dict[tuple[str, str], HsStage] = {}

    def pipeline_id(self, label: str) -> str:
        known = self._by_label.get(label)
        return known.id if known else _crc_id(label)

    def stage(self, pipeline: str, label: str) -> HsStage:
        known = self._stages.get((pipeline, label))
        if known is not None:
            return known
        if (pipeline, label) not in self._derived:
            self._derived[(pipeline, label)] = self._describe(pipeline, label)
        return self._derived[(pipeline, label)]

    def _describe(self, pipeline: str, label: str) -> HsStage:
        """An unknown stage's metadata, from the deals in it and the stage mapping."""
        is_closed, probability, order = False, 0.0, 999
        if self._dataset is not None:
            facts = self._dataset.rows(
                """select
                       bool_or(status = 'won') as won,
                       bool_or(status = 'lost') as lost,
                       (select max(funnel_stage) from stage_mapping as m
                        where m.pipeline = ? and m.crm_stage = ?) as funnel_stage,
                       (select max(probability) from stage_mapping as m
                        where m.pipeline = ? and m.crm_stage = ?) as probability
                   from deals
                   where pipeline = ? and stage = ?""",
                [pipeline, label, pipeline, label, pipeline, label],
            )[0]
            funnel = facts["funnel_stage"]
            order = FUNNEL_ORDER.get(funnel, len(FUNNEL_ORDER) + 1 if funnel == LOST else 999)
            if facts["won"] or (not facts["lost"] and funnel == FUNNEL_STAGES[-1][0]):
                is_closed, probability = True, 1.0
            elif facts["lost"] or funnel == LOST:
                is_closed, probability = True, 0.0
            elif facts["probability"] is not None:
                probability = float(facts["probability"])
        return HsStage(_crc_id(pipeline, label), label, order, is_closed, probability)

    def with_extra(self, pairs: Iterable[tuple[str, str]]) -> list[HsPipeline]:
        """The known pipelines plus any (pipeline, stage) the dataset uses that they lack."""
        extra: dict[str, list[HsStage]] = {}
        for pipeline, label in sorted(pairs):
            if (pipeline, label) not in self._stages:
                extra.setdefault(pipeline, []).append(self.stage(pipeline, label))
        for stages in extra.values():
            stages.sort(key=lambda s: (s.display_order, s.label))
        out = [
            HsPipeline(p.id, p.label, p.display_order, p.stages + tuple(extra.pop(p.label, ())))
            for p in self.pipelines
        ]
        for n, (label, stages) in enumerate(sorted(extra.items()), start=len(out)):
            numbered = tuple(
                HsStage(s.id, s.label, i, s.is_closed, s.probability) for i, s in enumerate(stages)
            )
            out.append(HsPipeline(_crc_id(label), label, n, numbered))
        return out


# --------------------------------------------------------------------------------------------
# Object types: where their rows come from, what can be filtered and sorted
# --------------------------------------------------------------------------------------------

_NUM = r"cast(regexp_extract({col}, '(\d+)$', 1) as bigint)"
_MS = "epoch_ms(cast({col} as timestamptz))"

_DEALS_SQL = f"""
    select d.*, {_NUM.format(col="d.deal_id")} as num,
        d.deleted_at is not null as is_archived,
        {_MS.format(col="d.updated_at")} as ms_modified,
        {_MS.format(col="d.created_at")} as ms_created,
        {_MS.format(col="d.closed_at")} as ms_closed
    from deals as d
"""
_ACTIVITIES_SQL = f"""
    select a.*, {_NUM.format(col="a.activity_id")} as num,
        false as is_archived,
        {_MS.format(col="a.occurred_at")} as ms_occurred
    from activities as a
    where a.activity_type = ?
"""

# Always returned, whatever `properties` asks for.
_ALWAYS_DEAL = ("createdate", "hs_lastmodifieddate", "hs_object_id")
_ALWAYS_ACTIVITY = ("hs_createdate", "hs_lastmodifieddate", "hs_object_id")


@dataclass(frozen=True)
class ObjectKind:
    """One CRM object type the fake serves: `/crm/v3/objects/{name}`."""

    name: str
    table: str  # dataset table
    key: str  # its canonical id column
    scope_sql: str  # which rows of `table` are this kind (with `source_params`)
    archived_sql: str  # when a row is archived in HubSpot
    source_sql: str  # searchable relation: the rows plus `num`, `is_archived` and millis columns
    source_params: tuple[Any, ...]
    searchable: Mapping[str, str]  # property -> column of source_sql (a trusted allow-list)
    default_properties: tuple[str, ...]
    always_properties: tuple[str, ...]
    association: str  # what `associations=` asks for
    association_types: tuple[str, ...]  # v3 inline `type`s, one entry each
    v4_types: tuple[tuple[int, str | None], ...]  # v4 (typeId, label)s of that association
    activity_type: str | None = None  # canonical activity_type; None for deals
    aliases: tuple[str, ...] = ()


DEALS = ObjectKind(
    name="deals",
    table="deals",
    key="deal_id",
    scope_sql="true",
    archived_sql="deleted_at is not null",
    source_sql=_DEALS_SQL,
    source_params=(),
    searchable={
        "hs_lastmodifieddate": "ms_modified",
        "createdate": "ms_created",
        "closedate": "ms_closed",
        "hs_object_id": "num",
    },
    default_properties=(
        "amount",
        "closedate",
        "createdate",
        "dealname",
        "dealstage",
        "hs_lastmodifieddate",
        "hs_object_id",
        "pipeline",
    ),
    always_properties=_ALWAYS_DEAL,
    association="companies",
    association_types=("deal_to_company", "deal_to_company_unlabeled"),
    v4_types=((5, "Primary"), (341, None)),
    aliases=("company",),
)


def _activity_kind(name: str, activity_type: str, association: str, type_id: int) -> ObjectKind:
    return ObjectKind(
        name=name,
        table="activities",
        key="activity_id",
        scope_sql="activity_type = ?",
        archived_sql="false",
        source_sql=_ACTIVITIES_SQL,
        source_params=(activity_type,),
        searchable={
            "hs_timestamp": "ms_occurred",
            "hs_lastmodifieddate": "ms_occurred",
            "hs_createdate": "ms_occurred",
            "hs_object_id": "num",
        },
        default_properties=_ALWAYS_ACTIVITY,
        always_properties=_ALWAYS_ACTIVITY,
        association="deals",
        association_types=(association,),
        v4_types=((type_id, None),),
        activity_type=activity_type,
        aliases=("deal",),
    )


ACTIVITY_KINDS: tuple[ObjectKind, ...] = (
    _activity_kind("calls", "call", "call_to_deal", 206),
    _activity_kind("emails", "email", "email_to_deal", 210),
    _activity_kind("meetings", "meeting", "meeting_event_to_deal", 212),
    _activity_kind("notes", "note", "note_to_deal", 214),
    _activity_kind("tasks", "task", "task_to_deal", 216),
)

_SEARCH_OPERATORS = {"EQ": "=", "NEQ": "<>", "GT": ">", "GTE": ">=", "LT": "<", "LTE": "<="}

# --------------------------------------------------------------------------------------------
# Request parsing
# --------------------------------------------------------------------------------------------


def _limit(raw: Any, default: int, maximum: int) -> int:
    if raw is None or raw == "":
        return default
    try:
        limit = int(raw)
    except (TypeError, ValueError):
        raise ApiError(400, f"limit: {raw!r} is not an integer") from None
    if limit < 1 or limit > maximum:
        raise ApiError(400, f"limit: {limit} must be between 1 and {maximum}")
    return limit


def _csv_param(request: Request, name: str) -> list[str]:
    """A list parameter given comma-separated, repeated, or both."""
    values = [v.strip() for raw in request.query.get(name, []) for v in raw.split(",")]
    return [v for v in values if v]


def _bool_param(request: Request, name: str) -> bool:
    raw = (request.param(name) or "false").lower()
    if raw not in ("true", "false"):
        raise ApiError(400, f"{name}: {raw!r} is not a boolean")
    return raw == "true"


def encode_cursor(scope: str, last: str) -> str:
    """An opaque `after` token: the last id served, bound to the endpoint that served it."""
    return base64.urlsafe_b64encode(f"{scope}:{last}".encode()).decode().rstrip("=")


def decode_cursor(scope: str, token: str | None) -> str:
    """The id after which the next page starts ("" at first); 400 for a token not issued here."""
    if token is None or token == "":
        return ""
    try:
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,200}", token):
            raise ValueError
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("ascii")
        prefix, _, last = text.partition(":")
        if prefix != scope or not _CANONICAL_ID.match(last) or encode_cursor(scope, last) != token:
            raise ValueError
        return last
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ApiError(400, f"after: {token!r} is not a valid paging cursor") from None


def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = request.json() or {}
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "Invalid input JSON: the body is not a JSON document") from None
    if not isinstance(body, dict):
        raise ApiError(400, "Invalid input JSON: the body must be a JSON object")
    return body


def _name_list(body: Mapping[str, Any], key: str) -> list[str]:
    names = body.get(key) or []
    if not isinstance(names, list):
        raise ApiError(400, f"{key}: must be a list of property names")
    return [str(n) for n in names]


def _input_ids(body: Mapping[str, Any], maximum: int) -> list[str]:
    """The `inputs: [{"id": "42"}]` of a batch request, validated, in order, without repeats."""
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise ApiError(400, 'inputs: a non-empty list of {"id": ...} is required')
    if len(inputs) > maximum:
        raise ApiError(400, f"inputs: at most {maximum} ids per batch, got {len(inputs)}")
    ids = [str(i.get("id", "")).strip() if isinstance(i, dict) else "" for i in inputs]
    bad = [i for i in ids if not i.isdigit()]
    if bad:
        raise ApiError(400, f"inputs: {bad[0]!r} is not an object id")
    return list(dict.fromkeys(str(int(i)) for i in ids))


def _now() -> str:
    return hubspot_time(datetime.now(UTC).isoformat()) or ""


def _next_link(request: Request, after: str) -> str:
    """`paging.next.link`: this request's URL with the new cursor (same origin as the request)."""
    query = [(k, v) for k, values in request.query.items() if k != "after" for v in values]
    query.append(("after", after))
    host = _header(request, "Host") or "127.0.0.1"
    return f"http://{host}{request.path}?{urlencode(query)}"


def _header(request: Request, name: str) -> str | None:
    lowered = name.lower()
    return next((v for k, v in request.headers.items() if k.lower() == lowered), None)


def _ascii_slug(name: str) -> str:
    flat = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", ".", flat.lower()).strip(".") or "owner"


# --------------------------------------------------------------------------------------------
# The API
# --------------------------------------------------------------------------------------------


class HubSpotApi:
    """Handlers of the fake HubSpot API over one SampleDataset (read live on every request)."""

    def __init__(
        self,
        dataset: SampleDataset,
        *,
        token: str,
        search_result_cap: int = SEARCH_RESULT_CAP,
        rate_limits: RateLimits | None = None,
        scopes: Iterable[str] | None = None,
        deleted_stages: Iterable[tuple[str, str]] = (),
        time_zone: str = "US/Eastern",
    ) -> None:
        if not token:
            raise ValueError("the fake HubSpot server needs a non-empty token")
        if search_result_cap < 1:
            raise ValueError("search_result_cap must be at least 1")
        self.dataset = dataset
        # HubSpot's is 10,000; tests lower it to exercise the cap on a small dataset.
        self.search_result_cap = search_result_cap
        self._token = token.encode()
        self.catalog = StageCatalog(dataset=dataset)
        self.rate_limits = rate_limits
        # The scopes the token was granted (None: every scope the fake knows).
        self.scopes = tuple(ALL_SCOPES if scopes is None else scopes)
        self.deleted_stages = self._deletable(deleted_stages)
        self.time_zone = time_zone

    def _deletable(self, stages: Iterable[tuple[str, str]]) -> frozenset[tuple[str, str]]:
        """Stages (pipeline, label) removed from their pipeline; HubSpot refuses to delete
        a stage while deals sit in it, and so does this."""
        stages = frozenset(stages)
        for pipeline, label in sorted(stages):
            n = self.dataset.scalar(
                "select count(*) from deals where pipeline = ? and stage = ?", [pipeline, label]
            )
            if n:
                raise ValueError(
                    f"stage {label!r} of pipeline {pipeline!r} holds {n} deal(s): HubSpot "
                    "only deletes an empty stage"
                )
        return stages

    # -- plumbing ---------------------------------------------------------------------------

    def endpoint(
        self, handler: Callable[[Request], Any], *, path: str = "", public: bool = False
    ) -> Callable[[Request], Response]:
        """Wrap a handler (body, or (status, body)): Bearer auth first (unless `public`),
        then the token's scopes for `path`, then the rate limits; HubSpot error bodies."""
        missing = [s for s in scopes_for(path) if s not in self.scopes]

        def serve(request: Request) -> Response:
            if not public and not self._authorized(request):
                return 401, JSON_HEADERS, error_body(AUTH_MESSAGE, "INVALID_AUTHENTICATION")
            if missing:
                return 403, JSON_HEADERS, missing_scopes_body(missing)
            rate_headers: dict[str, str] = {}
            if self.rate_limits is not None:
                rate_headers, refused = self.rate_limits.take(request.path)
                if refused is not None:
                    return refused
            try:
                result = handler(request)
            except ApiError as exc:
                status, headers, body = exc.response()
                return status, {**headers, **rate_headers}, body
            status, body = result if isinstance(result, tuple) else (200, result)
            return status, {**JSON_HEADERS, **rate_headers}, body

        return serve

    def _authorized(self, request: Request) -> bool:
        scheme, _, credential = (_header(request, "Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not credential:
            return False
        return hmac.compare_digest(credential.strip().encode(), self._token)

    # -- GET /crm/v3/objects/{kind} ----------------------------------------------------------

    def list_objects(self, request: Request, *, kind: ObjectKind) -> dict[str, Any]:
        """One page of objects in id order; `archived=true` lists only archived ones."""
        history = _csv_param(request, "propertiesWithHistory")
        maximum = HISTORY_LIMIT_MAX if history else LIST_LIMIT_MAX
        limit = _limit(request.param("limit"), LIST_LIMIT_DEFAULT, maximum)
        last = decode_cursor(kind.name, request.param("after"))
        page, more = self._page(
            kind, archived=_bool_param(request, "archived"), last=last, limit=limit
        )
        wanted = self._wanted_properties(kind, _csv_param(request, "properties"))
        associations = {a.lower() for a in _csv_param(request, "associations")}
        with_assoc = bool({kind.association, *kind.aliases} & associations)
        stage_history = self._stage_history(page) if kind is DEALS and history else {}
        results = []
        for row in page:
            obj = self._object(kind, row, wanted)
            if history:
                obj["propertiesWithHistory"] = self._history(kind, row, history, stage_history)
            if with_assoc:
                self._add_associations(kind, row, obj)
            results.append(obj)
        body: dict[str, Any] = {"results": results}
        if more:
            after = encode_cursor(kind.name, page[-1][kind.key])
            body["paging"] = {"next": {"after": after, "link": _next_link(request, after)}}
        return body

    def _page(
        self, kind: ObjectKind, *, archived: bool, last: str, limit: int
    ) -> tuple[list[dict[str, Any]], bool]:
        """Up to `limit` rows after canonical id `last`, and whether more follow.

        Ids are ordered by length, then text: numeric order for the generator's fixed-width
        ids, and cheap at 200,000 deals, unlike extracting the number from every row.
        """
        key = kind.key
        rows = self.dataset.rows(
            f"""select * from {kind.table}
                where {kind.scope_sql} and ({kind.archived_sql}) = ?
                    and (length({key}) > ? or (length({key}) = ? and {key} > ?))
                order by length({key}), {key} limit ?""",
            [*kind.source_params, archived, len(last), len(last), last, limit + 1],
        )
        return self._annotate(kind, rows[:limit], archived), len(rows) > limit

    def _rows_by_id(self, kind: ObjectKind, ids: list[str], *, archived: bool) -> list[dict]:
        """The rows of these HubSpot ids (batch reads: a full scan, as ids lose their prefix)."""
        rows = self.dataset.rows(
            f"""select * from {kind.table}
                where {kind.scope_sql} and ({kind.archived_sql}) = ?
                    and {_NUM.format(col=kind.key)} in ({", ".join("?" for _ in ids)})
                order by length({kind.key}), {kind.key}""",
            [*kind.source_params, archived, *(int(i) for i in ids)],
        )
        return self._annotate(kind, rows, archived)

    def _annotate(self, kind: ObjectKind, rows: list[dict], archived: bool) -> list[dict]:
        """Add what the object builders need: HubSpot number, archived flag, deleted deal."""
        deleted_deals = self._deleted_deals(rows) if kind is not DEALS else set()
        for row in rows:
            row["num"] = int(hubspot_id(row[kind.key]) or 0)
            row["is_archived"] = archived
            row["deal_deleted"] = row.get("deal_id") in deleted_deals
        return rows

    def _deleted_deals(self, activities: list[dict[str, Any]]) -> set[str]:
        """Which deals of these activities are deleted (their association is gone)."""
        ids = sorted({r["deal_id"] for r in activities if r["deal_id"]})
        if not ids:
            return set()
        rows = self.dataset.rows(
            f"""select deal_id from deals
                where deleted_at is not null and deal_id in ({", ".join("?" for _ in ids)})""",
            ids,
        )
        return {r["deal_id"] for r in rows}

    # -- POST /crm/v3/objects/{kind}/batch/read --------------------------------------------

    def batch_read(self, request: Request, *, kind: ObjectKind) -> Any:
        """Objects by id (how a night re-reads what search found, with history)."""
        body = _json_body(request)
        history = _name_list(body, "propertiesWithHistory")
        ids = _input_ids(body, HISTORY_LIMIT_MAX if history else BATCH_READ_MAX)
        rows = self._rows_by_id(kind, ids, archived=_bool_param(request, "archived"))
        wanted = self._wanted_properties(kind, _name_list(body, "properties"))
        stage_history = self._stage_history(rows) if kind is DEALS and history else {}
        results = []
        for row in rows:
            obj = self._object(kind, row, wanted)
            if history:
                obj["propertiesWithHistory"] = self._history(kind, row, history, stage_history)
            results.append(obj)
        started = _now()
        out: dict[str, Any] = {"status": "COMPLETE", "results": results}
        missing = [i for i in ids if i not in {str(r["num"]) for r in rows}]
        message = (
            f"Could not get some {kind.name.upper().rstrip('S')} objects, they may be deleted "
            "or not exist. Check that ids are valid."
        )
        if missing and not rows:
            raise ApiError(404, message, "OBJECT_NOT_FOUND")
        if missing:
            out["numErrors"] = 1
            out["errors"] = [
                {
                    "status": "error",
                    "category": "OBJECT_NOT_FOUND",
                    "message": message,
                    "context": {"ids": missing},
                }
            ]
        out.update(startedAt=started, completedAt=_now())
        return (207 if missing else 200), out

    # -- POST /crm/v4/associations/{kind}/{to}/batch/read ------------------------------------

    def batch_read_associations(self, request: Request, *, kind: ObjectKind) -> Any:
        """The associated ids (v4 shape: numeric `toObjectId`, typed labels) of some objects."""
        ids = _input_ids(_json_body(request), ASSOCIATIONS_BATCH_MAX)
        results = []
        for row in self._rows_by_id(kind, ids, archived=False):
            target = self._associated_id(kind, row)
            if target is not None:
                types = [
                    {"category": "HUBSPOT_DEFINED", "typeId": type_id, "label": label}
                    for type_id, label in kind.v4_types
                ]
                results.append(
                    {
                        "from": {"id": str(row["num"])},
                        "to": [{"toObjectId": int(target), "associationTypes": types}],
                    }
                )
        started = _now()
        out: dict[str, Any] = {"status": "COMPLETE", "results": results}
        missing = [i for i in ids if i not in {r["from"]["id"] for r in results}]
        if missing:
            out["numErrors"] = len(missing)
            out["errors"] = [
                {
                    "status": "error",
                    "category": "OBJECT_NOT_FOUND",
                    "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND",
                    "message": f"No {kind.association} is associated with {kind.name} {i}.",
                    "context": {"fromObjectId": [i]},
                }
                for i in missing
            ]
        out.update(startedAt=started, completedAt=_now())
        return (207 if missing else 200), out

    # -- POST /crm/v3/objects/{kind}/search --------------------------------------------------

    def search_objects(self, request: Request, *, kind: ObjectKind) -> dict[str, Any]:
        """Filtered, sorted, offset-paged objects; archived ones are never found."""
        query = _json_body(request)
        limit = _limit(query.get("limit"), SEARCH_LIMIT_DEFAULT, SEARCH_LIMIT_MAX)
        offset = self._search_offset(query.get("after"))
        if offset + limit > self.search_result_cap:
            raise ApiError(
                400,
                f"Search results are limited to {self.search_result_cap} per query: after={offset} "
                f"with limit={limit} reaches past it; narrow the filter instead",
            )
        where, params = self._search_where(kind, query.get("filterGroups") or [])
        order = self._search_order(kind, query.get("sorts") or [])
        source = f"select * from ({kind.source_sql}) where not is_archived and ({where})"
        all_params = [*kind.source_params, *params]
        total = self.dataset.scalar(f"select count(*) from ({source})", all_params)
        rows = self.dataset.rows(
            f"{source} order by {order} limit ? offset ?", [*all_params, limit, offset]
        )
        wanted = self._wanted_properties(kind, _name_list(query, "properties"))
        body: dict[str, Any] = {
            "total": total,
            "results": [self._object(kind, row, wanted) for row in rows],
        }
        if offset + len(rows) < total:
            after = str(offset + limit)
            body["paging"] = {"next": {"after": after}}  # search pages have no link
        return body

    @staticmethod
    def _search_offset(raw: Any) -> int:
        if raw is None or raw == "":
            return 0
        text = str(raw).strip()
        if not text.isdigit():
            raise ApiError(400, f"after: {raw!r} is not a valid paging cursor")
        return int(text)

    def _search_where(self, kind: ObjectKind, groups: Any) -> tuple[str, list[Any]]:
        if not isinstance(groups, list) or len(groups) > SEARCH_MAX_FILTER_GROUPS:
            raise ApiError(
                400, f"filterGroups: a list of at most {SEARCH_MAX_FILTER_GROUPS} groups"
            )
        clauses, params = [], []
        for group in groups:
            filters = group.get("filters") if isinstance(group, dict) else None
            if not isinstance(filters, list) or not filters:
                raise ApiError(400, "filterGroups: each group needs a non-empty `filters` list")
            parts = []
            for f in filters:
                sql, values = self._filter_sql(kind, f)
                parts.append(sql)
                params.extend(values)
            clauses.append("(" + " and ".join(parts) + ")")
        return (" or ".join(clauses) or "true"), params

    def _filter_sql(self, kind: ObjectKind, f: Any) -> tuple[str, list[Any]]:
        if not isinstance(f, dict):
            raise ApiError(400, "filters: each filter must be an object")
        prop, op = f.get("propertyName"), str(f.get("operator", "EQ")).upper()
        column = kind.searchable.get(str(prop))
        if column is None:
            raise ApiError(
                400,
                f"propertyName: the fake HubSpot server filters {kind.name} only on "
                f"{', '.join(sorted(kind.searchable))}, not {prop!r}",
            )
        as_number = (lambda v: int(v)) if column == "num" else partial(_epoch_millis, what=prop)
        try:
            if op == "HAS_PROPERTY":
                return f"{column} is not null", []
            if op == "NOT_HAS_PROPERTY":
                return f"{column} is null", []
            if op == "BETWEEN":
                return f"{column} between ? and ?", [
                    as_number(f.get("value")),
                    as_number(f.get("highValue")),
                ]
            if op in _SEARCH_OPERATORS:
                return f"{column} {_SEARCH_OPERATORS[op]} ?", [as_number(f.get("value"))]
        except (TypeError, ValueError):
            raise ApiError(400, f"{prop}: {f.get('value')!r} is not a valid value") from None
        raise ApiError(400, f"operator: {op!r} is not supported by the fake HubSpot server")

    def _search_order(self, kind: ObjectKind, sorts: Any) -> str:
        if not isinstance(sorts, list):
            raise ApiError(400, "sorts: must be a list")
        keys = []
        for s in sorts:
            prop, direction = (s, "ASCENDING") if isinstance(s, str) else (None, None)
            if isinstance(s, dict):
                prop, direction = s.get("propertyName"), str(s.get("direction", "ASCENDING"))
            column = kind.searchable.get(str(prop))
            if column is None or direction.upper() not in ("ASCENDING", "DESCENDING"):
                raise ApiError(400, f"sorts: cannot sort {kind.name} by {s!r}")
            keys.append(f"{column} {'desc' if direction.upper() == 'DESCENDING' else 'asc'}")
        return ", ".join([*keys, "num asc"])  # ids break ties: pages never overlap

    # -- GET /crm/v3/pipelines/deals ---------------------------------------------------------

    def list_pipelines(self, request: Request) -> dict[str, Any]:
        """Every deal pipeline with its stages (no paging, as in HubSpot)."""
        pairs = self.dataset.rows(
            """select distinct pipeline, stage from deals where stage is not null
               union
               select distinct d.pipeline, h.stage
               from stage_history as h join deals as d on d.deal_id = h.deal_id"""
        )
        pipelines = self.catalog.with_extra((r["pipeline"], r["stage"]) for r in pairs)
        return {"results": [self._without_deleted(p).to_json() for p in pipelines]}

    def _without_deleted(self, pipeline: HsPipeline) -> HsPipeline:
        """A pipeline without its deleted stages (their ids live on in stage history)."""
        stages = tuple(
            s for s in pipeline.stages if (pipeline.label, s.label) not in self.deleted_stages
        )
        return HsPipeline(pipeline.id, pipeline.label, pipeline.display_order, stages)

    # -- POST /oauth/v2/private-apps/get/access-token-info, GET /account-info/v3/details --

    def token_info(self, request: Request) -> Any:
        """A private app token's account, app and scopes (the token in the body)."""
        key = str(_json_body(request).get("tokenKey") or "").encode()
        if not key or not hmac.compare_digest(key, self._token):
            raise ApiError(401, "The access token is invalid or expired.", "INVALID_AUTHENTICATION")
        return {
            "userId": OWNER_USER_ID_BASE + 1001,
            "hubId": HUB_ID,
            "appId": PRIVATE_APP_ID,
            "scopes": list(self.scopes),
        }

    def account_details(self, request: Request) -> dict[str, Any]:
        """The account's id, time zone (its daily limit resets at midnight there), currency."""
        return {
            "portalId": HUB_ID,
            "accountType": "STANDARD",
            "timeZone": self.time_zone,
            "companyCurrency": "USD",
            "additionalCurrencies": ["EUR", "GBP"],
            "utcOffset": "-05:00",
            "utcOffsetMilliseconds": -18_000_000,
            "uiDomain": "app.hubspot.com",
            "dataHostingLocation": "na1",
        }

    # -- GET /crm/v3/owners ------------------------------------------------------------------

    def list_owners(self, request: Request) -> dict[str, Any]:
        """Owners in id order; none are archived in the sample data."""
        limit = _limit(request.param("limit"), OWNERS_LIMIT_DEFAULT, OWNERS_LIMIT_MAX)
        last = int(decode_cursor("owners", request.param("after")) or -1)
        owners = [] if _bool_param(request, "archived") else self._owners()
        email = request.param("email")
        if email:
            owners = [o for o in owners if o["email"] == email.lower()]
        rest = [o for o in owners if int(o["id"]) > last]
        body: dict[str, Any] = {"results": rest[:limit]}
        if len(rest) > limit:
            after = encode_cursor("owners", rest[limit - 1]["id"])
            body["paging"] = {"next": {"after": after, "link": _next_link(request, after)}}
        return body

    def _owners(self) -> list[dict[str, Any]]:
        # The name on the owner's most recently updated deal: HubSpot has one current name.
        current = {
            r["owner_id"]: r["owner_name"]
            for r in self.dataset.rows(
                """select owner_id, owner_name from (
                       select owner_id, owner_name, row_number() over (
                           partition by owner_id
                           order by owner_name is null,
                               coalesce(updated_at, closed_at, created_at) desc, deal_id desc
                       ) as name_rank
                       from deals where deleted_at is null and owner_id is not null
                   ) where name_rank = 1"""
            )
        }
        known = {owner_id: name for owner_id, name, _ in OWNERS}
        seen = self.dataset.rows(
            "select owner_id from deals where owner_id is not null "
            "union select owner_id from activities where owner_id is not null"
        )
        ids = set(known) | set(current) | {r["owner_id"] for r in seen}
        owners = []
        for owner_id in sorted(ids, key=lambda i: int(hubspot_id(i) or 0)):
            name = current.get(owner_id) or known.get(owner_id) or ""
            first, _, last = name.partition(" ")
            number = hubspot_id(owner_id) or "0"
            owners.append(
                {
                    "id": number,
                    "email": f"{_ascii_slug(known.get(owner_id) or name)}@example.com",
                    "type": "PERSON",
                    "firstName": first,
                    "lastName": last,
                    "userId": OWNER_USER_ID_BASE + int(number),
                    "userIdIncludingInactive": OWNER_USER_ID_BASE + int(number),
                    "createdAt": CATALOG_CREATED_AT,
                    "updatedAt": CATALOG_CREATED_AT,
                    "archived": False,
                }
            )
        return owners

    # -- objects -----------------------------------------------------------------------------

    @staticmethod
    def _wanted_properties(kind: ObjectKind, asked: list[str]) -> tuple[str, ...]:
        if not asked:
            return kind.default_properties
        return tuple(dict.fromkeys([*asked, *kind.always_properties]))

    def _object(self, kind: ObjectKind, row: dict[str, Any], wanted: Sequence[str]) -> dict:
        values = self._deal_properties(row) if kind is DEALS else self._activity_properties(row)
        created, updated = (
            (values["createdate"], values["hs_lastmodifieddate"])
            if kind is DEALS
            else (values["hs_createdate"], values["hs_lastmodifieddate"])
        )
        obj: dict[str, Any] = {
            "id": values["hs_object_id"],
            # Unknown properties are ignored, as HubSpot does; known ones without a value are null.
            "properties": {p: values[p] for p in wanted if p in values},
            "createdAt": created,
            "updatedAt": updated,
            "archived": bool(row["is_archived"]),
        }
        if row["is_archived"]:
            obj["archivedAt"] = hubspot_time(row["deleted_at"])
        return obj

    def _deal_properties(self, row: dict[str, Any]) -> dict[str, str | None]:
        stage = self.catalog.stage(row["pipeline"], row["stage"])
        won = stage.is_closed and stage.probability >= 1.0
        return {
            "amount": row["amount"],
            "closedate": hubspot_time(row["closed_at"]),
            "createdate": hubspot_time(row["created_at"]),
            "deal_currency_code": row["currency"],
            "dealname": row["deal_name"],
            "dealstage": stage.id,
            "hs_deal_stage_probability": str(stage.probability),
            "hs_is_closed": _flag(stage.is_closed),
            "hs_is_closed_won": _flag(won),
            "hs_is_closed_lost": _flag(stage.is_closed and not won),
            "hs_lastmodifieddate": hubspot_time(row["updated_at"]),
            "hs_object_id": str(row["num"]),
            "hubspot_owner_id": hubspot_id(row["owner_id"]),
            "lead_source": row["lead_source"],
            "pipeline": self.catalog.pipeline_id(row["pipeline"]),
        }

    @staticmethod
    def _activity_properties(row: dict[str, Any]) -> dict[str, str | None]:
        at = hubspot_time(row["occurred_at"])
        return {
            "hs_createdate": at,
            "hs_lastmodifieddate": at,
            "hs_object_id": str(row["num"]),
            "hs_timestamp": at,
            "hubspot_owner_id": hubspot_id(row["owner_id"]),
        }

    @staticmethod
    def _associated_id(kind: ObjectKind, row: dict[str, Any]) -> str | None:
        """A deal's company, an activity's deal (gone once the deal is deleted)."""
        if kind is DEALS:
            return hubspot_id(row["company_id"])
        return None if row["deal_deleted"] else hubspot_id(row["deal_id"])

    def _add_associations(self, kind: ObjectKind, row: dict[str, Any], obj: dict) -> None:
        target = self._associated_id(kind, row)
        if target is None:
            return  # HubSpot omits the key when an object has no association of that type
        results = [{"id": target, "type": t} for t in kind.association_types]
        obj["associations"] = {kind.association: {"results": results}}

    def _stage_history(self, page: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
        """Stage changes of the deals on one page, newest first per deal."""
        if not page:
            return {}
        ids = [r["deal_id"] for r in page]
        rows = self.dataset.rows(
            f"""select deal_id, stage, changed_at from stage_history
                where deal_id in ({", ".join("?" for _ in ids)})
                order by deal_id, cast(changed_at as timestamptz) desc, seq desc""",
            ids,
        )
        by_deal: dict[str, list[dict[str, Any]]] = {}
        for r in rows:
            by_deal.setdefault(r["deal_id"], []).append(r)
        return by_deal

    def _history(
        self,
        kind: ObjectKind,
        row: dict[str, Any],
        asked: list[str],
        stage_history: Mapping[str, list[dict[str, Any]]],
    ) -> dict[str, list[dict[str, Any]]]:
        values = self._deal_properties(row) if kind is DEALS else self._activity_properties(row)
        owner = hubspot_id(row.get("owner_id"))
        source = {
            "sourceType": "CRM_UI",
            "sourceId": f"userId:{OWNER_USER_ID_BASE + int(owner)}" if owner else "",
            "updatedByUserId": OWNER_USER_ID_BASE + int(owner) if owner else None,
        }
        out: dict[str, list[dict[str, Any]]] = {}
        for prop in dict.fromkeys(asked):
            if prop not in values:
                continue  # unknown properties are ignored
            if kind is DEALS and prop == "dealstage":
                out[prop] = [
                    {
                        "value": self.catalog.stage(row["pipeline"], h["stage"]).id,
                        "timestamp": hubspot_time(h["changed_at"]),
                        **source,
                    }
                    for h in stage_history.get(row["deal_id"], [])
                ]
            elif values[prop] is not None:
                stamp = values.get("hs_lastmodifieddate")
                out[prop] = [{"value": values[prop], "timestamp": stamp, **source}]
            else:
                out[prop] = []
        return out


# --------------------------------------------------------------------------------------------
# Endpoint table and server
# --------------------------------------------------------------------------------------------

# (method, path, handler name, keyword arguments): the whole API surface in one place.
ENDPOINTS: tuple[tuple[str, str, str, dict[str, Any]], ...] = (
    ("GET", "/crm/v3/objects/deals", "list_objects", {"kind": DEALS}),
    ("POST", "/crm/v3/objects/deals/search", "search_objects", {"kind": DEALS}),
    ("POST", "/crm/v3/objects/deals/batch/read", "batch_read", {"kind": DEALS}),
    (
        "POST",
        "/crm/v4/associations/deals/companies/batch/read",
        "batch_read_associations",
        {"kind": DEALS},
    ),
    ("GET", "/crm/v3/pipelines/deals", "list_pipelines", {}),
    ("GET", "/crm/v3/owners", "list_owners", {}),
    # The official Python client asks for the owners with a trailing slash; HubSpot serves both.
    ("GET", "/crm/v3/owners/", "list_owners", {}),
    ("POST", "/oauth/v2/private-apps/get/access-token-info", "token_info", {}),
    ("GET", "/account-info/v3/details", "account_details", {}),
    *(("GET", f"/crm/v3/objects/{k.name}", "list_objects", {"kind": k}) for k in ACTIVITY_KINDS),
    *(
        ("POST", f"/crm/v3/objects/{k.name}/search", "search_objects", {"kind": k})
        for k in ACTIVITY_KINDS
    ),
    *(
        ("POST", f"/crm/v3/objects/{k.name}/batch/read", "batch_read", {"kind": k})
        for k in ACTIVITY_KINDS
    ),
    *(
        (
            "POST",
            f"/crm/v4/associations/{k.name}/deals/batch/read",
            "batch_read_associations",
            {"kind": k},
        )
        for k in ACTIVITY_KINDS
    ),
)


def build_server(
    dataset: SampleDataset,
    *,
    token: str,
    search_result_cap: int = SEARCH_RESULT_CAP,
    rate_limits: RateLimits | None = None,
    scopes: Iterable[str] | None = None,
    deleted_stages: Iterable[tuple[str, str]] = (),
    time_zone: str = "US/Eastern",
) -> FakeApiServer:
    """A fake HubSpot API over `dataset` (not started: `with build_server(...) as server:`).

    `search_result_cap` lowers HubSpot's 10,000-results-per-search limit for tests;
    `rate_limits` enforces a request budget and sends HubSpot's rate headers (none by
    default); `scopes` are the token's (default: all the night needs); `deleted_stages`
    (pipeline, stage label) pairs are gone from the pipelines while stage history still
    names their ids; `time_zone` is the account's."""
    api = HubSpotApi(
        dataset,
        token=token,
        search_result_cap=search_result_cap,
        rate_limits=rate_limits,
        scopes=scopes,
        deleted_stages=deleted_stages,
        time_zone=time_zone,
    )
    routes = {
        (method, path): api.endpoint(
            partial(getattr(api, name), **kwargs), path=path, public=name == "token_info"
        )
        for method, path, name, kwargs in ENDPOINTS
    }
    return FakeApiServer(routes)


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Serve the fake HubSpot API on 127.0.0.1 until Ctrl-C, generating sample data if needed."""
    return serve("HubSpot", build_server, argv, token_env="HUBSPOT_ACCESS_TOKEN")


if __name__ == "__main__":
    sys.exit(main())
