"""The canonical CSV format (any CRM): deals, stage history, activities and spend files.

Files are picked up recursively from the source's landing folder by name:
`deals*.csv`, `deal_stage_history*.csv`, `activities*.csv`, `spend*.csv` (so dated
exports such as `2026-11-26/deals.csv` or `deals_2026-11-26.csv` work). Files are loaded
in path order; see extract.landing for which files are ready, loading once and archiving,
and extract.warehouse.load_csv_file for idempotency and corrections.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from extract.file_formats import DATE, NUMBER, TIMESTAMP
from extract.landing import load_landing, validate_landing
from extract.warehouse import (
    Check,
    LoadReport,
    RawObject,
    blank,
    currency_check,
    not_before,
    one_of_check,
    quoted,
    require,
)

log = logging.getLogger(__name__)

TYPE = "canonical_csv"

_status = 'lower(trim("status"))'

DEALS = RawObject(
    table="canonical_csv__deals",
    columns=(
        "deal_id",
        "deal_name",
        "pipeline",
        "stage",
        "status",
        "amount",
        "currency",
        "owner_id",
        "owner_name",
        "company_id",
        "lead_source",
        "created_at",
        "closed_at",
        "updated_at",
    ),
    required_columns=(
        "deal_id",
        "pipeline",
        "stage",
        "status",
        "amount",
        "currency",
        "created_at",
        "closed_at",
    ),
    checks=(
        require("deal_id"),
        require("pipeline"),
        require("stage"),
        one_of_check("status", ("open", "won", "lost")),
        currency_check("currency", required=False),
        Check(f"not {blank('amount')} and {blank('currency')}", "'currency is empty'"),
        require("created_at"),
        Check(
            f"{_status} in ('won', 'lost') and {blank('closed_at')}",
            f"'status ' || {_status} || ' needs closed_at'",
        ),
        Check(
            f"{_status} = 'open' and not {blank('closed_at')}",
            "'open deal has closed_at: ' || " + quoted("closed_at"),
        ),
        not_before("closed_at", "created_at"),
    ),
    kinds=(
        ("amount", NUMBER),
        ("created_at", TIMESTAMP),
        ("closed_at", TIMESTAMP),
        ("updated_at", TIMESTAMP),
    ),
)

STAGE_HISTORY = RawObject(
    table="canonical_csv__deal_stage_history",
    columns=("deal_id", "stage", "changed_at"),
    required_columns=("deal_id", "stage", "changed_at"),
    checks=(require("deal_id"), require("stage"), require("changed_at")),
    kinds=(("changed_at", TIMESTAMP),),
)

ACTIVITIES = RawObject(
    table="canonical_csv__activities",
    columns=("activity_id", "deal_id", "activity_type", "occurred_at", "owner_id"),
    required_columns=("activity_id", "deal_id", "occurred_at"),
    checks=(
        require("activity_id"),
        require("deal_id"),
        require("occurred_at"),
    ),
    kinds=(("occurred_at", TIMESTAMP),),
)

SPEND = RawObject(
    table="canonical_csv__spend",
    columns=("date", "channel", "category", "amount", "currency"),
    required_columns=("date", "channel", "category", "amount", "currency"),
    checks=(
        require("date"),
        one_of_check("category", ("marketing", "sales")),
        require("amount"),
        currency_check("currency", required=True),
    ),
    kinds=(("date", DATE), ("amount", NUMBER)),
)

RAW_OBJECTS = (DEALS, STAGE_HISTORY, ACTIVITIES, SPEND)

# File name prefixes, longest first so `deal_stage_history` is never read as `deals`.
_PATTERNS = (
    (re.compile(r"^deal_stage_history([_\-.].*)?\.csv$", re.I), STAGE_HISTORY),
    (re.compile(r"^deals([_\-.].*)?\.csv$", re.I), DEALS),
    (re.compile(r"^activities([_\-.].*)?\.csv$", re.I), ACTIVITIES),
    (re.compile(r"^spend([_\-.].*)?\.csv$", re.I), SPEND),
)


def validate_settings(settings: dict[str, Any], where: Any) -> dict[str, Any]:
    """Settings: `landing_dir` (required), the folder the CRM's files are dropped in, and
    the landing options of extract.landing: `archive`, `settle_seconds` and `format` (the
    files' delimiter, encoding, number and date conventions)."""
    return validate_landing(settings, where)


def object_for(path: Path) -> RawObject | None:
    """The raw object a landed file belongs to, by its name; None for other files."""
    for pattern, obj in _PATTERNS:
        if pattern.match(path.name):
            return obj
    return None


def extract(con: duckdb.DuckDBPyConnection, source: Any, *, as_of: datetime) -> LoadReport:
    """Load every ready canonical file of the landing folder into raw (extract.landing)."""
    return load_landing(con, source, as_of=as_of, object_for=object_for, kind="canonical file")
