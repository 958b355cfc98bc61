"""The fake Pipedrive serves only fields Pipedrive publishes, and the fields the connector
and staging rely on with their published type: every record of every endpoint a night
reads, over real HTTP, against the field lists vendored in data/pipedrive_fields.json
(Pipedrive's official Node.js client, generated from its OpenAPI specs, and its API
reference's response examples; no official Python client exists)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from devkit.fake_servers.dataset import SampleDataset
from devkit.fake_servers.pipedrive import Account, build_server

TOKEN = "pd-fields-token-1123581321"
PUBLISHED = json.loads((Path(__file__).parent / "data" / "pipedrive_fields.json").read_text())
RECORDS = PUBLISHED["records"]

# What the connector (extract/sources/pipedrive.py) and the staging models
# (dbt_project/models/staging/pipedrive/) read of each record.
RELIED_ON = {
    "deal": [
        "id", "title", "owner_id", "org_id", "pipeline_id", "stage_id", "value", "currency",
        "status", "add_time", "update_time", "close_time", "is_deleted", "channel",
    ],
    "activity": [
        "id", "deal_id", "owner_id", "type", "due_date", "due_time", "is_deleted", "update_time",
    ],
    "stage": ["id", "name", "pipeline_id"],
    "pipeline": ["id", "name"],
    "deal_field": ["field_code", "options"],
    "deal_field_option": ["id", "label"],
    "user": ["id", "name"],
    "flow_item": ["object", "timestamp", "data"],
    "deal_change": ["id", "field_key", "old_value", "new_value", "log_time"],
}  # fmt: skip

# Served by the fake although neither published list has it, and why it stays.
KEPT_UNPUBLISHED = {
    "deal": {
        # The archive time of an archived deal: the fake's Account.archive_closed_before; the
        # 2026 v2 spec's example is reported to show it, the stored lists do not.
        "archive_time",
    },
}

# What the check still rejects, knowingly: the generated schema types org_id as a number,
# but a deal without an organization (the sample's deals without a company) has none; the
# fake answers null, as the live API is seen to (staging reads it as no company). Only a
# real account can confirm null against an absent key.
STILL_REJECTED = {
    "deal": ["deal: 'org_id' = None is not of the published type number"],
}

JSON_TYPES = {
    "number": (int, float),
    "string": (str,),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}


def _conforms(value, published: str) -> bool:
    kinds = published.split("|")
    if value is None:
        return "null" in kinds
    if isinstance(value, bool):
        return "boolean" in kinds
    return any(isinstance(value, JSON_TYPES[k]) for k in kinds if k != "null")


def _disagreements(kind: str, records: list[dict]) -> list[str]:
    """What in `records` the published list of `kind` rejects, one sentence each."""
    spec = RECORDS[kind]
    allowed = {**spec["fields"], **spec.get("example_fields", {})}
    found: set[str] = set()
    for record in records:
        for key in sorted(set(record) - set(allowed) - KEPT_UNPUBLISHED.get(kind, set())):
            found.add(f"{kind}: {key!r} is not a published field")
        for key in RELIED_ON[kind]:
            if key not in record:
                found.add(f"{kind}: {key!r} (relied on) is missing")
            elif not _conforms(record[key], allowed[key]):
                found.add(
                    f"{kind}: {key!r} = {record[key]!r} is not of the published type {allowed[key]}"
                )
        for key in spec.get("required", []):
            if key not in record:
                found.add(f"{kind}: {key!r} (required) is missing")
    return sorted(found)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """Every record of every endpoint a night reads, as the fake serves them."""
    from devkit.sample_data import generate

    folder = tmp_path_factory.mktemp("pd_fields")
    generate(folder, 60, seed=7, workers=1)
    account = Account(archive_closed_before="2026-01-01T00:00:00Z")
    with build_server(SampleDataset(folder), token=TOKEN, account=account) as server:

        def get(path, **params):
            answer = requests.get(
                server.url + path, params={"api_token": TOKEN, **params}, timeout=10
            )
            assert answer.status_code == 200, (path, answer.text)
            return answer.json()

        deals = get("/api/v2/deals", limit=500, status="open,won,lost,deleted")["data"]
        archived = get("/api/v2/deals/archived", limit=500)["data"]
        fields = get("/api/v2/dealFields", limit=500)["data"]
        flows = [
            item
            for deal in deals + archived
            for item in get(f"/v1/deals/{deal['id']}/flow", start=0, limit=500)["data"]
        ]
        return {
            "deal": deals + archived,
            "activity": get("/api/v2/activities", limit=500)["data"],
            "stage": get("/api/v2/stages", limit=500)["data"],
            "pipeline": get("/api/v2/pipelines", limit=500)["data"],
            "deal_field": fields,
            "deal_field_option": [o for f in fields for o in f.get("options") or []],
            "user": get("/v1/users")["data"],
            "flow_item": flows,
            "deal_change": [i["data"] for i in flows if i["object"] == "dealChange"],
        }


@pytest.mark.parametrize("kind", list(RELIED_ON))
def test_the_fake_serves_only_published_fields_and_the_relied_on_ones_typed(served, kind):
    # GIVEN every record the fake serves of this kind WHEN checked against the published
    # list THEN nothing is rejected but what is known (STILL_REJECTED)
    assert served[kind], f"no {kind} served: nothing was checked"
    assert _disagreements(kind, served[kind]) == STILL_REJECTED.get(kind, [])


def test_every_archived_deal_and_deal_change_was_checked(served):
    # GIVEN 60 deals, some archived, each flow with its creation entry at least
    archived = [d for d in served["deal"] if d.get("is_archived")]
    assert archived and all(d["archive_time"] for d in archived)
    ids = {d["id"] for d in served["deal"]}
    assert len(ids) == 60
    assert {c["item_id"] for c in served["deal_change"]} == ids
