"""The fake HubSpot API, over real HTTP: shapes, auth, paging, search, deletions and faults."""

from __future__ import annotations

import csv
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from devkit.fake_servers.dataset import SampleDataset
from devkit.fake_servers.hubspot import build_server, rate_limit_fault
from devkit.sample_data import PIPELINES, generate
from extract.http import BearerAuth, HttpClient

TOKEN = "hs-fake-SECRET-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
DEALS = "/crm/v3/objects/deals"
SEARCH = "/crm/v3/objects/deals/search"
ALL_DEAL_PROPERTIES = (
    "dealname,amount,deal_currency_code,pipeline,dealstage,closedate,createdate,"
    "hs_lastmodifieddate,hubspot_owner_id,lead_source"
)
ACTIVITY_ENDPOINTS = {"calls": "call", "emails": "email", "meetings": "meeting"}
ROOT = Path(__file__).resolve().parents[3]


# --------------------------------------------------------------------------------------------
# Fixtures and helpers
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("hubspot-sample")
    generate(folder, 200, seed=3, workers=1)
    return folder


@pytest.fixture(scope="module")
def csv_rows(data_dir) -> dict[str, list[dict[str, str]]]:
    names = {"deals": "deals.csv", "history": "deal_stage_history.csv"}
    names["activities"] = "activities.csv"
    out = {}
    for key, name in names.items():
        with open(data_dir / name, newline="", encoding="utf-8") as f:
            out[key] = list(csv.DictReader(f))
    return out


@pytest.fixture(scope="module")
def server(data_dir):
    """A read-only server shared by the tests that change nothing."""
    with build_server(SampleDataset(data_dir), token=TOKEN) as fake:
        yield fake


@pytest.fixture
def dataset(data_dir) -> SampleDataset:
    """A private, mutable copy of the data for tests that change deals."""
    return SampleDataset(data_dir)


@pytest.fixture
def own_server(dataset):
    with build_server(dataset, token=TOKEN) as fake:
        yield fake


def get(server, path: str, headers=AUTH, **params) -> requests.Response:
    return requests.get(server.url + path, params=params, headers=headers, timeout=10)


def search(server, body: dict, path: str = SEARCH) -> requests.Response:
    return requests.post(server.url + path, json=body, headers=AUTH, timeout=10)


def pages(server, path: str, **params) -> Iterator[dict]:
    """Every object of a list endpoint, following `paging.next.after`."""
    after = None
    seen = set()
    while True:
        response = get(server, path, **params, **({"after": after} if after else {}))
        assert response.status_code == 200, response.text
        body = response.json()
        yield from body["results"]
        after = body.get("paging", {}).get("next", {}).get("after")
        if after is None:
            return
        assert after not in seen, "cursor repeated"
        seen.add(after)


def search_all(server, body: dict, path: str = SEARCH) -> list[dict]:
    """Every search result, following the numeric `after` offset."""
    results, after = [], None
    while True:
        response = search(server, {**body, **({"after": after} if after else {})}, path)
        assert response.status_code == 200, response.text
        page = response.json()
        results += page["results"]
        after = page.get("paging", {}).get("next", {}).get("after")
        if after is not None:
            assert set(page["paging"]["next"]) == {"after"} and after.isdigit()
        else:
            assert len(results) == page["total"]
            return results


def millis(iso: str) -> str:
    """Epoch millis as a string, as HubSpot search filters take them."""
    return str(int(datetime.fromisoformat(iso).timestamp() * 1000))


def canonical_time(value: str | None) -> str:
    """`2024-11-01T14:49:25.000Z` -> `2024-11-01T14:49:25Z` (the generator's whole seconds)."""
    if value is None:
        return ""
    assert value.endswith(".000Z"), value
    return value[: -len(".000Z")] + "Z"


