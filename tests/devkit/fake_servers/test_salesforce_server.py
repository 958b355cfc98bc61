"""The fake Salesforce REST API, driven over real HTTP: shapes, paging, filters, deletions, errors.

The reference is always the canonical CSV folder the server was built from: reading every page
of every object and mapping it back as docs/fake_servers/salesforce.md describes must give
exactly the CSV's deals, stage history and activities.
"""

from __future__ import annotations

import csv
import random
import re
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from devkit.fake_servers import Fault
from devkit.fake_servers.dataset import SampleDataset
from devkit.fake_servers.salesforce import (
    BASE_PATH,
    build_server,
    canonical_id,
    request_limit_fault,
    to_sf_id,
)
from devkit.sample_data import PIPELINES, generate
from extract.http import BearerAuth, HttpClient, HttpError

TOKEN = "00DFAKE!AQ0AQFakeSalesforceAccessToken"
SF_DATETIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000")
INVALID_SESSION = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
DEAL_FIELDS = (
    "Id, Name, RecordTypeId, StageName, IsClosed, IsWon, Amount, CurrencyIsoCode, OwnerId, "
    "Owner_Name__c, AccountId, LeadSource, CreatedDate, LastModifiedDate"
)


# --- fixtures and a small client ------------------------------------------------------------------


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("salesforce-200")
    generate(folder, 200, seed=3, workers=1)
    return folder


@pytest.fixture(scope="module")
def files(data_dir) -> dict[str, list[dict[str, str]]]:
    """The canonical CSV rows, by file name."""
    out = {}
    for name in ("deals.csv", "deal_stage_history.csv", "activities.csv"):
        with open(data_dir / name, newline="", encoding="utf-8") as f:
            out[name] = list(csv.DictReader(f))
    return out


@pytest.fixture
def dataset(data_dir) -> SampleDataset:
    return SampleDataset(data_dir)


@pytest.fixture
def server(dataset):
    with build_server(dataset, token=TOKEN) as fake:
        yield fake


class Api:
    """requests against the fake server, with the token; `records` follows nextRecordsUrl."""

    def __init__(self, url: str, token: str = TOKEN) -> None:
        self.url = url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def get(self, path: str, params: dict | None = None, **headers: str) -> requests.Response:
        return self.session.get(self.url + path, params=params, headers=headers, timeout=10)

    def query(self, soql: str, *, all_rows: bool = False, batch_size: int | None = None) -> dict:
        headers = {"Sforce-Query-Options": f"batchSize={batch_size}"} if batch_size else {}
        resource = "queryAll" if all_rows else "query"
        response = self.get(f"{BASE_PATH}/{resource}", {"q": soql}, **headers)
        assert response.status_code == 200, response.text
        return response.json()

    def records(self, soql: str, **options) -> list[dict]:
        page = self.query(soql, **options)
        total, out = page["totalSize"], list(page["records"])
        while not page["done"]:
            response = self.get(page["nextRecordsUrl"])
            assert response.status_code == 200, response.text
            page = response.json()
            assert page["totalSize"] == total
            out.extend(page["records"])
        assert "nextRecordsUrl" not in page and len(out) == total
        return out


@pytest.fixture
def api(server):
    client = Api(server.url)
    yield client
    # Closing the kept-alive connections lets the server's handler threads end before the
    # interpreter does (a daemon thread killed at exit after running DuckDB can abort it).
    client.session.close()


def canonical_time(value: str | None) -> str:
    """`2024-11-01T14:49:25.000+0000` -> `2024-11-01T14:49:25Z` (None -> empty, as in CSV)."""
    if value is None:
        return ""
    assert SF_DATETIME.fullmatch(value), value
    return value[:19] + "Z"


