"""Pipedrive deals export (Deals list view > ... > Export > CSV): one file per night.

The export carries each deal as it is when exported, and no stage history: the files
dropped in the landing folder night after night are snapshots, and staging builds the
history from them (dbt macro `stage_changes_from_snapshots`, docs/snapshot-history.md).
Every file of the folder (`*.csv`, recursively) is a deals export; its snapshot time is the
date (and time) in its file name, else the night's as-of time (extract.landing).

Headers are Pipedrive's export labels, `<Object> - <field>` (docs/exports/pipedrive.md):
`Deal - ID`, `Deal - Title`, `Deal - Value`, `Deal - Currency`, `Deal - Stage`, `Deal -
Pipeline`, `Deal - Status`, `Deal - Owner`, `Deal - Organization`, `Deal - Deal created`,
`Deal - Update time`, `Deal - Last stage change`, `Deal - Won time`, `Deal - Lost time`,
`Deal - Deal closed on`, `Deal - Expected close date`, `Deal - Source channel`. Where Pipedrive
versions label a field differently (`Deal - Currency of Value`), either label is read.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from extract.errors import LoadError
from extract.file_formats import DATE, NUMBER, TIMESTAMP
from extract.landing import load_landing, snapshot_time, validate_landing
from extract.warehouse import (
    Check,
    LoadReport,
    RawObject,
    blank,
    quoted,
    read_header,
)

log = logging.getLogger(__name__)

TYPE = "pipedrive_export"

_status = 'lower(trim("status"))'


def _required(col: str, label: str) -> Check:
    return Check(blank(col), f"'{label} is empty'")


DEALS = RawObject(
    table="pipedrive_export__deals",
    columns=(
        "deal_id",
        "title",
        "value",
        "currency",
        "stage",
        "pipeline",
        "status",
        "owner",
        "organization",
        "source_channel",
        "deal_created",
        "update_time",
        "last_stage_change",
        "won_time",
        "lost_time",
        "deal_closed_on",
        "expected_close_date",
        "snapshot_at",
    ),
    required_columns=(
        "deal_id",
        "title",
        "value",
        "currency",
        "stage",
        "pipeline",
        "status",
        "deal_created",
    ),
    checks=(
        _required("deal_id", "Deal - ID"),
        _required("stage", "Deal - Stage"),
        _required("pipeline", "Deal - Pipeline"),
        Check(
            f"coalesce({_status}, '') not in ('open', 'won', 'lost')",
            "'Deal - Status must be Open, Won or Lost: ' || " + quoted("status"),
        ),
        Check(
            f"""not {blank("currency")}
                and not regexp_full_match(trim("currency"), '[A-Za-z]{{3}}')""",
            "'Deal - Currency is not a 3-letter currency code: ' || " + quoted("currency"),
        ),
        Check(
            f"not {blank('value')} and {blank('currency')}",
            "'Deal - Value has no currency (Deal - Currency is empty)'",
        ),
        _required("deal_created", "Deal - Deal created"),
        Check(
            f"{_status} = 'won' and {blank('won_time')} and {blank('deal_closed_on')}",
            "'won deal without Deal - Won time'",
        ),
        Check(
            f"{_status} = 'lost' and {blank('lost_time')} and {blank('deal_closed_on')}",
            "'lost deal without Deal - Lost time'",
        ),
    ),
    labels=(
        ("deal_id", "Deal - ID"),
        ("title", "Deal - Title"),
        ("value", "Deal - Value"),
        ("currency", "Deal - Currency"),
        ("stage", "Deal - Stage"),
        ("pipeline", "Deal - Pipeline"),
        ("status", "Deal - Status"),
        ("owner", "Deal - Owner"),
        ("organization", "Deal - Organization"),
        ("source_channel", "Deal - Source channel"),
        ("deal_created", "Deal - Deal created"),
        ("update_time", "Deal - Update time"),
        ("last_stage_change", "Deal - Last stage change"),
        ("won_time", "Deal - Won time"),
        ("lost_time", "Deal - Lost time"),
        ("deal_closed_on", "Deal - Deal closed on"),
        ("expected_close_date", "Deal - Expected close date"),
    ),
    kinds=(
        ("value", NUMBER),
        ("deal_created", TIMESTAMP),
        ("update_time", TIMESTAMP),
        ("last_stage_change", TIMESTAMP),
        ("won_time", TIMESTAMP),
        ("lost_time", TIMESTAMP),
        ("deal_closed_on", TIMESTAMP),
        ("expected_close_date", DATE),
    ),
)

# Other labels Pipedrive gives the same field (by version or account settings).
ALIASES: dict[str, tuple[str, ...]] = {
    "currency": ("Deal - Currency of Value",),
    "source_channel": ("Deal - Source",),
}

RAW_OBJECTS = (DEALS,)


def with_header_labels(
    obj: RawObject, header: list[str], aliases: dict[str, tuple[str, ...]]
) -> RawObject:
    """The object with each aliased column labelled as this file's header names it (the
    main label when the header has none of them, so a missing column is reported by it)."""
    present = {h.lower() for h in header}
    labels = dict(obj.labels)
    for column, others in aliases.items():
        for label in (labels[column], *others):
            if label.lower() in present:
                labels[column] = label
                break
    return replace(obj, labels=tuple(labels.items()))


def validate_settings(settings: dict[str, Any], where: Any) -> dict[str, Any]:
    """Settings: `landing_dir` (required) and the landing options of extract.landing:
    `archive` (set it: each night's export is then kept as its own snapshot, whatever its
    name), `settle_seconds` and `format` (Pipedrive writes the exporting user's date and
    number conventions and time zone)."""
    return validate_landing(settings, where)


def object_for(path: Path, fmt: Any = None) -> RawObject | None:
    """Every CSV file of the folder is a deals export; None for other files."""
    if path.suffix.lower() != ".csv":
        return None
    if fmt is None:
        return DEALS
    try:
        header = read_header(path, fmt)
    except LoadError:
        return DEALS  # the load fails with the reason and sets the file aside
    return with_header_labels(DEALS, header, ALIASES)


def extract(con: duckdb.DuckDBPyConnection, source: Any, *, as_of: datetime) -> LoadReport:
    """Load every ready export of the landing folder into raw, each with its snapshot time."""
    fmt = source.settings["landing"].fmt
    report = load_landing(
        con,
        source,
        as_of=as_of,
        object_for=lambda path: object_for(path, fmt),
        fixed_values=lambda path, obj: {"snapshot_at": snapshot_time(path, as_of)},
        kind="Pipedrive deals export",
    )
    warn_replaced_snapshots(source, report)
    return report


def warn_replaced_snapshots(source: Any, report: LoadReport) -> None:
    """A snapshot replaced by a new file under the same name loses its history: say so."""
    for load in report.files:
        if load.action == "replaced":
            log.warning(
                "%s: %s replaced the snapshot loaded earlier under the same name, whose "
                "stages are no longer in the history; set `archive: true` or put the "
                "date in the file names to keep every snapshot",
                source.name,
                load.source_file,
            )