def stage_index(server) -> dict[str, dict]:
    """Stage id -> {pipeline, label, status} from the pipelines endpoint."""
    index = {}
    for pipeline in get(server, "/crm/v3/pipelines/deals").json()["results"]:
        for stage in pipeline["stages"]:
            meta = stage["metadata"]
            status = (
                "open"
                if meta["isClosed"] == "false"
                else "won"
                if meta["probability"] == "1.0"
                else "lost"
            )
            index[stage["id"]] = {
                "pipeline_id": pipeline["id"],
                "pipeline": pipeline["label"],
                "label": stage["label"],
                "status": status,
            }
    return index


def owner_names(server) -> dict[str, str]:
    return {
        o["id"]: f"{o['firstName']} {o['lastName']}".strip()
        for o in pages(server, "/crm/v3/owners", limit=10)
    }


# --------------------------------------------------------------------------------------------
# Auth
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong-token"}, {"Authorization": f"Basic {TOKEN}"}],
    ids=["missing", "wrong", "not-bearer"],
)
def test_missing_or_wrong_token_gets_hubspots_401_body(server, headers):
    response = get(server, DEALS, headers=headers)

    assert response.status_code == 401
    body = response.json()
    assert body["status"] == "error"
    assert body["category"] == "INVALID_AUTHENTICATION"
    assert body["message"].startswith("Authentication credentials not found.")
    assert isinstance(body["correlationId"], str) and len(body["correlationId"]) == 36


def test_recorded_requests_never_keep_the_token(server):
    get(server, "/crm/v3/owners")

    recorded = server.requests_to("/crm/v3/owners")[-1]
    assert recorded.headers["Authorization"] == "Bearer ***"


# --------------------------------------------------------------------------------------------
# Shapes and types on a known deal
# --------------------------------------------------------------------------------------------


def test_a_known_deal_has_hubspots_shape_and_the_csv_values(server, csv_rows):
    # GIVEN the first deal of the CSV: won, with a company, amount and lead source
    row = csv_rows["deals"][0]
    assert row["deal_id"] == "D0000001" and row["status"] == "won" and row["company_id"]
    history = [h for h in csv_rows["history"] if h["deal_id"] == "D0000001"]

    # WHEN it is read with every property, its stage history and its company
    body = get(
        server,
        DEALS,
        limit=1,
        properties=ALL_DEAL_PROPERTIES,
        propertiesWithHistory="dealstage",
        associations="companies",
    ).json()

    # THEN every value is a string in HubSpot's form, mapped from the CSV row
    deal = body["results"][0]
    stages = stage_index(server)
    props = deal["properties"]
    assert deal["id"] == "1" and props["hs_object_id"] == "1"
    assert deal["archived"] is False and "archivedAt" not in deal
    assert all(isinstance(v, str) for v in props.values())
    assert props["dealname"] == row["deal_name"]
    assert props["amount"] == row["amount"]
    assert props["deal_currency_code"] == row["currency"]
    assert props["lead_source"] == row["lead_source"]
    assert props["hubspot_owner_id"] == row["owner_id"].removeprefix("U")
    assert props["createdate"] == deal["createdAt"] == row["created_at"][:-1] + ".000Z"
    assert props["closedate"] == row["closed_at"][:-1] + ".000Z"
    assert props["hs_lastmodifieddate"] == deal["updatedAt"] == row["updated_at"][:-1] + ".000Z"
    assert stages[props["dealstage"]]["label"] == row["stage"]
    assert stages[props["dealstage"]]["pipeline_id"] == props["pipeline"]
    assert stages[props["dealstage"]]["pipeline"] == row["pipeline"]
    assert stages[props["dealstage"]]["status"] == "won"
    company = row["company_id"].removeprefix("C")
    assert deal["associations"] == {
        "companies": {
            "results": [
                {"id": company, "type": "deal_to_company"},
                {"id": company, "type": "deal_to_company_unlabeled"},
            ]
        }
    }
    changes = deal["propertiesWithHistory"]["dealstage"]
    assert [(stages[c["value"]]["label"], canonical_time(c["timestamp"])) for c in changes] == [
        (h["stage"], h["changed_at"]) for h in reversed(history)
    ]
    assert changes[0]["value"] == props["dealstage"]
    assert {"sourceType", "timestamp", "value"} <= set(changes[0])


