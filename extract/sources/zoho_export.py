"""Zoho CRM deals export (Deals module, "Export" as CSV): the worked example of adding a
source (docs/adding-a-source.md). It carries no stage history: every night's export is a
snapshot, and successive snapshots become stage history in staging.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from extract.file_formats import DATE, NUMBER, TIMESTAMP
from extract.landing import load_landing, snapshot_time, validate_landing
from extract.warehouse import LoadReport, RawObject, read_header, require

TYPE = "zoho_export"

DEALS = RawObject(
    table="zoho_export__deals",
    columns=(
        "record_id",
        "deal_name",
        "deal_owner",
        "account_name",
        "pipeline",
        "stage",
        "amount",
        "currency",
        "lead_source",
        "closing_date",
        "created_time",
        "modified_time",
        "snapshot_at",
    ),  # fmt: skip
    required_columns=("record_id", "pipeline", "stage", "amount", "created_time"),
    checks=(require("record_id"), require("stage"), require("created_time")),
    labels=(
        ("record_id", "Record Id"),
        ("deal_name", "Deal Name"),
        ("deal_owner", "Deal Owner"),
        ("account_name", "Account Name"),
        ("pipeline", "Pipeline"),
        ("stage", "Stage"),
        ("amount", "Amount"),
        ("currency", "Currency"),
        ("lead_source", "Lead Source"),
        ("closing_date", "Closing Date"),
        ("created_time", "Created Time"),
        ("modified_time", "Modified Time"),
    ),  # fmt: skip
    kinds=(
        ("amount", NUMBER),
        ("closing_date", DATE),
        ("created_time", TIMESTAMP),
        ("modified_time", TIMESTAMP),
        ("snapshot_at", TIMESTAMP),
    ),  # fmt: skip
)

RAW_OBJECTS = (DEALS,)
_FILE = re.compile(r"^deals.*\.csv$", re.I)


def validate_settings(settings: dict[str, Any], where: Any) -> dict[str, Any]:
    """The landing options (extract.landing) and `currency`, for exports of a
    single-currency org (the export has no Currency column then)."""
    out = validate_landing(settings, where, extra={"currency"})
    out["currency"] = where.string(settings.get("currency", "USD"), "currency")
    return out


def extract(con: duckdb.DuckDBPyConnection, source: Any, *, as_of: datetime) -> LoadReport:
    def fixed(path: Path, obj: RawObject) -> dict[str, str]:
        values = {"snapshot_at": snapshot_time(path, as_of)}
        if "currency" not in (h.lower() for h in read_header(path, source.settings["landing"].fmt)):
            values["currency"] = source.settings["currency"]
        return values

    return load_landing(
        con,
        source,
        as_of=as_of,
        object_for=lambda path: DEALS if _FILE.match(path.name) else None,
        fixed_values=fixed,
        kind="Zoho deals export",
    )
