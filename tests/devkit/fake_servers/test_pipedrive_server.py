"""The fake Pipedrive API over real HTTP: auth, record shapes, paging, filters, deletion, faults.

The helpers `canonical_deal`, `stage_history` and `canonical_activity` turn API records back
into canonical CSV rows the way docs/fake_servers/pipedrive.md tells a connector to; the
tests prove that doing so loses nothing.
"""

from __future__ import annotations

import base64
import csv
import json
import re
import select
import signal
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests

from devkit.fake_servers import Fault
from devkit.fake_servers.dataset import SampleDataset
from devkit.fake_servers.pipedrive import UNAUTHORIZED_BODY, build_server, error_body
from devkit.sample_data import PIPELINES, generate
from extract.http import HttpClient, QueryTokenAuth

TOKEN = "pd-test-token-8c1f"
REPO = Path(__file__).resolve().parents[3]
V1_TIME = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
ENDPOINT_PATHS = [
    "/api/v2/deals",
    "/api/v2/activities",
    "/api/v2/stages",
    "/api/v2/pipelines",
    "/api/v2/dealFields",
    "/v1/users",
    "/api/v1/users",
    "/v1/deals/1/flow",
    "/api/v1/deals/1/flow",
]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("pipedrive_sample")
    generate(folder, 200, seed=3, workers=1)
    return folder


@pytest.fixture(scope="module")
def csv_rows(data_dir) -> dict[str, list[dict]]:
    def read(name: str) -> list[dict]:
        with open(data_dir / name, encoding="utf-8", newline="") as f:
            return list(csv.DictReader(f))

    return {
        "deals": read("deals.csv"),
        "history": read("deal_stage_history.csv"),
        "activities": read("activities.csv"),
    }


@pytest.fixture(scope="module")
def server(data_dir):
    """One server for the tests that only read."""
    with build_server(SampleDataset(data_dir), token=TOKEN) as fake:
        yield fake


@pytest.fixture
def changing(data_dir):
    """A dataset of its own and its server, for tests that change deals."""
    dataset = SampleDataset(data_dir)
    with build_server(dataset, token=TOKEN) as fake:
        yield dataset, fake


# A fresh connection per request: the base server writes headers and body separately, so on a
# kept-alive connection every response waits ~40 ms for a delayed ACK (Nagle).
def call(server, path: str, **params) -> requests.Response:
    return requests.get(
        server.url + path, params=params, headers={"x-api-token": TOKEN}, timeout=10
    )