def test_without_properties_a_deal_has_hubspots_default_properties(server):
    deal = get(server, DEALS, limit=1).json()["results"][0]

    assert set(deal["properties"]) == {
        "amount",
        "closedate",
        "createdate",
        "dealname",
        "dealstage",
        "hs_lastmodifieddate",
        "hs_object_id",
        "pipeline",
    }


def test_an_open_deal_without_values_has_null_properties(server, csv_rows):
    row = next(
        r
        for r in csv_rows["deals"]
        if r["status"] == "open" and not r["amount"] and r["company_id"]
    )
    number = int(row["deal_id"][1:])
    deal = next(
        d
        for d in pages(server, DEALS, limit=100, properties="amount,closedate")
        if d["id"] == str(number)
    )

    assert deal["properties"]["amount"] is None
    assert deal["properties"]["closedate"] is None


def test_pipelines_have_string_metadata_and_canonical_labels(server):
    body = get(server, "/crm/v3/pipelines/deals").json()

    assert "paging" not in body
    pipelines = body["results"]
    assert [p["label"] for p in pipelines] == [p.name for p in PIPELINES]
    assert [p["id"] for p in pipelines] == ["default", "70000002", "70000003"]
    new_business = pipelines[0]
    assert new_business["stages"][0] == {
        "id": "100001001",
        "label": "Prospect",
        "displayOrder": 0,
        "metadata": {"isClosed": "false", "probability": "0.05"},
        "createdAt": "1970-01-01T00:00:00.000Z",
        "updatedAt": "1970-01-01T00:00:00.000Z",
        "archived": False,
        "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
    }
    won, lost = new_business["stages"][-2:]
    assert (won["id"], won["label"], won["metadata"]) == (
        "closedwon",
        "Closed Won",
        {"isClosed": "true", "probability": "1.0"},
    )
    assert (lost["id"], lost["label"], lost["metadata"]) == (
        "closedlost",
        "Closed Lost",
        {"isClosed": "true", "probability": "0.0"},
    )
    for pipeline, spec in zip(pipelines, PIPELINES, strict=True):
        labels = [s["label"] for s in pipeline["stages"]]
        assert labels == [s.name for s in spec.stages] + [spec.won_stage, spec.lost_stage]


def test_owners_page_with_an_opaque_cursor(server, csv_rows):
    first = get(server, "/crm/v3/owners", limit=10).json()

    assert len(first["results"]) == 10
    owner = first["results"][0]
    assert owner["id"] == "1001" and owner["firstName"] == "Emily"
    assert owner["lastName"] == "Carter" and owner["email"] == "emily.carter@example.com"
    assert isinstance(owner["userId"], int) and owner["archived"] is False
    assert not first["paging"]["next"]["after"].isdigit()
    names = owner_names(server)
    assert len(names) == 36
    assert {r["owner_id"].removeprefix("U") for r in csv_rows["deals"]} <= set(names)


def test_activities_have_timestamp_owner_and_deal(server, csv_rows):
    row = next(a for a in csv_rows["activities"] if a["activity_type"] == "meeting")

    body = get(
        server,
        "/crm/v3/objects/meetings",
        limit=1,
        properties="hs_timestamp,hubspot_owner_id",
        associations="deals",
    ).json()

    meeting = body["results"][0]
    assert meeting["id"] == str(int(row["activity_id"][1:]))
    assert meeting["properties"]["hs_timestamp"] == row["occurred_at"][:-1] + ".000Z"
    assert meeting["properties"]["hubspot_owner_id"] == row["owner_id"].removeprefix("U")
    assert meeting["associations"] == {
        "deals": {
            "results": [{"id": str(int(row["deal_id"][1:])), "type": "meeting_event_to_deal"}]
        }
    }


