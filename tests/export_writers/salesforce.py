"""The canonical sample written as Salesforce report exports (`salesforce_export` source).

`write_salesforce_export_files(sample, out)` writes what a user of an en_US locale gets from
Reports > Export > Details Only > CSV: an opportunities report and an Opportunity History
report, each named `report<epoch ms>.csv`, with the column labels of the report builder,
15-character ids in the opportunities report and 18-character ids in the history report
(as an API-built report gives them), `USD 18,000.00` amounts with an `Amount Currency`
column (a multi-currency org), `3/4/2026` dates and `3/4/2026 9:15 AM` times in the user's
time zone (times to the minute: reports show no seconds; `seconds=True` keeps them, for a
comparison with the sample itself), `Created Date` as a date, history rows for saves that
changed the amount but not the stage, and the report footer.

`write_canonical_reference(sample, out)` writes the canonical files holding exactly what
those reports carry (timestamps to the minute, no activities): the reference a test
compares the marts with. `SOURCE_FORMAT` is the source's `format:` config for the files.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from devkit.sample_data import _company_name

TIMEZONE = "Asia/Tokyo"  # no daylight saving: every wall time is one instant
EXPORTED_AT = datetime(2026, 6, 30, 23, 0, tzinfo=UTC)
TIME_FORMAT = "%m/%d/%Y %I:%M %p"
SECONDS_TIME_FORMAT = "%m/%d/%Y %I:%M:%S %p"  # with `seconds=True`: the sample's precision


def source_format(time_format: str = TIME_FORMAT) -> str:
    """The source's `format:` config (flow-style YAML) for files written with it."""
    return (
        "{thousands_separator: ',', date_format: '%m/%d/%Y',"
        f" timestamp_format: '{time_format}', timezone: {TIMEZONE}}}"
    )


SOURCE_FORMAT = source_format()
OPPORTUNITY_HEADER = (
    "Opportunity Owner",
    "Account Name",
    "Account ID",
    "Opportunity Name",
    "Opportunity ID",
    "Opportunity Record Type",
    "Stage",
    "Amount Currency",
    "Amount",
    "Probability (%)",
    "Close Date",
    "Created Date",
    "Last Modified Date",
    "Lead Source",
    "Closed",
    "Won",
)
HISTORY_HEADER = (
    "Opportunity Owner",
    "Opportunity Name",
    "Opportunity ID",
    "From Stage",
    "To Stage",
    "Amount",
    "Close Date",
    "Last Modified",
)


def opportunity_id(deal_id: str, length: int = 15) -> str:
    """A Salesforce opportunity id (key prefix 006) for a sample deal id; 18 characters
    are the 15 plus a checksum suffix."""
    base = f"006{int(deal_id[1:]):012d}"
    return base if length == 15 else base + "AAA"


def account_id(company_id: str) -> str:
    return f"001{int(company_id[1:]):012d}" if company_id else ""


def write_salesforce_export_files(
    sample_dir: Path,
    out_dir: Path,
    *,
    exported_at: datetime = EXPORTED_AT,
    history: bool = True,
    footer: bool = True,
    seconds: bool = False,
    last_stage_change: bool = False,
) -> None:
    """An opportunities report (and an Opportunity History report) of the sample; with
    `seconds`, times keep their seconds (read them with source_format(SECONDS_TIME_FORMAT)),
    so the reports carry the sample's times exactly. `last_stage_change` adds the optional
    `Last Stage Change Date` column: a closed deal's close, an open deal's last move."""
    time = _Times(SECONDS_TIME_FORMAT if seconds else TIME_FORMAT)
    out_dir.mkdir(parents=True, exist_ok=True)
    deals = _read(sample_dir / "deals.csv")
    millis = int(exported_at.timestamp() * 1000)
    rows = [_opportunity_row(d, time) for d in deals]
    header = OPPORTUNITY_HEADER
    if last_stage_change:
        last_move: dict[str, datetime] = {}
        for entry in _read(sample_dir / "deal_stage_history.csv"):
            at = _instant(entry["changed_at"])
            last_move[entry["deal_id"]] = max(at, last_move.get(entry["deal_id"], at))
        header = (*OPPORTUNITY_HEADER, "Last Stage Change Date")
        for row, d in zip(rows, deals, strict=True):
            changed = _instant(d["closed_at"]) if d["closed_at"] else last_move.get(d["deal_id"])
            row.append(time(changed) if changed else "")
    generated = time(exported_at) if footer else ""
    _write(out_dir / f"report{millis}.csv", header, rows, generated)
    if history:
        by_deal = {d["deal_id"]: d for d in deals}
        entries = _read(sample_dir / "deal_stage_history.csv")
        history_rows = _history_rows(entries, by_deal, time)
        _write(out_dir / f"report{millis + 1}.csv", HISTORY_HEADER, history_rows, generated)


