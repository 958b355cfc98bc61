"""The config keys every API source shares, validated in one place.

A source passes its defaults; each key is checked by the type of its default: whole
numbers must be positive, other numbers (a default like 0.5) positive, flags true or
false, texts non-empty; `airflow_conn_id` (default None) is an optional text. `base_url`
is required. The source then checks what is its own (a range, a URL shape).
"""

from __future__ import annotations

from typing import Any

# Keys and defaults every API source has (extract/credentials.py reads the token ones).
API_DEFAULTS: dict[str, Any] = {
    "airflow_conn_id": None,
    "lookback_hours": 24,
    "full_refresh": False,
    "deadline_minutes": 120,
    "max_pages": 100_000,
    # The base of the backoff between retries of a failed request (extract/http.py): the
    # n-th retry waits a random time up to this many seconds times 2**(n-1), capped at 30 s;
    # a Retry-After the API sends is waited as sent instead.
    "retry_backoff_seconds": 0.5,
}


def validate_api_settings(
    settings: dict[str, Any], where: Any, defaults: dict[str, Any]
) -> dict[str, Any]:
    """`settings` with `defaults` (API_DEFAULTS plus the source's own) filled in, each
    value checked by the type of its default; errors name the key."""
    defaults = {**API_DEFAULTS, **defaults}
    where.mapping(settings, "", required={"base_url"}, optional=set(defaults))
    out = {**defaults, **settings, "base_url": where.string(settings["base_url"], "base_url")}
    for key, default in defaults.items():
        value = out[key]
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise where.error(key, "must be true or false")
        elif isinstance(default, int):
            out[key] = where.positive_int(value, key)
        elif isinstance(default, float):
            out[key] = where.positive_number(value, key)
        elif isinstance(default, str) or value is not None:
            out[key] = where.string(value, key)
    return out