# --------------------------------------------------------------------------------------------
# Reading everything gives back the CSV
# --------------------------------------------------------------------------------------------


def test_reading_every_page_reproduces_the_csv_deals_history_and_activities(server, csv_rows):
    # GIVEN the reference data behind the deals
    stages = stage_index(server)
    owners = owner_names(server)

    # WHEN every page of deals (with history and companies) and of activities is read
    deals = list(
        pages(
            server,
            DEALS,
            limit=50,
            properties=ALL_DEAL_PROPERTIES,
            propertiesWithHistory="dealstage",
            associations="companies",
        )
    )
    activities = {
        kind: list(
            pages(
                server,
                f"/crm/v3/objects/{kind}",
                limit=100,
                properties="hs_timestamp,hubspot_owner_id",
                associations="deals",
            )
        )
        for kind in ACTIVITY_ENDPOINTS
    }

    # THEN mapped back to canonical columns they equal the CSV files exactly
    def canonical_deal(d: dict) -> dict[str, str]:
        p = d["properties"]
        stage = stages[p["dealstage"]]
        companies = d.get("associations", {}).get("companies", {}).get("results", [])
        owner = p["hubspot_owner_id"]
        return {
            "deal_id": f"D{int(d['id']):07d}",
            "deal_name": p["dealname"] or "",
            "pipeline": stage["pipeline"],
            "stage": stage["label"],
            "status": stage["status"],
            "amount": p["amount"] or "",
            "currency": p["deal_currency_code"] or "",
            "owner_id": f"U{owner}" if owner else "",
            "owner_name": owners.get(owner, ""),
            "company_id": f"C{companies[0]['id']}" if companies else "",
            "lead_source": p["lead_source"] or "",
            "created_at": canonical_time(p["createdate"]),
            "closed_at": canonical_time(p["closedate"]),
            "updated_at": canonical_time(p["hs_lastmodifieddate"]),
        }

    assert len(deals) == len(csv_rows["deals"]) == 200
    got = sorted((canonical_deal(d) for d in deals), key=lambda r: r["deal_id"])
    assert got == sorted(csv_rows["deals"], key=lambda r: r["deal_id"])

    got_history = {
        (f"D{int(d['id']):07d}", stages[c["value"]]["label"], canonical_time(c["timestamp"]))
        for d in deals
        for c in d["propertiesWithHistory"]["dealstage"]
    }
    want_history = {(h["deal_id"], h["stage"], h["changed_at"]) for h in csv_rows["history"]}
    assert got_history == want_history
    assert sum(len(d["propertiesWithHistory"]["dealstage"]) for d in deals) == len(
        csv_rows["history"]
    )

    got_activities = {
        (
            f"A{int(a['id']):09d}",
            f"D{int(a['associations']['deals']['results'][0]['id']):07d}",
            ACTIVITY_ENDPOINTS[kind],
            canonical_time(a["properties"]["hs_timestamp"]),
            f"U{a['properties']['hubspot_owner_id']}",
        )
        for kind, items in activities.items()
        for a in items
    }
    want_activities = {tuple(a.values()) for a in csv_rows["activities"]}
    assert got_activities == want_activities
    assert sum(len(items) for items in activities.values()) == len(csv_rows["activities"])


def test_an_owners_name_is_the_one_on_their_latest_deal(server, csv_rows):
    latest: dict[str, tuple[str, str, str]] = {}
    for r in csv_rows["deals"]:
        key = (r["updated_at"], r["deal_id"], r["owner_name"])
        latest[r["owner_id"]] = max(latest.get(r["owner_id"], key), key)

    names = owner_names(server)

    assert {f"U{i}": n for i, n in names.items() if f"U{i}" in latest} == {
        owner: key[2] for owner, key in latest.items()
    }