def get(server, path: str, **params) -> dict:
    response = call(server, path, **params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["success"] is True
    return body


def read_all(server, path: str, **params) -> list[dict]:
    """Every record of a v2 list endpoint, following next_cursor to the end."""
    records, cursor, seen = [], None, set()
    while True:
        page = get(server, path, **params, **({"cursor": cursor} if cursor else {}))
        records += page["data"]
        cursor = page["additional_data"]["next_cursor"]
        if cursor is None:
            return records
        assert cursor not in seen
        seen.add(cursor)


def read_flow(server, deal_id: int, **params) -> list[dict]:
    """Every entry of a deal's v1 flow, following start / next_start to the end."""
    entries, start = [], 0
    while True:
        page = get(server, f"/v1/deals/{deal_id}/flow", start=start, **params)
        entries += page["data"]
        pagination = page["additional_data"]["pagination"]
        if not pagination["more_items_in_collection"]:
            return entries
        start = pagination["next_start"]


# --------------------------------------------------------------------------------------------
# The connector's mapping back to canonical rows (as in docs/fake_servers/pipedrive.md)
# --------------------------------------------------------------------------------------------


def iso(v1_time: str) -> str:
    return v1_time.replace(" ", "T") + "Z"


def names(server) -> dict[str, dict]:
    """Id -> name lookups from the settings endpoints."""
    (channel,) = [f for f in read_all(server, "/api/v2/dealFields") if f["field_code"] == "channel"]
    return {
        "pipelines": {p["id"]: p["name"] for p in read_all(server, "/api/v2/pipelines")},
        "stages": {s["id"]: s["name"] for s in read_all(server, "/api/v2/stages")},
        "users": {u["id"]: u["name"] for u in get(server, "/v1/users")["data"]},
        "channels": {o["id"]: o["label"] for o in channel["options"]},
    }


def canonical_deal(deal: dict, lookups: dict[str, dict]) -> dict:
    return {
        "deal_id": f"D{deal['id']:07d}",
        "deal_name": deal["title"],
        "pipeline": lookups["pipelines"][deal["pipeline_id"]],
        "stage": lookups["stages"][deal["stage_id"]],
        "status": deal["status"],
        "amount": "" if deal["value"] == 0 else f"{deal['value']:.2f}",
        "currency": deal["currency"],
        "owner_id": f"U{deal['owner_id']}",
        "owner_name": lookups["users"][deal["owner_id"]],
        "company_id": "" if deal["org_id"] is None else f"C{deal['org_id']}",
        "lead_source": lookups["channels"].get(deal["channel"], ""),
        "created_at": deal["add_time"],
        "closed_at": deal["close_time"] or "",
        "updated_at": deal["update_time"],
    }


def stage_history(deal: dict, flow: list[dict], stage_names: dict) -> list[tuple[str, str, str]]:
    """(deal_id, stage, changed_at) rows: the first stage at creation, then every move."""
    changes = sorted(
        (e["data"] for e in flow if e["object"] == "dealChange"),
        key=lambda change: (change["log_time"], change["id"]),
    )
    moves = [c for c in changes if c["field_key"] == "stage_id"]
    (created,) = [c for c in changes if c["field_key"] == "add_time"]
    first_stage = int(moves[0]["old_value"]) if moves else deal["stage_id"]
    steps = [(first_stage, created["log_time"])]
    steps += [(int(m["new_value"]), m["log_time"]) for m in moves]
    return [(f"D{deal['id']:07d}", stage_names[s], iso(at)) for s, at in steps]


def canonical_activity(activity: dict) -> tuple[str, str, str, str, str]:
    return (
        f"A{activity['id']:09d}",
        f"D{activity['deal_id']:07d}",
        activity["type"],
        f"{activity['due_date']}T{activity['due_time']}Z",
        f"U{activity['owner_id']}",
    )


def current_owner_names(deals: list[dict]) -> dict[str, str]:
    """The name on each owner's most recently updated deal (what a CRM user record holds)."""
    latest = {}
    for row in sorted(deals, key=lambda r: (r["updated_at"], r["deal_id"])):
        latest[row["owner_id"]] = row["owner_name"]
    return latest


# --------------------------------------------------------------------------------------------
# Auth and errors
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ENDPOINT_PATHS)
def test_missing_or_wrong_token_gets_the_pipedrive_401_body(server, path):
    for params, headers in (({}, {}), ({"api_token": "wrong"}, {}), ({}, {"x-api-token": "x"})):
        response = requests.get(server.url + path, params=params, headers=headers, timeout=10)
        assert response.status_code == 401
        assert response.json() == {
            "success": False,
            "error": "unauthorized access",
            "errorCode": 401,
            "error_info": "Please check developers.pipedrive.com",
        }
        assert response.json() == UNAUTHORIZED_BODY


def test_token_is_accepted_as_api_token_param_or_x_api_token_header(server):
    by_param = requests.get(server.url + "/api/v2/pipelines", params={"api_token": TOKEN})
    by_header = requests.get(server.url + "/api/v2/pipelines", headers={"X-Api-Token": TOKEN})
    assert by_param.status_code == by_header.status_code == 200
    assert by_param.json() == by_header.json()
    # Recorded requests never keep the token.
    assert all(r.query.get("api_token") in (None, ["***"]) for r in server.requests)


def test_unsupported_parameter_is_a_400_naming_it(server):
    response = call(server, "/api/v2/deals", owner_id=1001)
    assert response.status_code == 400
    assert response.json()["error"] == (
        "Validation failed: owner_id: not supported by the local fake Pipedrive server"
    )


def test_unknown_deal_flow_is_a_404_with_the_error_envelope(server):
    response = call(server, "/v1/deals/999999/flow")
    assert response.status_code == 404
    assert response.json() == error_body("Deal not found")


# --------------------------------------------------------------------------------------------
# Shapes and types, on known deals
# --------------------------------------------------------------------------------------------


