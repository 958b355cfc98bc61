"""The Zoho CRM deals export (the worked example of docs/adding-a-source.md), fed the
sample as one export: `Record Id`, `Deal Name`, ... with `2026-04-03 10:15:00` times.

One snapshot carries no stage history, so only the marts that need none are compared:
CAC blended and by channel (won deals by close month and lead source, and spend). Time in
stage, conversion and velocity (whose cycle length needs the close time, and a Zoho
export gives only the close date) come from accumulated snapshots instead
(docs/snapshot-history.md)."""

from __future__ import annotations

import csv
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path

from source_contract import SOURCE_NAME, ContractSource, Presented, spend_only

HEADER = (
    "Record Id", "Deal Name", "Deal Owner", "Account Name", "Pipeline", "Stage", "Amount",
    "Currency", "Lead Source", "Closing Date", "Created Time", "Modified Time",
)  # fmt: skip


def _time(value: str) -> str:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).strftime("%Y-%m-%d %H:%M:%S")


def write_zoho_export_files(sample: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with (sample / "deals.csv").open(newline="", encoding="utf-8") as src:
        deals = list(csv.DictReader(src))
    with (out / "Deals_2026-07-01.csv").open("w", newline="", encoding="utf-8") as dst:
        writer = csv.writer(dst)
        writer.writerow(HEADER)
        for d in deals:
            closing = d["closed_at"][:10] if d["closed_at"] else ""
            writer.writerow(
                [
                    d["deal_id"], d["deal_name"], d["owner_name"], d["company_id"],
                    d["pipeline"], d["stage"], d["amount"], d["currency"], d["lead_source"],
                    closing, _time(d["created_at"]),
                    _time(d["updated_at"]) if d["updated_at"] else "",
                ]
            )  # fmt: skip


def present(sample: Path, work: Path, stack: ExitStack) -> Presented:
    landing = work / "zoho"
    write_zoho_export_files(sample, landing)
    return Presented(
        f"  - name: {SOURCE_NAME}\n"
        "    type: zoho_export\n"
        f"    landing_dir: '{landing}'\n"
        "    format: {timestamp_format: '%Y-%m-%d %H:%M:%S'}\n" + spend_only(sample, work)
    )


CONTRACT = ContractSource(
    type="zoho_export",
    present=present,
    comparable_marts=("mart_cac", "mart_cac_by_channel"),
    reach=(
        (
            """select distinct _source_system || ':' || trim(record_id)
               from raw.zoho_export__deals""",
            "select deal_id from staging.stg_zoho_export__deals",
        ),
    ),
)