# --------------------------------------------------------------------------------------------
# Incremental reads: search on hs_lastmodifieddate
# --------------------------------------------------------------------------------------------


def test_search_finds_exactly_the_deals_modified_in_a_window(server, csv_rows):
    since, until = "2026-01-01T00:00:00+00:00", "2026-03-31T23:59:59+00:00"
    body = {
        "filterGroups": [
            {
                "filters": [
                    {
                        "propertyName": "hs_lastmodifieddate",
                        "operator": "GTE",
                        "value": millis(since),
                    },
                    {
                        "propertyName": "hs_lastmodifieddate",
                        "operator": "LTE",
                        "value": millis(until),
                    },
                ]
            }
        ],
        "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
        "properties": ["hs_lastmodifieddate"],
        "limit": 7,
    }

    found = search_all(server, body)

    want = {
        str(int(r["deal_id"][1:]))
        for r in csv_rows["deals"]
        if since[:19] <= r["updated_at"][:19] <= until[:19]
    }
    assert 7 < len(want) < 200
    assert [d["id"] for d in found] == sorted(
        want, key=lambda i: (csv_rows["deals"][int(i) - 1]["updated_at"], int(i))
    )
    stamps = [d["properties"]["hs_lastmodifieddate"] for d in found]
    assert stamps == sorted(stamps)


@pytest.mark.parametrize(
    ("operator", "included"), [("GTE", True), ("GT", False), ("LTE", True), ("LT", False)]
)
def test_search_bounds_are_exact_to_the_millisecond(server, csv_rows, operator, included):
    row = csv_rows["deals"][41]
    body = {
        "filterGroups": [
            {
                "filters": [
                    {
                        "propertyName": "hs_lastmodifieddate",
                        "operator": operator,
                        "value": millis(row["updated_at"]),
                    }
                ]
            }
        ],
        "limit": 200,
    }

    found = {d["id"] for d in search_all(server, body)}

    assert (str(int(row["deal_id"][1:])) in found) is included


def test_search_takes_iso_dates_and_between(server, csv_rows):
    body = {
        "filterGroups": [
            {
                "filters": [
                    {
                        "propertyName": "hs_lastmodifieddate",
                        "operator": "BETWEEN",
                        "value": "2025-06-01T00:00:00Z",
                        "highValue": "2025-06-30T23:59:59Z",
                    }
                ]
            }
        ],
        "limit": 200,
    }

    found = {d["id"] for d in search_all(server, body)}

    assert found == {
        str(int(r["deal_id"][1:]))
        for r in csv_rows["deals"]
        if "2025-06-01" <= r["updated_at"][:10] <= "2025-06-30"
    }


def test_a_deal_changed_after_a_night_is_found_by_the_next_search(own_server, dataset):
    # GIVEN a cutoff after every generated change
    cutoff = "2026-07-01T00:00:00+00:00"
    body = {
        "filterGroups": [
            {
                "filters": [
                    {
                        "propertyName": "hs_lastmodifieddate",
                        "operator": "GT",
                        "value": millis(cutoff),
                    }
                ]
            }
        ],
        "properties": ["dealstage", "amount"],
    }
    assert search(own_server, body).json() == {"total": 0, "results": []}

    # WHEN two deals change in the CRM
    dataset.update_deal("D0000005", at=datetime(2026, 7, 2, 9, 0, tzinfo=UTC), amount="999.00")
    dataset.move_deal("D0000009", "Closed Lost", at=datetime(2026, 7, 3, 10, 0, tzinfo=UTC))

    # THEN the modified-since search returns exactly them, with their new values
    found = {d["id"]: d["properties"] for d in search(own_server, body).json()["results"]}
    assert set(found) == {"5", "9"}
    assert found["5"]["amount"] == "999.00"
    assert found["9"]["hs_lastmodifieddate"] == "2026-07-03T10:00:00.000Z"