def extract_canonical(api: Api, batch_size: int = 200) -> dict[str, list[dict[str, str]]]:
    """Everything the API serves, mapped back to canonical rows as the connector doc says."""
    pipelines = {
        r["Id"]: r["Name"]
        for r in api.records("SELECT Id, Name FROM RecordType WHERE SobjectType = 'Opportunity'")
    }
    history = api.records(
        "SELECT Id, OpportunityId, StageName, CreatedDate FROM OpportunityHistory "
        "ORDER BY CreatedDate, Id",
        batch_size=batch_size,
    )
    last_change = {h["OpportunityId"]: h["CreatedDate"] for h in history}  # ordered: last wins
    deals = [
        {
            "deal_id": canonical_id(o["Id"]),
            "deal_name": o["Name"],
            "pipeline": pipelines[o["RecordTypeId"]],
            "stage": o["StageName"],
            "status": "won" if o["IsWon"] else "lost" if o["IsClosed"] else "open",
            "amount": "" if o["Amount"] is None else f"{o['Amount']:.2f}",
            "currency": o["CurrencyIsoCode"],
            "owner_id": canonical_id(o["OwnerId"]),
            "owner_name": o["Owner_Name__c"],
            "company_id": "" if o["AccountId"] is None else canonical_id(o["AccountId"]),
            "lead_source": o["LeadSource"] or "",
            "created_at": canonical_time(o["CreatedDate"]),
            "closed_at": canonical_time(last_change[o["Id"]]) if o["IsClosed"] else "",
            "updated_at": canonical_time(o["LastModifiedDate"]),
        }
        for o in api.records(f"SELECT {DEAL_FIELDS} FROM Opportunity", batch_size=batch_size)
    ]
    stage_changes = [
        {
            "deal_id": canonical_id(h["OpportunityId"]),
            "stage": h["StageName"],
            "changed_at": canonical_time(h["CreatedDate"]),
        }
        for h in history
    ]
    activities = []
    for sobject, at in (("Task", "CompletedDateTime"), ("Event", "ActivityDateTime")):
        soql = f"SELECT Id, WhatId, Type, {at}, OwnerId FROM {sobject}"
        activities += [
            {
                "activity_id": canonical_id(a["Id"]),
                "deal_id": canonical_id(a["WhatId"]),
                "activity_type": a["Type"].lower(),
                "occurred_at": canonical_time(a[at]),
                "owner_id": canonical_id(a["OwnerId"]),
            }
            for a in api.records(soql, batch_size=batch_size)
        ]
    return {
        "deals.csv": deals,
        "deal_stage_history.csv": stage_changes,
        "activities.csv": activities,
    }


def error_of(response: requests.Response) -> tuple[int, str, str]:
    """(status, errorCode, message) of a Salesforce error list with one entry."""
    body = response.json()
    assert isinstance(body, list) and len(body) == 1 and set(body[0]) == {"message", "errorCode"}
    return response.status_code, body[0]["errorCode"], body[0]["message"]


# --- auth -----------------------------------------------------------------------------------------


def test_missing_or_wrong_token_gets_salesforce_invalid_session_401(server):
    url = f"{server.url}{BASE_PATH}/query"
    params = {"q": "SELECT Id FROM Opportunity"}

    missing = requests.get(url, params=params, timeout=10)
    wrong = requests.get(url, params=params, headers={"Authorization": "Bearer nope"}, timeout=10)
    oauth = {"Authorization": f"OAuth {TOKEN}"}
    oauth_scheme = requests.get(url, params=params, headers=oauth, timeout=10)

    assert (missing.status_code, missing.json()) == (401, INVALID_SESSION)
    assert (wrong.status_code, wrong.json()) == (401, INVALID_SESSION)
    assert oauth_scheme.status_code == 200
    assert server.requests[0].headers.get("Authorization") is None
    assert server.requests[1].headers["Authorization"] == "Bearer ***"  # recorded redacted


# --- shapes and types on known rows ---------------------------------------------------------------


