"""A local fake of the Salesforce REST API (SOQL query), serving a SampleDataset.

Endpoints (API versions 31.0 to 66.0; any other answers Salesforce's 404 NOT_FOUND):

- `POST /services/oauth2/token` - the My Domain token endpoint: the client-credentials flow
  (client id and secret in the form or as HTTP Basic auth) and the JWT bearer flow (RS256,
  verified with the ConnectedApp's public key; iss, sub, aud, exp as a number or its text).
- `GET /services/data` - the versions list (no auth, as on Salesforce).
- `GET /services/data/v66.0/sobjects[/<Object>/describe]`, `.../limits`,
  `.../ui-api/object-info/Opportunity/picklist-values/<record type id>/StageName`.
- `GET /services/data/v60.0/query?q=<SOQL>` - the first batch of a query.
- `GET /services/data/v60.0/queryAll?q=<SOQL>` - the same, deleted rows included
  (`IsDeleted = true`). Its `nextRecordsUrl` points at `/query/...` too, as on Salesforce.
- `GET /services/data/v60.0/query/<locator>-<offset>` (and `/queryAll/...`) - the next batch.

Responses are `{totalSize, done, nextRecordsUrl (only when not done), records: [{attributes:
{type, url}, <fields in SELECT order>}]}`. Batches hold 2,000 records unless the request
sends `Sforce-Query-Options: batchSize=N` (clamped to 200..2000, as the real minimum and
maximum). Auth is `Authorization: Bearer <token>` (`OAuth <token>` too); anything else gets
401 `[{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]`. Errors
are Salesforce's `[{"message", "errorCode"}]` lists: MALFORMED_QUERY (SOQL it cannot parse),
INVALID_TYPE (unknown object), INVALID_FIELD (unknown field, or a literal of the wrong type),
INVALID_QUERY_FILTER_OPERATOR (a malformed id literal), INVALID_QUERY_LOCATOR (unknown,
released or tampered locator, or an offset outside the result), all with status 400.

SOQL subset: `SELECT f1, f2 FROM Object [WHERE cond [AND cond ...]] [ORDER BY f [ASC|DESC]
[NULLS FIRST|LAST], ...] [LIMIT n]`, where a condition is `field op literal` (op one of
= != <> < <= > >=) or `field [NOT] IN (literal, ...)`, and a literal is a dateTime
(`2026-01-05T09:00:00Z`, `...+01:00`, no quotes), a date (`2026-01-05`), a 'string', a number,
true, false or null. Field names are case-insensitive; string comparisons too, as in SOQL.

Objects and how the canonical rows map onto them (docs/fake_servers/salesforce.md has the
connector's field-to-column table):

- Opportunity (one per deal): Name, StageName, Amount (number or null), CurrencyIsoCode,
  Probability, CloseDate (date only: the close day for closed deals, an expected day for open
  ones), IsClosed/IsWon (from status), ForecastCategory(Name), OwnerId, AccountId, LeadSource,
  RecordTypeId (the pipeline), CreatedDate, LastModifiedDate = SystemModstamp = updated_at,
  LastStageChangeDate (the exact close time of a closed deal), IsDeleted, and the custom
  text field Owner_Name__c (the owner's name as the deal row holds it, which differs from
  User.Name for a renamed owner's older deals; real orgs lack it, User.Name is the fallback).
- OpportunityHistory (one per stage change): OpportunityId, StageName, CreatedDate = the exact
  changed_at, Probability, ForecastCategory, CreatedById, SystemModstamp, IsDeleted.
- OpportunityStage (global, as on Salesforce): MasterLabel = ApiName = the canonical stage name,
  IsClosed, IsWon, DefaultProbability, SortOrder, ForecastCategory(Name), IsActive. A stage
  the generator does not know is closed (and won) when deals sit in it as lost (won), else
  open with the dataset's stage mapping probability.
- RecordType (one per pipeline, SobjectType 'Opportunity'): Name = the pipeline name,
  DeveloperName, BusinessProcessId, IsActive.
- User (Id, Name = the name on the owner's most recently updated deal, FirstName, LastName),
  Account (Id, Name, CurrencyIsoCode), Task (calls and emails: Type/TaskSubtype 'Call' or
  'Email', CompletedDateTime = occurred_at) and Event (meetings: Type 'Meeting',
  ActivityDateTime = occurred_at), both with WhatId = the opportunity and OwnerId.

Ids are 18-character Salesforce ids: the object's key prefix, the canonical id's number
zero-padded to 12 digits, and the real case-safe 3-character suffix. `D0000042` ->
`006000000000042AAA`, `U1003` -> `005000000001003AAA`, `C100067` -> `001000000100067AAA`,
activity `A000004200` -> Task `00T000000004200EAA` or Event `00U000000004200EAA`; history
rows, stages and record types are numbered in file / pipeline order (`sf_id`, `canonical_id`).

Deleted deals (SampleDataset.delete_deal) go to the recycle bin, with their stage history and
activities: `query` no longer returns them, `queryAll` returns them with IsDeleted = true and
SystemModstamp = the deletion time, so an incremental `queryAll ... WHERE SystemModstamp > X`
sees the deletion.

What the API cannot carry of a canonical dataset: nothing the marts use. OpportunityHistory
Ids follow the dataset's row order, so two changes in one second keep the file's order
(staging leaves such ties to the marts' rule); a closed deal's close time is on the
Opportunity (`LastStageChangeDate`), with or without history rows.

Simplified versus the real API: only the SOQL above (no OR, parentheses, relationship fields
such as Owner.Name, subqueries, aggregates, date literals such as LAST_N_DAYS, OFFSET or
FIELDS()); only the fields listed per object; OpportunityHistory holds stage changes only (the
real one also records Amount / CloseDate / Probability changes); batches are exactly the batch
size; a locator keeps the query's matching ids in order and serves their current values, and
at most 10 locators stay open (least recently used released first); describe lists the
queryable fields only; no write endpoints. The org's options (SalesforceApi): multi-currency
or not, record types or not, sessions lasting N requests, a daily allowance enforced with
403 REQUEST_LIMIT_EXCEEDED.

CLI: python -m devkit.fake_servers.salesforce --data DIR [--deals N --seed S] [--port P] --token T
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import re
import secrets
import string
import sys
import threading
import time
from array import array
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import parse_qs

from devkit.fake_servers.base import FakeApiServer, Fault, Handler, Request, Response
from devkit.fake_servers.cli import serve
from devkit.fake_servers.dataset import SampleDataset
from devkit.sample_data import OWNERS, PIPELINES

API_VERSION = "66.0"  # the newest version served (Spring '26); the default of the connector
OLDEST_VERSION = 31  # versions 21.0 to 30.0 were retired in Summer '25
BASE_PATH = f"/services/data/v{API_VERSION}"
DEFAULT_BATCH_SIZE = 2000
MIN_BATCH_SIZE = 200
MAX_BATCH_SIZE = 2000
MAX_OPEN_CURSORS = 10
# A query matching at most this many rows keeps them for its batches (while the data is
# unchanged); a bigger one keeps only its keys and reads each batch's rows when served.
CACHED_ROWS = 10_000
API_DAILY_LIMIT = 15_000
ORG_ID = "00D000000000001AAA"
MASTER_RECORD_TYPE = "012000000000000AAA"  # Salesforce's id of the Master record type
ORG_CREATED = datetime(2020, 1, 1)  # stages, record types and users predate every deal
MEETING_MINUTES = 30

# --------------------------------------------------------------------------------------------
# Ids
# --------------------------------------------------------------------------------------------

KEY_PREFIXES = {
    "Account": "001",
    "User": "005",
    "Opportunity": "006",
    "OpportunityHistory": "008",
    "RecordType": "012",
    "BusinessProcess": "019",
    "OpportunityStage": "01J",
    "Organization": "00D",
    "Task": "00T",
    "Event": "00U",
}
_SUFFIX_CHARS = string.ascii_uppercase + "012345"
_CANONICAL = {"006": "D{:07d}", "005": "U{}", "001": "C{}", "00T": "A{:09d}", "00U": "A{:09d}"}


def _case_suffix(id15: str) -> str:
    """Salesforce's 3-character suffix that makes a 15-character id case-insensitive."""
    out = ""
    for chunk in (id15[0:5], id15[5:10], id15[10:15]):
        bits = sum(1 << i for i, ch in enumerate(chunk) if "A" <= ch <= "Z")
        out += _SUFFIX_CHARS[bits]
    return out