def test_search_past_ten_thousand_results_is_hubspots_400(server):
    response = search(server, {"after": "9950", "limit": 100})

    assert response.status_code == 400
    body = response.json()
    assert body["status"] == "error" and body["category"] == "VALIDATION_ERROR"
    assert "10000" in body["message"]
    # The last allowed page (offset 9800 + 200 = 10,000) is fine, and reports the full total.
    last = search(server, {"after": "9800", "limit": 200})
    assert last.status_code == 200 and last.json() == {"total": 200, "results": []}


def test_a_lowered_search_cap_refuses_paging_past_it(dataset):
    # GIVEN a server whose search cap is 150 instead of 10,000 (200 deals in the data)
    with build_server(dataset, token=TOKEN, search_result_cap=150) as fake:
        # WHEN a query pages up to the cap THEN it is served; one page past it is a 400
        assert search(fake, {"after": "100", "limit": 50}).status_code == 200
        refused = search(fake, {"after": "100", "limit": 51})
        fresh_query = search(fake, {"limit": 100, "after": "0"})
    assert refused.status_code == 400
    assert "150" in refused.json()["message"]
    assert fresh_query.json()["total"] == 200


def test_an_incremental_night_rereads_changed_deals_with_history_and_company(own_server, dataset):
    # GIVEN a deal moved to a lost stage after the last night
    dataset.move_deal(
        "D0000012", "Closed Lost", at=datetime(2026, 7, 2, 8, 30, tzinfo=UTC), status="lost"
    )
    window = {
        "filterGroups": [
            {
                "filters": [
                    {
                        "propertyName": "hs_lastmodifieddate",
                        "operator": "GTE",
                        "value": millis("2026-07-01T00:00:00+00:00"),
                    }
                ]
            }
        ],
        "limit": 200,
    }

    # WHEN the night searches the window, then batch-reads the changed ids with history
    ids = [d["id"] for d in search_all(own_server, window)]
    read = requests.post(
        own_server.url + "/crm/v3/objects/deals/batch/read",
        json={
            "inputs": [{"id": i} for i in ids],
            "properties": ["dealstage", "closedate"],
            "propertiesWithHistory": ["dealstage"],
        },
        headers=AUTH,
        timeout=10,
    )
    companies = requests.post(
        own_server.url + "/crm/v4/associations/deals/companies/batch/read",
        json={"inputs": [{"id": i} for i in ids]},
        headers=AUTH,
        timeout=10,
    )

    # THEN it gets the new stage on top of the full history, and the deal's company
    assert ids == ["12"]
    assert read.status_code == 200
    body = read.json()
    assert body["status"] == "COMPLETE" and {"startedAt", "completedAt"} <= set(body)
    deal = body["results"][0]
    assert "associations" not in deal
    newest = deal["propertiesWithHistory"]["dealstage"][0]
    assert newest == {**newest, "value": "closedlost", "timestamp": "2026-07-02T08:30:00.000Z"}
    assert deal["properties"]["dealstage"] == "closedlost"
    assert deal["properties"]["closedate"] == "2026-07-02T08:30:00.000Z"
    company = dataset.scalar("select company_id from deals where deal_id = 'D0000012'")
    assert companies.status_code == 200
    assert companies.json()["results"] == [
        {
            "from": {"id": "12"},
            "to": [
                {
                    "toObjectId": int(company[1:]),
                    "associationTypes": [
                        {"category": "HUBSPOT_DEFINED", "typeId": 5, "label": "Primary"},
                        {"category": "HUBSPOT_DEFINED", "typeId": 341, "label": None},
                    ],
                }
            ],
        }
    ]


