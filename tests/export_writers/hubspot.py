"""The canonical sample written as a HubSpot deals export (`hubspot_export` source type).

`write_hubspot_export_files(sample, out)` writes one export file as HubSpot does: property
labels as headers, stage and pipeline labels, 10-digit record ids, the owner's name, the
`Date entered "<stage> (<pipeline>)"` columns of every stage of every pipeline, times in
the portal's time zone. `write_canonical_reference(sample, out)` writes the canonical files
holding exactly what such an export can carry, the reference a test compares with.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from devkit.sample_data import PIPELINES

FILE_NAME = "hubspot-crm-exports-all-deals-2026-06-30.csv"
TIMEZONE = "Asia/Kolkata"  # no daylight saving: every wall time is one instant
TIMESTAMP_FORMAT = "%m/%d/%Y %H:%M:%S"
DATE_FORMAT = "%m/%d/%Y"
DEAL_TYPES = {"New Business": "New Business", "Expansion": "Existing Business"}
HEADER = (
    "Record ID",
    "Deal Name",
    "Deal Stage",
    "Close Date",
    "Deal owner",
    "Amount",
    "Currency",
    "Pipeline",
    "Create Date",
    "Last Modified Date",
    "Deal Type",
    "Original Traffic Source",
    "Associated Company",
    "Associated Company IDs",
)


def record_id(deal_id: str) -> str:
    """A HubSpot record id for a sample deal id (D0000012 -> 1000000012): numeric, and of
    one width, so ids sort as the sample's do."""
    return str(1_000_000_000 + int(deal_id[1:]))


def company_record_id(company_id: str) -> str:
    return str(2_000_000_000 + int(company_id[1:])) if company_id else ""


def date_entered_header(stage: str, pipeline: str) -> str:
    return f'Date entered "{stage} ({pipeline})"'


def date_entered_headers(sample_dir: Path | None = None) -> list[str]:
    """One column per stage of every pipeline, as HubSpot exports them: the generator's
    pipelines, then any other (pipeline, stage) the sample in `sample_dir` uses."""
    known = [
        date_entered_header(stage, p.name)
        for p in PIPELINES
        for stage in [s.name for s in p.stages] + [p.won_stage, p.lost_stage]
    ]
    if sample_dir is None:
        return known
    with (sample_dir / "deals.csv").open(newline="", encoding="utf-8") as fh:
        deals = list(csv.DictReader(fh))
    pipeline_of = {d["deal_id"]: d["pipeline"] for d in deals}
    pairs = {(d["pipeline"], d["stage"]) for d in deals}
    with (sample_dir / "deal_stage_history.csv").open(newline="", encoding="utf-8") as fh:
        pairs |= {(pipeline_of[r["deal_id"]], r["stage"]) for r in csv.DictReader(fh)}
    extra = [date_entered_header(stage, pipeline) for pipeline, stage in sorted(pairs)]
    return known + [h for h in extra if h not in set(known)]


def latest_entries(sample_dir: Path) -> dict[tuple[str, str], str]:
    """(deal_id, stage) -> the latest time the deal entered the stage: all a Date entered
    column holds (HubSpot overwrites it when a deal enters a stage again)."""
    latest: dict[tuple[str, str], str] = {}
    with (sample_dir / "deal_stage_history.csv").open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            key = (row["deal_id"], row["stage"])
            if key not in latest or _instant(row["changed_at"]) > _instant(latest[key]):
                latest[key] = row["changed_at"]
    return latest


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _amount(value: str, thousands: bool) -> str:
    return f"{Decimal(value):,.2f}" if thousands else f"{Decimal(value):.2f}"


