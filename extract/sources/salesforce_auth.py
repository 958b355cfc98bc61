"""How the Salesforce source signs in, and how it reads Salesforce's own failures.

Sign-in comes from the source's Airflow connection, no code (docs/setup/salesforce.md):

- `extra.flow: client_credentials`: the OAuth 2.0 client-credentials flow of a connected app
  (or external client app): login = its consumer key, password = its consumer secret; the
  token is the app's run-as user's.
- `extra.flow: jwt`: the OAuth 2.0 JWT bearer flow: login = the consumer key,
  `extra.username` = the pre-authorized user, `extra.private_key` (PEM text) or
  `extra.private_key_file` = the key of the certificate uploaded to the app, optional
  `extra.audience` (https://login.salesforce.com; https://test.salesforce.com for a sandbox).
- no flow: the connection's password (or the `token_env` variable) is an access token, used
  as is (tests, a token minted by hand); it cannot be renewed.

Both flows post to the org's My Domain token endpoint (`<base_url>/services/oauth2/token`)
and take the org's `instance_url` from the answer; every API call then goes there. An
`OAuthSession` renews itself when the shared HttpClient meets a 401 (extract/http.py: once
per request), so a session that expires mid-night costs one token request, not the night.

The JWT claims are those of simple-salesforce's own JWT login (iss = consumer key, sub =
username, aud, exp = now + 3 minutes, RS256); the client-credentials form fields those of
Salesforce's "OAuth 2.0 Client Credentials Flow for Server-to-Server Integration".
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
import requests.auth

from extract.credentials import airflow_connection, resolve_token
from extract.errors import LoadError
from extract.http import BearerAuth, Failure, HttpError, ResponsePolicy
from extract.redaction import REDACTED, guard_library_logs, redact

log = logging.getLogger(__name__)

TOKEN_PATH = "/services/oauth2/token"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
PRODUCTION_AUDIENCE = "https://login.salesforce.com"
SANDBOX_AUDIENCE = "https://test.salesforce.com"
FLOWS = ("client_credentials", "jwt")
# A JWT assertion lives 3 minutes, as simple-salesforce's and Salesforce's examples.
ASSERTION_SECONDS = 180
TOKEN_ATTEMPTS = 3

# What to do about each refusal of the token endpoint ({"error", "error_description"}).
_TOKEN_HINTS = (
    ("invalid_client_id", "", "the connection's login must be the app's consumer key"),
    ("invalid_client", "", "the connection's password must be the app's consumer secret"),
    (
        "invalid_grant",
        "no client credentials user enabled",
        "enable the Client Credentials Flow in the app's policies and set its Run As user",
    ),
    (
        "invalid_grant",
        "approved",
        "pre-authorize the user: the app's policy 'Admin approved users are pre-authorized' "
        "and the user's profile or a permission set of theirs added to the app",
    ),
    (
        "invalid_grant",
        "audience",
        f"set extra.audience to {PRODUCTION_AUDIENCE} (production) or {SANDBOX_AUDIENCE} (sandbox)",
    ),
    (
        "invalid_grant",
        "expired",
        "the assertion expired on arrival: set this machine's clock right (NTP)",
    ),
    (
        "invalid_grant",
        "",
        "the private key must be the one of the certificate uploaded to the app, and "
        "extra.username an active user of the org",
    ),
    ("unsupported_grant_type", "", "enable this OAuth flow in the app's policies"),
)


@dataclass(frozen=True)
class Grant:
    """What one OAuth flow posts to the token endpoint, and where that came from."""

    flow: str  # one of FLOWS
    token_url: str
    client_id: str
    conn_id: str
    client_secret: str | None = None
    username: str | None = None
    private_key: str | None = None
    audience: str = PRODUCTION_AUDIENCE

    @property
    def words(self) -> str:
        flow = "client credentials" if self.flow == "client_credentials" else "JWT bearer"
        return f"OAuth {flow} flow of Airflow connection {self.conn_id!r}"

    def form(self, now: float) -> dict[str, str]:
        if self.flow == "client_credentials":
            return {
                "grant_type": "client_credentials",
                "client_id": self.client_id,
                "client_secret": self.client_secret or "",
            }
        import jwt  # PyJWT with cryptography, both already there through Airflow

        claims = {
            "iss": self.client_id,
            "sub": self.username,
            "aud": self.audience,
            "exp": int(now) + ASSERTION_SECONDS,
        }
        assertion = jwt.encode(claims, self.private_key, algorithm="RS256")
        return {"grant_type": JWT_GRANT, "assertion": assertion}

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(v for v in (self.client_secret, self.private_key) if v)


class OAuthSession(requests.auth.AuthBase):
    """An access token from the token endpoint, renewed by `refresh()` (the HttpClient calls
    it once on a 401); `instance_url` is the org's, from the token answer."""

    def __init__(
        self,
        grant: Grant,
        source: str,
        *,
        timeout: tuple[float, float] = (5.0, 30.0),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.grant = grant
        self.source = source
        self.timeout = timeout
        self._sleep = sleep
        self._token = ""
        self.instance_url = ""
        self.sessions = 0  # how many tokens this night obtained
        guard_library_logs(grant.secrets)
        self.refresh()

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = f"Bearer {self._token}"
        return r

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values to scrub from any message or log line (the HttpClient reads them anew)."""
        return tuple(v for v in (self._token, *self.grant.secrets) if v)

    def __repr__(self) -> str:
        return f"OAuthSession({self.grant.words}, token={REDACTED!r})"

    @property
    def words(self) -> str:
        return self.grant.words

    def refresh(self) -> None:
        """Obtain a new access token (and the instance URL) from the token endpoint."""
        answer = self._post()
        token, instance_url = answer.get("access_token"), answer.get("instance_url")
        parts = urlsplit(instance_url) if isinstance(instance_url, str) else None
        if not isinstance(token, str) or not token or parts is None or not parts.netloc:
            raise HttpError(
                f"{self.source}: POST {TOKEN_PATH} ({self.grant.words}) answered without an "
                f"access_token and an instance_url (keys: {sorted(answer)})",
                request=f"POST {TOKEN_PATH}",
            )
        instance_url = f"{parts.scheme}://{parts.netloc}"
        if self.instance_url and instance_url != self.instance_url:
            log.warning(
                "%s: the org's instance URL moved from %s to %s during the night (an org "
                "migration): this night keeps the first one",
                self.source,
                self.instance_url,
                instance_url,
            )
        else:
            self.instance_url = instance_url
        self._token = token
        self.sessions += 1
        log.info("%s: signed in with the %s", self.source, self.grant.words)

    def _post(self) -> dict[str, Any]:
        """The token endpoint's JSON answer; connection errors and 5xx retried twice."""
        request = f"POST {TOKEN_PATH}"
        where = f"{self.source}: {request} ({self.grant.words}, {self.grant.token_url})"
        for attempt in range(1, TOKEN_ATTEMPTS + 1):
            try:
                response = requests.post(
                    self.grant.token_url,
                    data=self.grant.form(time.time()),
                    headers={"Accept": "application/json"},
                    timeout=self.timeout,
                    allow_redirects=False,
                )
            except requests.RequestException as exc:
                failure = f"connection error: {type(exc).__name__}"
                if attempt < TOKEN_ATTEMPTS:
                    self._sleep(float(attempt))
                    continue
                raise HttpError(
                    f"{where} failed: {failure}; is base_url the org's My Domain URL?",
                    request=request,
                ) from None
            if response.status_code >= 500 and attempt < TOKEN_ATTEMPTS:
                self._sleep(float(attempt))
                continue
            return self._answer(response, where, request)
        raise AssertionError("unreachable")

    def _answer(self, response: requests.Response, where: str, request: str) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code == 200 and isinstance(body, dict):
            return body
        if isinstance(body, dict) and "error" in body:
            error, description = str(body["error"]), str(body.get("error_description", ""))
            raise HttpError(
                redact(
                    f"{where} refused: {error}: {description}; {_token_hint(error, description)}",
                    self.secrets,
                ),
                request=request,
                status=response.status_code,
            )
        raise HttpError(
            f"{where} failed: HTTP {response.status_code} without an OAuth answer: base_url "
            "must be the org's My Domain URL (https://<domain>.my.salesforce.com)",
            request=request,
            status=response.status_code,
        )


def _token_hint(error: str, description: str) -> str:
    for code, words, hint in _TOKEN_HINTS:
        if error == code and words in description.lower():
            return hint
    return "check the app in Setup > App Manager (or External Client App Manager)"


def authenticate(source: Any) -> tuple[requests.auth.AuthBase, str]:
    """The auth for the source's API calls and the base URL to send them to: an OAuth
    session and its instance URL, or a static access token and the configured base_url."""
    s = source.settings
    conn_id = s["airflow_conn_id"]
    if conn_id:
        connection = airflow_connection(conn_id, who=source.name)
        extra = _extra(connection, source.name, conn_id)
        flow = extra.get("flow")
        if flow is not None:
            session = OAuthSession(_grant(source, connection, extra, str(flow)), source.name)
            return session, session.instance_url
    token = resolve_token(source.name, env_var=s["token_env"], airflow_conn_id=conn_id)
    return BearerAuth(token), s["base_url"]


def _extra(connection: Any, source: str, conn_id: str) -> dict[str, Any]:
    try:
        extra = connection.extra_dejson
    except Exception:  # an extra that is not JSON
        raise LoadError(
            f"{source}: Airflow connection {conn_id!r}: its extra must be a JSON object"
        ) from None
    return extra if isinstance(extra, dict) else {}


def _grant(source: Any, connection: Any, extra: dict[str, Any], flow: str) -> Grant:
    """The grant the connection describes; a missing piece fails naming the field to set."""
    conn_id = source.settings["airflow_conn_id"]

    def missing(what: str) -> LoadError:
        return LoadError(
            f"{source.name}: Airflow connection {conn_id!r} (extra.flow {flow}) has no {what}"
        )

    if flow not in FLOWS:
        raise LoadError(
            f"{source.name}: Airflow connection {conn_id!r}: extra.flow must be one of "
            f"{', '.join(FLOWS)} (or absent for a static access token), got {flow!r}"
        )
    base_url = source.settings["base_url"]
    token_url = f"{base_url}{TOKEN_PATH}"
    if not connection.login:
        raise missing("login (the app's consumer key)")
    if flow == "client_credentials":
        if not connection.password:
            raise missing("password (the app's consumer secret)")
        return Grant(flow, token_url, connection.login, conn_id, client_secret=connection.password)
    username = extra.get("username")
    if not username:
        raise missing("extra.username (the pre-authorized user the token is for)")
    key = extra.get("private_key")
    if not key and extra.get("private_key_file"):
        path = Path(os.path.expanduser(str(extra["private_key_file"])))
        try:
            key = path.read_text()
        except OSError as exc:
            raise LoadError(
                f"{source.name}: Airflow connection {conn_id!r}: cannot read "
                f"extra.private_key_file {str(path)!r}: {exc.strerror}"
            ) from None
    if not key:
        raise missing("extra.private_key (PEM) or extra.private_key_file")
    sandbox = ".sandbox.my.salesforce.com" in base_url
    audience = extra.get("audience") or (SANDBOX_AUDIENCE if sandbox else PRODUCTION_AUDIENCE)
    return Grant(
        flow,
        token_url,
        connection.login,
        conn_id,
        username=str(username),
        private_key=str(key),
        audience=str(audience),
    )


_USAGE = re.compile(r"api-usage=(\d+)/(\d+)")


class SalesforcePolicy(ResponsePolicy):
    """Salesforce's own signals: the org's request count (`Sforce-Limit-Info` on every
    answer, kept for messages) and REQUEST_LIMIT_EXCEEDED, final when the daily allowance is
    spent (it is counted over a rolling 24 hours: waiting minutes only spends the deadline),
    retried when it means too many long-running requests at once."""

    def __init__(self) -> None:
        self.usage: tuple[int, int] | None = None  # (used, allowed) at the last answer

    def failure(self, response: requests.Response, body: bytes) -> Failure | None:
        match = _USAGE.search(response.headers.get("Sforce-Limit-Info", ""))
        if match:
            self.usage = (int(match.group(1)), int(match.group(2)))
        if response.status_code != 403 or b"REQUEST_LIMIT_EXCEEDED" not in body[:4096]:
            return None
        text = " ".join(body[:1000].decode("utf-8", errors="replace").split())
        if "ConcurrentPerOrgLongTxn" in text:
            return Failure(
                "HTTP 403 REQUEST_LIMIT_EXCEEDED: too many long-running requests in the org "
                "at once (ConcurrentPerOrgLongTxn)",
                retryable=True,
                status=403,
            )
        return Failure(f"HTTP 403 REQUEST_LIMIT_EXCEEDED: {text}", retryable=False, status=403)