def test_batch_reads_report_missing_ids_as_hubspot_does(server, csv_rows):
    without_company = next(r for r in csv_rows["deals"] if not r["company_id"])
    number = str(int(without_company["deal_id"][1:]))

    def post(path: str, body: dict) -> requests.Response:
        return requests.post(server.url + path, json=body, headers=AUTH, timeout=10)

    partly = post("/crm/v3/objects/deals/batch/read", {"inputs": [{"id": "1"}, {"id": "999999"}]})
    none = post("/crm/v3/objects/deals/batch/read", {"inputs": [{"id": "999999"}]})
    too_many = post(
        "/crm/v3/objects/deals/batch/read",
        {"inputs": [{"id": str(i)} for i in range(1, 52)], "propertiesWithHistory": ["dealstage"]},
    )
    no_company = post(
        "/crm/v4/associations/deals/companies/batch/read", {"inputs": [{"id": number}]}
    )

    assert partly.status_code == 207
    assert [d["id"] for d in partly.json()["results"]] == ["1"]
    assert partly.json()["numErrors"] == 1
    error = partly.json()["errors"][0]
    assert error["category"] == "OBJECT_NOT_FOUND" and error["context"] == {"ids": ["999999"]}
    assert none.status_code == 404 and none.json()["category"] == "OBJECT_NOT_FOUND"
    assert too_many.status_code == 400 and too_many.json()["category"] == "VALIDATION_ERROR"
    assert no_company.status_code == 207 and no_company.json()["results"] == []
    assert no_company.json()["errors"][0]["category"] == "OBJECT_NOT_FOUND"


def test_activity_associations_batch_read_gives_numeric_deal_ids(server, csv_rows):
    call = next(a for a in csv_rows["activities"] if a["activity_type"] == "call")

    response = requests.post(
        server.url + "/crm/v4/associations/calls/deals/batch/read",
        json={"inputs": [{"id": str(int(call["activity_id"][1:]))}]},
        headers=AUTH,
        timeout=10,
    )

    assert response.status_code == 200
    (result,) = response.json()["results"]
    assert result["to"][0]["toObjectId"] == int(call["deal_id"][1:])
    assert result["to"][0]["associationTypes"][0]["typeId"] == 206


# --------------------------------------------------------------------------------------------
# Deletions
# --------------------------------------------------------------------------------------------


def test_a_deleted_deal_is_listed_only_as_archived(own_server, dataset, csv_rows):
    # GIVEN a deal with activities is deleted in the CRM
    deal_id = next(
        r["deal_id"]
        for r in csv_rows["deals"]
        if r["deal_id"] in {a["deal_id"] for a in csv_rows["activities"]}
    )
    number = str(int(deal_id[1:]))
    dataset.delete_deal(deal_id, at=datetime(2026, 7, 1, 12, 0, tzinfo=UTC))

    # THEN the default list and the search no longer find it
    assert number not in {d["id"] for d in pages(own_server, DEALS, limit=100)}
    found = search_all(own_server, {"limit": 200})
    assert len(found) == 199 and number not in {d["id"] for d in found}

    # AND archived=true lists it alone, flagged with its archive time
    archived = list(pages(own_server, DEALS, archived="true", propertiesWithHistory="dealstage"))
    assert [d["id"] for d in archived] == [number]
    assert archived[0]["archived"] is True
    assert archived[0]["archivedAt"] == "2026-07-01T12:00:00.000Z"
    assert archived[0]["propertiesWithHistory"]["dealstage"]

    # AND its activities remain but are no longer associated with it
    calls_emails_meetings = [
        a
        for kind in ACTIVITY_ENDPOINTS
        for a in pages(own_server, f"/crm/v3/objects/{kind}", limit=100, associations="deals")
    ]
    assert len(calls_emails_meetings) == len(csv_rows["activities"])
    linked = {
        r["id"]
        for a in calls_emails_meetings
        for r in a.get("associations", {}).get("deals", {}).get("results", [])
    }
    assert number not in linked


# --------------------------------------------------------------------------------------------
# Page sizes and cursors
# --------------------------------------------------------------------------------------------


