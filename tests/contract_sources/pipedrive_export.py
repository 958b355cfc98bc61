"""The Pipedrive deals export, fed the sample as one export taken after its last change
(tests/export_writers/pipedrive.py). An export carries no stage history and no
activities: one snapshot gives the deals, their close times and lead sources."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

from export_writers.pipedrive import write_pipedrive_export_files
from source_contract import SOURCE_NAME, ContractSource, Presented, spend_only


def present(sample: Path, work: Path, stack: ExitStack) -> Presented:
    landing = work / "pipedrive_export"
    write_pipedrive_export_files(sample, landing)
    return Presented(
        f"  - {{name: {SOURCE_NAME}, type: pipedrive_export, landing_dir: '{landing}',"
        " format: {timestamp_format: '%Y-%m-%d %H:%M:%S'}}\n" + spend_only(sample, work)
    )


CONTRACT = ContractSource(
    type="pipedrive_export",
    present=present,
    # One snapshot has no stage history (conversion, time in stage, the pipeline by day
    # need accumulated snapshots: tests/test_pipedrive_export.py) and no activities
    # (velocity's touches): CAC, blended and by channel, must be equal.
    comparable_marts=("mart_cac", "mart_cac_by_channel"),
    reach=(
        (
            """select distinct _source_system || ':' || trim(deal_id)
               from raw.pipedrive_export__deals""",
            "select deal_id from staging.stg_pipedrive_export__deals",
        ),
    ),
)
