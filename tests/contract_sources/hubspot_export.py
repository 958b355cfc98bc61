"""The HubSpot deals export (with its `Date entered "<stage> (<pipeline>)"` columns, Asia/
Kolkata wall times, MM/DD/YYYY, thousands separators), fed the sample through
tests/export_writers/hubspot.py; spend comes from the sample's spend file."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

from export_writers.hubspot import (
    company_record_id,
    latest_entries,
    record_id,
    source_yaml,
    write_hubspot_export_files,
)
from source_contract import (
    SOURCE_NAME,
    ContractSource,
    Limit,
    Presented,
    history_for_deals_without,
    no_activities,
    owner_named_by_name,
    rewrite_csv,
    spend_only,
)

# The export's snapshot time (its file name's date), when a deal without history shows
# in its current stage.
EXPORTED_AT = "2026-06-30T00:00:00Z"


def _latest_entry_per_stage(folder: Path) -> None:
    """A Date entered column holds a deal's latest entry into the stage only."""
    latest = latest_entries(folder)
    rewrite_csv(
        folder / "deal_stage_history.csv",
        lambda rows: [r for r in rows if latest[(r["deal_id"], r["stage"])] == r["changed_at"]],
    )


def present(sample: Path, work: Path, stack: ExitStack) -> Presented:
    landing = work / "hubspot_export"
    write_hubspot_export_files(sample, landing)
    return Presented(source_yaml(SOURCE_NAME, landing) + spend_only(sample, work))


CONTRACT = ContractSource(
    type="hubspot_export",
    present=present,
    limits=(
        Limit(
            "a Date entered column keeps only a deal's latest entry into the stage",
            "docs/exports/hubspot.md",
            _latest_entry_per_stage,
        ),
        Limit("a deals export has no activities", "docs/exports/hubspot.md", no_activities),
        Limit(
            "the owner is known by name (no owner id): an owner renamed midway is two",
            "docs/exports/hubspot.md",
            owner_named_by_name,
        ),
        Limit(
            "a deal without Date entered values shows in its current stage from the export"
            " (the snapshot), or from its close when closed",
            "docs/exports/hubspot.md, docs/snapshot-history.md",
            history_for_deals_without(lambda deal: deal["closed_at"] or EXPORTED_AT),
        ),
    ),
    crm_id=lambda canonical: (
        record_id(canonical) if canonical[0] == "D" else company_record_id(canonical)
    ),
    reach=(
        (
            """select distinct _source_system || ':' || trim(record_id)
               from raw.hubspot_export__deals""",
            "select deal_id from staging.stg_hubspot_export__deals",
        ),
    ),
)
