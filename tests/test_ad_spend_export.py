"""Ad platforms' cost reports (`ad_spend_export`): Google Ads campaign reports (preamble
lines, thousands separators, total rows) and Meta Ads Manager exports (currency in the
header) load exactly, bad lines are quarantined with their reason, and staging maps
campaigns to channels by configuration, restating days from later files. The same spend
through these reports giving the canonical figures is tests/test_hubspot_export.py's
equivalence night."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import duckdb
import pytest

AS_OF = "2026-07-01T00:00:00Z"
GOOGLE_FORMAT = "{header_line: 3, thousands_separator: ','}"


def _as_of():
    from night.tasks import parse_as_of

    return parse_as_of(AS_OF)


def _config(root, sources_yaml):
    from night.config import load_config

    root.mkdir(parents=True, exist_ok=True)
    (root / "pipeline.yml").write_text(
        "reporting_currency: USD\n"
        f"warehouse: {{path: '{root}/wh.duckdb', publish_dir: '{root}/published'}}\n"
        f"sources:\n{sources_yaml}"
    )
    return load_config(root / "pipeline.yml")


def _source(name, platform, landing, **settings):
    lines = [f"  - name: {name}", "    type: ad_spend_export", f"    platform: {platform}"]
    lines += [f"    {key}: {value}" for key, value in settings.items()]
    lines.append(f"    landing_dir: '{landing}'")
    return "\n".join(lines) + "\n"


def _query(path, sql):
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _write(folder, name, text):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")


# --------------------------------------------------------------------------------------------
# Exact loaded values
# --------------------------------------------------------------------------------------------


def test_loaded_values_of_google_ads_and_meta_reports(tmp_path):
    from night.tasks import extract_source

    # GIVEN a Google Ads download: report name and date range above the header, columns
    # in the report's own order, costs with thousands separators, totals at the bottom
    _write(
        tmp_path / "google",
        "campaign-report.csv",
        "Campaign report\n"
        '"May 1, 2026 - May 2, 2026"\n'
        "Campaign,Day,Currency code,Cost,Clicks\n"
        'Brand - EU,2026-05-01,EUR,"1,234.50",120\n'
        "Brand - EU,2026-05-02,EUR,99.00,10\n"
        'Webinar retarget,2026-05-01,EUR,"2,000.00",5\n'
        'Total: Account,--,EUR,"3,333.50",135\n'
        'Total: Search campaigns,--,EUR,"1,333.50",130\n',
    )
    # AND a Meta Ads Manager export without the day breakdown: one day per row, the
    # account currency in the amount's header, an empty amount on a day without delivery
    _write(
        tmp_path / "meta",
        "meta-ads.csv",
        "Reporting starts,Reporting ends,Campaign name,Amount spent (EUR),Impressions\n"
        "2026-05-01,2026-05-01,Spring sale,45.10,1000\n"
        "2026-05-02,2026-05-02,Spring sale,,0\n",
    )
    config = _config(
        tmp_path / "night",
        _source("g", "google_ads", tmp_path / "google", format=GOOGLE_FORMAT)
        + _source("m", "meta_ads", tmp_path / "meta"),
    )
    # WHEN both extract
    google = extract_source("g", as_of=_as_of(), config=config)
    meta = extract_source("m", as_of=_as_of(), config=config)
    # THEN the campaign days load (line numbers as in the file), totals are not loaded
    assert (google["rows_loaded"], google["rows_quarantined"]) == (3, 0)
    assert (meta["rows_loaded"], meta["rows_quarantined"]) == (2, 0)
    assert _query(
        config.warehouse_path,
        """select _row_number, day, campaign, campaign_id, currency_code, cost
           from raw.ad_spend_export__google_ads order by _row_number""",
    ) == [
        (4, "2026-05-01", "Brand - EU", None, "EUR", "1234.50"),
        (5, "2026-05-02", "Brand - EU", None, "EUR", "99.00"),
        (6, "2026-05-01", "Webinar retarget", None, "EUR", "2000.00"),
    ]
    rows = _query(
        config.warehouse_path,
        """select _row_number, day, reporting_starts, reporting_ends, campaign_name, currency,
                  amount_spent
           from raw.ad_spend_export__meta_ads order by _row_number""",
    )
    assert [r[:6] for r in rows] == [
        (2, None, "2026-05-01", "2026-05-01", "Spring sale", None),
        (3, None, "2026-05-02", "2026-05-02", "Spring sale", None),
    ]
    assert [json.loads(r[6]) for r in rows] == [
        {"Amount spent (EUR)": "45.10"},
        {"Amount spent (EUR)": None},
    ]


def test_bad_lines_are_quarantined_with_their_reason(tmp_path):
    from night.tasks import extract_source

    # GIVEN a Google Ads report with one good line and five bad ones
    _write(
        tmp_path / "google",
        "campaign-report.csv",
        "Campaign report\n"
        '"May 1, 2026 - May 3, 2026"\n'
        "Day,Campaign,Currency code,Cost\n"
        "2026-05-01,Brand,EUR,abc\n"
        "2026-13-01,Brand,EUR,5.00\n"
        'Total: Campaigns,--,EUR,"5.00"\n'
        "2026-05-02,,EUR,1.00\n"
        "2026-05-03,Brand,EURO,1.00\n"
        "2026-05-03,Brand,EUR,2.00\n"
        'Total: Account,--,EUR,"9.00"\n',
    )
    # AND a Meta export with a row over a week, a row without a campaign, a bad amount,
    # and a file whose amount header names no currency (and no Currency column)
    _write(
        tmp_path / "meta",
        "meta-ads.csv",
        "Reporting starts,Reporting ends,Campaign name,Amount spent (EUR)\n"
        "2026-05-01,2026-05-07,Spring sale,70.00\n"
        "2026-05-01,2026-05-01,,5.00\n"
        "2026-05-01,2026-05-01,Spring sale,12;5\n"
        "2026-05-02,2026-05-02,Spring sale,6.00\n",
    )
    _write(
        tmp_path / "meta",
        "meta-ads-no-currency.csv",
        "Reporting starts,Reporting ends,Campaign name,Amount spent\n"
        "2026-05-02,2026-05-02,Spring sale,6.00\n",
    )
    config = _config(
        tmp_path / "night",
        _source("g", "google_ads", tmp_path / "google", format=GOOGLE_FORMAT)
        + _source("m", "meta_ads", tmp_path / "meta"),
    )
    # WHEN both extract
    google = extract_source("g", as_of=_as_of(), config=config)
    meta = extract_source("m", as_of=_as_of(), config=config)
    # THEN loaded + quarantined = the data lines between header and totals
    assert (google["rows_loaded"], google["rows_quarantined"]) == (1, 5)
    assert (meta["rows_loaded"], meta["rows_quarantined"]) == (1, 4)
    quarantined = _query(
        config.warehouse_path,
        """select _source_file, line_number, reason from raw._quarantine
           order by _source_file, line_number""",
    )
    assert quarantined == [
        ("campaign-report.csv", 4, "Cost is not an amount (decimal '.', thousands ','): 'abc'"),
        ("campaign-report.csv", 5, "Day is not an ISO-8601 date: '2026-13-01'"),
        (
            "campaign-report.csv",
            6,
            "Day is not an ISO-8601 date: 'Total: Campaigns'; "
            "a report total row, not a campaign's day: Total: Campaigns",
        ),
        ("campaign-report.csv", 7, "Campaign is empty"),
        ("campaign-report.csv", 8, "Currency code is not a 3-letter currency code: 'EURO'"),
        (
            "meta-ads-no-currency.csv",
            2,
            "no currency: neither the Amount spent header, a Currency column nor the source's"
            " `currency` names it",
        ),
        (
            "meta-ads.csv",
            2,
            "not one day: Reporting starts '2026-05-01', Reporting ends '2026-05-07'"
            " (export with the breakdown by Day)",
        ),
        ("meta-ads.csv", 3, "Campaign name is empty"),
        ("meta-ads.csv", 4, "Amount spent (EUR) is not a number: '12;5'"),
    ]


def test_a_source_currency_fills_reports_without_one(tmp_path):
    from night.tasks import extract_source

    # GIVEN a Google Ads report without a Currency code column, and the account's currency
    _write(
        tmp_path / "google",
        "campaign-report.csv",
        "Campaign report\nAll time\nDay,Campaign,Cost\n2026-05-01,Brand,10.00\n",
    )
    config = _config(
        tmp_path / "night",
        _source("g", "google_ads", tmp_path / "google", currency="GBP", format=GOOGLE_FORMAT),
    )
    extract_source("g", as_of=_as_of(), config=config)
    assert _query(
        config.warehouse_path, "select currency_code, cost from raw.ad_spend_export__google_ads"
    ) == [("GBP", "10.00")]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ("platform: bing_ads", "platform: must be one of google_ads, meta_ads, got 'bing_ads'"),
        ("platform: google_ads, campaign_channels: {'(': x}", "is not a regular expression"),
        ("platform: google_ads, channel: Google Ads", "must be a lowercase channel name"),
        ("channel: google_ads", "platform: is required"),
    ],
)
def test_settings_are_checked(tmp_path, settings, message):
    from night.config import ConfigError

    with pytest.raises(ConfigError, match=message):
        _config(
            tmp_path,
            f"  - {{name: g, type: ad_spend_export, landing_dir: '{tmp_path}', {settings}}}\n",
        )


# --------------------------------------------------------------------------------------------
# Staging: channels by configuration, later files restate days
# --------------------------------------------------------------------------------------------


def test_spend_maps_campaigns_to_channels_and_later_reports_restate_days(tmp_path):
    from night.tasks import build_marts, extract_source, run_night

    # GIVEN two nightly Google Ads reports of a EUR account, the second restating May 2
    google = tmp_path / "google"
    _write(
        google,
        "report-2026-05-02.csv",
        'Campaign report\n"May 1, 2026 - May 2, 2026"\nDay,Campaign,Currency code,Cost\n'
        '2026-05-01,Brand - EU,EUR,"1,234.50"\n'
        "2026-05-01,Webinar retarget,EUR,200.00\n"
        "2026-05-02,Brand - EU,EUR,99.00\n"
        'Total: Account,--,EUR,"1,533.50"\n',
    )
    _write(
        google,
        "report-2026-05-03.csv",
        'Campaign report\n"May 2, 2026 - May 3, 2026"\nDay,Campaign,Currency code,Cost\n'
        "2026-05-02,Brand - EU,EUR,101.00\n"
        "2026-05-03,Brand - EU,EUR,50.25\n"
        'Total: Account,--,EUR,"151.25"\n',
    )
    # AND a Meta export (USD account) with a campaign no rule maps
    meta = tmp_path / "meta"
    _write(
        meta,
        "meta-2026-05.csv",
        "Campaign name,Day,Amount spent (USD),Reporting starts,Reporting ends\n"
        "Spring sale,2026-05-01,45.10,2026-05-01,2026-05-03\n"
        "Spring sale - retarget,2026-05-01,4.90,2026-05-01,2026-05-03\n"
        "Brand awareness,2026-05-02,30.00,2026-05-01,2026-05-03\n"
        "Spring sale,2026-05-03,,2026-05-01,2026-05-03\n",
    )
    google_source = _source(
        "g",
        "google_ads",
        google,
        channel="google_ads",
        campaign_channels="{'webinar': webinar}",
        format=GOOGLE_FORMAT,
    )
    config = _config(
        tmp_path / "night",
        google_source
        + _source("m", "meta_ads", meta, campaign_channels="{'^spring': paid_social}"),
    )
    # WHEN a night runs
    run_night(as_of=_as_of(), run_id="spend", config=config)
    # THEN each campaign's day is the latest report's, in the channel its rule gives, and
    # the unmapped campaign's spend is kept under `unattributed`
    spend_sql = """select source_system, spend_date, channel, category, currency, amount,
                          spend_lines
                   from staging.stg_ad_spend_export__spend order by all"""
    assert _query(config.warehouse_path, spend_sql) == [
        ("g", date(2026, 5, 1), "google_ads", "marketing", "EUR", Decimal("1234.50"), 1),
        ("g", date(2026, 5, 1), "webinar", "marketing", "EUR", Decimal("200.00"), 1),
        ("g", date(2026, 5, 2), "google_ads", "marketing", "EUR", Decimal("101.00"), 1),
        ("g", date(2026, 5, 3), "google_ads", "marketing", "EUR", Decimal("50.25"), 1),
        ("m", date(2026, 5, 1), "paid_social", "marketing", "USD", Decimal("50.00"), 2),
        ("m", date(2026, 5, 2), "unattributed", "marketing", "USD", Decimal("30.00"), 1),
    ]
    assert _query(
        config.published_path,
        """select channel, spend, new_customers, cac from marts.mart_cac_by_channel
           where month = date '2026-05-01' and channel in ('paid_social', 'unattributed')
           order by channel""",
    ) == [("paid_social", Decimal("50.00"), 0, None), ("unattributed", Decimal("30.00"), 0, None)]
    # AND a rule added to the config maps the campaign's past spend on the next night
    config = _config(
        tmp_path / "night",
        google_source
        + _source(
            "m", "meta_ads", meta, campaign_channels="{'^spring': paid_social, awareness: brand}"
        ),
    )
    extract_source("m", as_of=_as_of(), config=config)
    build_marts(as_of=_as_of(), config=config)
    assert [r for r in _query(config.warehouse_path, spend_sql) if r[0] == "m"] == [
        ("m", date(2026, 5, 1), "paid_social", "marketing", "USD", Decimal("50.00"), 2),
        ("m", date(2026, 5, 2), "brand", "marketing", "USD", Decimal("30.00"), 1),
    ]
