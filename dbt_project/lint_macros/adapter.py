"""`adapter.dispatch` as dbt resolves it on the duckdb target (lint only)."""

from __future__ import annotations

from typing import Any

from jinja2 import pass_context
from jinja2.runtime import Context
from jinja2.utils import missing


@pass_context
def dispatch(context: Context, macro_name: str, macro_namespace: str | None = None) -> Any:
    """The `duckdb__` implementation of a macro, else its `default__` one."""
    for prefix in ("duckdb__", "default__"):
        macro = context.resolve_or_missing(prefix + macro_name)
        # sqlfluff stands in for unknown names with an `UndefinedRecorder`: not a macro.
        if macro is not missing and type(macro).__name__ != "UndefinedRecorder":
            return macro
    raise KeyError(f"no duckdb__ or default__ implementation of macro {macro_name!r}")


def get_relation(database: str | None, schema: str | None, identifier: str) -> str:
    """An existing relation's name (lint only: as if the last build's tables are there)."""
    return f"{schema}.{identifier}"