def test_deal_records_carry_every_canonical_value_with_pipedrive_types(server, csv_rows):
    deals = {d["id"]: d for d in read_all(server, "/api/v2/deals", limit=500)}
    lookups = names(server)
    rows = csv_rows["deals"]
    won = next(r for r in rows if r["status"] == "won")
    lost_without_amount = next(r for r in rows if r["status"] == "lost" and not r["amount"])
    open_without_company = next(r for r in rows if r["status"] == "open" and not r["company_id"])
    for row in (won, lost_without_amount, open_without_company):
        deal = deals[int(row["deal_id"][1:])]
        expected = {**row, "owner_name": current_owner_names(rows)[row["owner_id"]]}
        assert canonical_deal(deal, lookups) == expected
        assert deal["is_deleted"] is False and deal["is_archived"] is False
        for key in ("id", "owner_id", "stage_id", "pipeline_id"):
            assert type(deal[key]) is int, key
        assert isinstance(deal["value"], int | float) and not isinstance(deal["value"], bool)
        for key in ("add_time", "update_time", "stage_change_time"):
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", deal[key]), key

    deal = deals[int(won["deal_id"][1:])]
    assert deal["value"] == float(won["amount"])
    assert deal["won_time"] == deal["close_time"] == won["closed_at"]
    assert deal["lost_time"] is None
    assert deal["org_id"] == int(won["company_id"][1:])
    assert deals[int(lost_without_amount["deal_id"][1:])]["value"] == 0
    no_company = deals[int(open_without_company["deal_id"][1:])]
    assert no_company["org_id"] is None and no_company["close_time"] is None


def test_stages_and_pipelines_are_the_generators_with_won_and_lost_stages_last(server):
    pipelines = read_all(server, "/api/v2/pipelines")
    stages = read_all(server, "/api/v2/stages", sort_by="order_nr")
    assert [(p["id"], p["name"]) for p in pipelines] == [
        (i, p.name) for i, p in enumerate(PIPELINES, 1)
    ]
    for pipeline_id, pipeline in enumerate(PIPELINES, 1):
        own = sorted((s for s in stages if s["pipeline_id"] == pipeline_id), key=lambda s: s["id"])
        assert [(s["name"], s["order_nr"], s["deal_probability"]) for s in own] == [
            (name, i, round(p * 100)) for i, (name, _, p) in enumerate(pipeline.stage_mapping(), 1)
        ]
    assert len({s["id"] for s in stages}) == len(stages) == 30
    assert all(type(s["deal_probability"]) is int for s in stages)
    one_pipeline = get(server, "/api/v2/stages", pipeline_id=2)["data"]
    assert {s["pipeline_id"] for s in one_pipeline} == {2}


def test_channel_options_name_every_lead_source_exactly(server, csv_rows):
    (channel,) = [f for f in read_all(server, "/api/v2/dealFields") if f["field_code"] == "channel"]
    assert channel["field_type"] == "enum"
    labels = {o["label"] for o in channel["options"]}
    assert {r["lead_source"] for r in csv_rows["deals"] if r["lead_source"]} <= labels
    assert "linkedin " in labels  # hand-typed spelling kept, trailing space and all
    assert all(type(o["id"]) is int for o in channel["options"])


def test_users_have_numeric_ids_and_their_current_name(server, csv_rows):
    users = {u["id"]: u for u in get(server, "/v1/users")["data"]}
    owners = {r["owner_id"] for r in csv_rows["deals"]} | {
        r["owner_id"] for r in csv_rows["activities"]
    }
    assert set(users) == {int(o[1:]) for o in owners}
    current = current_owner_names(csv_rows["deals"])
    for owner_id, name in current.items():
        assert users[int(owner_id[1:])]["name"] == name
    assert users[1007]["name"] == "Sarah Johnson"  # the owner the generator renames
    assert V1_TIME.fullmatch(users[1007]["created"])


