"""Ad platforms' daily cost reports: Google Ads and Meta Ads Manager exports (`ad_spend_export`).

One source per ad account (or per set of accounts exported alike); `platform:` names the
report's layout, and every `*.csv` file of the landing folder is read in it:

- `google_ads`: the Google Ads campaign report downloaded as CSV, segmented by day:
  `Day`, `Campaign`, `Currency code`, `Cost` (`Campaign ID` kept when present). The
  download starts with the report's name and date range before the header: declare
  `format: {header_line: 3}`. Cost is written with thousands separators ("1,234.56",
  quoted): `thousands_separator: ','`. The `Total: ...` rows at the bottom are not a
  campaign's day: they are not loaded (the landing's footer), and a total row in the
  middle of the data is quarantined as such.
- `meta_ads`: the Meta Ads Manager table export: `Campaign name`, `Reporting starts`,
  `Reporting ends` (`Day` with the day breakdown), `Amount spent (EUR)`: the account
  currency is in the header. A row must be one day (the `Day` breakdown, or reporting
  starts = ends); a row over a longer range is quarantined, never spread over days.

Spend is mapped to channels by configuration: `campaign_channels` ({regex: channel},
tried in order, matched case-insensitively anywhere in the campaign name), then
`channel` (the whole source), else the campaign's spend goes to channel `unattributed`
(counted in blended CAC and shown under `unattributed` in CAC by channel; never dropped).
The mapping is written each night to raw.ad_spend_export__campaign_channels for every
campaign the source has loaded, so a changed mapping applies to past spend too.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from extract.errors import LoadError
from extract.file_formats import DATE, NUMBER, FileFormat
from extract.landing import load_landing, validate_landing
from extract.warehouse import (
    RAW_SCHEMA,
    Check,
    LoadReport,
    RawObject,
    Wide,
    blank,
    quoted,
    read_header,
)

log = logging.getLogger(__name__)

TYPE = "ad_spend_export"
PLATFORMS = ("google_ads", "meta_ads")
UNATTRIBUTED = "unattributed"

_CODE = "'[A-Za-z]{3}'"


def _currency_checks(col: str, label: str) -> tuple[Check, ...]:
    return (
        Check(
            f"""not {blank(col)} and not regexp_full_match(trim("{col}"), {_CODE})""",
            f"'{label} is not a 3-letter currency code: ' || {quoted(col)}",
        ),
    )


GOOGLE_ADS = RawObject(
    table="ad_spend_export__google_ads",
    columns=("day", "campaign", "campaign_id", "currency_code", "cost"),
    required_columns=("day", "campaign", "cost"),
    labels=(
        ("day", "Day"),
        ("campaign", "Campaign"),
        ("campaign_id", "Campaign ID"),
        ("currency_code", "Currency code"),
        ("cost", "Cost"),
    ),
    kinds=(("day", DATE), ("cost", NUMBER)),
    checks=(
        Check(
            """lower(trim(coalesce("day", ''))) like 'total:%'
               or lower(trim(coalesce("campaign", ''))) like 'total:%'""",
            "'a report total row, not a campaign''s day: ' || "
            """coalesce(nullif(trim("day"), ''), trim("campaign"))""",
        ),
        Check(blank("day"), "'Day is empty'"),
        Check(blank("campaign"), "'Campaign is empty'"),
        Check(blank("cost"), "'Cost is empty'"),
        Check(
            blank("currency_code"),
            "'no currency: the report has no Currency code column and the source sets no"
            " `currency`'",
        ),
        *_currency_checks("currency_code", "Currency code"),
    ),
)

# `Amount spent (EUR)`: the account currency in the header.
AMOUNT_SPENT = r"(?i)^amount spent( \([a-z]{3}\))?$"

META_ADS = RawObject(
    table="ad_spend_export__meta_ads",
    columns=(
        "day",
        "reporting_starts",
        "reporting_ends",
        "campaign_name",
        "currency",
        "amount_spent",
    ),
    required_columns=("reporting_starts", "campaign_name"),
    labels=(
        ("day", "Day"),
        ("reporting_starts", "Reporting starts"),
        ("reporting_ends", "Reporting ends"),
        ("campaign_name", "Campaign name"),
        ("currency", "Currency"),
    ),
    kinds=(("day", DATE), ("reporting_starts", DATE), ("reporting_ends", DATE)),
    wide=Wide(column="amount_spent", pattern=AMOUNT_SPENT, kind=NUMBER),
    checks=(
        Check(blank("campaign_name"), "'Campaign name is empty'"),
        Check(
            """"amount_spent" = '{}'""",
            "'the export has no Amount spent column (Amount spent (<currency>))'",
        ),
        Check(
            f"{blank('day')} and {blank('reporting_starts')}",
            "'Reporting starts is empty'",
        ),
        Check(
            f"""{blank("day")} and not {blank("reporting_starts")}
                and trim("reporting_starts") <> coalesce(trim("reporting_ends"), '')""",
            "'not one day: Reporting starts ' || "
            + quoted("reporting_starts")
            + " || ', Reporting ends ' || "
            + quoted("reporting_ends")
            + " || ' (export with the breakdown by Day)'",
        ),
        Check(
            f"""{blank("currency")}
                and not regexp_matches("amount_spent", '(?i)"amount spent \\([a-z]{{3}}\\)"')""",
            "'no currency: neither the Amount spent header, a Currency column nor the"
            " source''s `currency` names it'",
        ),
        *_currency_checks("currency", "Currency"),
    ),
)

# Written from the source's config each night (not from a file): campaign -> channel.
CAMPAIGN_CHANNELS = RawObject(
    table="ad_spend_export__campaign_channels",
    columns=("campaign", "channel", "matched_by"),
    required_columns=(),
)

RAW_OBJECTS = (GOOGLE_ADS, META_ADS, CAMPAIGN_CHANNELS)
OBJECTS = {"google_ads": GOOGLE_ADS, "meta_ads": META_ADS}
# The column a source-wide `currency` fills when a file has none.
_CURRENCY_COLUMNS = {
    "google_ads": ("currency_code", "Currency code"),
    "meta_ads": ("currency", "Currency"),
}

_CURRENCY = re.compile(r"^[A-Z]{3}$")
_CHANNEL = re.compile(r"^[a-z][a-z0-9_]*$")


def validate_settings(settings: dict[str, Any], where: Any) -> dict[str, Any]:
    """Settings: `platform` (google_ads | meta_ads), `landing_dir` and the landing options
    of extract.landing, `channel` (the channel of the whole source), `campaign_channels`
    ({campaign regex: channel}, tried first, in order) and `currency` (for reports that
    do not name it)."""
    valid = validate_landing(
        settings, where, extra={"platform", "channel", "campaign_channels", "currency"}
    )
    if "platform" not in valid:
        raise where.error("platform", f"is required (one of {', '.join(PLATFORMS)})")
    if valid["platform"] not in PLATFORMS:
        raise where.error(
            "platform", f"must be one of {', '.join(PLATFORMS)}, got {valid['platform']!r}"
        )
    if "channel" in valid:
        valid["channel"] = _channel(valid["channel"], where, "channel")
    if not isinstance(valid.get("campaign_channels") or {}, dict):
        raise where.error("campaign_channels", "must be a mapping {campaign regex: channel}")
    rules: list[tuple[str, str]] = []
    for pattern, channel in (valid.get("campaign_channels") or {}).items():
        key = f"campaign_channels.{pattern}"
        if not isinstance(pattern, str) or not pattern:
            raise where.error("campaign_channels", f"pattern must be a string, got {pattern!r}")
        try:
            re.compile(pattern)
        except re.error as exc:
            raise where.error(key, f"is not a regular expression: {exc}") from None
        rules.append((pattern, _channel(channel, where, key)))
    valid["campaign_channels"] = tuple(rules)
    if "currency" in valid:
        currency = where.string(valid["currency"], "currency")
        if not _CURRENCY.match(currency):
            raise where.error("currency", f"must be a 3-letter ISO code, got {currency!r}")
        valid["currency"] = currency
    return valid


def _channel(value: Any, where: Any, key: str) -> str:
    channel = where.string(value, key)
    if not _CHANNEL.match(channel):
        raise where.error(key, f"must be a lowercase channel name, got {channel!r}")
    return channel


def channel_for(campaign: str, settings: dict[str, Any]) -> tuple[str, str]:
    """(channel, what decided it) for a campaign name under the source's settings."""
    for pattern, channel in settings["campaign_channels"]:
        if re.search(pattern, campaign, re.IGNORECASE):
            return channel, f"campaign_channels {pattern!r}"
    if "channel" in settings:
        return settings["channel"], "channel"
    return UNATTRIBUTED, "no rule matched"


