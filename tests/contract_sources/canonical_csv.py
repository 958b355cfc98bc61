"""The canonical CSV source, fed the sample as a localized export would write it:
semicolons, a UTF-8 BOM, CRLF, decimal comma with thousands dots, `dd.mm.yyyy HH:MM:SS` in
Europe/Moscow (a zone without daylight saving: in a zone with it, local times of the
repeated autumn hour are ambiguous and rightly quarantined). The figures must still equal
the plain canonical files'."""

from __future__ import annotations

import csv
from contextlib import ExitStack
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from source_contract import SOURCE_NAME, ContractSource, Presented

LOCAL = ZoneInfo("Europe/Moscow")  # no daylight saving: every wall time is one instant
TIMESTAMPS = {"created_at", "closed_at", "updated_at", "changed_at", "occurred_at"}


def _local(value: str) -> str:
    at = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(LOCAL)
    return at.strftime("%d.%m.%Y %H:%M:%S")


def _amount(value: str) -> str:
    whole, _, cents = f"{Decimal(value):,.2f}".partition(".")
    return f"{whole.replace(',', '.')},{cents}"


def _date(value: str) -> str:
    year, month, day = value.split("-")
    return f"{day}.{month}.{year}"


def write_localized(sample: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name in ("deals.csv", "deal_stage_history.csv", "activities.csv", "spend.csv"):
        with (sample / name).open(newline="", encoding="utf-8") as src:
            rows = list(csv.DictReader(src))
            fields = list(rows[0]) if rows else []
        with (out / name).open("w", newline="", encoding="utf-8-sig") as dst:
            writer = csv.DictWriter(dst, fields, delimiter=";", lineterminator="\r\n")
            writer.writeheader()
            for row in rows:
                for key, value in row.items():
                    if not value:
                        continue
                    if key in TIMESTAMPS:
                        row[key] = _local(value)
                    elif key == "amount":
                        row[key] = _amount(value)
                    elif key == "date":
                        row[key] = _date(value)
                writer.writerow(row)


def present(sample: Path, work: Path, stack: ExitStack) -> Presented:
    landing = work / "localized"
    write_localized(sample, landing)
    return Presented(
        f"  - name: {SOURCE_NAME}\n"
        "    type: canonical_csv\n"
        f"    landing_dir: '{landing}'\n"
        "    format: {delimiter: ';', decimal_separator: ',',"
        " thousands_separator: '.', date_format: '%d.%m.%Y',"
        " timestamp_format: '%d.%m.%Y %H:%M:%S', timezone: Europe/Moscow}\n"
    )


CONTRACT = ContractSource(
    type="canonical_csv",
    present=present,
    crm_id=lambda canonical: canonical,  # the sample's own ids: every mart is compared
    reach=(
        (
            "select distinct _source_system || ':' || trim(deal_id) from raw.canonical_csv__deals",
            "select deal_id from staging.stg_canonical_csv__deals",
        ),
        (
            """select distinct _source_system || ':' || trim(deal_id), trim(stage),
                      cast(cast(changed_at as timestamptz) as timestamp)
               from raw.canonical_csv__deal_stage_history""",
            """select deal_id, crm_stage, changed_at
               from staging.stg_canonical_csv__deal_stage_changes""",
        ),
        (
            """select distinct _source_system || ':' || trim(activity_id)
               from raw.canonical_csv__activities""",
            "select activity_id from staging.stg_canonical_csv__activities",
        ),
    ),
)