def test_activity_records_match_the_csv_row(server, csv_rows):
    row = csv_rows["activities"][0]
    deal = next(d for d in csv_rows["deals"] if d["deal_id"] == row["deal_id"])
    (activity,) = [
        a
        for a in get(server, "/api/v2/activities", deal_id=int(row["deal_id"][1:]))["data"]
        if a["id"] == int(row["activity_id"][1:])
    ]
    assert canonical_activity(activity) == tuple(row.values())
    assert activity["update_time"] == activity["add_time"] == row["occurred_at"]
    assert activity["done"] is True and activity["is_deleted"] is False
    assert activity["org_id"] == int(deal["company_id"][1:])


def test_flow_is_newest_first_with_string_values_and_the_creation_entry(server, csv_rows):
    # GIVEN the first deal: won, several stage moves
    row = csv_rows["deals"][0]
    history = [h for h in csv_rows["history"] if h["deal_id"] == row["deal_id"]]
    # WHEN its whole flow is read three entries a page
    flow = read_flow(server, 1, limit=3)
    # THEN entries come newest first, values are strings, and the history is all there
    times = [e["timestamp"] for e in flow]
    assert times == sorted(times, reverse=True) and all(V1_TIME.fullmatch(t) for t in times)
    assert {e["object"] for e in flow} == {"dealChange", "activity"}
    changes = [e["data"] for e in flow if e["object"] == "dealChange"]
    (created,) = [c for c in changes if c["field_key"] == "add_time"]
    assert created["old_value"] is None
    assert created["new_value"] == created["log_time"] == row["created_at"][:19].replace("T", " ")
    moves = [c for c in changes if c["field_key"] == "stage_id"]
    assert len(moves) == len(history) - 1
    assert all(isinstance(m["old_value"], str) and isinstance(m["new_value"], str) for m in moves)
    assert moves[0]["additional_data"]["new_value_formatted"] == history[-1]["stage"]
    (status,) = [c for c in changes if c["field_key"] == "status"]
    assert (status["old_value"], status["new_value"]) == ("open", "won")
    assert iso(status["log_time"]) == row["closed_at"]
    only_changes = get(server, "/v1/deals/1/flow", items="dealChange")["data"]
    assert [e["data"] for e in only_changes] == changes


# --------------------------------------------------------------------------------------------
# Reading everything gives back the CSV files
# --------------------------------------------------------------------------------------------


def test_all_deal_pages_give_exactly_the_csv_deals(server, csv_rows):
    deals = read_all(server, "/api/v2/deals", limit=37)
    lookups = names(server)
    rows = csv_rows["deals"]
    assert len(deals) == len(rows) == 200
    got = sorted((canonical_deal(d, lookups) for d in deals), key=lambda r: r["deal_id"])
    current = current_owner_names(rows)
    assert got == [{**r, "owner_name": current[r["owner_id"]]} for r in rows]
    # The one thing a CRM cannot give back: a user's name as it was on older deals.
    renamed = {r["owner_id"] for r in rows if r["owner_name"] != current[r["owner_id"]]}
    assert renamed <= {"U1007"}


def test_flows_give_exactly_the_csv_stage_history(server, csv_rows):
    stage_names = names(server)["stages"]
    rebuilt = []
    for deal in read_all(server, "/api/v2/deals", limit=500):
        flow = read_flow(server, deal["id"], items="dealChange")
        rebuilt += stage_history(deal, flow, stage_names)
    expected = [(h["deal_id"], h["stage"], h["changed_at"]) for h in csv_rows["history"]]
    assert Counter(rebuilt) == Counter(expected)
    assert len(rebuilt) == 1100


def test_all_activity_pages_give_exactly_the_csv_activities(server, csv_rows):
    activities = read_all(server, "/api/v2/activities", limit=500)
    assert Counter(canonical_activity(a) for a in activities) == Counter(
        tuple(r.values()) for r in csv_rows["activities"]
    )
    assert len(activities) == 1043


def test_sorting_by_update_time_descending_pages_through_every_deal(server, csv_rows):
    deals = read_all(server, "/api/v2/deals", sort_by="update_time", sort_direction="desc")
    keys = [(d["update_time"], d["id"]) for d in deals]
    assert keys == sorted(keys, reverse=True) and len(keys) == 200


# --------------------------------------------------------------------------------------------
# Incremental reads
# --------------------------------------------------------------------------------------------