def extract(con: duckdb.DuckDBPyConnection, source: Any, *, as_of: datetime) -> LoadReport:
    """Load every ready report of the landing folder into raw, then write the campaign
    -> channel mapping of every campaign this source has loaded."""
    settings = source.settings
    platform = settings["platform"]
    obj = OBJECTS[platform]
    fmt = settings["landing"].fmt

    def object_for(path: Path) -> RawObject | None:
        return obj if path.suffix.lower() == ".csv" else None

    def fixed_values(path: Path, _: RawObject) -> dict[str, str]:
        if "currency" not in settings:
            return {}
        column, label = _CURRENCY_COLUMNS[platform]
        try:
            header = {h.lower() for h in read_header(path, fmt)}
        except LoadError:
            return {}  # the load itself reports the unreadable header
        return {} if label.lower() in header else {column: settings["currency"]}

    report = load_landing(
        con,
        source,
        as_of=as_of,
        object_for=object_for,
        fixed_values=fixed_values,
        kind=f"{platform} cost report",
        footer_start=total_rows_start if platform == "google_ads" else None,
    )
    write_campaign_channels(con, source)
    return report


def total_rows_start(path: Path, obj: RawObject, fmt: FileFormat) -> int | None:
    """The line where a Google Ads download's trailing `Total: ...` rows start (None
    without): the report's totals, not a campaign's day, so not loaded. A total row with
    data after it is not a footer; the loader quarantines it."""
    encoding = "utf-8" if fmt.is_utf8 else fmt.encoding
    start = None
    with path.open("rb") as fh:
        for number, line in enumerate(fh, start=1):
            if number <= fmt.header_line:
                continue
            text = line.decode(encoding, errors="replace").strip().lstrip(fmt.quote)
            if text.lower().startswith("total:"):
                start = start or number
            elif text:
                start = None
    if start:
        log.info("%s: lines %d and on are the report's total rows, not loaded", path, start)
    return start


