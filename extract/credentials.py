"""API tokens, resolved in one place: an Airflow connection or an environment variable.

Never from the pipeline config or the repo; the value is returned to the HTTP client and
nowhere else (the client redacts it from every message and log line).
"""

from __future__ import annotations

import os

from extract.errors import LoadError


def resolve_token(source_name: str, *, env_var: str, airflow_conn_id: str | None) -> str:
    """The token of the Airflow connection `airflow_conn_id` (its password) if one is
    configured, else of the environment variable `env_var`."""
    if airflow_conn_id:
        from airflow.sdk import BaseHook

        try:
            password = BaseHook.get_connection(airflow_conn_id).password
        except Exception as exc:  # the Task SDK raises its own not-found errors
            raise LoadError(
                f"{source_name}: cannot read Airflow connection {airflow_conn_id!r}: "
                f"{type(exc).__name__}"
            ) from None
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
