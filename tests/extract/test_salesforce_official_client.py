"""A second opinion on the fake Salesforce org: simple-salesforce 1.12.10, a widely used
Python client, calls it over real HTTP and must read every answer the connector relies on:
the connector's own SOQL through query / query_all / queryAll with nextRecordsUrl paging,
describe, limits and the Sforce-Limit-Info header, the OAuth token endpoint (its client
credentials login and its JWT login, with its own claims), and Salesforce's error bodies as
its exceptions. So the fake cannot drift from what a real client accepts.

simple-salesforce speaks https only; the loopback fake speaks http: `_Loopback` changes the
scheme (and sends the token endpoint of login.salesforce.com / a My Domain to the fake),
nothing else."""

from __future__ import annotations

import csv

import pytest
import requests
from simple_salesforce import Salesforce, SalesforceLogin
from simple_salesforce.api import DEFAULT_API_VERSION
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
)

from devkit.fake_servers.dataset import SampleDataset
from devkit.fake_servers.salesforce import (
    API_VERSION,
    ConnectedApp,
    build_server,
    request_limit_fault,
)
from extract.sources import salesforce as connector

TOKEN = "00DCLIENT!AQsfOfficialClientToken.2236067977"
CLIENT_ID = "3MVG9officialClientKey.42"
SECRET = "0FF1C1ALCL1ENTS3CR3T"
RUN_AS = "integration@example.com"
DEALS = 250