def test_opportunity_of_a_won_deal_has_salesforce_fields_and_types(api, files):
    row = next(r for r in files["deals.csv"] if r["deal_id"] == "D0000001")
    assert row["status"] == "won" and row["company_id"] == "C100041"  # the deal this test reads

    page = api.query(
        f"SELECT {DEAL_FIELDS}, CloseDate, LastStageChangeDate, Probability, SystemModstamp, "
        "IsDeleted FROM Opportunity WHERE Id = '006000000000001AAA'"
    )

    assert (page["totalSize"], page["done"], "nextRecordsUrl" in page) == (1, True, False)
    assert page["records"] == [
        {
            "attributes": {
                "type": "Opportunity",
                "url": f"{BASE_PATH}/sobjects/Opportunity/006000000000001AAA",
            },
            "Id": "006000000000001AAA",
            "Name": "Granite Logistics Inc. - Reseller Deal",
            "RecordTypeId": "012000000000003AAA",  # Partner, the third pipeline
            "StageName": "Deal Won (Partner)",
            "IsClosed": True,
            "IsWon": True,
            "Amount": 46238.49,
            "CurrencyIsoCode": "USD",
            "OwnerId": "005000000001012AAA",
            "Owner_Name__c": "Lucas Rivera",
            "AccountId": "001000000100041AAA",
            "LeadSource": "Partner",
            "CreatedDate": "2024-11-01T14:49:25.000+0000",
            "LastModifiedDate": "2025-01-17T18:44:39.000+0000",
            "CloseDate": "2025-01-15",  # a date only ...
            "LastStageChangeDate": "2025-01-15T20:24:11.000+0000",  # ... the exact close time
            "Probability": 100.0,
            "SystemModstamp": "2025-01-17T18:44:39.000+0000",
            "IsDeleted": False,
        }
    ]
    assert (row["amount"], row["created_at"], row["closed_at"], row["updated_at"]) == (
        "46238.49",
        "2024-11-01T14:49:25Z",
        "2025-01-15T20:24:11Z",
        "2025-01-17T18:44:39Z",
    )


def test_empty_canonical_values_are_nulls_and_ids_accept_the_15_character_form(api, files):
    row = next(r for r in files["deals.csv"] if r["deal_id"] == "D0000014")
    assert (row["status"], row["amount"], row["company_id"], row["lead_source"]) == (
        "lost",
        "",
        "",
        "",
    )

    [record] = api.query(
        "SELECT StageName, IsClosed, IsWon, Amount, AccountId, LeadSource "
        "FROM Opportunity WHERE Id = '006000000000014'"
    )["records"]

    assert {k: v for k, v in record.items() if k != "attributes"} == {
        "StageName": "Closed Lost",
        "IsClosed": True,
        "IsWon": False,
        "Amount": None,
        "AccountId": None,
        "LeadSource": None,
    }


def test_history_rows_of_a_deal_are_its_stage_changes_with_exact_times(api, files):
    expected = [
        (r["stage"], r["changed_at"])
        for r in files["deal_stage_history.csv"]
        if r["deal_id"] == "D0000001"
    ]

    records = api.records(
        "SELECT Id, OpportunityId, StageName, CreatedDate, IsDeleted FROM OpportunityHistory "
        "WHERE OpportunityId = '006000000000001AAA' ORDER BY CreatedDate"
    )

    assert [(r["StageName"], canonical_time(r["CreatedDate"])) for r in records] == expected
    assert {r["OpportunityId"] for r in records} == {"006000000000001AAA"}
    assert all(re.fullmatch(r"008\d{12}AAA", r["Id"]) and r["IsDeleted"] is False for r in records)
    assert expected[-1] == ("Deal Won (Partner)", "2025-01-15T20:24:11Z")  # the close time