def write_canonical_reference(sample_dir: Path, out_dir: Path, *, seconds: bool = False) -> None:
    """The canonical files of what the reports carry: deals and stage history with times
    to the minute (the reports' precision; to the second with `seconds`), and the spend;
    no activities."""
    stamp = "%Y-%m-%dT%H:%M:%SZ" if seconds else "%Y-%m-%dT%H:%M:00Z"
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, columns in (
        ("deals.csv", ("created_at", "closed_at", "updated_at")),
        ("deal_stage_history.csv", ("changed_at",)),
    ):
        rows = _read(sample_dir / name)
        with (out_dir / name).open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]), lineterminator="\n")
            writer.writeheader()
            for row in rows:
                for column in columns:
                    if row[column]:
                        row[column] = _instant(row[column]).strftime(stamp)
                writer.writerow(row)
    (out_dir / "spend.csv").write_bytes((sample_dir / "spend.csv").read_bytes())


class _Times:
    """Local wall times as an en_US user sees them: `3/4/2026 9:15 AM` (no zero padding)."""

    def __init__(self, time_format: str) -> None:
        self.pattern = time_format.replace("%m", "%-m").replace("%d", "%-d")
        self.pattern = self.pattern.replace("%I", "%-I")

    def __call__(self, at: datetime) -> str:
        return _local(at).strftime(self.pattern)


def _opportunity_row(d: dict[str, str], time: _Times) -> list[str]:
    created = _instant(d["created_at"])
    if d["closed_at"]:
        close_date = _instant(d["closed_at"])
    else:  # an open opportunity's Close Date is the expected one
        close_date = created + timedelta(days=45)
    return [
        d["owner_name"],
        _company_name(int(d["company_id"][1:]) - 100_000) if d["company_id"] else "",
        account_id(d["company_id"]),
        d["deal_name"],
        opportunity_id(d["deal_id"]),
        d["pipeline"],
        d["stage"],
        d["currency"],
        _amount(d["amount"], d["currency"]),
        "",
        _date(close_date),
        _date(created),
        time(_instant(d["updated_at"] or d["created_at"])),
        d["lead_source"],
        "1" if d["status"] != "open" else "0",
        "1" if d["status"] == "won" else "0",
    ]


def _history_rows(
    entries: list[dict[str, str]], deals: dict[str, dict[str, str]], time: _Times
) -> list[list[str]]:
    """One row per stage entry (From Stage = the stage before), and, for every fifth
    entry that has a next one, a later save that changed only the amount."""
    rows = []
    previous: dict[str, str] = {}
    for number, entry in enumerate(entries):
        deal = deals[entry["deal_id"]]
        at = _instant(entry["changed_at"])
        stage = entry["stage"]
        rows.append(_history_row(deal, previous.get(deal["deal_id"], ""), stage, time(at)))
        following = entries[number + 1] if number + 1 < len(entries) else None
        if number % 5 == 0 and following and following["deal_id"] == deal["deal_id"]:
            edit_at = at + (_instant(following["changed_at"]) - at) / 2
            if edit_at.replace(second=0) > at.replace(second=0):
                rows.append(_history_row(deal, stage, stage, time(edit_at)))
        previous[deal["deal_id"]] = stage
    return rows


def _history_row(deal: dict[str, str], from_stage: str, to_stage: str, at: str) -> list:
    return [
        deal["owner_name"],
        deal["deal_name"],
        opportunity_id(deal["deal_id"], 18),
        from_stage,
        to_stage,
        _amount(deal["amount"], deal["currency"]),
        _date(_instant(deal["closed_at"] or deal["created_at"])),
        at,
    ]


def _write(path: Path, header: tuple[str, ...], rows: list, generated: str) -> None:
    """The report, and its footer when `generated` (the export's time) is given."""
    tmp = path.with_name(path.name + ".part")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, quoting=csv.QUOTE_ALL, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
        if generated:
            fh.write(
                "\n"
                f'"Grand Totals ({len(rows)} records)"\n'
                "\n"
                '"Opportunities by Stage"\n'
                '"Copyright (c) 2000-2026 salesforce.com, inc. All rights reserved."\n'
                '"Confidential Information - Do Not Distribute"\n'
                f'"Generated By:  Demo Admin  {generated}"\n'
                '"Demo Company, Inc."\n'
            )
    tmp.rename(path)


def _amount(amount: str, currency: str) -> str:
    return f"{currency} {Decimal(amount):,.2f}" if amount else ""


def _local(at: datetime) -> datetime:
    return at.astimezone(ZoneInfo(TIMEZONE))


def _date(at: datetime) -> str:
    return _local(at).strftime("%-m/%-d/%Y")


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))