def sf_id(sobject: str, number: int) -> str:
    """The 18-character id of record `number` of an object: `sf_id("Opportunity", 42)`."""
    if not 0 <= number < 10**12:
        raise ValueError(f"id number out of range: {number}")
    id15 = f"{KEY_PREFIXES[sobject]}{number:012d}"
    return id15 + _case_suffix(id15)


def to_sf_id(sobject: str, canonical: str) -> str:
    """A canonical id (`D0000042`, `U1003`, `C100067`, `A000004200`) as a Salesforce id."""
    match = re.search(r"(\d+)$", canonical)
    if match is None:
        raise ValueError(f"canonical id without a number: {canonical!r}")
    return sf_id(sobject, int(match.group(1)))


def canonical_id(salesforce_id: str) -> str:
    """The canonical id behind an Opportunity, User, Account, Task or Event id."""
    template = _CANONICAL.get(salesforce_id[:3])
    if template is None or len(salesforce_id) != 18:
        raise ValueError(f"not an id this server issues for a canonical row: {salesforce_id!r}")
    return template.format(int(salesforce_id[3:15]))


def _fixed_suffix(sobject: str) -> str:
    # The number part is all digits, so the suffix depends on the key prefix only.
    return sf_id(sobject, 0)[15:]


def _sql_id(sobject: str, digits: str) -> str:
    """SQL for the Salesforce id of a row whose number (as text) is `digits`."""
    prefix, suffix = KEY_PREFIXES[sobject], _fixed_suffix(sobject)
    return f"'{prefix}' || lpad({digits}, 12, '0') || '{suffix}'"


def _digits(column: str) -> str:
    return f"regexp_extract({column}, '([0-9]+)$', 1)"


def _ts(column: str) -> str:
    """A canonical `...Z` timestamp text column as a TIMESTAMP (UTC)."""
    return f"cast(rtrim({column}, 'Z') as timestamp)"


def _literal(value: Any) -> str:
    """A Python value as a DuckDB literal (catalog rows come from the dataset's own text)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


# --------------------------------------------------------------------------------------------
# The catalog: stages and pipelines (record types), from the generator plus any new in the data
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Stage:
    name: str
    number: int
    probability: float | None  # percent, as DefaultProbability
    is_closed: bool
    is_won: bool

    @property
    def forecast(self) -> tuple[str, str]:
        """(ForecastCategory, ForecastCategoryName), the defaults Salesforce ties to a stage."""
        if self.is_won:
            return "Closed", "Closed"
        if self.is_closed:
            return "Omitted", "Omitted"
        if self.probability is not None and self.probability >= 70:
            return "Forecast", "Commit"
        if self.probability is not None and self.probability >= 40:
            return "BestCase", "Best Case"
        return "Pipeline", "Pipeline"


def _catalog(dataset: SampleDataset) -> tuple[list[_Stage], list[str]]:
    """Stages and pipeline names: the generator's in its order, then unknown ones from the data."""
    stages: dict[str, _Stage] = {}

    def add(name: str, probability: float | None, closed: bool = False, won: bool = False):
        if name not in stages:  # stage names are global in Salesforce: the first one wins
            stages[name] = _Stage(name, len(stages) + 1, probability, closed, won)

    for pipeline in PIPELINES:
        for stage in pipeline.stages:
            add(stage.name, round(stage.probability * 100))
        add(pipeline.won_stage, 100, closed=True, won=True)
        add(pipeline.lost_stage, 0, closed=True)
    # A stage the generator does not know is described by the deals in it: closed and won
    # where a deal sits in it as won, closed where one sits in it as lost (IsClosed and
    # IsWon follow the stage in Salesforce), else open, with the mapping's probability.
    seen = """
        with names as (select stage from deals union select stage from stage_history)
        select
            names.stage,
            bool_or(d.status = 'won') as won,
            bool_or(d.status = 'lost') as lost,
            (select max(m.probability) from stage_mapping as m
             where m.crm_stage = names.stage) as probability
        from names
        left join deals as d on d.stage = names.stage
        group by names.stage
        order by names.stage
    """
    for row in dataset.rows(seen):
        if row["stage"] is not None:
            if row["won"]:
                add(row["stage"], 100, closed=True, won=True)
            elif row["lost"]:
                add(row["stage"], 0, closed=True)
            elif row["probability"] is not None:
                add(row["stage"], round(row["probability"] * 100))
            else:
                add(row["stage"], None)
    pipelines = dict.fromkeys(p.name for p in PIPELINES)
    for row in dataset.rows("select distinct pipeline from deals order by pipeline"):
        if row["pipeline"] is not None:
            pipelines.setdefault(row["pipeline"])
    return list(stages.values()), list(pipelines)


def _values(rows: Sequence[Sequence[Any]]) -> str:
    return ", ".join("(" + ", ".join(_literal(v) for v in row) + ")" for row in rows)


def _catalog_ctes(dataset: SampleDataset) -> str:
    """`stages` and `record_types` CTEs over the current catalog."""
    stages, pipelines = _catalog(dataset)
    stage_rows = [
        (s.name, s.number, s.probability, s.is_closed, s.is_won, *s.forecast) for s in stages
    ]
    return (
        "stages (stage_name, number, probability, is_closed, is_won, forecast_category, "
        f"forecast_category_name) as (values {_values(stage_rows)}), "
        "record_types (pipeline, number) as "
        f"(values {_values([(name, i + 1) for i, name in enumerate(pipelines)])})"
    )


# --------------------------------------------------------------------------------------------
# Objects: their fields (API name -> SOAP type) and the SQL that computes them
# --------------------------------------------------------------------------------------------

# Every object's SQL yields its fields plus `_key` (a stable integer, for locators) and
# `_deleted` (in the recycle bin: hidden from `query`, shown by `queryAll`).
# A scoped select reads only the base rows whose key is in the `scope(k)` CTE that the
# caller defines (one batch of a locator), so a batch never computes the whole object.


def _scoped(predicate: str, scoped: bool) -> str:
    return predicate if scoped else "true"


def _deals_of(table: str, scoped: bool) -> str:
    """The deals a scoped batch of `table` rows refers to (all deals when not scoped)."""
    if not scoped:
        return "deals"
    in_batch = f"select deal_id from {table} where seq in (select k from scope)"
    return f"(select * from deals where deal_id in ({in_batch}))"


def _opportunity_sql(catalog: str, scoped: bool) -> str:
    owner = _sql_id("User", _digits("d.owner_id"))
    in_batch = "deal_id in (select deal_id from deals where seq in (select k from scope))"
    return f"""
        with {catalog},
        last_change as (
            select deal_id, max({_ts("changed_at")}) as changed_at
            from stage_history
            where {_scoped(in_batch, scoped)}
            group by deal_id
        )
        select
            d.seq as _key,
            d.deleted_at is not null as _deleted,
            {_sql_id("Opportunity", _digits("d.deal_id"))} as "Id",
            d.deleted_at is not null as "IsDeleted",
            d.deal_name as "Name",
            {_sql_id("RecordType", "cast(rt.number as varchar)")} as "RecordTypeId",
            d.stage as "StageName",
            try_cast(d.amount as double) as "Amount",
            d.currency as "CurrencyIsoCode",
            s.probability as "Probability",
            case
                when d.status in ('won', 'lost') then cast({_ts("d.closed_at")} as date)
                else cast({_ts("d.updated_at")} + interval 30 day as date)
            end as "CloseDate",
            d.status in ('won', 'lost') as "IsClosed",
            d.status = 'won' as "IsWon",
            s.forecast_category as "ForecastCategory",
            s.forecast_category_name as "ForecastCategoryName",
            {owner} as "OwnerId",
            d.owner_name as "Owner_Name__c",
            {_sql_id("Account", _digits("d.company_id"))} as "AccountId",
            d.lead_source as "LeadSource",
            {_ts("d.created_at")} as "CreatedDate",
            {owner} as "CreatedById",
            {_ts("d.updated_at")} as "LastModifiedDate",
            {owner} as "LastModifiedById",
            {_ts("d.updated_at")} as "SystemModstamp",
            coalesce({_ts("d.closed_at")}, h.changed_at) as "LastStageChangeDate"
        from deals as d
        left join stages as s on s.stage_name = d.stage
        left join record_types as rt on rt.pipeline = d.pipeline
        left join last_change as h on h.deal_id = d.deal_id
        where {_scoped("d.seq in (select k from scope)", scoped)}
    """