def test_stages_and_record_types_carry_the_canonical_names(api, files):
    stages = {
        r["MasterLabel"]: r
        for r in api.records(
            "SELECT Id, MasterLabel, ApiName, IsClosed, IsWon, DefaultProbability, SortOrder "
            "FROM OpportunityStage ORDER BY SortOrder"
        )
    }
    record_types = api.records("SELECT Name, DeveloperName, SobjectType FROM RecordType")

    every_stage = {s.name for p in PIPELINES for s in p.stages}
    every_stage |= {p.won_stage for p in PIPELINES} | {p.lost_stage for p in PIPELINES}
    assert set(stages) == every_stage
    assert {r["stage"] for r in files["deals.csv"]} <= set(stages)
    assert {r["stage"] for r in files["deal_stage_history.csv"]} <= set(stages)
    prospect, won, lost = stages["Prospect"], stages["Closed Won"], stages["Closed Lost"]
    assert (prospect["IsClosed"], prospect["IsWon"], prospect["DefaultProbability"]) == (
        False,
        False,
        5.0,
    )
    assert (won["IsClosed"], won["IsWon"], won["DefaultProbability"]) == (True, True, 100.0)
    assert (lost["IsClosed"], lost["IsWon"], lost["DefaultProbability"]) == (True, False, 0.0)
    assert all(s["ApiName"] == name and s["Id"].startswith("01J") for name, s in stages.items())
    assert [s["SortOrder"] for s in stages.values()] == list(range(1, len(stages) + 1))
    assert [(r["Name"], r["DeveloperName"], r["SobjectType"]) for r in record_types] == [
        ("New Business", "New_Business", "Opportunity"),
        ("Expansion", "Expansion", "Opportunity"),
        ("Partner", "Partner", "Opportunity"),
    ]


def test_users_carry_the_latest_owner_name_and_accounts_the_company(api, files):
    latest = max(
        (r for r in files["deals.csv"] if r["owner_id"] == "U1007"),
        key=lambda r: (r["updated_at"], r["deal_id"]),
    )["owner_name"]

    users = {u["Id"]: u for u in api.records("SELECT Id, Name, FirstName, LastName FROM User")}
    accounts = {a["Id"]: a for a in api.records("SELECT Id, Name FROM Account")}
    deals = api.records("SELECT OwnerId, AccountId FROM Opportunity")
    activities = api.records("SELECT OwnerId FROM Task") + api.records("SELECT OwnerId FROM Event")

    assert latest == "Sarah Johnson"  # renamed half-way through: her newest deals say so
    sarah = users[to_sf_id("User", "U1007")]
    assert (sarah["Name"], sarah["FirstName"], sarah["LastName"]) == (latest, "Sarah", "Johnson")
    assert {d["OwnerId"] for d in deals} | {a["OwnerId"] for a in activities} <= set(users)
    assert {d["AccountId"] for d in deals} - {None} == set(accounts)
    assert accounts["001000000100041AAA"]["Name"] == "Granite Logistics Inc."


def test_tasks_and_events_of_a_deal_are_its_activities(api, files):
    expected = sorted(
        (r["activity_id"], r["activity_type"], r["occurred_at"], r["owner_id"])
        for r in files["activities.csv"]
        if r["deal_id"] == "D0000002"
    )
    what = "WHERE WhatId = '006000000000002AAA'"

    tasks = api.records(
        f"SELECT Id, Type, TaskSubtype, Status, ActivityDate, CompletedDateTime, OwnerId "
        f"FROM Task {what}"
    )
    events = api.records(
        f"SELECT Id, Type, ActivityDate, ActivityDateTime, EndDateTime, OwnerId FROM Event {what}"
    )

    got = sorted(
        [
            (canonical_id(t["Id"]), t["Type"].lower(), canonical_time(t["CompletedDateTime"]))
            + (canonical_id(t["OwnerId"]),)
            for t in tasks
        ]
        + [
            (canonical_id(e["Id"]), e["Type"].lower(), canonical_time(e["ActivityDateTime"]))
            + (canonical_id(e["OwnerId"]),)
            for e in events
        ]
    )
    assert got == expected
    assert {e["Type"] for e in events} == {"Meeting"} and events  # D0000002 has meetings
    assert all(t["Type"] == t["TaskSubtype"] in ("Call", "Email") for t in tasks)
    assert all(t["Status"] == "Completed" for t in tasks)
    assert all(t["ActivityDate"] == t["CompletedDateTime"][:10] for t in tasks)
    assert all(re.fullmatch(r"00T\d{12}EAA", t["Id"]) for t in tasks)
    assert all(re.fullmatch(r"00U\d{12}EAA", e["Id"]) for e in events)


