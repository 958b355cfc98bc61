"""Salesforce sign-in and refusals, over real HTTP against the fake org: the OAuth client
credentials and JWT bearer flows from an Airflow connection (instance URL from the token
answer), a session expiring mid-night renewed once, a second 401 failing naming the
connection, token-endpoint refusals that say what to fix, an org without multi-currency or
record types read with the fields it has, the daily request allowance failing fast with what
is left, and a configurable API version. Each night only extracts into raw (no dbt)."""

from __future__ import annotations

import json
import logging

import pytest
import requests
from api_nights import pipeline_config, raw_counts

from devkit.fake_servers.dataset import SampleDataset
from devkit.fake_servers.salesforce import (
    BASE_PATH,
    ConnectedApp,
    build_server,
    session_expired_fault,
)
from extract.http import HttpError

TOKEN = "00DSTATIC!AQsfStaticAccessToken.1414213562"
CLIENT_ID = "3MVG9fakeConsumerKey.0123456789"
SECRET = "F4K3C0NSUM3RS3CR3T9876543210"
RUN_AS = "integration@example.com"
DEALS = 250
AS_OF = "2026-07-01T00:00:00Z"
QUERY_ALL = f"{BASE_PATH}/queryAll"


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    from devkit.sample_data import generate

    folder = tmp_path_factory.mktemp("sf_auth")
    generate(folder, DEALS, seed=7, workers=1)
    return folder


@pytest.fixture(scope="module")
def key_pair():
    """A private key (PEM, for the connection) and its public key (for the fake app)."""
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


def _connection(monkeypatch, conn_id, *, login=CLIENT_ID, password=None, extra):
    body = {"conn_type": "http", "login": login, "extra": extra}
    if password is not None:
        body["password"] = password
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(body))


def _config(root, url, *, extra=""):
    return pipeline_config(
        root,
        f"  - {{name: demo_crm, type: salesforce, base_url: '{url}', page_size: 200{extra}}}\n",
    )


def _extract(config):
    from night.tasks import extract_source, parse_as_of

    return extract_source("demo_crm", as_of=parse_as_of(AS_OF), config=config)