def _history_sql(catalog: str, scoped: bool) -> str:
    deleted = "coalesce(d.deleted_at is not null, false)"
    return f"""
        with {catalog}
        select
            h.seq as _key,
            {deleted} as _deleted,
            {_sql_id("OpportunityHistory", "cast(h.seq as varchar)")} as "Id",
            {deleted} as "IsDeleted",
            {_sql_id("Opportunity", _digits("h.deal_id"))} as "OpportunityId",
            h.stage as "StageName",
            s.probability as "Probability",
            s.forecast_category as "ForecastCategory",
            {_ts("h.changed_at")} as "CreatedDate",
            {_sql_id("User", _digits("d.owner_id"))} as "CreatedById",
            greatest({_ts("h.changed_at")}, {_ts("d.deleted_at")}) as "SystemModstamp"
        from stage_history as h
        left join {_deals_of("stage_history", scoped)} as d on d.deal_id = h.deal_id
        left join stages as s on s.stage_name = h.stage
        where {_scoped("h.seq in (select k from scope)", scoped)}
    """


def _activity_sql(sobject: str, kind_filter: str, specific: str) -> Callable[[str, bool], str]:
    """Task or Event rows over activities; `specific` adds the object's own columns."""

    def sql(catalog: str, scoped: bool) -> str:
        deleted = "coalesce(d.deleted_at is not null, false)"
        owner = _sql_id("User", _digits("a.owner_id"))
        return f"""
            select
                a.seq as _key,
                {deleted} as _deleted,
                {_sql_id(sobject, _digits("a.activity_id"))} as "Id",
                {deleted} as "IsDeleted",
                {_sql_id("Opportunity", _digits("a.deal_id"))} as "WhatId",
                {_sql_id("Account", _digits("d.company_id"))} as "AccountId",
                {owner} as "OwnerId",
                upper(a.activity_type[1]) || a.activity_type[2:] as "Subject",
                upper(a.activity_type[1]) || a.activity_type[2:] as "Type",
                cast({_ts("a.occurred_at")} as date) as "ActivityDate",
                {specific},
                false as "IsArchived",
                {_ts("a.occurred_at")} as "CreatedDate",
                {owner} as "CreatedById",
                {_ts("a.occurred_at")} as "LastModifiedDate",
                greatest({_ts("a.occurred_at")}, {_ts("d.deleted_at")}) as "SystemModstamp"
            from activities as a
            left join {_deals_of("activities", scoped)} as d on d.deal_id = a.deal_id
            where {kind_filter} and {_scoped("a.seq in (select k from scope)", scoped)}
        """

    return sql


_task_sql = _activity_sql(
    "Task",
    "a.activity_type is distinct from 'meeting'",
    ",\n".join(
        (
            "case a.activity_type when 'email' then 'Email' when 'call' then 'Call'"
            " else 'Task' end as \"TaskSubtype\"",
            "'Completed' as \"Status\"",
            "'Normal' as \"Priority\"",
            'true as "IsClosed"',
            f'{_ts("a.occurred_at")} as "CompletedDateTime"',
        )
    ),
)
_event_sql = _activity_sql(
    "Event",
    "a.activity_type = 'meeting'",
    ",\n".join(
        (
            "'Event' as \"EventSubtype\"",
            f'{_ts("a.occurred_at")} as "ActivityDateTime"',
            f'{_ts("a.occurred_at")} as "StartDateTime"',
            f'{_ts("a.occurred_at")} + interval {MEETING_MINUTES} minute as "EndDateTime"',
            f'{MEETING_MINUTES} as "DurationInMinutes"',
            'false as "IsAllDayEvent"',
        )
    ),
)


def _user_sql(catalog: str, scoped: bool) -> str:
    known = ", ".join(f"({_literal(i)}, {_literal(n)})" for i, n, _ in OWNERS)
    return f"""
        with known (owner_id, owner_name) as (values {known}),
        named as (
            select
                owner_id,
                owner_name,
                {_ts("updated_at")} as named_at,
                row_number() over (
                    partition by owner_id order by updated_at desc, deal_id desc
                ) as name_rank
            from deals
            where deleted_at is null and owner_name is not null
        ),
        ids as (
            select owner_id from known
            union select owner_id from deals
            union select owner_id from activities
        ),
        users as (
            select
                ids.owner_id,
                coalesce(named.owner_name, known.owner_name, ids.owner_id) as name,
                greatest(timestamp '{ORG_CREATED}', named.named_at) as modified_at
            from ids
            left join named on named.owner_id = ids.owner_id and named.name_rank = 1
            left join known on known.owner_id = ids.owner_id
            where ids.owner_id is not null
        )
        select
            cast({_digits("owner_id")} as bigint) as _key,
            false as _deleted,
            {_sql_id("User", _digits("owner_id"))} as "Id",
            name as "Name",
            case when contains(name, ' ') then split_part(name, ' ', 1) end as "FirstName",
            case when contains(name, ' ') then name[strpos(name, ' ') + 1:] else name end
                as "LastName",
            true as "IsActive",
            'Standard' as "UserType",
            timestamp '{ORG_CREATED}' as "CreatedDate",
            modified_at as "LastModifiedDate",
            modified_at as "SystemModstamp"
        from users
    """


def _account_sql(catalog: str, scoped: bool) -> str:
    return f"""
        with companies as (
            select
                company_id,
                arg_min(deal_name, seq) as first_deal_name,
                arg_min(currency, seq) as currency,
                min({_ts("created_at")}) as created_at
            from deals
            where company_id is not null
            group by company_id
        )
        select
            cast({_digits("company_id")} as bigint) as _key,
            false as _deleted,
            {_sql_id("Account", _digits("company_id"))} as "Id",
            false as "IsDeleted",
            -- deal names read '<company> - <product>'; the canonical files carry no company name
            case
                when contains(first_deal_name, ' - ') then split_part(first_deal_name, ' - ', 1)
                else company_id
            end as "Name",
            currency as "CurrencyIsoCode",
            created_at as "CreatedDate",
            created_at as "LastModifiedDate",
            created_at as "SystemModstamp"
        from companies
    """


def _stage_sql(catalog: str, scoped: bool) -> str:
    return f"""
        with {catalog}
        select
            number as _key,
            false as _deleted,
            {_sql_id("OpportunityStage", "cast(number as varchar)")} as "Id",
            stage_name as "MasterLabel",
            stage_name as "ApiName",
            true as "IsActive",
            number as "SortOrder",
            is_closed as "IsClosed",
            is_won as "IsWon",
            probability as "DefaultProbability",
            forecast_category as "ForecastCategory",
            forecast_category_name as "ForecastCategoryName",
            null::varchar as "Description",
            timestamp '{ORG_CREATED}' as "CreatedDate",
            timestamp '{ORG_CREATED}' as "LastModifiedDate",
            timestamp '{ORG_CREATED}' as "SystemModstamp"
        from stages
    """


def _record_type_sql(catalog: str, scoped: bool) -> str:
    return f"""
        with {catalog}
        select
            number as _key,
            false as _deleted,
            {_sql_id("RecordType", "cast(number as varchar)")} as "Id",
            pipeline as "Name",
            trim(regexp_replace(pipeline, '[^A-Za-z0-9]+', '_', 'g'), '_') as "DeveloperName",
            null::varchar as "Description",
            {_sql_id("BusinessProcess", "cast(number as varchar)")} as "BusinessProcessId",
            'Opportunity' as "SobjectType",
            true as "IsActive",
            timestamp '{ORG_CREATED}' as "CreatedDate",
            timestamp '{ORG_CREATED}' as "LastModifiedDate",
            timestamp '{ORG_CREATED}' as "SystemModstamp"
        from record_types
    """


def _organization_sql(catalog: str, scoped: bool) -> str:
    return f"""
        with {catalog}
        select
            1 as _key,
            false as _deleted,
            '{ORG_ID}' as "Id",
            name as "Name",
            currency as "DefaultCurrencyIsoCode",
            false as "IsSandbox",
            'Enterprise Edition' as "OrganizationType",
            'FAKE1' as "InstanceName",
            timestamp '{ORG_CREATED}' as "CreatedDate",
            timestamp '{ORG_CREATED}' as "LastModifiedDate",
            timestamp '{ORG_CREATED}' as "SystemModstamp"
        from org
    """


@dataclass(frozen=True)
class SObjectType:
    """One queryable object: its fields (API name -> SOAP type) and the SQL behind them."""

    name: str
    fields: Mapping[str, str]
    sql: Callable[[str, bool], str]  # (catalog CTEs, scoped) -> the fields plus _key, _deleted

    def field(self, name: str) -> str | None:
        """The field's API name for a (case-insensitive) name in a query, or None."""
        return self._by_lower.get(name.lower())

    @property
    def _by_lower(self) -> dict[str, str]:
        return {f.lower(): f for f in self.fields}

    def without(self, *names: str) -> SObjectType:
        """The object in an org that lacks these fields (a query naming one gets INVALID_FIELD)."""
        return SObjectType(
            self.name, {k: v for k, v in self.fields.items() if k not in names}, self.sql
        )