def test_page_sizes_default_and_cap_as_in_hubspot(server):
    assert len(get(server, DEALS).json()["results"]) == 10
    assert len(get(server, DEALS, limit=100).json()["results"]) == 100
    assert (
        len(get(server, DEALS, limit=50, propertiesWithHistory="dealstage").json()["results"]) == 50
    )
    assert len(search(server, {}).json()["results"]) == 10
    assert len(search(server, {"limit": 200}).json()["results"]) == 200

    too_big = [
        get(server, DEALS, limit=101),
        get(server, DEALS, limit=51, propertiesWithHistory="dealstage"),
        get(server, "/crm/v3/objects/calls", limit=101),
        get(server, "/crm/v3/owners", limit=501),
        search(server, {"limit": 201}),
    ]
    for response in too_big:
        assert response.status_code == 400, response.url
        assert response.json()["category"] == "VALIDATION_ERROR"


@pytest.mark.parametrize(
    "after",
    ["not-a-cursor!", "MTIz", "b3duZXJzOjEwMDI"],
    ids=["garbage", "bare-number", "owners-cursor"],
)
def test_a_cursor_the_endpoint_did_not_issue_is_a_400(server, after):
    response = get(server, DEALS, after=after)

    assert response.status_code == 400
    body = response.json()
    assert body["status"] == "error" and body["category"] == "VALIDATION_ERROR"
    assert "after" in body["message"]


def test_search_after_must_be_number_like(server):
    response = search(server, {"after": "NTI1Cg"})

    assert response.status_code == 400
    assert response.json()["category"] == "VALIDATION_ERROR"


def test_the_next_link_gives_the_same_page_as_the_cursor(server):
    first = get(server, DEALS, limit=5, properties="amount").json()
    link = first["paging"]["next"]["link"]

    via_link = requests.get(link, headers=AUTH, timeout=10).json()
    via_after = get(
        server, DEALS, limit=5, properties="amount", after=first["paging"]["next"]["after"]
    ).json()

    assert link.startswith(server.url + DEALS + "?")
    assert via_link == via_after
    assert [d["id"] for d in via_link["results"]] == ["6", "7", "8", "9", "10"]


# --------------------------------------------------------------------------------------------
# Faults
# --------------------------------------------------------------------------------------------


def test_an_injected_429_is_served_with_retry_after_then_the_page(server):
    server.faults.add(DEALS, rate_limit_fault(retry_after=2))

    throttled = get(server, DEALS, limit=1)
    after = get(server, DEALS, limit=1)

    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "2"
    assert throttled.json()["errorType"] == "RATE_LIMIT"
    assert throttled.json()["policyName"] == "SECONDLY"
    assert after.status_code == 200 and after.json()["results"][0]["id"] == "1"


def test_the_shared_client_waits_out_an_injected_429(server):
    server.faults.add(DEALS, rate_limit_fault(retry_after=3))
    sleeps: list[float] = []

    with HttpClient(server.url, auth=BearerAuth(TOKEN), sleep=sleeps.append) as client:
        body = client.get(DEALS, params={"limit": 2})

    assert sleeps == [3.0]
    assert [d["id"] for d in body["results"]] == ["1", "2"]


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


def test_cli_generates_data_serves_it_and_stops_on_ctrl_c(tmp_path):
    folder = tmp_path / "cli-data"
    process = subprocess.Popen(
        [sys.executable, "-m", "devkit.fake_servers.hubspot", "--data", str(folder)]
        + ["--deals", "20", "--seed", "1", "--token", TOKEN],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        assert "fake HubSpot API on http://127.0.0.1:" in line, process.stderr.read()
        url = line.split(" on ")[1].split()[0]
        deals = requests.get(f"{url}{DEALS}", params={"limit": 100}, headers=AUTH, timeout=10)
        assert deals.status_code == 200 and len(deals.json()["results"]) == 20
        assert (folder / "deals.csv").exists()
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
