"""Pipedrive deals exports: a hand-written export loads exactly (values normalized under the
account's conventions, bad values quarantined naming the column and why), and three
nights of exports build stage history from "Deal - Last stage change" and the snapshots,
with the marts computed by hand."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import duckdb
import pytest
from api_nights import pipeline_config
from export_writers.pipedrive import HEADER, write_pipedrive_export_files

# A European account: decimal comma, Berlin time (CET in March, CEST from 29 March).
BERLIN_FORMAT = (
    "{decimal_separator: ',', thousands_separator: '.', timezone: Europe/Berlin,"
    " timestamp_format: '%Y-%m-%d %H:%M:%S', date_format: '%Y-%m-%d'}"
)
HAND_FILE = """\
Deal - ID,Deal - Title,Deal - Value,Deal - Currency,Deal - Pipeline,Deal - Stage,Deal - Status,Deal - Owner,Deal - Organization,Deal - Source channel,Deal - Deal created,Deal - Update time,Deal - Last stage change,Deal - Won time,Deal - Lost time,Deal - Expected close date,Deal - Lost reason
101,Acme - Platform,"1.234,50",EUR,Sales,Qualified,Open,Anna Schmidt,Acme GmbH,Webinar,2026-03-02 09:15:00,2026-03-03 10:00:00,2026-03-03 10:00:00,,,2026-04-30,
102,"Beta, Inc. - Seats",18.000,EUR,Sales,Negotiations Started,Won,Jörg Schäfer,"Beta, Inc.",Referral,2026-01-10 14:00:00,2026-03-01 16:30:00,2026-02-20 11:00:00,2026-03-01 16:30:00,,2026-03-15,
103,Gamma - Pilot,0,EUR,Sales,Contact Made,Lost,Anna Schmidt,,,2026-05-20 08:00:00,2026-06-15 11:00:00,,,2026-06-15 11:00:00,2026-07-01,Budget
104,Delta,12k,EUR,Sales,Lead In,Open,Anna Schmidt,Delta AG,,2026-03-02 09:15:00,,,,,,
105,Epsilon,100,EUR,Sales,Lead In,Archived,Anna Schmidt,,,2026-03-02 09:15:00,,,,,,
106,Zeta,100,EUR,Sales,Lead In,Open,Anna Schmidt,,,03/02/2026 09:15,,,,,,
107,Eta,100,EUR,Sales,Proposal Made,Won,Anna Schmidt,,,2026-03-02 09:15:00,,,,,,
108,Theta,500,,Sales,Lead In,Open,Anna Schmidt,,,2026-03-02 09:15:00,,,,,,
109,Iota,100,EUR,Sales,,Open,Anna Schmidt,,,2026-03-02 09:15:00,,,,,,
"""  # noqa: E501


def test_an_export_loads_exactly_and_bad_values_are_quarantined_with_column_and_reason(
    tmp_path,
):
    from night.tasks import extract_source, parse_as_of

    # GIVEN a hand-written export of a European account
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "deals_2026-06-20.csv").write_text(HAND_FILE, encoding="utf-8")
    config = pipeline_config(
        tmp_path / "run",
        f"  - {{name: pd, type: pipedrive_export, landing_dir: '{landing}',"
        f" format: {BERLIN_FORMAT}}}\n",
    )
    # WHEN it is loaded
    summary = extract_source("pd", as_of=parse_as_of("2026-06-21T02:00:00Z"), config=config)
    # THEN 3 rows load with every value normalized, and 6 are quarantined
    assert (summary["rows_loaded"], summary["rows_quarantined"]) == (3, 6)
    con = duckdb.connect(str(config.warehouse_path), read_only=True)
    try:
        loaded = con.execute(
            """select deal_id, title, value, currency, pipeline, stage, status, owner,
                      organization, source_channel, deal_created, update_time,
                      last_stage_change, won_time, lost_time, expected_close_date,
                      snapshot_at, _row_number
               from raw.pipedrive_export__deals order by _row_number"""
        ).fetchall()
        quarantined = con.execute(
            "select line_number, reason from raw._quarantine order by line_number"
        ).fetchall()
    finally:
        con.close()
    assert loaded == [
        ("101", "Acme - Platform", "1234.50", "EUR", "Sales", "Qualified", "Open",
         "Anna Schmidt", "Acme GmbH", "Webinar", "2026-03-02T08:15:00.000000Z",
         "2026-03-03T09:00:00.000000Z", "2026-03-03T09:00:00.000000Z", None, None,
         "2026-04-30", "2026-06-20T00:00:00.000000Z", 2),
        ("102", "Beta, Inc. - Seats", "18000", "EUR", "Sales", "Negotiations Started", "Won",
         "Jörg Schäfer", "Beta, Inc.", "Referral", "2026-01-10T13:00:00.000000Z",
         "2026-03-01T15:30:00.000000Z", "2026-02-20T10:00:00.000000Z",
         "2026-03-01T15:30:00.000000Z", None, "2026-03-15", "2026-06-20T00:00:00.000000Z", 3),
        ("103", "Gamma - Pilot", "0", "EUR", "Sales", "Contact Made", "Lost", "Anna Schmidt",
         None, None, "2026-05-20T06:00:00.000000Z", "2026-06-15T09:00:00.000000Z", None, None,
         "2026-06-15T09:00:00.000000Z", "2026-07-01", "2026-06-20T00:00:00.000000Z", 4),
    ]  # fmt: skip
    assert quarantined == [
        (5, "Deal - Value is not an amount (decimal ',', thousands '.'): '12k'"),
        (6, "Deal - Status must be Open, Won or Lost: 'Archived'"),
        (
            7,
            "Deal - Deal created is not a timestamp in format %Y-%m-%d %H:%M:%S or %Y-%m-%d:"
            " '03/02/2026 09:15'",
        ),
        (8, "won deal without Deal - Won time"),
        (9, "Deal - Value has no currency (Deal - Currency is empty)"),
        (10, "Deal - Stage is empty"),
    ]


def _export(deals: list[tuple]) -> str:
    """A Pipedrive export of (id, stage, status, created, last stage change, won/lost time)."""
    lines = [",".join(HEADER)]
    for deal_id, stage, status, created, changed, closed in deals:
        won = closed if status == "Won" else ""
        lost = closed if status == "Lost" else ""
        lines.append(
            f"{deal_id},Deal {deal_id},{deal_id}00,USD,Sales,{stage},{status},Rep,,,"
            f"{created},{created},{changed},{won},{lost},2026-06-30"
        )
    return "\n".join(lines) + "\n"


# Pipedrive's default pipeline; a won or lost deal stays in its stage.
NIGHTS = {
    "pipedrive-deals_2026-05-04T0200.csv": [
        (1, "Lead In", "Open", "2026-05-01 09:00:00", "", ""),
        (2, "Demo Scheduled", "Open", "2026-04-20 10:00:00", "2026-04-28 12:00:00", ""),
        (4, "Negotiations Started", "Open", "2026-04-01 08:00:00", "", ""),
        (5, "Contact Made", "Open", "2026-04-25 10:00:00", "2026-04-26 10:00:00", ""),
    ],
    "pipedrive-deals_2026-05-05T0200.csv": [
        (1, "Contact Made", "Open", "2026-05-01 09:00:00", "2026-05-04 15:30:00", ""),
        (2, "Demo Scheduled", "Won", "2026-04-20 10:00:00", "2026-04-28 12:00:00",
         "2026-05-04 18:00:00"),
        (3, "Lead In", "Open", "2026-05-04 20:00:00", "", ""),
        (4, "Proposal Made", "Open", "2026-04-01 08:00:00", "2026-05-04 09:00:00", ""),
        (5, "Contact Made", "Open", "2026-04-25 10:00:00", "2026-04-26 10:00:00", ""),
    ],
    "pipedrive-deals_2026-05-06T0200.csv": [
        (1, "Proposal Made", "Open", "2026-05-01 09:00:00", "2026-05-05 11:00:00", ""),
        (2, "Demo Scheduled", "Won", "2026-04-20 10:00:00", "2026-04-28 12:00:00",
         "2026-05-04 18:00:00"),
        (3, "Lead In", "Lost", "2026-05-04 20:00:00", "", "2026-05-05 09:00:00"),
        (4, "Proposal Made", "Open", "2026-04-01 08:00:00", "2026-05-04 09:00:00", ""),
        (5, "Demo Scheduled", "Open", "2026-04-25 10:00:00", "", ""),
    ],
}  # fmt: skip
STAGE_MAPPING = """source_system,pipeline,crm_stage,funnel_stage,probability
pd,Sales,Lead In,prospecting,0.10
pd,Sales,Qualified,lead_generation,0.20
pd,Sales,Contact Made,first_contact,0.30
pd,Sales,Demo Scheduled,solution_presentation,0.50
pd,Sales,Proposal Made,proposal,0.70
pd,Sales,Negotiations Started,negotiation,0.90
"""


def at(text: str) -> datetime:
    """A time of 2026 from 'MM-DD HH:MM'."""
    return datetime.fromisoformat(f"2026-{text}")


@pytest.fixture(scope="module")
def three_nights(tmp_path_factory):
    from night.tasks import extract_source, parse_as_of, run_night

    root = tmp_path_factory.mktemp("pipedrive-nights")
    landing = root / "landing"
    landing.mkdir()
    (root / "stage_mapping.csv").write_text(STAGE_MAPPING)
    config = pipeline_config(
        root / "run",
        f"  - {{name: pd, type: pipedrive_export, landing_dir: '{landing}', archive: true,"
        " format: {timestamp_format: '%Y-%m-%d %H:%M:%S'}}\n"
        f"reference: {{stage_mapping: '{root / 'stage_mapping.csv'}'}}\n",
    )
    for number, (name, deals) in enumerate(NIGHTS.items(), start=1):
        (landing / name).write_text(_export(deals))
        as_of = parse_as_of(f"2026-05-0{3 + number}T02:00:00Z")
        if number < 3:
            assert extract_source("pd", as_of=as_of, config=config)["rows_loaded"] == len(deals)
    run_night(as_of=as_of, run_id="night-3", config=config)
    con = duckdb.connect(str(config.warehouse_path), read_only=True)
    yield con
    con.close()


def test_three_nights_give_stage_history_dated_by_the_last_stage_change(three_nights):
    changes = three_nights.execute(
        """select replace(deal_id, 'pd:', ''), crm_stage, changed_at, dated_by
           from staging.stg_pipedrive_export__deal_stage_changes
           order by deal_id, changed_at"""
    ).fetchall()
    assert changes == [
        ("1", "Lead In", at("05-01 09:00"), "created_at"),
        ("1", "Contact Made", at("05-04 15:30"), "stage_change_time"),
        ("1", "Proposal Made", at("05-05 11:00"), "stage_change_time"),  # Demo skipped
        # first seen already in a later stage: its last stage change says when
        ("2", "Demo Scheduled", at("04-28 12:00"), "stage_change_time"),
        ("3", "Lead In", at("05-04 20:00"), "created_at"),
        # first seen with no stage change time: the snapshot's
        ("4", "Negotiations Started", at("05-04 02:00"), "snapshot"),
        ("4", "Proposal Made", at("05-04 09:00"), "stage_change_time"),  # moved back
        ("5", "Contact Made", at("04-26 10:00"), "stage_change_time"),
        # the export gave no stage change time: the snapshot's
        ("5", "Demo Scheduled", at("05-06 02:00"), "snapshot"),
    ]
    deals = three_nights.execute(
        """select crm_deal_id, crm_stage, status, closed_at, last_seen_at
           from staging.stg_pipedrive_export__deals order by cast(crm_deal_id as integer)"""
    ).fetchall()
    assert deals == [
        ("1", "Proposal Made", "open", None, at("05-06 02:00")),
        ("2", "Demo Scheduled", "won", at("05-04 18:00"), at("05-06 02:00")),
        ("3", "Lead In", "lost", at("05-05 09:00"), at("05-06 02:00")),
        ("4", "Proposal Made", "open", None, at("05-06 02:00")),
        ("5", "Demo Scheduled", "open", None, at("05-06 02:00")),
    ]


def test_three_nights_give_the_hand_computed_marts(three_nights):
    spells = three_nights.execute(
        """select replace(deal_id, 'pd:', ''), funnel_stage, entered_at, exited_at,
                  duration_seconds, exit_kind
           from marts.fct_deal_stage_spells order by deal_id, spell_number"""
    ).fetchall()
    assert spells == [
        ("1", "prospecting", at("05-01 09:00"), at("05-04 15:30"), 282_600, "advanced"),
        ("1", "first_contact", at("05-04 15:30"), at("05-05 11:00"), 70_200, "advanced"),
        ("1", "proposal", at("05-05 11:00"), None, None, "open"),
        # won in its stage: the spell ends at the won time
        ("2", "solution_presentation", at("04-28 12:00"), at("05-04 18:00"), 540_000, "advanced"),
        ("3", "prospecting", at("05-04 20:00"), at("05-05 09:00"), 46_800, "lost"),
        ("4", "negotiation", at("05-04 02:00"), at("05-04 09:00"), 25_200, "regressed"),
        ("4", "proposal", at("05-04 09:00"), None, None, "open"),
        ("5", "first_contact", at("04-26 10:00"), at("05-06 02:00"), 835_200, "advanced"),
        ("5", "solution_presentation", at("05-06 02:00"), None, None, "open"),
    ]  # fmt: skip
    duration = three_nights.execute(
        """select funnel_stage, spells_completed, avg_days, median_days, p90_days
           from marts.mart_stage_duration where month = date '2026-05-01' and spells_completed > 0
           order by stage_order"""
    ).fetchall()
    day = 86_400
    expected = [
        ("prospecting", 2, (282_600 + 46_800) / 2 / day, (282_600 + 46_800) / 2 / day,
         (46_800 + 0.9 * (282_600 - 46_800)) / day),
        ("first_contact", 2, (70_200 + 835_200) / 2 / day, (70_200 + 835_200) / 2 / day,
         (70_200 + 0.9 * (835_200 - 70_200)) / day),
        ("solution_presentation", 1, 6.25, 6.25, 6.25),
        ("negotiation", 1, 25_200 / day, 25_200 / day, 25_200 / day),
    ]  # fmt: skip
    assert [row[:2] for row in duration] == [row[:2] for row in expected]
    for got, want in zip(duration, expected, strict=True):
        assert got[2:] == pytest.approx(want[2:], abs=1e-9), got[0]
    open_spells = three_nights.execute(
        """select funnel_stage, open_spells, avg_age_days
           from marts.mart_stage_open_spells where open_spells > 0 order by stage_order"""
    ).fetchall()
    # as of 05-06 02:00: deal 5 just entered; deals 1 (15 h) and 4 (41 h) in proposal
    assert open_spells == [("solution_presentation", 1, 0.0), ("proposal", 2, 28 / 24)]
    velocity = three_nights.execute(
        """select opportunities, deals_won, deals_lost, win_rate, avg_deal_size,
                  avg_sales_cycle_days, sales_velocity_per_day
           from marts.mart_sales_velocity where month = date '2026-05-01'"""
    ).fetchall()
    # May: deals 1 and 3 created; deal 2 won (200 USD, 14 days 8 hours), deal 3 lost
    # velocity: 2 x 0.5 x 200 / (14 + 8 / 24) = 13.953..
    assert velocity == [
        (2, 1, 1, 0.5, Decimal("200.00"), pytest.approx(14 + 8 / 24), Decimal("13.95"))
    ]


def test_the_sample_written_as_exports_loads_every_deal(tmp_path):
    from devkit.sample_data import generate
    from night.tasks import extract_source, parse_as_of

    # GIVEN the generated sample exported on two days, as Pipedrive exports it
    sample = tmp_path / "sample"
    generate(sample, 200, seed=5, workers=1)
    days = [datetime(2026, 3, 1, 2, tzinfo=UTC), datetime(2026, 6, 1, 2, tzinfo=UTC)]
    write_pipedrive_export_files(sample, tmp_path / "landing", at=days, timezone="Asia/Tokyo")
    config = pipeline_config(
        tmp_path / "run",
        f"  - {{name: demo_crm, type: pipedrive_export, landing_dir: '{tmp_path / 'landing'}',"
        " format: {timestamp_format: '%Y-%m-%d %H:%M:%S', timezone: Asia/Tokyo}}\n",
    )
    # WHEN it is loaded THEN every deal created by each day is in that day's snapshot
    summary = extract_source("demo_crm", as_of=parse_as_of("2026-07-01T00:00:00Z"), config=config)
    con = duckdb.connect(str(config.warehouse_path), read_only=True)
    try:
        per_snapshot = con.execute(
            "select snapshot_at, count(*) from raw.pipedrive_export__deals group by all order by 1"
        ).fetchall()
    finally:
        con.close()
    created = [
        sum(1 for line in (sample / "deals.csv").read_text().splitlines()[1:]
            if line.split(",")[-3] <= f"{day:%Y-%m-%dT%H:%M:%SZ}")
        for day in days
    ]  # fmt: skip
    assert summary["rows_quarantined"] == 0
    assert per_snapshot == [
        ("2026-03-01T02:00:00.000000Z", created[0]),
        ("2026-06-01T02:00:00.000000Z", created[1]),
    ]
    assert 0 < created[0] < created[1] == summary["rows_loaded"] - created[0]
