"""The HubSpot deals export source (`hubspot_export`): the same figures as the canonical
path, exact loaded values, quarantine of bad values, and stage history from the Date
entered columns or, without them, from successive snapshots."""

from __future__ import annotations

import json
import shutil

import duckdb
import pytest
from api_nights import SAME_ROWS, marts
from export_writers import ad_spend, hubspot

AS_OF = "2026-07-01T00:00:00Z"
HEADER = (
    "Record ID,Deal Name,Pipeline,Deal Stage,Amount,Close Date,Create Date,"
    "Last Modified Date,Deal owner,Associated Company IDs,Lead Source,"
    '"Date entered ""Appointment Scheduled (Sales Pipeline)""",'
    '"Date entered ""Closed Won (Sales Pipeline)"""\n'
)
# Portal in New York (EST until 2026-03-08, EDT after), US dates, no Currency column.
NEW_YORK_FORMAT = (
    "{thousands_separator: ',', timestamp_format: '%m/%d/%Y %H:%M',"
    " date_format: '%m/%d/%Y', timezone: America/New_York}"
)
SALES_PIPELINE_MAPPING = (
    "Appointment Scheduled,prospecting,0.2",
    "Qualified To Buy,needs_assessment,0.4",
    "Contract Sent,negotiation,0.9",
    "Closed Won,closed_won,1.0",
    "Closed Lost,lost,0.0",
)


pytestmark = pytest.mark.slow(seconds=15)


def _as_of():
    from night.tasks import parse_as_of

    return parse_as_of(AS_OF)


def _config(root, sources_yaml, *, stage_mapping=None):
    from night.config import load_config

    root.mkdir(parents=True, exist_ok=True)
    reference = ""
    if stage_mapping is not None:
        path = root / "stage_mapping.csv"
        path.write_text(
            "source_system,pipeline,crm_stage,funnel_stage,probability\n"
            + "".join(f"{row}\n" for row in stage_mapping)
        )
        reference = f"reference: {{stage_mapping: '{path}'}}\n"
    (root / "pipeline.yml").write_text(
        "reporting_currency: USD\n"
        f"warehouse: {{path: '{root}/wh.duckdb', publish_dir: '{root}/published'}}\n"
        f"{reference}sources:\n{sources_yaml}"
    )
    return load_config(root / "pipeline.yml")


def _query(config, sql, params=()):
    con = duckdb.connect(str(config.warehouse_path), read_only=True)
    try:
        con.execute("set TimeZone = 'UTC'")
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


# --------------------------------------------------------------------------------------------
# The same figures as the canonical path
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    from devkit.sample_data import generate

    folder = tmp_path_factory.mktemp("sample")
    generate(folder, 300, seed=11, workers=1)
    return folder


@pytest.fixture(scope="module")
def nights(sample, tmp_path_factory):
    """The canonical night on what a HubSpot export carries, and the export night."""
    from night.tasks import run_night

    root = tmp_path_factory.mktemp("hubspot-export")
    # GIVEN the canonical files of what a deals export can hold (latest entry per stage,
    # no activities) with the sample's spend
    reference = root / "reference"
    hubspot.write_canonical_reference(sample, reference)
    shutil.copy(sample / "spend.csv", reference / "spend.csv")
    canonical = _config(
        root / "canonical",
        f"  - {{name: demo_crm, type: canonical_csv, landing_dir: '{reference}'}}\n",
    )
    run_night(as_of=_as_of(), run_id="canonical", config=canonical)
    # AND the same data as a HubSpot export (Date entered columns, Asia/Kolkata wall
    # times, MM/DD/YYYY, amounts with thousands separators) and the spend as Google Ads
    # and Meta Ads cost reports (the channels no ad platform buys in a canonical file)
    hubspot.write_hubspot_export_files(sample, root / "hubspot")
    ad_spend.write_ad_spend_export_files(sample, root / "spend")
    export = _config(
        root / "export",
        hubspot.source_yaml("demo_crm", root / "hubspot") + ad_spend.sources_yaml(root / "spend"),
    )
    result = run_night(as_of=_as_of(), run_id="export", config=export)
    return canonical, export, result, reference


