"""The Salesforce report exports (an opportunities report and an opportunity history
report), fed the sample through tests/export_writers/salesforce.py with times to the
second (`seconds=True`) and without the report footer (the footer is not a record; its
handling has its own tests in tests/test_salesforce_export.py)."""

from __future__ import annotations

from contextlib import ExitStack
from datetime import UTC, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

from export_writers.salesforce import (
    EXPORTED_AT,
    SECONDS_TIME_FORMAT,
    TIMEZONE,
    account_id,
    opportunity_id,
    source_format,
    write_salesforce_export_files,
)
from source_contract import (
    SOURCE_NAME,
    ContractSource,
    Limit,
    Presented,
    deals_with_history,
    history_for_deals_without,
    no_activities,
    owner_named_by_name,
    rewrite_csv,
    spend_only,
)


def present(sample: Path, work: Path, stack: ExitStack) -> Presented:
    landing = work / "salesforce_reports"
    write_salesforce_export_files(
        sample, landing, seconds=True, footer=False, last_stage_change=True
    )
    return Presented(
        f"  - {{name: {SOURCE_NAME}, type: salesforce_export, landing_dir: '{landing}',"
        f" format: {source_format(SECONDS_TIME_FORMAT)}}}\n" + spend_only(sample, work)
    )


def _created_on_report_date(folder: Path) -> None:
    """Created Date is a date in reports: without a history row to time it, a deal is
    created at midnight of that date in the report's time zone."""
    with_history = deals_with_history(folder)
    zone = ZoneInfo(TIMEZONE)

    def change(rows):
        for row in rows:
            if row["deal_id"] not in with_history:
                local = datetime.fromisoformat(row["created_at"].replace("Z", "+00:00"))
                midnight = datetime.combine(local.astimezone(zone).date(), time(), zone)
                row["created_at"] = midnight.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return rows

    rewrite_csv(folder / "deals.csv", change)


_ID_15 = "case when length(trim({c})) = 18 then left(trim({c}), 15) else trim({c}) end"

CONTRACT = ContractSource(
    type="salesforce_export",
    present=present,
    limits=(
        Limit(
            "reports carry no activities",
            "docs/exports/salesforce.md",
            no_activities,
        ),
        Limit(
            "the owner is known by name (no owner id): an owner renamed midway is two",
            "docs/exports/salesforce.md",
            owner_named_by_name,
        ),
        Limit(
            "Created Date is a date: an opportunity without history report rows (the first"
            " of which times the creation) is created at midnight of it, in the report's"
            " time zone",
            "docs/exports/salesforce.md",
            _created_on_report_date,
        ),
        Limit(
            "an opportunity without history report rows takes its stage from the"
            " opportunities report: entered at its Last Stage Change Date when closed,"
            " when the report was taken when open",
            "docs/exports/salesforce.md, docs/snapshot-history.md",
            history_for_deals_without(
                lambda deal: deal["closed_at"] or EXPORTED_AT.strftime("%Y-%m-%dT%H:%M:%SZ")
            ),
        ),
    ),
    crm_id=lambda canonical: (
        opportunity_id(canonical) if canonical[0] == "D" else account_id(canonical)
    ),
    reach=(
        (
            f"""select distinct _source_system || ':' || {_ID_15.format(c="opportunity_id")}
                from raw.salesforce_export__opportunities""",
            "select deal_id from staging.stg_salesforce_export__deals",
        ),
    ),
)