def _raw(config, sql):
    import duckdb

    con = duckdb.connect(str(config.warehouse_path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _opportunities(config):
    return _raw(config, "select record_id, record from raw.salesforce__opportunities order by 1")


def _host(request):
    return next(v for k, v in request.headers.items() if k.lower() == "host")


def _apps(public_key=None):
    return [
        ConnectedApp(
            CLIENT_ID,
            client_secret=SECRET,
            run_as=RUN_AS,
            public_key=public_key,
            jwt_users=(RUN_AS,),
        )
    ]


def test_client_credentials_from_an_airflow_connection_read_the_org_at_its_instance_url(
    sample, tmp_path, monkeypatch, caplog
):
    caplog.set_level(logging.DEBUG)
    # GIVEN a connected app's consumer key and secret in an Airflow connection, and the org's
    # My Domain URL as base_url (here `localhost`; the org's instance is 127.0.0.1)
    _connection(monkeypatch, "sf_cc", password=SECRET, extra={"flow": "client_credentials"})
    with build_server(SampleDataset(sample), token=TOKEN, apps=_apps()) as server:
        port = server.url.rpartition(":")[2]
        config = _config(
            tmp_path / "cc", f"http://localhost:{port}", extra=", airflow_conn_id: sf_cc"
        )
        # WHEN the night extracts
        summary = _extract(config)
    # THEN it signed in once, as the app's run-as user, at the My Domain token endpoint
    assert server.api.grants == [
        {"grant_type": "client_credentials", "client_id": CLIENT_ID, "user": RUN_AS}
    ]
    [token_request] = server.requests_to("/services/oauth2/token")
    assert _host(token_request) == f"localhost:{port}"
    # AND every API call went to the instance URL the token answer named
    api_calls = [r for r in server.requests if r.path.startswith("/services/data")]
    assert {_host(r) for r in api_calls} == {f"127.0.0.1:{port}"}
    assert all(r.headers["Authorization"] == "Bearer ***" for r in api_calls)
    # AND describe came first (Opportunity, Organization), then the 4 + 5 queries' batches
    assert [r.path for r in api_calls[:2]] == [
        f"{BASE_PATH}/sobjects/Opportunity/describe",
        f"{BASE_PATH}/sobjects/Organization/describe",
    ]
    assert summary["api_rows"]["salesforce__opportunities"] == DEALS
    assert summary["api_rows"]["salesforce__organization"] == 1
    assert SECRET not in caplog.text


def test_jwt_bearer_flow_signs_an_assertion_the_app_verifies(
    sample, tmp_path, monkeypatch, key_pair
):
    private, public = key_pair
    # GIVEN the consumer key, a pre-authorized user and the private key of the certificate
    # uploaded to the app, in the connection's extra
    _connection(
        monkeypatch,
        "sf_jwt",
        extra={"flow": "jwt", "username": RUN_AS, "private_key": private},
    )
    with build_server(SampleDataset(sample), token=TOKEN, apps=_apps(public)) as server:
        config = _config(tmp_path / "jwt", server.url, extra=", airflow_conn_id: sf_jwt")
        summary = _extract(config)
    # THEN the fake verified the RS256 signature with the app's public key, and the claims
    assert server.api.grants == [
        {
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "client_id": CLIENT_ID,
            "user": RUN_AS,
        }
    ]
    assert summary["api_rows"]["salesforce__opportunities"] == DEALS


def test_a_session_expiring_mid_night_is_renewed_once_and_the_night_equals_a_clean_one(
    sample, tmp_path, monkeypatch, caplog
):
    caplog.set_level(logging.INFO)
    _connection(monkeypatch, "sf_cc", password=SECRET, extra={"flow": "client_credentials"})
    dataset = SampleDataset(sample)
    with build_server(dataset, token=TOKEN, apps=_apps()) as server:
        clean = _config(tmp_path / "clean", server.url, extra=", airflow_conn_id: sf_cc")
        _extract(clean)
        # GIVEN the org ends every session while the night pages through its opportunities
        next_batch = server.routes[("GET", "/services/data/{version}/query/{locator}")]
        expired = []

        def expire_first(request):
            if not expired:
                expired.append(request.path)
                server.api.expire_sessions()
            return next_batch(request)

        server.route("GET", "/services/data/{version}/query/{locator}", expire_first)
        renewed = _config(tmp_path / "renewed", server.url, extra=", airflow_conn_id: sf_cc")
        # WHEN the night extracts
        _extract(renewed)
    # THEN the 401 INVALID_SESSION_ID cost one new session (2 grants after the clean night's 1)
    assert len(server.api.grants) == 1 + 2
    messages = [r.getMessage() for r in caplog.records]
    assert len([m for m in messages if "re-authenticating once" in m]) == 1
    assert any("the session expired 1 time(s) and was renewed" in m for m in messages)
    # AND raw holds exactly what the clean night read
    assert _opportunities(renewed) == _opportunities(clean)
    assert raw_counts(renewed) == raw_counts(clean)


def test_a_second_401_after_renewal_fails_naming_the_connection_and_raw_stays_empty(
    sample, tmp_path, monkeypatch
):
    _connection(monkeypatch, "sf_cc", password=SECRET, extra={"flow": "client_credentials"})
    with build_server(SampleDataset(sample), token=TOKEN, apps=_apps()) as server:
        config = _config(tmp_path / "twice", server.url, extra=", airflow_conn_id: sf_cc")
        # GIVEN the org refuses the first query's session, and the renewed one too
        server.faults.add(QUERY_ALL, session_expired_fault(times=2))
        with pytest.raises(HttpError) as failure:
            _extract(config)
    message = str(failure.value)
    assert message.startswith(f"GET {QUERY_ALL}?q=SELECT Id, IsDeleted, Name,")
    for text in (
        "HTTP 401",
        "INVALID_SESSION_ID",
        "the org refused the session it had just issued "
        "(OAuth client credentials flow of Airflow connection 'sf_cc')",
        "run-as/integration user is active with API Enabled",
    ):
        assert text in message, (text, message)
    assert "\n" not in message and SECRET not in message
    assert len(server.api.grants) == 2  # signed in, renewed once, no more
    assert raw_counts(config)["salesforce__opportunities"] == 0


@pytest.mark.parametrize(
    ("login", "password", "extra", "apps", "says"),
    [
        (
            CLIENT_ID,
            "wrong-secret",
            {"flow": "client_credentials"},
            None,
            "refused: invalid_client: invalid client credentials; the connection's password "
            "must be the app's consumer secret",
        ),
        (
            "3MVG9unknownKey",
            SECRET,
            {"flow": "client_credentials"},
            None,
            "refused: invalid_client_id: client identifier invalid; the connection's login "
            "must be the app's consumer key",
        ),
        (
            CLIENT_ID,
            SECRET,
            {"flow": "client_credentials"},
            [ConnectedApp(CLIENT_ID, client_secret=SECRET)],
            "invalid_grant: no client credentials user enabled; enable the Client "
            "Credentials Flow in the app's policies and set its Run As user",
        ),
        (
            CLIENT_ID,
            None,
            {"flow": "jwt", "username": "someone.else@example.com"},
            None,
            "invalid_grant: user hasn't approved this consumer; pre-authorize the user",
        ),
        (
            CLIENT_ID,
            None,
            {"flow": "jwt", "username": RUN_AS, "audience": "https://example.com"},
            None,
            "invalid_grant: audience is invalid; set extra.audience to "
            "https://login.salesforce.com (production) or https://test.salesforce.com",
        ),
    ],
    ids=["wrong-secret", "unknown-app", "no-run-as-user", "user-not-approved", "bad-audience"],
)
def test_a_refused_sign_in_says_what_to_fix(
    sample, tmp_path, monkeypatch, key_pair, login, password, extra, apps, says
):
    from extract.sources.salesforce_auth import authenticate

    private, public = key_pair
    if extra["flow"] == "jwt":
        extra = {**extra, "private_key": private}
    _connection(monkeypatch, "sf_bad", login=login, password=password, extra=extra)
    with build_server(SampleDataset(sample), token=TOKEN, apps=apps or _apps(public)) as server:
        config = _config(tmp_path, server.url, extra=", airflow_conn_id: sf_bad")
        with pytest.raises(HttpError) as failure:
            authenticate(config.source("demo_crm"))
    message = str(failure.value)
    assert message.startswith("demo_crm: POST /services/oauth2/token (OAuth ")
    assert "of Airflow connection 'sf_bad'" in message
    assert says in message, message
    assert SECRET not in message and "PRIVATE KEY" not in message


def test_a_connection_missing_a_piece_names_it(tmp_path, monkeypatch):
    from extract.errors import LoadError
    from extract.sources.salesforce_auth import authenticate

    _connection(monkeypatch, "sf_half", extra={"flow": "jwt", "private_key": "x"})
    config = _config(tmp_path, "https://acme.my.salesforce.com", extra=", airflow_conn_id: sf_half")
    with pytest.raises(LoadError, match=r"'sf_half' \(extra.flow jwt\) has no extra.username"):
        authenticate(config.source("demo_crm"))


def test_an_org_without_multi_currency_or_record_types_is_read_with_the_fields_it_has(
    sample, tmp_path, monkeypatch
):
    monkeypatch.setenv("SALESFORCE_AUTH_TEST_TOKEN", TOKEN)
    with build_server(
        SampleDataset(sample),
        token=TOKEN,
        multi_currency=False,
        corporate_currency="EUR",
        record_types=False,
    ) as server:
        # GIVEN the query a night sent before describe: it names CurrencyIsoCode
        before = requests.get(
            f"{server.url}{QUERY_ALL}",
            params={"q": "SELECT Id, RecordTypeId, CurrencyIsoCode FROM Opportunity"},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=10,
        )
        config = _config(tmp_path, server.url, extra=", token_env: SALESFORCE_AUTH_TEST_TOKEN")
        # WHEN the night extracts
        summary = _extract(config)
    # THEN the org refuses that query whole, as Salesforce does
    assert before.status_code == 400
    [error] = before.json()
    assert error["errorCode"] == "INVALID_FIELD"
    assert "No such column 'RecordTypeId' on entity 'Opportunity'" in error["message"]
    # AND the night selected only the fields the org has, and landed the corporate currency
    assert summary["api_rows"]["salesforce__opportunities"] == DEALS
    assert summary["api_rows"]["salesforce__record_types"] == 0
    assert _raw(
        config,
        """select count(*),
                  count(*) filter (where json_exists(record, '$.CurrencyIsoCode')),
                  count(*) filter (where json_exists(record, '$.RecordTypeId')),
                  count(*) filter (where json_exists(record, '$.Amount'))
           from raw.salesforce__opportunities""",
    ) == [(DEALS, 0, 0, DEALS)]
    assert _raw(
        config,
        "select json_extract_string(record, '$.DefaultCurrencyIsoCode') "
        "from raw.salesforce__organization",
    ) == [("EUR",)]


def test_the_spent_daily_allowance_fails_at_once_saying_what_is_left(sample, tmp_path, monkeypatch):
    monkeypatch.setenv("SALESFORCE_AUTH_TEST_TOKEN", TOKEN)
    # GIVEN an org with 3 of its 1,000 daily requests left: the two describes and the first
    # batch of opportunities; the second batch is refused
    with build_server(
        SampleDataset(sample), token=TOKEN, api_daily_limit=1000, api_used=997
    ) as server:
        config = _config(tmp_path, server.url, extra=", token_env: SALESFORCE_AUTH_TEST_TOKEN")
        with pytest.raises(HttpError) as failure:
            _extract(config)
        next_batches = [r for r in server.requests if r.path.startswith(f"{BASE_PATH}/query/")]
    message = str(failure.value)
    assert message.startswith(f"GET {BASE_PATH}/query/01g")
    for text in (
        "failed: HTTP 403 REQUEST_LIMIT_EXCEEDED: ",
        "TotalRequests Limit exceeded.",
        "the org's daily API request allowance is spent (DailyApiRequests 0 of 1000 "
        "remaining; Sforce-Limit-Info api-usage=1000/1000)",
        "rolling 24 hours",
    ):
        assert text in message, (text, message)
    assert len(next_batches) == 1  # not retried
    assert raw_counts(config)["salesforce__opportunities"] == 0


def test_the_api_version_is_configurable_and_one_the_org_lacks_fails_saying_so(
    sample, tmp_path, monkeypatch
):
    monkeypatch.setenv("SALESFORCE_AUTH_TEST_TOKEN", TOKEN)
    with build_server(SampleDataset(sample), token=TOKEN) as server:
        older = _config(
            tmp_path / "v60",
            server.url,
            extra=", token_env: SALESFORCE_AUTH_TEST_TOKEN, api_version: v60.0",
        )
        summary = _extract(older)
        paths = {r.path.split("/")[3] for r in server.requests}
        newer = _config(
            tmp_path / "v67",
            server.url,
            extra=", token_env: SALESFORCE_AUTH_TEST_TOKEN, api_version: v67.0",
        )
        with pytest.raises(HttpError) as failure:
            _extract(newer)
    assert summary["api_rows"]["salesforce__opportunities"] == DEALS
    assert paths == {"v60.0"}  # next links too
    assert str(failure.value).startswith(
        "GET /services/data/v67.0/sobjects/Opportunity/describe failed: HTTP 404"
    )
    assert str(failure.value).endswith(
        "the org may not serve API version v67.0: set api_version to one listed by "
        "GET /services/data"
    )