def _fields(spec: str) -> dict[str, str]:
    """`Name:type ...` pairs, in describe order, as {API name: SOAP type}."""
    return dict(item.split(":") for item in spec.split())


_AUDIT = "CreatedDate:datetime CreatedById:reference LastModifiedDate:datetime"
_AUDIT += " LastModifiedById:reference SystemModstamp:datetime"
_SETUP = "CreatedDate:datetime LastModifiedDate:datetime SystemModstamp:datetime"
_ACTIVITY = """Id:id IsDeleted:boolean WhatId:reference AccountId:reference OwnerId:reference
    Subject:string Type:picklist ActivityDate:date IsArchived:boolean CreatedDate:datetime
    CreatedById:reference LastModifiedDate:datetime SystemModstamp:datetime"""

SOBJECTS: dict[str, SObjectType] = {
    o.name.lower(): o
    for o in (
        SObjectType(
            "Opportunity",
            _fields(f"""Id:id IsDeleted:boolean Name:string RecordTypeId:reference
                StageName:picklist Amount:currency CurrencyIsoCode:picklist Probability:percent
                CloseDate:date IsClosed:boolean IsWon:boolean ForecastCategory:picklist
                ForecastCategoryName:picklist OwnerId:reference Owner_Name__c:string
                AccountId:reference LeadSource:picklist {_AUDIT} LastStageChangeDate:datetime"""),
            _opportunity_sql,
        ),
        SObjectType(
            "OpportunityHistory",
            _fields("""Id:id IsDeleted:boolean OpportunityId:reference StageName:picklist
                Probability:percent ForecastCategory:picklist CreatedDate:datetime
                CreatedById:reference SystemModstamp:datetime"""),
            _history_sql,
        ),
        SObjectType(
            "OpportunityStage",
            _fields(f"""Id:id MasterLabel:string ApiName:string IsActive:boolean SortOrder:int
                IsClosed:boolean IsWon:boolean DefaultProbability:percent
                ForecastCategory:picklist ForecastCategoryName:picklist Description:string
                {_SETUP}"""),
            _stage_sql,
        ),
        SObjectType(
            "RecordType",
            _fields(f"""Id:id Name:string DeveloperName:string Description:string
                BusinessProcessId:reference SobjectType:picklist IsActive:boolean {_SETUP}"""),
            _record_type_sql,
        ),
        SObjectType(
            "User",
            _fields(f"""Id:id Name:string FirstName:string LastName:string IsActive:boolean
                UserType:picklist {_SETUP}"""),
            _user_sql,
        ),
        SObjectType(
            "Organization",
            _fields(f"""Id:id Name:string DefaultCurrencyIsoCode:picklist IsSandbox:boolean
                OrganizationType:picklist InstanceName:string {_SETUP}"""),
            _organization_sql,
        ),
        SObjectType(
            "Account",
            _fields(f"Id:id IsDeleted:boolean Name:string CurrencyIsoCode:picklist {_SETUP}"),
            _account_sql,
        ),
        SObjectType(
            "Task",
            _fields(f"""{_ACTIVITY} TaskSubtype:picklist Status:picklist Priority:picklist
                IsClosed:boolean CompletedDateTime:datetime"""),
            _task_sql,
        ),
        SObjectType(
            "Event",
            _fields(f"""{_ACTIVITY} EventSubtype:picklist ActivityDateTime:datetime
                StartDateTime:datetime EndDateTime:datetime DurationInMinutes:int
                IsAllDayEvent:boolean"""),
            _event_sql,
        ),
    )
}


def org_objects(*, multi_currency: bool, record_types: bool) -> dict[str, SObjectType]:
    """The objects of an org: CurrencyIsoCode exists only with multi-currency enabled,
    Opportunity.RecordTypeId only once the org has an Opportunity record type."""
    missing = {"opportunity": [], "account": []}
    if not multi_currency:
        missing["opportunity"].append("CurrencyIsoCode")
        missing["account"].append("CurrencyIsoCode")
    if not record_types:
        missing["opportunity"].append("RecordTypeId")
    return {
        key: obj.without(*missing[key]) if missing.get(key) else obj
        for key, obj in SOBJECTS.items()
    }


_TEXT_TYPES = {"id", "reference", "string", "picklist", "textarea"}
_NUMBER_TYPES = {"double", "currency", "percent", "int"}


# --------------------------------------------------------------------------------------------
# SOQL: a small, strict parser for the subset in the module docstring
# --------------------------------------------------------------------------------------------


class ApiError(Exception):
    """A Salesforce error answer: status, errorCode and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message = status, code, message

    def response(self) -> Response:
        return self.status, _JSON, [{"message": self.message, "errorCode": self.code}]


_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:\d{2}))
  | (?P<bad>\d{4}-\d{2}-\d{2}T[0-9:.+-]*)  # a dateTime without its zone
  | (?P<date>\d{4}-\d{2}-\d{2})
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<op>!=|<>|<=|>=|=|<|>)
  | (?P<punct>[(),])
  | (?P<name>[A-Za-z_][A-Za-z0-9_.]*)
    """,
    re.X,
)
_KEYWORDS = {
    "select", "from", "where", "and", "or", "not", "in", "order", "by", "asc", "desc",
    "nulls", "first", "last", "limit", "true", "false", "null",
}  # fmt: skip
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f"}


@dataclass(frozen=True)
class _Tok:
    kind: str  # datetime date number string op punct name keyword eof
    text: str
    pos: int


@dataclass(frozen=True)
class _Literal:
    kind: str  # datetime date number string boolean null
    value: Any
    pos: int


@dataclass(frozen=True)
class _Condition:
    field: str
    field_pos: int
    op: str  # = != < <= > >= in "not in"
    values: tuple[_Literal, ...]


@dataclass(frozen=True)
class _Order:
    field: str
    pos: int
    descending: bool
    nulls_first: bool


@dataclass(frozen=True)
class Soql:
    """A parsed query: field names as written, with their positions for error messages."""

    text: str
    fields: tuple[tuple[str, int], ...]
    sobject: str
    sobject_pos: int
    where: tuple[_Condition, ...]
    order: tuple[_Order, ...]
    limit: int | None
    count: bool = False  # SELECT COUNT() FROM ...: only totalSize, no records


def _position(text: str, pos: int) -> tuple[int, int, str]:
    """(row, column, that line) of a character offset, 1-based as in Salesforce errors."""
    row = text.count("\n", 0, pos) + 1
    start = text.rfind("\n", 0, pos) + 1
    end = text.find("\n", pos)
    return row, pos - start + 1, text[start : end if end >= 0 else len(text)]


def _query_error(code: str, text: str, pos: int, detail: str) -> ApiError:
    """The error body Salesforce gives for a query: the line, a caret, the row and column."""
    row, column, line = _position(text, pos)
    caret = " " * (column - 1) + "^"
    return ApiError(400, code, f"\n{line}\n{caret}\nERROR at Row:{row}:Column:{column}\n{detail}")