def test_updated_since_is_inclusive_and_updated_until_exclusive(server, csv_rows):
    rows = csv_rows["deals"]
    cutoff = sorted(r["updated_at"] for r in rows)[150]
    since = {d["id"] for d in read_all(server, "/api/v2/deals", updated_since=cutoff)}
    until = {d["id"] for d in read_all(server, "/api/v2/deals", updated_until=cutoff)}
    assert since == {int(r["deal_id"][1:]) for r in rows if r["updated_at"] >= cutoff}
    assert not since & until and len(since | until) == 200
    # The same instant written with an offset selects the same deals.
    shifted = datetime.fromisoformat(cutoff).astimezone(timezone(timedelta(hours=2))).isoformat()
    assert shifted.endswith("+02:00")
    assert {d["id"] for d in read_all(server, "/api/v2/deals", updated_since=shifted)} == since


def test_activities_honour_updated_since(server, csv_rows):
    cutoff = "2026-01-01T00:00:00Z"
    got = read_all(server, "/api/v2/activities", updated_since=cutoff, limit=500)
    assert Counter(canonical_activity(a) for a in got) == Counter(
        tuple(r.values()) for r in csv_rows["activities"] if r["occurred_at"] >= cutoff
    )


@pytest.mark.parametrize("value", ["2026-01-01T00:00:00.000Z", "2026-01-01", "yesterday"])
def test_updated_since_that_is_not_whole_second_rfc3339_is_a_400(server, value):
    response = call(server, "/api/v2/deals", updated_since=value)
    assert response.status_code == 400
    assert response.json()["code"] == "ERR_SCHEMA_VALIDATION_FAILED"
    assert response.json()["error"].startswith("Validation failed: updated_since: ")


def test_a_deleted_deal_is_listed_only_with_status_deleted(changing):
    dataset, server = changing
    # GIVEN deal 5 deleted just after the generated period
    dataset.delete_deal("D0000005", at=datetime(2026, 7, 1, 12, 0, tzinfo=UTC))
    # THEN it is gone from the default listing and from a window read without status
    assert 5 not in {d["id"] for d in read_all(server, "/api/v2/deals", limit=500)}
    window = {"updated_since": "2026-07-01T00:00:00Z"}
    assert read_all(server, "/api/v2/deals", **window) == []
    # AND status=deleted (alone or with the others) lists it, flagged, at its deletion time
    (deleted,) = read_all(server, "/api/v2/deals", status="deleted")
    assert (deleted["id"], deleted["status"], deleted["is_deleted"]) == (5, "deleted", True)
    assert deleted["update_time"] == "2026-07-01T12:00:00Z"
    everything = read_all(server, "/api/v2/deals", status="open,won,lost,deleted", **window)
    assert [d["id"] for d in everything] == [5]
    assert call(server, "/v1/deals/5/flow").status_code == 200


def test_a_stage_move_shows_in_the_window_and_on_top_of_the_flow(changing, csv_rows):
    dataset, server = changing
    row = next(r for r in csv_rows["deals"] if r["status"] == "open")
    number = int(row["deal_id"][1:])
    pipeline = next(p for p in PIPELINES if p.name == row["pipeline"])
    # GIVEN the open deal's flow, read once (the fake keeps what it read until a change)
    stage_names = names(server)["stages"]
    before = [(h["deal_id"], h["stage"], h["changed_at"]) for h in csv_rows["history"]]
    earlier = read_all(server, "/api/v2/deals", status="open", limit=500)
    flow = read_flow(server, number, items="dealChange")
    deal_before = next(d for d in earlier if d["id"] == number)
    assert stage_history(deal_before, flow, stage_names) == [
        h for h in before if h[0] == row["deal_id"]
    ]
    # AND the open deal then moved to its pipeline's won stage after the period
    dataset.move_deal(
        row["deal_id"], pipeline.won_stage, at=datetime(2026, 7, 2, 8, tzinfo=UTC), status="won"
    )
    # THEN a read since then returns it, won, and its flow's newest stage move is that one
    (deal,) = read_all(server, "/api/v2/deals", updated_since="2026-07-02T00:00:00Z")
    assert (deal["id"], deal["status"], deal["won_time"]) == (number, "won", "2026-07-02T08:00:00Z")
    flow = read_flow(server, number, items="dealChange")
    newest_move = next(e["data"] for e in flow if e["data"]["field_key"] == "stage_id")
    assert newest_move["additional_data"]["new_value_formatted"] == pipeline.won_stage
    assert newest_move["log_time"] == "2026-07-02 08:00:00"
    assert stage_history(deal, flow, stage_names) == [
        h for h in before if h[0] == row["deal_id"]
    ] + [(row["deal_id"], pipeline.won_stage, "2026-07-02T08:00:00Z")]


