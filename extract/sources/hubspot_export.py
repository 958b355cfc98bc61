"""The HubSpot deals export: the CSV file HubSpot writes from a deals view (Export).

Every `*.csv` file of the source's landing folder is one deals export, read by its
property labels (`Record ID`, `Deal Name`, `Pipeline`, `Deal Stage`, `Amount`, `Close
Date`, `Create Date`, `Deal owner`, ...; docs/exports/hubspot.md lists them). Stage and
pipeline are the labels HubSpot shows, so the stage mapping seed lists labels.

- **Stage history** comes from the `Date entered "<stage> (<pipeline>)"` columns when
  the export has them (every such column is gathered into one JSON column, each value a
  timestamp); an export without them is a snapshot, and successive nightly snapshots
  become stage history in staging. Every loaded file carries `snapshot_at`: the date (and
  time) in its file name, else the night's as-of time (extract.landing.snapshot_time).
- **Currency**: a portal with several currencies exports `Currency` per deal; a
  single-currency portal exports none, and the source's `currency` setting names it.
- **Dates** are written in the portal's time zone and the exporting user's date format:
  both are declared in the source's `format:` (timezone, timestamp_format, date_format).
- **Status**: HubSpot has no status column; staging takes won / lost / open from the
  funnel stage the mapping seed gives the deal's stage.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from extract.errors import LoadError
from extract.file_formats import NUMBER, TIMESTAMP
from extract.landing import load_landing, snapshot_time, validate_landing
from extract.warehouse import (
    Check,
    LoadReport,
    RawObject,
    Wide,
    blank,
    not_before,
    quoted,
    read_header,
)

log = logging.getLogger(__name__)

TYPE = "hubspot_export"

DEFAULT_LEAD_SOURCE_COLUMN = "Original Traffic Source"
CURRENCY_HEADER = "Currency"
# One column per stage of every pipeline: Date entered "Closed Won (Sales Pipeline)".
DATE_ENTERED = r'(?i)^date entered "'

_LABELS = (
    ("record_id", "Record ID"),
    ("deal_name", "Deal Name"),
    ("pipeline", "Pipeline"),
    ("deal_stage", "Deal Stage"),
    ("amount", "Amount"),
    ("currency", CURRENCY_HEADER),
    ("close_date", "Close Date"),
    ("create_date", "Create Date"),
    ("last_modified_date", "Last Modified Date"),
    ("deal_owner", "Deal owner"),
    ("associated_company", "Associated Company"),
    ("associated_company_ids", "Associated Company IDs"),
    ("primary_company_id", "Associated Company IDs (Primary)"),
    ("deal_type", "Deal Type"),
    ("lead_source", DEFAULT_LEAD_SOURCE_COLUMN),
)

DEALS = RawObject(
    table="hubspot_export__deals",
    columns=(*(c for c, _ in _LABELS), "snapshot_at", "date_entered"),
    required_columns=("record_id", "pipeline", "deal_stage", "create_date"),
    labels=_LABELS,
    kinds=(
        ("amount", NUMBER),
        ("close_date", TIMESTAMP),
        ("create_date", TIMESTAMP),
        ("last_modified_date", TIMESTAMP),
    ),
    wide=Wide(column="date_entered", pattern=DATE_ENTERED, kind=TIMESTAMP),
    checks=(
        Check(blank("record_id"), "'Record ID is empty'"),
        Check(
            f"""not {blank("record_id")} and not regexp_full_match(trim("record_id"), '[0-9]+')""",
            "'Record ID is not a HubSpot record id (digits): ' || " + quoted("record_id"),
        ),
        Check(blank("pipeline"), "'Pipeline is empty'"),
        Check(blank("deal_stage"), "'Deal Stage is empty'"),
        Check(blank("create_date"), "'Create Date is empty'"),
        # A close date is a day picked in a calendar: only a day before creation is wrong.
        not_before("close_date", "create_date", labels=dict(_LABELS), by_day=True),
        Check(
            f"""not {blank("currency")}
                and not regexp_full_match(trim("currency"), '[A-Za-z]{{3}}')""",
            "'Currency is not a 3-letter currency code: ' || " + quoted("currency"),
        ),
        Check(
            f"not {blank('amount')} and {blank('currency')}",
            "'Amount has no currency: the export has no Currency column (a single-currency"
            " portal) and the source sets no `currency`'",
        ),
    ),
)

RAW_OBJECTS = (DEALS,)

_CURRENCY = re.compile(r"^[A-Z]{3}$")


def validate_settings(settings: dict[str, Any], where: Any) -> dict[str, Any]:
    """Settings: `landing_dir` and the landing options of extract.landing (`archive`,
    `settle_seconds`, `format`), plus `currency` (the portal currency, for exports without
    a Currency column) and `lead_source_column` (the property exported as the lead source,
    default `Original Traffic Source`)."""
    valid = validate_landing(settings, where, extra={"currency", "lead_source_column"})
    if "currency" in valid:
        currency = where.string(valid["currency"], "currency")
        if not _CURRENCY.match(currency):
            raise where.error("currency", f"must be a 3-letter ISO code, got {currency!r}")
        valid["currency"] = currency
    column = where.string(
        valid.get("lead_source_column", DEFAULT_LEAD_SOURCE_COLUMN), "lead_source_column"
    )
    taken = {label.lower() for c, label in _LABELS if c != "lead_source"}
    if column.lower() in taken or re.search(DATE_ENTERED, column):
        raise where.error("lead_source_column", f"{column!r} is the column of another field")
    valid["lead_source_column"] = column
    return valid


def deals_object(lead_source_column: str = DEFAULT_LEAD_SOURCE_COLUMN) -> RawObject:
    """The deals object reading the lead source from the given property's column."""
    labels = tuple((c, lead_source_column if c == "lead_source" else label) for c, label in _LABELS)
    return dataclasses.replace(DEALS, labels=labels)


def extract(con: duckdb.DuckDBPyConnection, source: Any, *, as_of: datetime) -> LoadReport:
    """Load every ready export of the landing folder into raw (extract.landing)."""
    settings = source.settings
    deals = deals_object(settings["lead_source_column"])
    fmt = settings["landing"].fmt

    def object_for(path: Path) -> RawObject | None:
        return deals if path.suffix.lower() == ".csv" else None

    def fixed_values(path: Path, obj: RawObject) -> dict[str, str]:
        fixed = {"snapshot_at": snapshot_time(path, as_of)}
        if "currency" in settings:
            try:
                header = {h.lower() for h in read_header(path, fmt)}
            except LoadError:
                return fixed  # the load itself reports the unreadable header
            if CURRENCY_HEADER.lower() not in header:
                fixed["currency"] = settings["currency"]
        return fixed

    return load_landing(
        con,
        source,
        as_of=as_of,
        object_for=object_for,
        fixed_values=fixed_values,
        kind="HubSpot deals export",
    )
