"""API tokens, resolved in one place: an Airflow connection or an environment variable.

Never from the pipeline config or the repo; the value is returned to the HTTP client and
nowhere else (the client redacts it from every message and log line).
"""

from __future__ import annotations

import os
from typing import Any

from extract.errors import LoadError


def airflow_connection(conn_id: str, *, who: str, error: type[Exception] = LoadError) -> Any:
    """The Airflow connection `conn_id`; `error` naming `who` wants it if it cannot be read."""
    from airflow.sdk import BaseHook

    try:
        return BaseHook.get_connection(conn_id)
    except Exception as exc:  # the Task SDK raises its own not-found errors
        raise error(
            f"{who}: cannot read Airflow connection {conn_id!r}: {type(exc).__name__}"
        ) from None


def resolve_token(source_name: str, *, env_var: str, airflow_conn_id: str | None) -> str:
    """The token of the Airflow connection `airflow_conn_id` (its password) if one is
    configured, else of the environment variable `env_var`."""
    if airflow_conn_id:
        password = airflow_connection(airflow_conn_id, who=source_name).password
        if not password:
            raise LoadError(
                f"{source_name}: Airflow connection {airflow_conn_id!r} has no password (token)"
            )
        return password
    token = os.environ.get(env_var)
    if not token:
        raise LoadError(
            f"{source_name}: no API token: set the environment variable {env_var} "
            "or name an Airflow connection in airflow_conn_id"
        )
    return token