# --- reading everything ---------------------------------------------------------------------------


def test_reading_every_page_reproduces_the_canonical_files_exactly(api, files):
    extracted = extract_canonical(api, batch_size=200)

    for name, rows in extracted.items():
        key = list(files[name][0])
        assert len(rows) == len(files[name]), name
        assert sorted(tuple(r[k] for k in key) for r in rows) == sorted(
            tuple(r[k] for k in key) for r in files[name]
        ), name
    assert len({d["deal_id"] for d in extracted["deals.csv"]}) == 200


def test_query_all_pages_continue_under_the_query_resource(api):
    first = api.query("SELECT Id FROM OpportunityHistory", all_rows=True, batch_size=300)

    assert (first["totalSize"], first["done"], len(first["records"])) == (1100, False, 300)
    assert re.fullmatch(
        r"/services/data/v66\.0/query/01g[A-Za-z0-9]{15}-300", first["nextRecordsUrl"]
    )


# --- incremental reads ----------------------------------------------------------------------------


def test_systemmodstamp_filter_returns_the_deals_changed_since(api, dataset, files):
    cutoff = "2026-06-01T00:00:00Z"
    expected = {r["deal_id"] for r in files["deals.csv"] if r["updated_at"] > cutoff}

    changed = api.records(f"SELECT Id FROM Opportunity WHERE SystemModstamp > {cutoff}")

    assert 0 < len(expected) < 200
    assert {canonical_id(r["Id"]) for r in changed} == expected

    # WHEN an open deal is won after the last night
    dataset.move_deal(
        "D0000009", "Deal Won (Partner)", at=datetime(2026, 7, 2, 10, tzinfo=UTC), status="won"
    )

    since = "2026-07-01T00:00:00Z"
    [deal] = api.records(
        f"SELECT Id, StageName, IsWon, SystemModstamp, LastStageChangeDate FROM Opportunity "
        f"WHERE SystemModstamp > {since} AND IsDeleted = false"
    )
    [change] = api.records(
        f"SELECT OpportunityId, StageName, CreatedDate FROM OpportunityHistory "
        f"WHERE CreatedDate > {since}"
    )
    assert (deal["Id"], deal["StageName"], deal["IsWon"]) == (
        to_sf_id("Opportunity", "D0000009"),
        "Deal Won (Partner)",
        True,
    )
    assert deal["SystemModstamp"] == deal["LastStageChangeDate"] == "2026-07-02T10:00:00.000+0000"
    assert (change["OpportunityId"], change["CreatedDate"]) == (deal["Id"], deal["SystemModstamp"])
    # the same instant with a zone offset: on the boundary, not after it
    at_noon_cest = "SELECT Id FROM Opportunity WHERE SystemModstamp {} 2026-07-02T12:00:00+02:00"
    assert api.query(at_noon_cest.format(">"))["totalSize"] == 0
    assert api.query(at_noon_cest.format(">="))["totalSize"] == 1


def test_a_deleted_deal_leaves_query_and_shows_in_query_all_flagged(api, dataset, files):
    opportunity = to_sf_id("Opportunity", "D0000001")
    n_history = sum(r["deal_id"] == "D0000001" for r in files["deal_stage_history.csv"])
    n_activities = sum(r["deal_id"] == "D0000001" for r in files["activities.csv"])

    dataset.delete_deal("D0000001", at=datetime(2026, 7, 3, 8, tzinfo=UTC))

    ids = {r["Id"] for r in api.records("SELECT Id FROM Opportunity")}
    assert len(ids) == 199 and opportunity not in ids
    by_id = f"WHERE OpportunityId = '{opportunity}'"
    assert api.query(f"SELECT Id FROM OpportunityHistory {by_id}")["totalSize"] == 0
    assert api.query(f"SELECT Id FROM Task WHERE WhatId = '{opportunity}'")["totalSize"] == 0

    [deleted] = api.records(
        "SELECT Id, IsDeleted, SystemModstamp FROM Opportunity "
        "WHERE SystemModstamp > 2026-07-01T00:00:00Z",
        all_rows=True,
    )
    assert deleted == {
        "attributes": {
            "type": "Opportunity",
            "url": f"{BASE_PATH}/sobjects/Opportunity/{opportunity}",
        },
        "Id": opportunity,
        "IsDeleted": True,
        "SystemModstamp": "2026-07-03T08:00:00.000+0000",
    }
    history = api.records(f"SELECT IsDeleted FROM OpportunityHistory {by_id}", all_rows=True)
    what = f"WHERE WhatId = '{opportunity}'"
    activities = api.records(f"SELECT IsDeleted FROM Task {what}", all_rows=True)
    activities += api.records(f"SELECT IsDeleted FROM Event {what}", all_rows=True)
    assert len(history) == n_history and len(activities) == n_activities
    assert all(r["IsDeleted"] for r in history + activities)


