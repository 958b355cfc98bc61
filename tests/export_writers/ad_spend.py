"""The canonical sample's spend written as ad platforms' cost reports (`ad_spend_export`).

`write_ad_spend_export_files(sample, out)` splits the sample's spend.csv in three folders:

- `google_ads/`: the `google_ads` channel as Google Ads campaign reports, one per account
  currency (`campaign-report-USD.csv`): the report's name and date range before the
  header, `Day,Campaign,Currency code,Cost`, costs with thousands separators, and the
  `Total: ...` rows at the bottom. A day's lines become campaigns `Search - Brand`,
  `Search - Competitors`, ... (the sample books a second google_ads line on some days).
- `meta_ads/`: the channels of `meta_campaigns` ({channel: campaign name prefix}) as Meta
  Ads Manager exports, one per currency, with `Amount spent (<currency>)`.
- `other/spend.csv`: every other spend line, in the canonical format.

`sources_yaml(out)` gives the three sources reading them, mapping campaigns to channels.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from datetime import date
from decimal import Decimal
from pathlib import Path

GOOGLE_CHANNEL = "google_ads"
GOOGLE_CAMPAIGNS = ("Search - Brand", "Search - Competitors")
META_CAMPAIGNS = {"webinar": "Webinar promo", "referral": "Refer a friend"}


def _campaign(names: tuple[str, ...], k: int) -> str:
    return names[k] if k < len(names) else f"{names[0]} {k + 1}"


def _spend_rows(sample_dir: Path) -> list[dict[str, str]]:
    with (sample_dir / "spend.csv").open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _long_date(day: date) -> str:
    return f"{day:%B} {day.day}, {day.year}"


def write_ad_spend_export_files(
    sample_dir: Path,
    out_dir: Path,
    *,
    meta_campaigns: dict[str, str] | None = None,
    totals: bool = True,
    meta_day_column: bool = True,
) -> None:
    """Write the sample's spend as Google Ads and Meta Ads reports plus the rest (see the
    module docstring). `meta_day_column=False` writes Meta rows without `Day`, each one
    day from `Reporting starts` to `Reporting ends`."""
    meta_campaigns = META_CAMPAIGNS if meta_campaigns is None else meta_campaigns
    google: dict[str, list[tuple[str, str, str]]] = defaultdict(list)  # currency -> rows
    meta: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    other: list[dict[str, str]] = []
    seen: dict[tuple[str, str, str], int] = defaultdict(int)
    rows = _spend_rows(sample_dir)
    for row in rows:
        key = (row["date"], row["channel"], row["currency"])
        k = seen[key]
        if row["category"] == "marketing" and row["channel"] == GOOGLE_CHANNEL:
            seen[key] += 1
            google[row["currency"]].append(
                (row["date"], _campaign(GOOGLE_CAMPAIGNS, k), row["amount"])
            )
        elif row["category"] == "marketing" and row["channel"] in meta_campaigns:
            seen[key] += 1
            name = _campaign((meta_campaigns[row["channel"]],), k)
            meta[row["currency"]].append((row["date"], name, row["amount"]))
        else:
            other.append(row)

    for currency, lines in google.items():
        folder = out_dir / "google_ads"
        folder.mkdir(parents=True, exist_ok=True)
        days = sorted(date.fromisoformat(d) for d, _, _ in lines)
        with (folder / f"campaign-report-{currency}.csv").open(
            "w", newline="", encoding="utf-8"
        ) as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(["Campaign report"])
            writer.writerow([f"{_long_date(days[0])} - {_long_date(days[-1])}"])
            writer.writerow(["Day", "Campaign", "Currency code", "Cost"])
            for day, campaign, amount in sorted(lines):
                writer.writerow([day, campaign, currency, f"{Decimal(amount):,.2f}"])
            if totals:
                total = f"{sum(Decimal(a) for _, _, a in lines):,.2f}"
                writer.writerow(["Total: Account", "--", currency, total])
                writer.writerow(["Total: Search campaigns", "--", currency, total])

    for currency, lines in meta.items():
        folder = out_dir / "meta_ads"
        folder.mkdir(parents=True, exist_ok=True)
        amount_header = f"Amount spent ({currency})"
        with (folder / f"meta-ads-campaigns-{currency}.csv").open(
            "w", newline="", encoding="utf-8"
        ) as fh:
            writer = csv.writer(fh, lineterminator="\n")
            if meta_day_column:
                writer.writerow(
                    ["Campaign name", "Day", amount_header, "Reporting starts", "Reporting ends"]
                )
                first, last = min(d for d, _, _ in lines), max(d for d, _, _ in lines)
                for day, campaign, amount in sorted(lines):
                    writer.writerow([campaign, day, amount, first, last])
            else:
                writer.writerow(
                    ["Reporting starts", "Reporting ends", "Campaign name", amount_header]
                )
                for day, campaign, amount in sorted(lines):
                    writer.writerow([day, day, campaign, amount])

    folder = out_dir / "other"
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "spend.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(other)


def sources_yaml(out_dir: Path, meta_campaigns: dict[str, str] | None = None) -> str:
    """The `sources:` items reading what write_ad_spend_export_files wrote in `out_dir`."""
    meta_campaigns = META_CAMPAIGNS if meta_campaigns is None else meta_campaigns
    rules = ", ".join(f"'^{prefix}': {channel}" for channel, prefix in meta_campaigns.items())
    return (
        "  - name: google_ads_spend\n"
        "    type: ad_spend_export\n"
        "    platform: google_ads\n"
        f"    channel: {GOOGLE_CHANNEL}\n"
        f"    landing_dir: '{out_dir / 'google_ads'}'\n"
        "    format: {header_line: 3, thousands_separator: ','}\n"
        "  - name: meta_ads_spend\n"
        "    type: ad_spend_export\n"
        "    platform: meta_ads\n"
        f"    campaign_channels: {{{rules}}}\n"
        f"    landing_dir: '{out_dir / 'meta_ads'}'\n"
        "  - name: other_spend\n"
        "    type: canonical_csv\n"
        f"    landing_dir: '{out_dir / 'other'}'\n"
    )
