"""A second opinion on the fake HubSpot: HubSpot's own Python client (hubspot-api-client
12.0.0, in the dev lock) calls it over real HTTP, on every endpoint the connector reads, and
every response deserializes into the client's models, with its client-side validation on
(a required field missing or mistyped raises). So the fake cannot drift from what HubSpot's
client accepts. The endpoints the client does not cover (private-app token info, account
details) are checked against HubSpot's documented fields in the preflight's tests."""

from __future__ import annotations

import gc
import json
from datetime import UTC, datetime

import hubspot
import pytest

from devkit.fake_servers.base import Fault
from devkit.fake_servers.dataset import SampleDataset
from devkit.fake_servers.hubspot import build_server, missing_scopes_body

TOKEN = "hs-client-token-2236067977"
DEAL_PROPERTIES = ["dealname", "amount", "dealstage", "pipeline", "hs_lastmodifieddate"]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The official client on a fake over 40 sample deals, one of them archived and one
    stage deleted from its pipeline (stage history still names it)."""
    from devkit.sample_data import generate

    folder = tmp_path_factory.mktemp("hs_client")
    generate(folder, 40, seed=5, workers=1)
    dataset = SampleDataset(folder)
    dataset.delete_deal("D0000007", at=datetime(2026, 6, 30, 12, 0, tzinfo=UTC))
    with build_server(dataset, token=TOKEN, deleted_stages=[("Expansion", "Quote")]) as server:
        yield hubspot.HubSpot(access_token=TOKEN, host=server.url), server, dataset
        # The client's connection pools (kept alive by exceptions holding their responses)
        # closed while the server runs: a server thread woken by their closing at
        # interpreter exit aborts the process.
        gc.collect()


def test_deal_lists_with_history_and_companies_deserialize(served):
    client, _, _ = served
    page = client.crm.deals.basic_api.get_page(
        limit=50,
        properties=DEAL_PROPERTIES,
        properties_with_history=["dealstage"],
        associations=["companies"],
        archived=False,
    )
    assert (
        type(page).__name__ == "CollectionResponseSimplePublicObjectWithAssociationsForwardPaging"
    )
    assert len(page.results) == 39 and page.paging is None
    history = [e for d in page.results for e in d.properties_with_history["dealstage"]]
    assert history and all(e.timestamp.tzinfo is not None and e.source_type for e in history)
    assert any(d.associations and d.associations["companies"].results for d in page.results)
    archived = client.crm.deals.basic_api.get_page(limit=10, archived=True)
    assert [(d.id, d.archived, d.archived_at) for d in archived.results] == [
        ("7", True, datetime(2026, 6, 30, 12, 0, tzinfo=UTC))
    ]


def test_deal_search_and_batch_read_deserialize(served):
    from hubspot.crm.deals import (
        BatchReadInputSimplePublicObjectId,
        PublicObjectSearchRequest,
        SimplePublicObjectId,
    )

    client, _, _ = served
    found = client.crm.deals.search_api.do_search(
        PublicObjectSearchRequest(
            filter_groups=[
                {"filters": [{"propertyName": "hs_object_id", "operator": "GT", "value": "10"}]}
            ],
            sorts=["hs_object_id"],
            properties=["hs_object_id", "hs_lastmodifieddate"],
            limit=200,
        )
    )
    assert found.total == len(found.results) == 30  # ids 11..40
    # A batch read where one id is archived: HubSpot's 207 with its error entry.
    read = client.crm.deals.batch_api.read(
        BatchReadInputSimplePublicObjectId(
            inputs=[SimplePublicObjectId(id="1"), SimplePublicObjectId(id="7")],
            properties=DEAL_PROPERTIES,
            properties_with_history=["dealstage"],
        )
    )
    assert type(read).__name__ == "BatchResponseSimplePublicObjectWithErrors"
    assert [r.id for r in read.results] == ["1"] and read.num_errors == 1
    assert read.errors[0].category == "OBJECT_NOT_FOUND"


def test_pipelines_owners_and_associations_deserialize(served):
    from hubspot.crm.associations.v4 import (
        BatchInputPublicFetchAssociationsBatchRequest,
        PublicFetchAssociationsBatchRequest,
    )

    client, _, _ = served
    pipelines = client.crm.pipelines.pipelines_api.get_all("deals")
    stages = {p.label: [s.label for s in p.stages] for p in pipelines.results}
    assert "Quote" not in stages["Expansion"] and len(stages["Expansion"]) == 8
    assert all(
        s.metadata["isClosed"] in ("true", "false") for p in pipelines.results for s in p.stages
    )
    # The client asks for /crm/v3/owners/ (a trailing slash): the fake 404'd it at first.
    owners = client.crm.owners.owners_api.get_page(limit=500, archived=False)
    assert len(owners.results) > 0 and all(o.id and o.user_id for o in owners.results)
    inputs = BatchInputPublicFetchAssociationsBatchRequest(
        inputs=[PublicFetchAssociationsBatchRequest(id=str(i)) for i in range(1, 11)]
    )
    companies = client.crm.associations.v4.batch_api.get_page("deals", "companies", inputs)
    # toObjectId comes as a JSON number; the client's model keeps it as text
    assert companies.results and all(
        t.to_object_id.isdigit() for r in companies.results for t in r.to
    )


@pytest.mark.parametrize("kind", ["calls", "emails", "meetings"])
def test_activity_lists_search_and_associations_deserialize(served, kind):
    from hubspot.crm.associations.v4 import (
        BatchInputPublicFetchAssociationsBatchRequest,
        PublicFetchAssociationsBatchRequest,
    )
    from hubspot.crm.objects import PublicObjectSearchRequest

    client, _, _ = served
    api = getattr(client.crm.objects, kind)
    page = api.basic_api.get_page(
        limit=100, properties=["hs_timestamp", "hubspot_owner_id"], associations=["deals"]
    )
    assert page.results and all(a.properties["hs_timestamp"] for a in page.results)
    found = api.search_api.do_search(
        PublicObjectSearchRequest(
            filter_groups=[
                {
                    "filters": [
                        {"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": "0"}
                    ]
                }
            ],
            properties=["hs_timestamp"],
            limit=1,
        )
    )
    # every one of the sample's (hand-counted in its activities.csv), on one page
    assert found.total == len(page.results) == {"calls": 39, "emails": 87, "meetings": 47}[kind]
    ids = [a.id for a in page.results[:5]]
    linked = client.crm.associations.v4.batch_api.get_page(
        kind,
        "deals",
        BatchInputPublicFetchAssociationsBatchRequest(
            inputs=[PublicFetchAssociationsBatchRequest(id=i) for i in ids]
        ),
    )
    assert {r._from.id for r in linked.results} <= set(ids)


def test_the_error_bodies_deserialize_into_the_clients_error_model(served):
    """The 401, 403 MISSING_SCOPES and 429 bodies the connector reads, as the client's
    `Error` model (required: category, correlationId, message)."""
    from hubspot.crm.deals.exceptions import ApiException, ForbiddenException

    client, server, _ = served
    # the fake's 403 for a token without the deals scope (build_server(scopes=...)), served
    # here as a fault: the body it renders
    server.faults.add(
        "/crm/v3/objects/deals",
        Fault(status=403, body=missing_scopes_body(["crm.objects.deals.read"])),
    )
    with pytest.raises(ForbiddenException) as forbidden:
        client.crm.deals.basic_api.get_page(limit=1)
    body = json.loads(forbidden.value.body)
    assert body == {
        **missing_scopes_body(["crm.objects.deals.read"]),
        "correlationId": body["correlationId"],
    }
    error = client.crm.deals.basic_api.api_client.deserialize(
        _Response(forbidden.value.body), "Error"
    )
    assert error.category == "MISSING_SCOPES"
    assert error.errors[0].context["requiredGranularScopes"] == ["crm.objects.deals.read"]
    wrong = hubspot.HubSpot(access_token=TOKEN + "-wrong", host=server.url)
    with pytest.raises(ApiException) as unauthorized:
        wrong.crm.deals.basic_api.get_page(limit=1)
    assert unauthorized.value.status == 401
    error = client.crm.deals.basic_api.api_client.deserialize(
        _Response(unauthorized.value.body), "Error"
    )
    assert error.category == "INVALID_AUTHENTICATION"


class _Response:
    """What ApiClient.deserialize reads of a response: its body as `data`."""

    def __init__(self, body: str | bytes) -> None:
        self.data = body