def test_export_night_gives_the_canonical_figures(nights):
    canonical, export, result, _ = nights
    loads = {load["source_system"]: load for load in result["loads"]}
    assert (loads["demo_crm"]["rows_loaded"], loads["demo_crm"]["rows_quarantined"]) == (300, 0)
    assert loads["google_ads_spend"]["files_loaded"] == 2  # one report per account currency
    assert loads["meta_ads_spend"]["rows_quarantined"] == 0
    expected = marts(canonical.published_path, SAME_ROWS)
    actual = marts(export.published_path, SAME_ROWS)
    assert all(expected[name] for name in SAME_ROWS)  # nothing compared empty to empty
    for name in SAME_ROWS:
        assert actual[name] == expected[name], name


def test_every_date_entered_value_is_one_stage_change(nights, sample):
    _, export, _, reference = nights
    # THEN staging holds exactly the reference history: one change per non-empty Date
    # entered cell of the deal's pipeline
    staged = _query(
        export,
        """select deal_id, crm_stage, strftime(changed_at, '%Y-%m-%dT%H:%M:%SZ')
           from staging.stg_hubspot_export__deal_stage_changes order by all""",
    )
    expected = _query(
        export,
        """select distinct 'demo_crm:' || (1000000000 + cast(substr(deal_id, 2) as integer)),
                  stage, changed_at
           from read_csv(?, all_varchar = true) order by all""",
        [str(reference / "deal_stage_history.csv")],
    )
    assert staged == expected
    # AND the export loses what HubSpot overwrites: a deal's earlier visits to a stage
    full = _query(
        export,
        "select count(*) from read_csv(?, all_varchar = true)",
        [str(sample / "deal_stage_history.csv")],
    )[0][0]
    assert (full, len(staged)) == (1728, 1651)


# --------------------------------------------------------------------------------------------
# A small hand-written export: exact values
# --------------------------------------------------------------------------------------------