def _tokenize(text: str) -> list[_Tok]:
    tokens, pos = [], 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise _query_error("MALFORMED_QUERY", text, pos, f"unexpected token: {text[pos]}")
        kind = match.lastgroup or ""
        if kind == "bad":
            detail = f"unexpected token: {match.group()}"
            raise _query_error("MALFORMED_QUERY", text, pos, detail)
        if kind != "ws":
            word = match.group()
            if kind == "name" and word.lower() in _KEYWORDS:
                kind = "keyword"
            tokens.append(_Tok(kind, word, pos))
        pos = match.end()
    tokens.append(_Tok("eof", "", len(text)))
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0

    @property
    def tok(self) -> _Tok:
        return self.tokens[self.i]

    def fail(self) -> ApiError:
        shown = "<EOF>" if self.tok.kind == "eof" else self.tok.text
        return _query_error(
            "MALFORMED_QUERY", self.text, self.tok.pos, f"unexpected token: {shown}"
        )

    def keyword(self, *words: str) -> str | None:
        """Consume the next token if it is one of these keywords."""
        if self.tok.kind == "keyword" and self.tok.text.lower() in words:
            word = self.tok.text.lower()
            self.i += 1
            return word
        return None

    def expect(self, word: str) -> None:
        if self.keyword(word) is None:
            raise self.fail()

    def name(self) -> tuple[str, int]:
        if self.tok.kind != "name":
            raise self.fail()
        tok = self.tok
        self.i += 1
        return tok.text, tok.pos

    def punct(self, char: str) -> bool:
        if self.tok.kind == "punct" and self.tok.text == char:
            self.i += 1
            return True
        return False

    def parse(self) -> Soql:
        self.expect("select")
        count = self._count()
        fields = [] if count else [self.name()]
        while not count and self.punct(","):
            fields.append(self.name())
        self.expect("from")
        sobject, sobject_pos = self.name()
        where: list[_Condition] = []
        if self.keyword("where"):
            where.append(self.condition())
            while self.keyword("and"):
                where.append(self.condition())
        order: list[_Order] = []
        if self.keyword("order"):
            self.expect("by")
            order.append(self.order_item())
            while self.punct(","):
                order.append(self.order_item())
        limit = None
        if self.keyword("limit"):
            if self.tok.kind != "number" or not self.tok.text.isdigit():
                raise self.fail()
            limit = int(self.tok.text)
            self.i += 1
        if self.tok.kind != "eof":
            raise self.fail()
        return Soql(
            self.text, tuple(fields), sobject, sobject_pos, tuple(where), tuple(order), limit, count
        )

    def _count(self) -> bool:
        """`COUNT()` (the record count only); COUNT(field) and other aggregates are not served."""
        if self.tok.kind != "name" or self.tok.text.lower() != "count":
            return False
        following = self.tokens[self.i + 1]
        if following.kind != "punct" or following.text != "(":
            return False
        self.i += 2
        if not self.punct(")"):
            raise self.fail()
        return True

    def condition(self) -> _Condition:
        field, pos = self.name()
        if self.tok.kind == "op":
            op = "!=" if self.tok.text == "<>" else self.tok.text
            self.i += 1
            return _Condition(field, pos, op, (self.literal(),))
        op = "not in" if self.keyword("not") else "in"
        self.expect("in")
        if not self.punct("("):
            raise self.fail()
        values = [self.literal()]
        while self.punct(","):
            values.append(self.literal())
        if not self.punct(")"):
            raise self.fail()
        return _Condition(field, pos, op, tuple(values))

    def literal(self) -> _Literal:
        tok = self.tok
        word = tok.text.lower()
        try:
            if tok.kind == "datetime":
                value: Any = datetime.fromisoformat(tok.text.replace("Z", "+00:00"))
                value = value.astimezone(UTC).replace(tzinfo=None)
            elif tok.kind == "date":
                value = date.fromisoformat(tok.text)
            elif tok.kind == "number":
                value = float(tok.text) if "." in tok.text else int(tok.text)
            elif tok.kind == "string":
                value = re.sub(
                    r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), tok.text[1:-1]
                )
            elif tok.kind == "keyword" and word in ("true", "false", "null"):
                value = {"true": True, "false": False, "null": None}[word]
            else:
                raise self.fail()
        except ValueError:  # 2026-02-30 and the like
            raise self.fail() from None
        self.i += 1
        kind = ("null" if value is None else "boolean") if tok.kind == "keyword" else tok.kind
        return _Literal(kind, value, tok.pos)

    def order_item(self) -> _Order:
        field, pos = self.name()
        descending = self.keyword("asc", "desc") == "desc"
        nulls_first = not descending  # Salesforce's default: nulls first ascending, last desc
        if self.keyword("nulls"):
            which = self.keyword("first", "last")
            if which is None:
                raise self.fail()
            nulls_first = which == "first"
        return _Order(field, pos, descending, nulls_first)


def parse_soql(text: str) -> Soql:
    """Parse the supported SOQL subset, raising ApiError(MALFORMED_QUERY) on anything else."""
    return _Parser(text).parse()


# --------------------------------------------------------------------------------------------
# Query planning: names resolved against the object, literals checked, SQL built
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    sobject: SObjectType
    fields: tuple[str, ...]  # API names, in SELECT order
    where_sql: str
    params: tuple[Any, ...]
    order_sql: str
    limit: int | None
    count: bool = False


def _no_such_column(soql: Soql, obj: SObjectType, name: str, pos: int) -> ApiError:
    hint = (
        " (relationship fields are not supported by the fake server; query the related object)"
        if "." in name
        else ""
    )
    return _query_error(
        "INVALID_FIELD",
        soql.text,
        pos,
        f"No such column '{name}' on entity '{obj.name}'. If you are attempting to use a custom "
        "field, be sure to append the '__c' after the custom field name. Please reference your "
        f"WSDL or the describe call for the appropriate names.{hint}",
    )


def _resolve(soql: Soql, obj: SObjectType, name: str, pos: int) -> str:
    field = obj.field(name)
    if field is None:
        raise _no_such_column(soql, obj, name, pos)
    return field


_TYPE_WORD = {"datetime": "dateTime", "date": "date", "boolean": "boolean"}


def _check_literal(soql: Soql, field: str, ftype: str, lit: _Literal) -> Any:
    """The literal's value as a query parameter, if its type fits the field's."""
    if lit.kind == "null":
        return None
    if ftype in _TEXT_TYPES:
        expected = "string"
    elif ftype in _NUMBER_TYPES:
        expected = "number"
    else:
        expected = ftype
    if lit.kind == expected:
        if ftype in ("id", "reference"):
            return _full_id(soql, lit)
        return lit.value
    word = _TYPE_WORD.get(ftype, "string" if expected == "string" else "double")
    quoting = "be enclosed in quotes" if expected == "string" else "not be enclosed in quotes"
    raise _query_error(
        "INVALID_FIELD",
        soql.text,
        lit.pos,
        f"value of filter criterion for field '{field}' must be of type {word} and should "
        f"{quoting}",
    )


def _full_id(soql: Soql, lit: _Literal) -> str:
    """A 15- or 18-character id literal in its 18-character form."""
    value = lit.value
    if not re.fullmatch(r"[A-Za-z0-9]{15}(?:[A-Za-z0-5]{3})?", value):
        raise _query_error(
            "INVALID_QUERY_FILTER_OPERATOR", soql.text, lit.pos, f"invalid ID field: {value}"
        )
    return value if len(value) == 18 else value + _case_suffix(value)


def _condition_sql(soql: Soql, obj: SObjectType, cond: _Condition) -> tuple[str, list[Any]]:
    """One WHERE condition as SQL over the object's view `v`, with its parameters."""
    field = _resolve(soql, obj, cond.field, cond.field_pos)
    ftype = obj.fields[field]
    values = [_check_literal(soql, field, ftype, lit) for lit in cond.values]
    column, placeholder = f'v."{field}"', "?"
    if ftype in _TEXT_TYPES and ftype not in ("id", "reference"):
        # SOQL compares text case-insensitively (18-character ids are case-safe already).
        column, placeholder = f"lower({column})", "lower(?)"
    present = [v for v in values if v is not None]
    if cond.op in ("in", "not in"):
        parts = [f"{column} in ({', '.join(placeholder for _ in present)})"] if present else []
        if len(present) < len(values):
            parts.append(f"{column} is null")
        member = "(" + " or ".join(parts) + ")"
        return (member if cond.op == "in" else f"not coalesce({member}, false)"), present
    if not present:
        if cond.op not in ("=", "!="):
            raise _query_error(
                "MALFORMED_QUERY", soql.text, cond.values[0].pos, "unexpected token: null"
            )
        return f"{column} is {'' if cond.op == '=' else 'not '}null", []
    test = f"{column} {cond.op} {placeholder}"
    # != keeps the rows where the field is null, as in SOQL.
    return (f"coalesce({test}, true)" if cond.op == "!=" else test), present


def _plan(soql: Soql, objects: Mapping[str, SObjectType] | None = None) -> _Plan:
    obj = (SOBJECTS if objects is None else objects).get(soql.sobject.lower())
    if obj is None:
        raise _query_error(
            "INVALID_TYPE",
            soql.text,
            soql.sobject_pos,
            f"sObject type '{soql.sobject}' is not supported. If you are attempting to use a "
            "custom object, be sure to append the '__c' after the entity name. Please reference "
            "your WSDL or the describe call for the appropriate names.",
        )
    fields = []
    for name, pos in soql.fields:
        field = _resolve(soql, obj, name, pos)
        if field in fields:
            raise _query_error(
                "MALFORMED_QUERY", soql.text, pos, f"duplicate field selected: {field}"
            )
        fields.append(field)

    clauses, params = [], []
    for cond in soql.where:
        clause, values = _condition_sql(soql, obj, cond)
        clauses.append(clause)
        params.extend(values)

    order_parts = []
    for item in soql.order:
        field = _resolve(soql, obj, item.field, item.pos)
        direction = "desc" if item.descending else "asc"
        nulls = "first" if item.nulls_first else "last"
        order_parts.append(f'v."{field}" {direction} nulls {nulls}')
    order_parts.append("v._key")  # a stable order for paging, like Salesforce's by-id default
    return _Plan(
        obj,
        tuple(fields),
        " and ".join(clauses) or "true",
        tuple(params),
        ", ".join(order_parts),
        soql.limit,
        soql.count,
    )


