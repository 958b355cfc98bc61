"""The HubSpot deals export (with its `Date entered "<stage> (<pipeline>)"` columns, Asia/
Kolkata wall times, MM/DD/YYYY, thousands separators), fed the sample through
tests/export_writers/hubspot.py; spend comes from the sample's spend file."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

from export_writers.hubspot import source_yaml, write_hubspot_export_files
from source_contract import SOURCE_NAME, ContractSource, Presented, spend_only


def present(sample: Path, work: Path, stack: ExitStack) -> Presented:
    landing = work / "hubspot_export"
    write_hubspot_export_files(sample, landing)
    return Presented(source_yaml(SOURCE_NAME, landing) + spend_only(sample, work))


CONTRACT = ContractSource(
    type="hubspot_export",
    present=present,
    # A Date entered column keeps only a deal's latest entry into the stage, so a deal
    # that went back and re-entered a stage loses its earlier spells (time in stage and
    # the daily pipeline differ), and a deals export has no activities (velocity's
    # touches). Conversion, open spells and CAC must be equal; against the canonical files
    # reduced to what the export holds, every mart is (tests/test_hubspot_export.py).
    comparable_marts=(
        "mart_funnel_conversion",
        "mart_stage_open_spells",
        "mart_cac",
        "mart_cac_by_channel",
    ),
    reach=(
        (
            """select distinct _source_system || ':' || trim(record_id)
               from raw.hubspot_export__deals""",
            "select deal_id from staging.stg_hubspot_export__deals",
        ),
    ),
)