def _hand_written(folder):
    """Two exports of a New York portal without a Currency column: an early one and the
    current one (file names carry the snapshot date)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "hubspot-crm-exports-all-deals-2026-02-01.csv").write_text(
        HEADER + "101,Acme - Platform,Sales Pipeline,Appointment Scheduled,,,"
        "01/05/2026 08:00,01/20/2026 16:45,Emily Carter,,Google Ads,01/05/2026 08:00,\n",
        encoding="utf-8",
    )
    (folder / "hubspot-crm-exports-all-deals-2026-05-01.csv").write_text(
        HEADER + '101,Acme - Platform,Sales Pipeline,Closed Won,"12,500.50",03/15/2026 14:30,'
        "01/05/2026 08:00,03/15/2026 14:31,Emily Carter,2001;2002,Google Ads,"
        "01/10/2026 09:05,03/15/2026 14:30\n"
        '102,"Globex, Inc. - Starter",Sales Pipeline,Appointment Scheduled,,04/30/2026,'
        "02/01/2026 23:30,02/02/2026 08:00,,,,02/01/2026 23:30,\n"
        '103,Initech - Suite,Sales Pipeline,Appointment Scheduled,"1,000",,'
        "11/01/2025 00:15,11/02/2025 03:30,Léa Dubois,3003,Referral,11/01/2025 00:15,\n",
        encoding="utf-8",
    )


def _hand_written_source(name, folder):
    return (
        f"  - name: {name}\n"
        "    type: hubspot_export\n"
        f"    landing_dir: '{folder}'\n"
        "    currency: EUR\n"
        "    lead_source_column: Lead Source\n"
        f"    format: {NEW_YORK_FORMAT}\n"
    )


def test_loaded_values_of_a_hand_written_export(tmp_path):
    from night.tasks import extract_source

    # GIVEN exports in New York wall time, US dates, thousands separators, no Currency
    _hand_written(tmp_path / "landing")
    config = _config(tmp_path / "night", _hand_written_source("hs", tmp_path / "landing"))
    # WHEN the source extracts
    summary = extract_source("hs", as_of=_as_of(), config=config)
    # THEN every row loads, typed values normalized: amounts plain, times UTC
    assert (summary["rows_loaded"], summary["rows_quarantined"]) == (4, 0)
    rows = _query(
        config,
        """select _source_file, _row_number, record_id, deal_name, deal_stage, amount,
                  currency, close_date, create_date, last_modified_date, deal_owner,
                  associated_company_ids, lead_source, snapshot_at, date_entered
           from raw.hubspot_export__deals order by _source_file, _row_number""",
    )
    assert [r[:14] for r in rows] == [
        (
            "hubspot-crm-exports-all-deals-2026-02-01.csv",
            2,
            "101",
            "Acme - Platform",
            "Appointment Scheduled",
            None,
            "EUR",
            None,
            "2026-01-05T13:00:00.000000Z",
            "2026-01-20T21:45:00.000000Z",
            "Emily Carter",
            None,
            "Google Ads",
            "2026-02-01T00:00:00.000000Z",
        ),
        (
            "hubspot-crm-exports-all-deals-2026-05-01.csv",
            2,
            "101",
            "Acme - Platform",
            "Closed Won",
            "12500.50",
            "EUR",
            "2026-03-15T18:30:00.000000Z",
            "2026-01-05T13:00:00.000000Z",
            "2026-03-15T18:31:00.000000Z",
            "Emily Carter",
            "2001;2002",
            "Google Ads",
            "2026-05-01T00:00:00.000000Z",
        ),
        (
            # An open deal's Close Date is a date: midnight in New York (EDT).
            "hubspot-crm-exports-all-deals-2026-05-01.csv",
            3,
            "102",
            "Globex, Inc. - Starter",
            "Appointment Scheduled",
            None,
            "EUR",
            "2026-04-30T04:00:00.000000Z",
            "2026-02-02T04:30:00.000000Z",
            "2026-02-02T13:00:00.000000Z",
            None,
            None,
            None,
            "2026-05-01T00:00:00.000000Z",
        ),
        (
            "hubspot-crm-exports-all-deals-2026-05-01.csv",
            4,
            "103",
            "Initech - Suite",
            "Appointment Scheduled",
            "1000",
            "EUR",
            None,
            "2025-11-01T04:15:00.000000Z",
            "2025-11-02T08:30:00.000000Z",
            "Léa Dubois",
            "3003",
            "Referral",
            "2026-05-01T00:00:00.000000Z",
        ),
    ]
    scheduled = 'Date entered "Appointment Scheduled (Sales Pipeline)"'
    won = 'Date entered "Closed Won (Sales Pipeline)"'
    assert [json.loads(r[14]) for r in rows] == [
        {scheduled: "2026-01-05T13:00:00.000000Z", won: None},
        {scheduled: "2026-01-10T14:05:00.000000Z", won: "2026-03-15T18:30:00.000000Z"},
        {scheduled: "2026-02-02T04:30:00.000000Z", won: None},
        {scheduled: "2025-11-01T04:15:00.000000Z", won: None},
    ]


def test_bad_values_are_quarantined_with_column_and_reason(tmp_path):
    from night.tasks import extract_source

    # GIVEN an export (with a Currency column) with two good rows and ten bad ones
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "deals.csv").write_text(
        HEADER.replace("Amount,", "Amount,Currency,")
        + "201,Good,Sales Pipeline,Appointment Scheduled,100,USD,,01/02/2026 10:00,,,,,"
        "01/02/2026 10:00,\n"
        "202,Bad amount,Sales Pipeline,Appointment Scheduled,n/a,USD,,01/02/2026 10:00,,,,,,\n"
        "203,Bad created,Sales Pipeline,Appointment Scheduled,,,,13/45/2026 10:00,,,,,,\n"
        "204,Bad entered,Sales Pipeline,Appointment Scheduled,,,,01/02/2026 10:00,,,,,"
        "yesterday,\n"
        "ABC,Bad id,Sales Pipeline,Appointment Scheduled,,,,01/02/2026 10:00,,,,,,\n"
        # 01:30 on 2025-11-02 happened twice in New York (clocks went back at 02:00).
        "206,Ambiguous,Sales Pipeline,Appointment Scheduled,,,,11/02/2025 01:30,,,,,,\n"
        "207,Bad currency,Sales Pipeline,Appointment Scheduled,5,EURO,,01/02/2026 10:00,,,,,,\n"
        # Closed on the day before it was created; then on the same day, hours earlier
        # (a close date is a calendar day: midnight), which is fine.
        "208,Closed early,Sales Pipeline,Closed Won,5,USD,03/14/2026,03/15/2026 00:00,,,,,,\n"
        "209,Same day,Sales Pipeline,Closed Won,5,USD,03/15/2026,03/15/2026 23:59,,,,,,\n"
        # Amounts and dates outside any real range (the night is as of 2026-07-01).
        "210,Huge,Sales Pipeline,Appointment Scheduled,1e40,USD,,01/02/2026 10:00,,,,,,\n"
        '211,Huge too,Sales Pipeline,Appointment Scheduled,"1,000,000,000,000,000",USD,,'
        "01/02/2026 10:00,,,,,,\n"
        "212,Far future,Sales Pipeline,Closed Won,5,USD,12/31/9999,01/02/2026 10:00,,,,,,\n",
        encoding="utf-8",
    )
    config = _config(tmp_path / "night", _hand_written_source("hs", landing))
    # WHEN the source extracts
    summary = extract_source("hs", as_of=_as_of(), config=config)
    # THEN the good row loads and each bad one is quarantined naming column and value
    assert (summary["rows_loaded"], summary["rows_quarantined"]) == (2, 10)
    assert _query(config, "select record_id from raw.hubspot_export__deals order by 1") == [
        ("201",),
        ("209",),
    ]
    quarantined = _query(
        config,
        """select line_number, reason from raw._quarantine
           where raw_table = 'hubspot_export__deals' order by line_number""",
    )
    assert quarantined == [
        (3, "Amount is not an amount (decimal '.', thousands ','): 'n/a'"),
        (
            4,
            "Create Date is not a timestamp in format %m/%d/%Y %H:%M or %m/%d/%Y:"
            " '13/45/2026 10:00'",
        ),
        (
            5,
            'Date entered "Appointment Scheduled (Sales Pipeline)" is not a timestamp in format'
            " %m/%d/%Y %H:%M or %m/%d/%Y: 'yesterday'",
        ),
        (6, "Record ID is not a HubSpot record id (digits): 'ABC'"),
        (
            7,
            "Create Date is ambiguous: '11/02/2025 01:30' reads as 2025-11-02T05:30:00.000000Z"
            " or 2025-11-02T06:30:00.000000Z under %m/%d/%Y %H:%M and %m/%d/%Y in"
            " America/New_York",
        ),
        (8, "Currency is not a 3-letter currency code: 'EURO'"),
        (
            9,
            "Close Date '2026-03-14T04:00:00.000000Z' is before Create Date"
            " '2026-03-15T04:00:00.000000Z'",
        ),
        (11, "Amount is not an amount (decimal '.', thousands ','): '1e40'"),
        (
            12,
            "Amount is beyond the plausible amount (less than 1,000,000,000,000,000 either"
            " way): '1,000,000,000,000,000'",
        ),
        (
            13,
            "Close Date is outside the plausible dates (1996-07-01 to 2031-07-01): '12/31/9999'",
        ),
    ]


def test_staging_builds_history_from_date_entered_columns_and_from_snapshots(tmp_path):
    from night.tasks import run_night

    # GIVEN a portal exporting Date entered columns (two exports, see _hand_written)
    _hand_written(tmp_path / "dated")
    # AND a portal exporting none: two nightly snapshots of the same view
    snapshots = tmp_path / "snapshots"
    snapshots.mkdir()
    header = "Record ID,Deal Name,Pipeline,Deal Stage,Amount,Currency,Close Date,Create Date\n"
    (snapshots / "deals-2026-05-01.csv").write_text(
        header + "301,A,Sales Pipeline,Appointment Scheduled,10,USD,,2026-04-20 10:00\n"
        "302,B,Sales Pipeline,Contract Sent,20,USD,2026-06-30 00:00,2026-04-01 09:00\n"
    )
    (snapshots / "deals-2026-05-02.csv").write_text(
        header + "301,A,Sales Pipeline,Qualified To Buy,10,USD,,2026-04-20 10:00\n"
        "302,B,Sales Pipeline,Closed Won,20,USD,2026-05-01 18:00,2026-04-01 09:00\n"
        "303,C,Sales Pipeline,Qualified To Buy,30,USD,,2026-05-01 10:00\n"
    )
    mapping = [
        f"{source},Sales Pipeline,{row}"
        for source in ("hs_dated", "hs_snapshots")
        for row in SALES_PIPELINE_MAPPING
    ]
    config = _config(
        tmp_path / "night",
        _hand_written_source("hs_dated", tmp_path / "dated") + "  - name: hs_snapshots\n"
        "    type: hubspot_export\n"
        f"    landing_dir: '{snapshots}'\n"
        "    format: {timestamp_format: '%Y-%m-%d %H:%M'}\n",
        stage_mapping=mapping,
    )
    # WHEN a night runs (extract, dbt build with its tests, publish)
    run_night(as_of=_as_of(), run_id="staging", config=config)
    # THEN each deal is its latest version, its status from the mapped stage, and Close
    # Date counts only on a closed deal
    deals = _query(
        config,
        """select deal_id, owner_id, company_id, pipeline, crm_stage, status, lead_source,
                  amount, currency, created_at, closed_at
           from staging.stg_hubspot_export__deals order by deal_id""",
    )
    from datetime import datetime as dt
    from decimal import Decimal

    assert deals == [
        (
            "hs_dated:101",
            "hs_dated:Emily Carter",
            "2001",
            "Sales Pipeline",
            "Closed Won",
            "won",
            "Google Ads",
            Decimal("12500.50"),
            "EUR",
            dt(2026, 1, 5, 13, 0),
            dt(2026, 3, 15, 18, 30),
        ),
        (
            "hs_dated:102",
            None,
            None,
            "Sales Pipeline",
            "Appointment Scheduled",
            "open",
            None,
            None,
            "EUR",
            dt(2026, 2, 2, 4, 30),
            None,
        ),
        (
            "hs_dated:103",
            "hs_dated:Léa Dubois",
            "3003",
            "Sales Pipeline",
            "Appointment Scheduled",
            "open",
            "Referral",
            Decimal("1000"),
            "EUR",
            dt(2025, 11, 1, 4, 15),
            None,
        ),
        (
            "hs_snapshots:301",
            None,
            None,
            "Sales Pipeline",
            "Qualified To Buy",
            "open",
            None,
            Decimal("10"),
            "USD",
            dt(2026, 4, 20, 10, 0),
            None,
        ),
        (
            "hs_snapshots:302",
            None,
            None,
            "Sales Pipeline",
            "Closed Won",
            "won",
            None,
            Decimal("20"),
            "USD",
            dt(2026, 4, 1, 9, 0),
            dt(2026, 5, 1, 18, 0),
        ),
        (
            "hs_snapshots:303",
            None,
            None,
            "Sales Pipeline",
            "Qualified To Buy",
            "open",
            None,
            Decimal("30"),
            "USD",
            dt(2026, 5, 1, 10, 0),
            None,
        ),
    ]
    # AND one stage change per non-empty Date entered cell of any export (the earlier
    # export keeps deal 101's first visit to Appointment Scheduled, which HubSpot has
    # since overwritten), and snapshot history where no export dated a deal
    changes = _query(
        config,
        """select deal_id, crm_stage, changed_at
           from staging.stg_hubspot_export__deal_stage_changes
           order by deal_id, changed_at""",
    )
    assert changes == [
        ("hs_dated:101", "Appointment Scheduled", dt(2026, 1, 5, 13, 0)),
        ("hs_dated:101", "Appointment Scheduled", dt(2026, 1, 10, 14, 5)),
        ("hs_dated:101", "Closed Won", dt(2026, 3, 15, 18, 30)),
        ("hs_dated:102", "Appointment Scheduled", dt(2026, 2, 2, 4, 30)),
        ("hs_dated:103", "Appointment Scheduled", dt(2025, 11, 1, 4, 15)),
        # entry stage at first sight: entered when created
        ("hs_snapshots:301", "Appointment Scheduled", dt(2026, 4, 20, 10, 0)),
        # seen moved in the second snapshot: dated by that snapshot
        ("hs_snapshots:301", "Qualified To Buy", dt(2026, 5, 2, 0, 0)),
        # first seen past its entry stage: dated by the first snapshot
        ("hs_snapshots:302", "Contract Sent", dt(2026, 5, 1, 0, 0)),
        # closed between the snapshots: dated by its Close Date
        ("hs_snapshots:302", "Closed Won", dt(2026, 5, 1, 18, 0)),
        # created after the previous snapshot: entered when created
        ("hs_snapshots:303", "Qualified To Buy", dt(2026, 5, 1, 10, 0)),
    ]