# --------------------------------------------------------------------------------------------
# Values in Salesforce's JSON shapes
# --------------------------------------------------------------------------------------------


def format_datetime(value: datetime) -> str:
    """Salesforce's dateTime: `2026-01-05T09:00:00.000+0000` (always UTC)."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


def _json_value(ftype: str, value: Any) -> Any:
    if value is None:
        return None
    if ftype == "datetime":
        return format_datetime(value)
    if ftype == "date":
        return value.isoformat()
    if ftype == "boolean":
        return bool(value)
    if ftype == "int":
        return int(value)
    if ftype in ("double", "currency", "percent"):
        return float(value)
    return str(value)


def _record(
    obj: SObjectType, fields: Sequence[str], row: Mapping[str, Any], base: str = BASE_PATH
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "attributes": {"type": obj.name, "url": f"{base}/sobjects/{obj.name}/{row['Id']}"}
    }
    for field in fields:
        out[field] = _json_value(obj.fields[field], row[field])
    return out


# --------------------------------------------------------------------------------------------
# Versions, the token endpoint and describe
# --------------------------------------------------------------------------------------------


def _release(version: int) -> str:
    """The release a major version came with: three a year, one version each (66 = Spring '26)."""
    back = int(float(API_VERSION)) - version
    return f"{('Spring', 'Winter', 'Summer')[back % 3]} '{26 - (back + 1) // 3:02d}"


SERVED_VERSIONS = tuple(f"{n}.0" for n in range(OLDEST_VERSION, int(float(API_VERSION)) + 1))
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# The audiences Salesforce's JWT bearer flow accepts; the org's My Domain URL works as well.
JWT_AUDIENCES = ("https://login.salesforce.com", "https://test.salesforce.com")


@dataclass(frozen=True)
class ConnectedApp:
    """A connected app (or external client app) of the fake org, as the token endpoint knows it.

    `client_secret` with `run_as` enables the client-credentials flow (run as that user);
    `public_key` (PEM of the uploaded certificate's key) enables the JWT bearer flow for the
    pre-authorized `jwt_users`."""

    client_id: str
    client_secret: str | None = None
    run_as: str | None = None
    public_key: str | bytes | None = None
    jwt_users: tuple[str, ...] = ()


_SOAP_TYPES = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "boolean": "xsd:boolean",
    "datetime": "xsd:dateTime",
    "date": "xsd:date",
    "int": "xsd:int",
    "double": "xsd:double",
    "currency": "xsd:double",
    "percent": "xsd:double",
}


def _label(name: str) -> str:
    """`LastStageChangeDate` -> `Last Stage Change Date` (labels are org-specific anyway)."""
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name.removesuffix("__c").replace("_", " "))


def _describe_field(name: str, ftype: str) -> dict[str, Any]:
    return {
        "name": name,
        "label": _label(name),
        "type": ftype,
        "soapType": _SOAP_TYPES.get(ftype, "xsd:string"),
        "length": 18 if ftype in ("id", "reference") else 255 if ftype in _TEXT_TYPES else 0,
        "nillable": ftype not in ("id", "boolean"),
        "custom": name.endswith("__c"),
        "createable": False,
        "updateable": False,
        "filterable": True,
        "sortable": True,
        "picklistValues": [],
        "referenceTo": [],
    }


def _oauth_error(error: str, description: str, status: int = 400) -> Response:
    return status, _JSON, {"error": error, "error_description": description}


# --------------------------------------------------------------------------------------------
# The server: query execution, locators, handlers
# --------------------------------------------------------------------------------------------

_JSON = {"Content-Type": "application/json;charset=UTF-8"}
_INVALID_SESSION = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
_NOT_FOUND = [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]
_LOCATOR = re.compile(r"(?P<id>01g[A-Za-z0-9]{15})-(?P<offset>\d{1,9})")
_BATCH_OPTION = re.compile(r"batchSize\s*=\s*(\d+)", re.I)


@dataclass
class _Cursor:
    """A server-side query cursor: the plan and the matching keys, in order, at query time."""

    plan: _Plan
    catalog: str  # the stages / record types CTEs as of the query
    keys: array
    batch_size: int
    include_deleted: bool
    base: str = BASE_PATH  # the version the query was asked under: its next links keep it
    # The matched rows' fields as read by the query, and the dataset's version then: a batch
    # served while the data is unchanged takes them from here instead of reading them again.
    rows: dict[int, dict[str, Any]] = dataclasses.field(default_factory=dict)
    version: int = -1