class _Loopback(requests.Session):
    """https -> http for the fake's address; Salesforce's token endpoints -> the fake's."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        self.headers["Sforce-Query-Options"] = "batchSize=200"  # page through 250 deals

    def request(self, method, url, *args, **kwargs):
        host = self.url.removeprefix("http://")
        url = url.replace(f"https://{host}", self.url, 1)
        if url.endswith(".salesforce.com/services/oauth2/token"):
            url = f"{self.url}/services/oauth2/token"
        return super().request(method, url, *args, **kwargs)


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    from devkit.sample_data import generate

    folder = tmp_path_factory.mktemp("sf_official")
    generate(folder, DEALS, seed=9, workers=1)
    return folder


@pytest.fixture(scope="module")
def key_pair():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


@pytest.fixture(scope="module")
def org(sample, key_pair):
    app = ConnectedApp(
        CLIENT_ID,
        client_secret=SECRET,
        run_as=RUN_AS,
        public_key=key_pair[1],
        jwt_users=(RUN_AS,),
    )
    with build_server(SampleDataset(sample), token=TOKEN, apps=[app]) as server:
        yield server


def _client(server, version=API_VERSION, session_id=TOKEN):
    return Salesforce(
        instance_url=server.url.replace("http://", "https://"),
        session_id=session_id,
        version=version,
        session=_Loopback(server.url),
    )


def _rows(folder, name, keep=lambda row: True):
    with open(folder / name, newline="", encoding="utf-8") as f:
        return sum(1 for row in csv.DictReader(f) if keep(row))


def test_the_connectors_queries_page_through_the_official_client(org, sample):
    sf = _client(org)
    # The connector's SOQL, as a first night sends it (every field the fake org has).
    expected = {
        "Opportunity": DEALS,
        "OpportunityHistory": _rows(sample, "deal_stage_history.csv"),
        "Task": _rows(sample, "activities.csv", lambda r: r["activity_type"] != "meeting"),
        "Event": _rows(sample, "activities.csv", lambda r: r["activity_type"] == "meeting"),
        "RecordType": 3,
        "Organization": 1,
    }
    for sobject in connector.SOBJECTS:
        soql = sobject.soql(None, "2026-07-01T00:00:00Z" if sobject.window_field else None)
        answer = sf.query_all(soql, include_deleted=sobject.window_field is not None)
        records = answer["records"]
        assert answer["done"] is True and len(records) == answer["totalSize"], sobject.name
        assert all(list(r)[1:] == list(sobject.fields) for r in records), sobject.name
        if sobject.name in expected:
            assert len(records) == expected[sobject.name], sobject.name
    # A first batch and its next link, as the connector reads them
    first = sf.query(connector.OPPORTUNITIES.soql())
    assert (first["totalSize"], len(first["records"]), first["done"]) == (DEALS, 200, False)
    rest = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    assert (len(rest["records"]), rest["done"]) == (DEALS - 200, True)
    # COUNT(), as the preflight asks
    assert sf.query("SELECT COUNT() FROM Opportunity") == {
        "totalSize": DEALS,
        "done": True,
        "records": [],
    }


def test_describe_limits_and_the_usage_header_read_through_the_official_client(org):
    sf = _client(org)
    fields = {f["name"]: f for f in sf.Opportunity.describe()["fields"]}
    assert set(connector.OPPORTUNITIES.fields) <= set(fields)
    assert (fields["Amount"]["type"], fields["Amount"]["soapType"]) == ("currency", "xsd:double")
    assert {r["name"] for r in sf.Opportunity.describe()["recordTypeInfos"]} == {
        "New Business",
        "Expansion",
        "Partner",
        "Master",
    }
    assert "DefaultCurrencyIsoCode" in {f["name"] for f in sf.Organization.describe()["fields"]}
    assert {"Opportunity", "Organization"} <= {s["name"] for s in sf.describe()["sobjects"]}
    limits = sf.limits()
    daily = limits["DailyApiRequests"]
    assert daily["Max"] == 15000 and 0 < daily["Remaining"] < 15000
    usage = sf.api_usage["api-usage"]  # parsed by the client from Sforce-Limit-Info
    assert (usage.total, usage.used) == (15000, 15000 - daily["Remaining"])
    # The stage list of a record type (UI API), as the preflight reads it
    values = sf.restful(
        "ui-api/object-info/Opportunity/picklist-values/012000000000003AAA/StageName"
    )["values"]
    assert [v["value"] for v in values][:2] == ["Partner Sourced", "Registered"]
    # simple-salesforce's own default version (59.0) is one the fake serves too
    assert (
        _client(org, version=DEFAULT_API_VERSION).query("SELECT Id FROM RecordType")["totalSize"]
        == 3
    )


def test_the_official_logins_obtain_sessions_from_the_token_endpoint(org, key_pair):
    private, _ = key_pair
    # Client credentials: simple-salesforce sends them as HTTP Basic auth, at a My Domain
    cc_token, cc_instance = SalesforceLogin(
        consumer_key=CLIENT_ID,
        consumer_secret=SECRET,
        domain="acme.my",
        session=_Loopback(org.url),
    )
    # JWT bearer: its own claims (aud https://login.salesforce.com, exp as text), RS256
    jwt_token, jwt_instance = SalesforceLogin(
        username=RUN_AS,
        consumer_key=CLIENT_ID,
        privatekey=private,
        session=_Loopback(org.url),
    )
    assert cc_instance == jwt_instance == org.url.removeprefix("http://")
    assert org.api.grants[-2:] == [
        {"grant_type": "client_credentials", "client_id": CLIENT_ID, "user": RUN_AS},
        {
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "client_id": CLIENT_ID,
            "user": RUN_AS,
        },
    ]
    for token in (cc_token, jwt_token):
        assert _client(org, session_id=token).query("SELECT Id FROM Organization")["totalSize"] == 1


def _raised(kind, call):
    """The content of the exception `call` raises (its traceback, which holds the fake's
    dataset, is let go at once: a DuckDB connection finalized at interpreter exit aborts)."""
    with pytest.raises(kind) as raised:
        call()
    content = raised.value.content
    del raised
    return content


def test_salesforce_errors_arrive_as_the_official_clients_exceptions(org):
    sf = _client(org)
    malformed = _raised(
        SalesforceMalformedRequest, lambda: sf.query("SELECT Id, Nonexistent__c FROM Opportunity")
    )
    assert malformed[0]["errorCode"] == "INVALID_FIELD"
    stale = _client(org, session_id="00Dstale!token")
    expired = _raised(SalesforceExpiredSession, lambda: stale.query("SELECT Id FROM User"))
    assert expired == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    org.faults.add(f"/services/data/v{API_VERSION}/query", request_limit_fault())
    refused = _raised(SalesforceRefusedRequest, lambda: sf.query("SELECT Id FROM User"))
    assert refused[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