def write_campaign_channels(con: duckdb.DuckDBPyConnection, source: Any) -> int:
    """Replace the source's rows of raw.ad_spend_export__campaign_channels: one per campaign
    it has loaded, with its channel under the current settings. Returns the campaigns."""
    campaigns = [
        r[0]
        for r in con.execute(
            f"""select distinct trim(campaign) from {GOOGLE_ADS.qualified}
                where _source_system = ? and nullif(trim(campaign), '') is not null
                union
                select distinct trim(campaign_name) from {META_ADS.qualified}
                where _source_system = ? and nullif(trim(campaign_name), '') is not null
                order by 1""",
            [source.name, source.name],
        ).fetchall()
    ]
    mapped = [(c, *channel_for(c, source.settings)) for c in campaigns]
    unattributed = [c for c, channel, _ in mapped if channel == UNATTRIBUTED]
    if unattributed:
        log.warning(
            "%s: %d campaign(s) match no campaign_channels rule and the source has no "
            "channel; their spend is channel %s: %s",
            source.name,
            len(unattributed),
            UNATTRIBUTED,
            ", ".join(unattributed),
        )
    current = con.execute(
        f"""select campaign, channel, matched_by from {CAMPAIGN_CHANNELS.qualified}
            where _source_system = ? order by _row_number""",
        [source.name],
    ).fetchall()
    if current == [tuple(m) for m in mapped]:
        # Unchanged rows keep their batch: a night whose inputs did not change is one
        # (night/build_state.py).
        return len(mapped)
    loaded_at = datetime.now(UTC).replace(tzinfo=None)
    con.execute("begin transaction")
    try:
        batch_id = con.execute(f"select nextval('{RAW_SCHEMA}._batch_seq')").fetchall()[0][0]
        con.execute(
            f"delete from {CAMPAIGN_CHANNELS.qualified} where _source_system = ?", [source.name]
        )
        if mapped:
            con.execute(
                f"""insert into {CAMPAIGN_CHANNELS.qualified}
                    select unnest(?), unnest(?), unnest(?), ?, ?, ?, 'pipeline config',
                           unnest(range(1, ? + 1))""",
                [
                    [m[0] for m in mapped],
                    [m[1] for m in mapped],
                    [m[2] for m in mapped],
                    source.name,
                    batch_id,
                    loaded_at,
                    len(mapped),
                ],
            )
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return len(mapped)
