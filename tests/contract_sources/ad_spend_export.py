"""The Google Ads and Meta Ads cost reports (tests/export_writers/ad_spend.py: a Google Ads
report with its two preamble lines, a Meta export with `Amount spent (<currency>)`),
campaigns mapped to channels by configuration; the deals come in as canonical files.
Without report totals: their handling has its own tests (tests/test_ad_spend_export.py)."""

from __future__ import annotations

import shutil
from contextlib import ExitStack
from pathlib import Path

from export_writers.ad_spend import sources_yaml, write_ad_spend_export_files
from source_contract import SOURCE_NAME, ContractSource, Presented


def present(sample: Path, work: Path, stack: ExitStack) -> Presented:
    crm = work / "crm"
    crm.mkdir(parents=True, exist_ok=True)
    for name in ("deals.csv", "deal_stage_history.csv", "activities.csv"):
        shutil.copyfile(sample / name, crm / name)
    spend = work / "ad_spend"
    write_ad_spend_export_files(sample, spend, totals=False)
    return Presented(
        f"  - {{name: {SOURCE_NAME}, type: canonical_csv, landing_dir: '{crm}'}}\n"
        + sources_yaml(spend)
    )


CONTRACT = ContractSource(
    type="ad_spend_export",
    present=present,
    crm_id=lambda canonical: canonical,  # the sample's own ids: every mart is compared
    reach=(
        (
            # Every report line is one staged spend line (no day is restated here).
            """select (select count(*) from raw.ad_spend_export__google_ads)
                      + (select count(*) from raw.ad_spend_export__meta_ads)""",
            """select sum(spend_lines) from staging.stg_ad_spend_export__spend""",
        ),
    ),
)
