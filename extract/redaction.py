"""Secrets out of every message and log line: the one place that knows what a credential
looks like in a URL, a header dump or free text. Used by the HTTP client (extract/http.py)
for its errors and for the HTTP libraries' own log lines."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from urllib.parse import quote

REDACTED = "***"

# Query parameter names that carry credentials. Deliberately broad (substring match): hiding a
# harmless `sort_key` in an error message costs nothing, showing a `hapikey` costs a rotation.
SECRET_PARAM = re.compile(r"token|secret|passw|key|signature|credential|auth|session", re.I)
# `name=value` pairs with a secret-looking name inside free text such as a URL in an exception.
_SECRET_PAIR = re.compile(
    r"(?P<name>[A-Za-z0-9_.\-]*(?:token|secret|passw|key|signature|credential|auth|session)"
    r"[A-Za-z0-9_.\-]*=)(?P<value>[^&\s'\"),;]+)",
    re.I,
)
# A credential after an auth scheme (`Bearer abc`) or in a dumped `Authorization: ...` header.
_AUTH_VALUE = re.compile(
    r"(?P<prefix>\b[Bb]earer\s+|(?i:authorization)['\"]?\s*[:=]\s*['\"]?)"
    r"(?P<value>[^\s'\",}]+(?:\s+[A-Za-z0-9._~+/=\-]{8,})?)"
)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Text with literal secrets, secret query params and Authorization values replaced."""
    for secret in secrets:
        if not secret:
            continue
        # The encoded forms too: a token with `/` or `+` shows up percent-encoded in URLs.
        for form in {secret, quote(secret, safe=""), quote(secret, safe="/")}:
            text = text.replace(form, REDACTED)
    text = _SECRET_PAIR.sub(lambda m: m.group("name") + REDACTED, text)
    return _AUTH_VALUE.sub(lambda m: m.group("prefix") + REDACTED, text)


class _RedactingFilter(logging.Filter):
    """Scrubs known secrets from urllib3's own log lines (its DEBUG lines print full URLs)."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._secrets: set[str] = set()

    def add(self, secrets: Iterable[str]) -> None:
        with self._lock:
            self._secrets.update(s for s in secrets if s)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is logging's problem to report, not ours
            return True
        with self._lock:
            secrets = tuple(self._secrets)
        cleaned = redact(message, secrets)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_LIBRARY_LOG_FILTER = _RedactingFilter()
_filter_installed = False
_filter_lock = threading.Lock()


def guard_library_logs(secrets: Iterable[str]) -> None:
    """Scrub these secrets from the HTTP libraries' own log lines from now on."""
    # Installed on first client rather than at import: importing this module has no side effects.
    global _filter_installed
    with _filter_lock:
        if not _filter_installed:
            for name in ("urllib3.connectionpool", "urllib3.connection", "urllib3.util.retry"):
                logging.getLogger(name).addFilter(_LIBRARY_LOG_FILTER)
            _filter_installed = True
    _LIBRARY_LOG_FILTER.add(secrets)