class SalesforceApi:
    """The request handlers over one dataset; `routes()` is the endpoint table for the server.

    The org: multi-currency (`CurrencyIsoCode` on Opportunity and Account) or not (then the
    corporate currency is only `Organization.DefaultCurrencyIsoCode`), with Opportunity
    record types (one per pipeline) or without (no `RecordTypeId`), `api_daily_limit`
    requests per 24 hours of which `api_used` are spent. Sessions: the static `token` never
    expires; an OAuth session from the token endpoint serves `session_requests` API requests
    (None: until `expire_sessions()`), then answers 401 INVALID_SESSION_ID.
    """

    def __init__(
        self,
        dataset: SampleDataset,
        *,
        token: str,
        apps: Sequence[ConnectedApp] = (),
        session_requests: int | None = None,
        multi_currency: bool = True,
        corporate_currency: str = "USD",
        record_types: bool = True,
        api_daily_limit: int = API_DAILY_LIMIT,
        api_used: int = 0,
        org_name: str = "Fake Org",
    ) -> None:
        if not token:
            raise ValueError("the fake Salesforce server needs a non-empty token")
        self.dataset = dataset
        self._token = token
        self._lock = threading.Lock()
        self._cursors: OrderedDict[str, _Cursor] = OrderedDict()
        self.apps = {app.client_id: app for app in apps}
        self.session_requests = session_requests
        self._sessions: dict[str, int | None] = {}  # issued access token -> requests left
        self.multi_currency = multi_currency
        self.corporate_currency = corporate_currency
        self.record_types = record_types
        self.objects = org_objects(multi_currency=multi_currency, record_types=record_types)
        self.api_daily_limit = api_daily_limit
        self.api_used = api_used
        self.org_name = org_name
        self.grants: list[dict[str, str]] = []  # tokens issued: grant type, client id, user

    def expire_sessions(self) -> None:
        """End every OAuth session issued so far (as a session timeout or a revoke would)."""
        with self._lock:
            self._sessions.clear()

    def routes(self) -> dict[tuple[str, str], Handler]:
        """(method, path) -> handler; specific paths first (the first matching template wins)."""
        picklist = "/services/data/{version}/ui-api/object-info/{sobject}/picklist-values"
        endpoints: list[tuple[str, Handler]] = [
            ("/services/data", self.versions),
            ("/services/data/{version}", self._api(self.resources)),
            ("/services/data/{version}/query", self._api(self.query)),
            ("/services/data/{version}/queryAll", self._api(self.query_all)),
            ("/services/data/{version}/query/{locator}", self._api(self.query_more)),
            ("/services/data/{version}/queryAll/{locator}", self._api(self.query_more)),
            ("/services/data/{version}/limits", self._api(self.limits, metered=False)),
            ("/services/data/{version}/sobjects", self._api(self.describe_global)),
            ("/services/data/{version}/sobjects/{sobject}/describe", self._api(self.describe)),
            (f"{picklist}/{{record_type}}/{{field}}", self._api(self.picklist_values)),
            ("/services/data/{version}/{resource}", self._api(self.not_found)),
            ("/services/data/{version}/{resource}/{rest}", self._api(self.not_found)),
        ]
        routes: dict[tuple[str, str], Handler] = {("POST", "/services/oauth2/token"): self.token}
        for path, handler in endpoints:
            routes[("GET", path)] = handler
            for method in ("POST", "PUT", "PATCH", "DELETE"):
                routes[(method, path)] = self._api(self.method_not_allowed)
        return routes

    # --- cross-cutting: auth, version, errors, the usage header, the daily limit

    def _api(self, handler: Callable[[Request], Response], *, metered: bool = True) -> Handler:
        def serve(request: Request) -> Response:
            if not self._authorized(request):
                return 401, _JSON, _INVALID_SESSION
            with self._lock:
                # Counted over a rolling 24 hours: once spent, every request is refused until
                # usage drops. A refused request and /limits are not counted here.
                refused = metered and self.api_used >= self.api_daily_limit
                self.api_used += metered and not refused
                used = self.api_used
            usage = {"Sforce-Limit-Info": f"api-usage={used}/{self.api_daily_limit}"}
            try:
                if request.path_params.get("version") not in {f"v{v}" for v in SERVED_VERSIONS}:
                    raise ApiError(404, "NOT_FOUND", _NOT_FOUND[0]["message"])
                if refused:
                    raise ApiError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
                status, headers, body = handler(request)
            except ApiError as error:
                status, headers, body = error.response()
            return status, {**headers, **usage}, body

        return serve

    def _authorized(self, request: Request) -> bool:
        header = _header(request, "Authorization") or ""
        scheme, _, credential = header.partition(" ")
        credential = credential.strip()
        if scheme.lower() not in ("bearer", "oauth") or not credential:
            return False
        if hmac.compare_digest(credential.encode(), self._token.encode()):
            return True
        with self._lock:
            if credential not in self._sessions:
                return False
            left = self._sessions[credential]
            if left is None:
                return True
            if left <= 0:
                del self._sessions[credential]
                return False
            self._sessions[credential] = left - 1
            return True

    # --- the OAuth 2.0 token endpoint (My Domain /services/oauth2/token)

    def token(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs(request.body.decode("utf-8", "replace")).items()}
        grant = form.get("grant_type")
        if grant == "client_credentials":
            outcome = self._client_credentials(request, form)
        elif grant == JWT_GRANT:
            outcome = self._jwt_bearer(form.get("assertion") or "", request)
        else:
            return _oauth_error("unsupported_grant_type", "grant type not supported")
        if not isinstance(outcome, tuple) or len(outcome) != 2:
            return outcome
        client_id, user = outcome
        access_token = f"{ORG_ID[:15]}!AQ{secrets.token_urlsafe(72)}"
        with self._lock:
            self._sessions[access_token] = self.session_requests
            self.grants.append({"grant_type": grant or "", "client_id": client_id, "user": user})
        # The org's instance URL, whichever host the token was asked at.
        port = (_header(request, "Host") or "").rpartition(":")[2]
        instance_url = f"http://127.0.0.1:{port}"
        issued_at = str(int(time.time() * 1000))
        signature = base64.b64encode(
            hmac.digest(self._token.encode(), f"{instance_url}{issued_at}".encode(), "sha256")
        ).decode()
        user_id = sf_id("User", 1)
        return (
            200,
            _JSON,
            {
                "access_token": access_token,
                "signature": signature,
                "scope": "api",
                "instance_url": instance_url,
                "id": f"{instance_url}/id/{ORG_ID}/{user_id}",
                "token_type": "Bearer",
                "issued_at": issued_at,
            },
        )

    def _client_credentials(self, request: Request, form: dict[str, str]) -> Any:
        client_id, secret = form.get("client_id"), form.get("client_secret")
        basic = _header(request, "Authorization") or ""
        if basic.lower().startswith("basic "):  # the credentials may come as HTTP Basic auth
            try:
                decoded = base64.b64decode(basic[6:].strip()).decode()
            except ValueError:
                return _oauth_error("invalid_client", "invalid client credentials")
            client_id, _, secret = decoded.partition(":")
        app = self.apps.get(client_id or "")
        if app is None:
            return _oauth_error("invalid_client_id", "client identifier invalid")
        if app.client_secret is None or not hmac.compare_digest(
            (secret or "").encode(), app.client_secret.encode()
        ):
            return _oauth_error("invalid_client", "invalid client credentials")
        if app.run_as is None:
            return _oauth_error("invalid_grant", "no client credentials user enabled")
        return app.client_id, app.run_as

    def _jwt_bearer(self, assertion: str, request: Request) -> Any:
        import jwt

        try:
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.InvalidTokenError:
            return _oauth_error("invalid_grant", "invalid assertion")
        app = self.apps.get(str(unverified.get("iss") or ""))
        if app is None:
            return _oauth_error("invalid_client_id", "client identifier invalid")
        if app.public_key is None:
            return _oauth_error("invalid_grant", "invalid assertion")
        try:
            # exp is checked below: clients send it as a number or as its text (simple-salesforce)
            claims = jwt.decode(
                assertion,
                app.public_key,
                algorithms=["RS256"],
                options={"verify_exp": False, "verify_aud": False},
            )
        except jwt.InvalidTokenError:
            return _oauth_error("invalid_grant", "invalid assertion")
        host = (_header(request, "Host") or "").rpartition(":")[2]
        my_domains = (f"http://127.0.0.1:{host}", f"http://localhost:{host}")
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if not any(a in (*JWT_AUDIENCES, *my_domains) for a in audiences):
            return _oauth_error("invalid_grant", "audience is invalid")
        try:
            expires = float(claims.get("exp"))
        except (TypeError, ValueError):
            return _oauth_error("invalid_grant", "invalid assertion")
        if expires < time.time():
            return _oauth_error("invalid_grant", "expired access/refresh token")
        user = str(claims.get("sub") or "")
        if user not in app.jwt_users:
            return _oauth_error("invalid_grant", "user hasn't approved this consumer")
        return app.client_id, user

    # --- handlers

    def versions(self, request: Request) -> Response:
        return (
            200,
            _JSON,
            [
                {"label": _release(int(float(v))), "url": f"/services/data/v{v}", "version": v}
                for v in SERVED_VERSIONS
            ],
        )

    def resources(self, request: Request) -> Response:
        base = f"/services/data/{request.path_params['version']}"
        names = ("query", "queryAll", "sobjects", "limits", "ui-api")
        return 200, _JSON, {name: f"{base}/{name}" for name in names}

    def not_found(self, request: Request) -> Response:
        return 404, _JSON, _NOT_FOUND

    def method_not_allowed(self, request: Request) -> Response:
        message = f"HTTP Method '{request.method}' not allowed. Allowed are GET,HEAD"
        return 405, _JSON, [{"errorCode": "METHOD_NOT_ALLOWED", "message": message}]

    def limits(self, request: Request) -> Response:
        left = max(0, self.api_daily_limit - self.api_used)
        return (
            200,
            _JSON,
            {
                "DailyApiRequests": {"Max": self.api_daily_limit, "Remaining": left},
                "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
                "DailyAsyncApexExecutions": {"Max": 250000, "Remaining": 250000},
            },
        )

    def describe_global(self, request: Request) -> Response:
        base = f"/services/data/{request.path_params['version']}"
        sobjects = [
            {
                "name": obj.name,
                "label": _label(obj.name),
                "keyPrefix": KEY_PREFIXES.get(obj.name),
                "custom": False,
                "queryable": True,
                "urls": {
                    "sobject": f"{base}/sobjects/{obj.name}",
                    "describe": f"{base}/sobjects/{obj.name}/describe",
                },
            }
            for obj in self.objects.values()
        ]
        return 200, _JSON, {"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": sobjects}

    def describe(self, request: Request) -> Response:
        obj = self.objects.get(request.path_params["sobject"].lower())
        if obj is None:
            return 404, _JSON, _NOT_FOUND
        base = f"/services/data/{request.path_params['version']}"
        infos = []
        if obj.name == "Opportunity":
            infos = [
                {
                    "active": True,
                    "available": True,
                    "defaultRecordTypeMapping": i == 0,
                    "developerName": re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_"),
                    "master": False,
                    "name": name,
                    "recordTypeId": sf_id("RecordType", i + 1),
                }
                for i, name in enumerate(_catalog(self.dataset)[1] if self.record_types else [])
            ]
            infos.append(
                {
                    "active": True,
                    "available": True,
                    "defaultRecordTypeMapping": not infos,
                    "developerName": "Master",
                    "master": True,
                    "name": "Master",
                    "recordTypeId": MASTER_RECORD_TYPE,
                }
            )
        body = {
            "name": obj.name,
            "label": _label(obj.name),
            "labelPlural": _label(obj.name) + "s",
            "keyPrefix": KEY_PREFIXES.get(obj.name),
            "custom": False,
            "queryable": True,
            "retrieveable": True,
            "searchable": True,
            "createable": False,
            "updateable": False,
            "deletable": False,
            "fields": [_describe_field(n, t) for n, t in obj.fields.items()],
            "recordTypeInfos": infos,
            "childRelationships": [],
            "urls": {
                "sobject": f"{base}/sobjects/{obj.name}",
                "describe": f"{base}/sobjects/{obj.name}/describe",
            },
        }
        return 200, _JSON, body

    def picklist_values(self, request: Request) -> Response:
        """The UI API's values of Opportunity.StageName for one record type: the stages of its
        sales process (every stage for the Master record type)."""
        params = request.path_params
        if params["sobject"].lower() != "opportunity" or params["field"].lower() != "stagename":
            return 404, _JSON, _NOT_FOUND
        stages, pipelines = _catalog(self.dataset)
        ids = {sf_id("RecordType", i + 1): name for i, name in enumerate(pipelines)}
        if params["record_type"] == MASTER_RECORD_TYPE:
            names = [s.name for s in stages]
        elif self.record_types and params["record_type"] in ids:
            names = self._stages_of(ids[params["record_type"]], stages)
        else:
            return 404, _JSON, _NOT_FOUND
        values = [{"attributes": None, "label": n, "validFor": [], "value": n} for n in names]
        etag = hashlib.md5("|".join(names).encode()).hexdigest()  # noqa: S324 (a tag, not a secret)
        return (
            200,
            _JSON,
            {
                "controllerValues": {},
                "defaultValue": None,
                "eTag": etag,
                "url": request.path,
                "values": values,
            },
        )

    def _stages_of(self, pipeline: str, stages: Sequence[_Stage]) -> list[str]:
        """A pipeline's sales process: the generator's stages of it and any its deals use."""
        named = set()
        for p in PIPELINES:
            if p.name == pipeline:
                named |= {s.name for s in p.stages} | {p.won_stage, p.lost_stage}
        used = """
            select distinct s.stage from deals as d
            join (select deal_id, stage from stage_history
                  union select deal_id, stage from deals) as s on s.deal_id = d.deal_id
            where d.pipeline = ?
        """
        named |= {row["stage"] for row in self.dataset.rows(used, [pipeline])}
        return [s.name for s in stages if s.name in named]

    def query(self, request: Request) -> Response:
        return self._start(request, include_deleted=False)

    def query_all(self, request: Request) -> Response:
        return self._start(request, include_deleted=True)

    def query_more(self, request: Request) -> Response:
        match = _LOCATOR.fullmatch(request.path_params["locator"])
        with self._lock:
            cursor = self._cursors.get(match.group("id")) if match else None
            if cursor is not None:
                self._cursors.move_to_end(match.group("id"))
        offset = int(match.group("offset")) if match else 0
        if cursor is None or not 0 < offset < len(cursor.keys):
            raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return 200, _JSON, self._batch(cursor, match.group("id"), offset)

    # --- query execution

    def _start(self, request: Request, *, include_deleted: bool) -> Response:
        text = request.param("q")
        if not text or not text.strip():
            raise ApiError(400, "MALFORMED_QUERY", "A query string has to be specified")
        plan = _plan(parse_soql(text), self.objects)
        catalog = _catalog_ctes(self.dataset) + (
            f", org (name, currency) as (values ({_literal(self.org_name)}, "
            f"{_literal(self.corporate_currency)}))"
        )
        visible = "true" if include_deleted else "not v._deleted"

        def matching(select: str, cap: int | None = None) -> str:
            limits = [n for n in (plan.limit, cap) if n is not None]
            return (
                f"select {select} from ({plan.sobject.sql(catalog, False)}) as v "
                f"where {visible} and ({plan.where_sql}) order by {plan.order_sql}"
                + (f" limit {int(min(limits))}" if limits else "")
            )

        # The matched rows with their fields, when there are few enough to keep; else
        # their keys only.
        version = self.dataset.version  # before the read: a change during it makes it stale
        rows = self.dataset.rows(
            matching(f"v._key, {_columns(plan)}", cap=CACHED_ROWS + 1), plan.params
        )
        if len(rows) > CACHED_ROWS:
            rows, version = self.dataset.rows(matching("v._key"), plan.params), -1
        keys = array("q", (row["_key"] for row in rows))
        if plan.sobject.name == "RecordType" and not self.record_types:
            keys = array("q")  # an org without record types: the object exists, empty
        if plan.count:
            return 200, _JSON, {"totalSize": len(keys), "done": True, "records": []}
        base = f"/services/data/{request.path_params['version']}"
        cursor = _Cursor(plan, catalog, keys, _batch_size(request), include_deleted, base)
        if version >= 0:
            cursor.rows, cursor.version = {row["_key"]: row for row in rows}, version
        locator = self._open(cursor) if len(keys) > cursor.batch_size else None
        return 200, _JSON, self._batch(cursor, locator, 0)

    def _batch(self, cursor: _Cursor, locator: str | None, offset: int) -> dict[str, Any]:
        """One batch: the current values of the rows the query matched, in the query's order."""
        keys = list(cursor.keys[offset : offset + cursor.batch_size])
        plan = cursor.plan
        if cursor.version == self.dataset.version:
            rows = cursor.rows  # nothing changed since the query read them
        else:
            # `query` leaves out rows deleted since the query ran; `queryAll` keeps them.
            visible = "true" if cursor.include_deleted else "not v._deleted"
            sql = (
                "with scope (k) as (select unnest(?::bigint[])) "
                f"select v._key, {_columns(plan)} "
                f"from ({plan.sobject.sql(cursor.catalog, True)}) as v "
                f"where {visible} and v._key in (select k from scope)"
            )
            rows = {row["_key"]: row for row in self.dataset.rows(sql, [keys])}
        body: dict[str, Any] = {"totalSize": len(cursor.keys)}
        following = offset + cursor.batch_size
        body["done"] = following >= len(cursor.keys)
        if not body["done"]:
            # queryAll's next batches are under /query/ as well, as on Salesforce.
            body["nextRecordsUrl"] = f"{cursor.base}/query/{locator}-{following}"
        body["records"] = [
            _record(plan.sobject, plan.fields, rows[k], cursor.base) for k in keys if k in rows
        ]
        return body

    def _open(self, cursor: _Cursor) -> str:
        """Register a cursor; the least recently used beyond MAX_OPEN_CURSORS is released."""
        id15 = "01g" + "".join(
            secrets.choice(string.ascii_letters + string.digits) for _ in range(12)
        )
        locator = id15 + _case_suffix(id15)
        with self._lock:
            self._cursors[locator] = cursor
            while len(self._cursors) > MAX_OPEN_CURSORS:
                self._cursors.popitem(last=False)
        return locator