# --------------------------------------------------------------------------------------------
# Paging limits, cursors, faults
# --------------------------------------------------------------------------------------------


def test_v2_pages_default_to_100_and_allow_at_most_500(server):
    first = get(server, "/api/v2/deals")
    assert len(first["data"]) == 100 and first["additional_data"]["next_cursor"]
    everything = get(server, "/api/v2/deals", limit=500)
    assert len(everything["data"]) == 200 and everything["additional_data"]["next_cursor"] is None
    for limit in (501, 0):
        response = call(server, "/api/v2/deals", limit=limit)
        assert response.status_code == 400
        assert response.json()["error"].startswith("Validation failed: limit: ")


def test_v1_flow_limit_is_capped_at_500(server):
    pagination = get(server, "/v1/deals/1/flow", limit=5000)["additional_data"]["pagination"]
    assert pagination == {"start": 0, "limit": 500, "more_items_in_collection": False}


def test_bad_cursors_get_the_400_body(server):
    cursor = get(server, "/api/v2/deals", limit=10)["additional_data"]["next_cursor"]
    forged = json.dumps({"field": "id", "fieldValue": 3, "sortDirection": "asc", "id": 3, "x": 1})
    for params in (
        {"cursor": "not a cursor!"},
        {"cursor": cursor[:-3]},
        {"cursor": cursor, "sort_by": "update_time"},  # made for another sort
        {"cursor": cursor, "sort_direction": "desc"},
        {"cursor": base64.urlsafe_b64encode(forged.encode()).decode().rstrip("=")},
    ):
        response = call(server, "/api/v2/deals", **params)
        assert response.status_code == 400, params
        assert response.json() == {
            "success": False,
            "error": "Validation failed: cursor: Invalid cursor",
            "error_info": "Please check developers.pipedrive.com",
            "data": None,
            "additional_data": None,
            "code": "ERR_SCHEMA_VALIDATION_FAILED",
        }


def test_a_queued_429_with_retry_after_is_served_then_the_client_succeeds(server):
    # GIVEN one 429 with Retry-After queued on the deals list
    server.faults.add(
        "/api/v2/deals", Fault(status=429, retry_after=2, body=error_body("Request over limit"))
    )
    raw = call(server, "/api/v2/deals", limit=1)
    assert raw.status_code == 429 and raw.headers["Retry-After"] == "2"
    assert raw.json()["error"] == "Request over limit"
    # WHEN the shared HTTP client meets the next one
    server.faults.add("/api/v2/deals", Fault(status=429, retry_after=2))
    waits: list[float] = []
    with HttpClient(server.url, auth=QueryTokenAuth("api_token", TOKEN), sleep=waits.append) as c:
        page = c.get("/api/v2/deals", {"limit": 1})
    # THEN it waited exactly the Retry-After and got the page
    assert waits == [2.0] and [d["id"] for d in page["data"]] == [1]
    assert server.faults.pending() == 0


def test_cli_generates_missing_data_serves_it_and_stops_on_ctrl_c(tmp_path):
    folder = tmp_path / "cli-data"
    command = [sys.executable, "-m", "devkit.fake_servers.pipedrive", "--data", str(folder)]
    command += ["--deals", "20", "--seed", "1", "--token", TOKEN]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        ready, _, _ = select.select([process.stdout], [], [], 30)
        assert ready, "the server printed no URL within 30 s"
        line = process.stdout.readline().decode()
        url = re.search(r"http://127\.0\.0\.1:\d+", line).group(0)
        deals = requests.get(url + "/api/v2/deals", params={"api_token": TOKEN}, timeout=10)
        assert len(deals.json()["data"]) == 20 and (folder / "deals.csv").exists()
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
