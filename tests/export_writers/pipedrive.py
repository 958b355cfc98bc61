"""The canonical sample written as Pipedrive deals exports (`pipedrive_export` source).

`write_pipedrive_export_files(sample, out, at=[t1, t2, ...])` writes one export per time,
`deals_<YYYY-MM-DD>T<HHMMSS>.csv`, of the deals as they stood at that time, as Pipedrive
exports them: `Deal - <field>` headers, `Open` / `Won` / `Lost` statuses, times as
`2026-05-04 15:30:00` in the exporting user's time zone, `Deal - Last stage change` (empty
for a deal never moved), and a won or lost deal left in the stage it was in (Pipedrive
has no won or lost stage: the sample's Closed Won / Closed Lost entries become the status,
Won time and Lost time). Without `at`, one export after the sample's last change.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from devkit.sample_data import PIPELINES, _company_name

HEADER = (
    "Deal - ID",
    "Deal - Title",
    "Deal - Value",
    "Deal - Currency",
    "Deal - Pipeline",
    "Deal - Stage",
    "Deal - Status",
    "Deal - Owner",
    "Deal - Organization",
    "Deal - Source channel",
    "Deal - Deal created",
    "Deal - Update time",
    "Deal - Last stage change",
    "Deal - Won time",
    "Deal - Lost time",
    "Deal - Expected close date",
)
_CLOSING = {p.won_stage for p in PIPELINES} | {p.lost_stage for p in PIPELINES}


def write_pipedrive_export_files(
    sample_dir: Path,
    out_dir: Path,
    *,
    at: Sequence[datetime] = (),
    timezone: str = "UTC",
) -> None:
    """One Pipedrive deals export per time in `at` (default: after the last change)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    deals = _read(sample_dir / "deals.csv")
    entries: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    for row in _read(sample_dir / "deal_stage_history.csv"):
        entries[row["deal_id"]].append((_instant(row["changed_at"]), row["stage"]))
    for deal_entries in entries.values():
        deal_entries.sort()
    last = max(_instant(d["closed_at"] or d["created_at"]) for d in deals)
    times = list(at) or [max([last, *(e[-1][0] for e in entries.values())]) + timedelta(seconds=1)]
    zone = ZoneInfo(timezone)
    for when in times:
        name = f"deals_{when.astimezone(UTC):%Y-%m-%dT%H%M%S}.csv"
        rows = [_row(d, entries[d["deal_id"]], when, zone) for d in deals]
        tmp = out_dir / f".{name}"
        with tmp.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(HEADER)
            writer.writerows(r for r in rows if r)
        tmp.rename(out_dir / name)


def _row(
    deal: dict[str, str], entries: list[tuple[datetime, str]], when: datetime, zone: ZoneInfo
) -> list[str] | None:
    created = _instant(deal["created_at"])
    if created > when:
        return None
    seen = [(t, stage) for t, stage in entries if t <= when]
    closing_stages = _CLOSING | ({deal["stage"]} if deal["status"] != "open" else set())
    # A deal without history sits in its current stage since its creation.
    moves = [(t, stage) for t, stage in seen if stage not in closing_stages] or [
        (created, deal["stage"])
    ]
    status, won, lost = "Open", "", ""
    # The close is the deal's own (its history may lack the move to won / lost).
    closed_at = _instant(deal["closed_at"]) if deal["closed_at"] else None
    if closed_at is not None and closed_at <= when:
        if deal["status"] == "won":
            status, won = "Won", _local(closed_at, zone)
        else:
            status, lost = "Lost", _local(closed_at, zone)
    updated = max([created, *(t for t, _ in seen)])
    return [
        deal["deal_id"].lstrip("D0"),
        deal["deal_name"],
        deal["amount"] or "0",
        deal["currency"],
        deal["pipeline"],
        moves[-1][1],
        status,
        deal["owner_name"],
        _company_name(int(deal["company_id"][1:]) - 100_000) if deal["company_id"] else "",
        deal["lead_source"],
        _local(created, zone),
        _local(updated, zone),
        _local(moves[-1][0], zone) if len(moves) > 1 else "",
        won,
        lost,
        (created + timedelta(days=45)).astimezone(zone).strftime("%Y-%m-%d"),
    ]


def _local(at: datetime, zone: ZoneInfo) -> str:
    return at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))