# --- paging limits and locators -------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_api(tmp_path_factory):
    """600 deals: 3,342 stage changes, more than one batch of the largest size."""
    folder = tmp_path_factory.mktemp("salesforce-600")
    generate(folder, 600, seed=3, workers=1)
    with build_server(SampleDataset(folder), token=TOKEN) as fake:
        client = Api(fake.url)
        yield client
        client.session.close()


@pytest.mark.parametrize(
    ("requested", "served"), [(None, 2000), (5000, 2000), (50, 200), (500, 500)]
)
def test_batch_size_defaults_to_2000_and_is_held_within_200_and_2000(big_api, requested, served):
    page = big_api.query("SELECT Id FROM OpportunityHistory", batch_size=requested)

    assert (page["totalSize"], page["done"], len(page["records"])) == (3342, False, served)
    assert page["nextRecordsUrl"].endswith(f"-{served}")


def test_last_page_completes_the_result(big_api):
    records = big_api.records("SELECT Id FROM OpportunityHistory")

    assert len(records) == len({r["Id"] for r in records}) == 3342


def test_bad_locators_get_invalid_query_locator_400(big_api):
    next_url = big_api.query("SELECT Id FROM OpportunityHistory")["nextRecordsUrl"]
    locator, offset = next_url.rsplit("/", 1)[1].split("-")
    tampered = locator[:-4] + ("A" if locator[-4] != "A" else "B") + locator[-3:]

    for bad in (f"{tampered}-{offset}", f"{locator}-999999", f"{locator}-0", "not-a-locator"):
        response = big_api.get(f"{BASE_PATH}/query/{bad}")
        assert error_of(response) == (400, "INVALID_QUERY_LOCATOR", "invalid query locator"), bad
    assert big_api.get(next_url).status_code == 200


def test_the_least_recently_used_locator_is_released_after_ten_newer_ones(big_api):
    oldest = big_api.query("SELECT Id FROM OpportunityHistory")["nextRecordsUrl"]
    for _ in range(10):
        big_api.query("SELECT Id FROM OpportunityHistory")

    assert error_of(big_api.get(oldest))[1] == "INVALID_QUERY_LOCATOR"


# --- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("soql", "code", "detail"),
    [
        (
            "SELECT Id FROM Opportunity WHERE IsWon = true OR IsClosed = false",
            "MALFORMED_QUERY",
            "unexpected token: OR",
        ),
        ("SELECT FROM Opportunity", "MALFORMED_QUERY", "unexpected token: FROM"),
        ("SELECT Id FROM Opportunity WHERE", "MALFORMED_QUERY", "unexpected token: <EOF>"),
        (
            "SELECT Id FROM Opportunity WHERE SystemModstamp > 2026-01-01T00:00:00",
            "MALFORMED_QUERY",
            "unexpected token: 2026-01-01T00:00:00",
        ),
        (
            "SELECT Id, Owner.Name FROM Opportunity",
            "INVALID_FIELD",
            "No such column 'Owner.Name' on entity 'Opportunity'",
        ),
        (
            "SELECT Id FROM Opportunity WHERE SystemModstamp > 2026-01-01",
            "INVALID_FIELD",
            "value of filter criterion for field 'SystemModstamp' must be of type dateTime",
        ),
        ("SELECT Id FROM Deal", "INVALID_TYPE", "sObject type 'Deal' is not supported"),
        (
            "SELECT Id FROM Opportunity WHERE Id = '42'",
            "INVALID_QUERY_FILTER_OPERATOR",
            "invalid ID field: 42",
        ),
    ],
)
def test_unsupported_or_wrong_soql_gets_salesforce_400_errors(api, soql, code, detail):
    status, error_code, message = error_of(api.get(f"{BASE_PATH}/query", {"q": soql}))

    assert (status, error_code) == (400, code)
    assert re.search(r"\nERROR at Row:1:Column:\d+\n", message) and detail in message