def write_hubspot_export_files(
    sample_dir: Path,
    out_dir: Path,
    *,
    timezone: str = TIMEZONE,
    timestamp_format: str = TIMESTAMP_FORMAT,
    date_format: str = DATE_FORMAT,
    date_entered: bool = True,
    currency_column: bool = True,
    thousands: bool = True,
    file_name: str = FILE_NAME,
) -> None:
    """Write the sample's deals as one HubSpot deals export in `out_dir`.

    Times are wall times in `timezone`; a closed deal's Close Date is its close time, an
    open deal's is the expected close date (a date, 30 days after its last update).
    Amounts carry thousands separators unless `thousands=False`. `date_entered=False`
    leaves the Date entered columns out (a snapshot export); `currency_column=False` the
    Currency column (a single-currency portal)."""
    zone = ZoneInfo(timezone)

    def local(value: str, fmt: str = timestamp_format) -> str:
        return _instant(value).astimezone(zone).strftime(fmt) if value else ""

    entries = latest_entries(sample_dir) if date_entered else {}
    by_deal: dict[str, dict[str, str]] = defaultdict(dict)
    for (deal_id, stage), at in entries.items():
        by_deal[deal_id][stage] = at
    header = [h for h in HEADER if currency_column or h != "Currency"]
    entered_headers = date_entered_headers(sample_dir) if date_entered else []
    out_dir.mkdir(parents=True, exist_ok=True)
    with (
        (sample_dir / "deals.csv").open(newline="", encoding="utf-8") as src,
        (out_dir / file_name).open("w", newline="", encoding="utf-8") as dst,
    ):
        writer = csv.writer(dst, lineterminator="\r\n")
        writer.writerow(header + entered_headers)
        for deal in csv.DictReader(src):
            if deal["status"] == "open":
                expected = _instant(deal["updated_at"]) + timedelta(days=30)
                close_date = expected.astimezone(zone).strftime(date_format)
            else:
                close_date = local(deal["closed_at"])
            company = deal["company_id"]
            values = {
                "Record ID": record_id(deal["deal_id"]),
                "Deal Name": deal["deal_name"],
                "Deal Stage": deal["stage"],
                "Close Date": close_date,
                "Deal owner": deal["owner_name"],
                "Amount": _amount(deal["amount"], thousands) if deal["amount"] else "",
                "Currency": deal["currency"],
                "Pipeline": deal["pipeline"],
                "Create Date": local(deal["created_at"]),
                "Last Modified Date": local(deal["updated_at"]),
                "Deal Type": DEAL_TYPES.get(deal["pipeline"], "New Business"),
                "Original Traffic Source": deal["lead_source"],
                "Associated Company": deal["deal_name"].split(" - ")[0] if company else "",
                "Associated Company IDs": company_record_id(company),
            }
            stages = by_deal.get(deal["deal_id"], {})
            entered = {
                date_entered_header(stage, deal["pipeline"]): local(at)
                for stage, at in stages.items()
            }
            writer.writerow(
                [values[h] for h in header] + [entered.get(h, "") for h in entered_headers]
            )


def source_yaml(name: str, landing_dir: Path, **options: str) -> str:
    """The `sources:` item of a hubspot_export source reading files written with the same
    options (timezone, timestamp_format, date_format, thousands, currency)."""
    tz = options.get("timezone", TIMEZONE)
    ts = options.get("timestamp_format", TIMESTAMP_FORMAT)
    date = options.get("date_format", DATE_FORMAT)
    thousands = "','" if options.get("thousands", True) else "none"
    currency = f"    currency: {options['currency']}\n" if "currency" in options else ""
    return (
        f"  - name: {name}\n"
        "    type: hubspot_export\n"
        f"    landing_dir: '{landing_dir}'\n"
        f"{currency}"
        f"    format: {{thousands_separator: {thousands}, timestamp_format: '{ts}',"
        f" date_format: '{date}', timezone: {tz}}}\n"
    )


def write_canonical_reference(sample_dir: Path, out_dir: Path) -> None:
    """The canonical deals and stage history files of what a HubSpot deals export carries:
    every deal, and per deal and stage only the latest entry (a Date entered column holds
    no more); no activities (a deals export has none). Spend is the caller's."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "deals.csv").write_bytes((sample_dir / "deals.csv").read_bytes())
    latest = latest_entries(sample_dir)
    with (
        (sample_dir / "deal_stage_history.csv").open(newline="", encoding="utf-8") as src,
        (out_dir / "deal_stage_history.csv").open("w", newline="", encoding="utf-8") as dst,
    ):
        reader = csv.DictReader(src)
        writer = csv.DictWriter(dst, reader.fieldnames or [], lineterminator="\n")
        writer.writeheader()
        for row in reader:
            if latest[(row["deal_id"], row["stage"])] == row["changed_at"]:
                writer.writerow(row)
