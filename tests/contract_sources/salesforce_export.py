"""The Salesforce report exports (an opportunities report and an opportunity history
report), fed the sample through tests/export_writers/salesforce.py with times to the
second (`seconds=True`) and without the report footer (the footer is not a record; its
handling has its own tests in tests/test_salesforce_export.py)."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

from export_writers.salesforce import (
    SECONDS_TIME_FORMAT,
    source_format,
    write_salesforce_export_files,
)
from source_contract import SOURCE_NAME, ContractSource, Presented, spend_only


def present(sample: Path, work: Path, stack: ExitStack) -> Presented:
    landing = work / "salesforce_reports"
    write_salesforce_export_files(sample, landing, seconds=True, footer=False)
    return Presented(
        f"  - {{name: {SOURCE_NAME}, type: salesforce_export, landing_dir: '{landing}',"
        f" format: {source_format(SECONDS_TIME_FORMAT)}}}\n" + spend_only(sample, work)
    )


_ID_15 = "case when length(trim({c})) = 18 then left(trim({c}), 15) else trim({c}) end"

CONTRACT = ContractSource(
    type="salesforce_export",
    present=present,
    # Reports carry no activities, so velocity's touches per won deal differ (0 here);
    # every other aggregate mart, stage history included, must be equal.
    comparable_marts=(
        "mart_funnel_conversion",
        "mart_stage_duration",
        "mart_stage_open_spells",
        "mart_cac",
        "mart_cac_by_channel",
        "mart_pipeline_snapshot",
    ),
    reach=(
        (
            f"""select distinct _source_system || ':' || {_ID_15.format(c="opportunity_id")}
                from raw.salesforce_export__opportunities""",
            "select deal_id from staging.stg_salesforce_export__deals",
        ),
    ),
)