def _columns(plan: _Plan) -> str:
    """The select list of a query's fields (Id first: the records carry it)."""
    return ", ".join(f'v."{f}"' for f in dict.fromkeys(("Id", *plan.fields)))


def _header(request: Request, name: str) -> str | None:
    for key, value in request.headers.items():
        if key.lower() == name.lower():
            return value
    return None


def _batch_size(request: Request) -> int:
    """The Sforce-Query-Options batchSize, clamped to Salesforce's 200..2000; else 2000."""
    match = _BATCH_OPTION.search(_header(request, "Sforce-Query-Options") or "")
    if match is None:
        return DEFAULT_BATCH_SIZE
    return min(MAX_BATCH_SIZE, max(MIN_BATCH_SIZE, int(match.group(1))))


def error_fault(status: int, code: str, message: str, **options: Any) -> Fault:
    """A Fault answering with a Salesforce error list, e.g. 503 SERVER_UNAVAILABLE bursts
    (with Salesforce's Content-Type: a client reading the body as text needs no charset guess)."""
    options.setdefault("headers", _JSON)
    return Fault(status=status, body=[{"message": message, "errorCode": code}], **options)


def request_limit_fault(**options: Any) -> Fault:
    """Salesforce's answer once the org's daily API requests are used up (not worth retrying)."""
    return error_fault(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.", **options)


def session_expired_fault(**options: Any) -> Fault:
    """Salesforce's answer to a session that timed out or was revoked."""
    return error_fault(401, "INVALID_SESSION_ID", "Session expired or invalid", **options)


def build_server(dataset: SampleDataset, *, token: str, **org: Any) -> FakeApiServer:
    """A fake Salesforce REST API over `dataset` (not started: `with build_server(...) as s`);
    `org`: SalesforceApi's options (connected apps, session length, currencies, record
    types, the daily limit). The handlers are `server.api` (e.g. `server.api.expire_sessions()`)."""
    api = SalesforceApi(dataset, token=token, **org)
    server = FakeApiServer(api.routes())
    server.api = api  # type: ignore[attr-defined]
    return server


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Serve the fake Salesforce API on 127.0.0.1 until Ctrl-C, generating sample data if needed."""
    return serve(
        "Salesforce", build_server, argv, token_env="SALESFORCE_ACCESS_TOKEN", url_suffix=BASE_PATH
    )


if __name__ == "__main__":
    sys.exit(main())