def test_other_versions_and_resources_get_not_found(api):
    retired = api.get("/services/data/v30.0/query", {"q": "SELECT Id FROM User"})
    too_new = api.get("/services/data/v67.0/query", {"q": "SELECT Id FROM User"})
    other_resource = api.get(f"{BASE_PATH}/sobjects/Opportunity")

    for response in (retired, too_new, other_resource):
        assert error_of(response) == (
            404,
            "NOT_FOUND",
            "The requested resource does not exist",
        )
    versions = requests.get(f"{api.url}/services/data", timeout=10).json()
    assert (versions[0]["version"], versions[-1]) == (
        "31.0",
        {"label": "Spring '26", "url": "/services/data/v66.0", "version": "66.0"},
    )
    assert versions[-7] == {"label": "Spring '24", "url": "/services/data/v60.0", "version": "60.0"}


# --- faults ---------------------------------------------------------------------------------------


def test_an_injected_429_with_retry_after_is_served_then_the_query_answers(server):
    server.faults.add(f"{BASE_PATH}/query", Fault(status=429, retry_after=2))
    waits: list[float] = []
    client = HttpClient(
        server.url, auth=BearerAuth(TOKEN), sleep=waits.append, rng=random.Random(1)
    )

    with client:
        page = client.get(f"{BASE_PATH}/query", params={"q": "SELECT Id FROM RecordType"})

    assert page["totalSize"] == 3 and waits == [2.0]
    assert len(server.requests_to(f"{BASE_PATH}/query")) == 2  # the 429, then the answer
    assert server.faults.pending() == 0


def test_an_injected_request_limit_error_fails_the_client_at_once(server):
    server.faults.add(f"{BASE_PATH}/query", request_limit_fault())
    waits: list[float] = []

    with HttpClient(server.url, auth=BearerAuth(TOKEN), sleep=waits.append) as client:
        with pytest.raises(HttpError) as failure:
            client.get(f"{BASE_PATH}/query", params={"q": "SELECT Id FROM RecordType"})

    assert failure.value.status == 403 and waits == []
    assert "REQUEST_LIMIT_EXCEEDED" in str(failure.value) and TOKEN not in str(failure.value)


# --- the CLI --------------------------------------------------------------------------------------


def test_cli_generates_missing_data_and_serves_until_interrupted(tmp_path):
    folder = tmp_path / "sample"
    command = [sys.executable, "-m", "devkit.fake_servers.salesforce", "--data", str(folder)]
    command += ["--deals", "20", "--seed", "1", "--token", TOKEN]
    repo = Path(__file__).resolve().parents[3]
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    with subprocess.Popen(command, cwd=repo, **pipes) as p:
        try:
            banner = p.stdout.readline()
            url = re.search(r"http://127\.0\.0\.1:\d+", banner).group()
            client = Api(url)
            deals = client.query("SELECT Id FROM Opportunity")
            client.session.close()
        finally:
            p.send_signal(signal.SIGINT)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()  # else leaving the `with` would wait for it forever
                raise

    assert deals["totalSize"] == 20 and (folder / "deals.csv").exists()
    assert f"{BASE_PATH} (Ctrl-C to stop)" in banner and TOKEN not in banner
    assert p.returncode == 0
