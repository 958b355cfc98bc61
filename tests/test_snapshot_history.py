"""Stage history from successive snapshots (dbt macro stage_changes_from_snapshots,
docs/snapshot-history.md): three nights of a Salesforce opportunities report without a
history report, through the real loader and a real dbt build, give stage changes dated as
documented and the time-in-stage and conversion figures computed by hand from them."""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace

import duckdb
import pytest
from api_nights import pipeline_config

pytestmark = pytest.mark.slow(seconds=12)

HEADER = (
    "Opportunity ID,Opportunity Name,Stage,Amount Currency,Amount,Close Date,Created Date,"
    "Won,Closed"
)
# Night 1 (06:00), night 2 (06:00), night 3 (no time in the name: the night's as-of time).
NIGHTS = {
    "opportunities_2026-03-01T0600.csv": [
        "006A,Deal A,Prospecting,USD,1000,2026-04-01,2026-02-20T10:00:00Z,0,0",
        "006B,Deal B,Needs Analysis,USD,2000,2026-04-01,2026-02-25T09:00:00Z,0,0",
        "006E,Deal E,Qualification,USD,5000,2026-04-01,2026-02-28T12:00:00Z,0,0",
    ],
    "opportunities_2026-03-02T0600.csv": [
        "006A,Deal A,Qualification,USD,1000,2026-04-01,2026-02-20T10:00:00Z,0,0",
        "006B,Deal B,Negotiation,USD,2000,2026-04-01,2026-02-25T09:00:00Z,0,0",
        "006C,Deal C,Qualification,USD,3000,2026-04-01,2026-03-01T15:00:00Z,0,0",
        "006D,Deal D,Proposal,USD,4000,2026-04-01,2026-02-10T08:00:00Z,0,0",
        "006E,Deal E,Qualification,USD,5000,2026-04-01,2026-02-28T12:00:00Z,0,0",
    ],
    "opportunities.csv": [
        "006A,Deal A,Proposal,USD,1000,2026-04-01,2026-02-20T10:00:00Z,0,0",
        "006B,Deal B,Closed Won,USD,2000,2026-03-03,2026-02-25T09:00:00Z,1,1",
        "006C,Deal C,Closed Lost,USD,3000,2026-03-03,2026-03-01T15:00:00Z,0,1",
        "006D,Deal D,Proposal,USD,4000,2026-04-01,2026-02-10T08:00:00Z,0,0",
        "006E,Deal E,Qualification,USD,5000,2026-04-01,2026-02-28T12:00:00Z,0,0",
    ],
}
AS_OF = ("2026-03-01T07:00:00Z", "2026-03-02T07:00:00Z", "2026-03-03T06:00:00Z")
STAGE_MAPPING = """source_system,pipeline,crm_stage,funnel_stage,probability
crm,Master,Prospecting,prospecting,0.10
crm,Master,Qualification,lead_generation,0.20
crm,Master,Needs Analysis,needs_assessment,0.30
crm,Master,Proposal,proposal,0.60
crm,Master,Negotiation,negotiation,0.80
crm,Master,Closed Won,closed_won,1.00
crm,Master,Closed Lost,lost,0.00
"""


def at(text: str) -> datetime:
    """A time of 2026 from 'MM-DD HH:MM'."""
    return datetime.fromisoformat(f"2026-{text}")


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    """Three nights of snapshots loaded, then the third night's build and publish."""
    from night.tasks import extract_source, parse_as_of, run_night

    root = tmp_path_factory.mktemp("snapshots")
    landing = root / "landing"
    landing.mkdir()
    (root / "stage_mapping.csv").write_text(STAGE_MAPPING)
    config = pipeline_config(
        root / "run",
        f"  - {{name: crm, type: salesforce_export, landing_dir: '{landing}', archive: true}}\n"
        f"reference: {{stage_mapping: '{root / 'stage_mapping.csv'}'}}\n",
    )
    for (name, lines), as_of in zip(NIGHTS.items(), AS_OF, strict=True):
        (landing / name).write_text("\n".join([HEADER, *lines]) + "\n")
        if as_of != AS_OF[-1]:
            summary = extract_source("crm", as_of=parse_as_of(as_of), config=config)
            assert summary["rows_loaded"] == len(lines)
    run_night(as_of=parse_as_of(AS_OF[-1]), run_id="night-3", config=config)
    con = duckdb.connect(str(config.warehouse_path), read_only=True)
    yield SimpleNamespace(con=con, config=config)
    con.close()


CHANGES_SQL = """select deal_id, crm_stage, changed_at, dated_by
    from staging.stg_salesforce_export__deal_stage_changes order by deal_id, changed_at"""
SPELLS_SQL = """select replace(deal_id, 'crm:006', ''), funnel_stage, entered_at, exited_at,
        duration_seconds, exit_kind
    from marts.fct_deal_stage_spells order by deal_id, spell_number"""


def test_each_stage_entry_is_dated_as_documented(night):
    changes = night.con.execute(CHANGES_SQL).fetchall()
    assert changes == [
        # seen first in an entry stage: entered when created
        ("crm:006A", "Prospecting", at("02-20 10:00"), "created_at"),
        # moved between night 1 and 2: dated at the snapshot that shows it
        ("crm:006A", "Qualification", at("03-02 06:00"), "snapshot"),
        # skipped Needs Analysis (and the stages between): one change
        ("crm:006A", "Proposal", at("03-03 06:00"), "snapshot"),
        # seen first in a later stage, created before the first snapshot
        ("crm:006B", "Needs Analysis", at("03-01 06:00"), "snapshot"),
        ("crm:006B", "Negotiation", at("03-02 06:00"), "snapshot"),
        # won: dated by its Close Date, which falls between the two snapshots
        ("crm:006B", "Closed Won", at("03-03 00:00"), "closed_at"),
        # first seen on night 2, created after night 1: entered when created
        ("crm:006C", "Qualification", at("03-01 15:00"), "created_at"),
        ("crm:006C", "Closed Lost", at("03-03 00:00"), "closed_at"),
        # first seen on night 2 but created before night 1: the snapshot's time
        ("crm:006D", "Proposal", at("03-02 06:00"), "snapshot"),
        # never moved: one entry, no change on later nights
        ("crm:006E", "Qualification", at("03-01 06:00"), "snapshot"),
    ]


def test_spells_and_time_in_stage_follow_from_the_dated_changes(night):
    spells = night.con.execute(SPELLS_SQL).fetchall()
    assert spells == [
        ("A", "prospecting", at("02-20 10:00"), at("03-02 06:00"), 849_600, "advanced"),
        ("A", "lead_generation", at("03-02 06:00"), at("03-03 06:00"), 86_400, "advanced"),
        ("A", "proposal", at("03-03 06:00"), None, None, "open"),
        ("B", "needs_assessment", at("03-01 06:00"), at("03-02 06:00"), 86_400, "advanced"),
        ("B", "negotiation", at("03-02 06:00"), at("03-03 00:00"), 64_800, "advanced"),
        ("B", "closed_won", at("03-03 00:00"), None, None, "won"),
        ("C", "lead_generation", at("03-01 15:00"), at("03-03 00:00"), 118_800, "lost"),
        ("D", "proposal", at("03-02 06:00"), None, None, "open"),
        ("E", "lead_generation", at("03-01 06:00"), None, None, "open"),
    ]  # fmt: skip
    duration = night.con.execute(
        """select funnel_stage, spells_completed, avg_days, median_days, p90_days
           from marts.mart_stage_duration where month = date '2026-03-01' and spells_completed > 0
           order by stage_order"""
    ).fetchall()
    assert [row[:2] for row in duration] == [
        ("prospecting", 1),
        ("lead_generation", 2),
        ("needs_assessment", 1),
        ("negotiation", 1),
    ]
    expected = {  # (avg, median, p90) in days
        "prospecting": (849_600 / 86_400,) * 3,
        "lead_generation": (1.1875, 1.1875, 1.0 + 0.9 * 0.375),
        "needs_assessment": (1.0, 1.0, 1.0),
        "negotiation": (0.75, 0.75, 0.75),
    }
    for stage, _, *figures in duration:
        assert figures == pytest.approx(expected[stage], abs=1e-9), stage
    open_spells = night.con.execute(
        """select funnel_stage, open_spells, avg_age_days
           from marts.mart_stage_open_spells where open_spells > 0 order by stage_order"""
    ).fetchall()
    # as of night 3 (03-03 06:00): E 2 days in lead_generation; A 0 and D 1 day in proposal
    assert open_spells == [("lead_generation", 1, 2.0), ("proposal", 2, 0.5)]


def test_skipped_stages_count_as_reached_in_conversion(night):
    funnel = night.con.execute(
        """select cohort_month, stage_order, deals_reached, deals_advanced
           from marts.mart_funnel_conversion order by cohort_month, stage_order"""
    ).fetchall()
    february = [row[1:] for row in funnel if row[0].month == 2]
    march = [row[1:] for row in funnel if row[0].month == 3]
    # A reached proposal (6) skipping 3-5, D was first seen in proposal, E is in stage 2,
    # B was won (every stage)
    assert february == [
        (1, 4, 4), (2, 4, 3), (3, 3, 3), (4, 3, 3), (5, 3, 3), (6, 3, 1), (7, 1, 1), (8, 1, 0),
    ]  # fmt: skip
    # C, lost from lead_generation
    assert march == [(1, 1, 1), (2, 1, 0)] + [(k, 0, 0) for k in range(3, 9)]


@pytest.mark.postgres
def test_postgres_builds_the_same_history_from_the_same_snapshots(night):
    """The macro is portable: the same raw layer built on PostgreSQL gives the same rows."""
    from night import transform
    from night.tasks import parse_as_of
    from pg_cluster import PgCluster, copy_raw_to_postgres, pg_bin

    bin_dir = pg_bin()
    if bin_dir is None:
        pytest.skip("no PostgreSQL server binaries under /usr/lib/postgresql")
    import psycopg2

    cluster = PgCluster(bin_dir).start()
    try:
        cluster.create_database("warehouse")
        dsn = {"host": "127.0.0.1", "port": cluster.port, "user": cluster.user}
        dsn["dbname"] = "warehouse"
        copy_raw_to_postgres(night.config.warehouse_path, dsn)
        transform.dbt_command(
            night.config,
            parse_as_of(AS_OF[-1]),
            ("build",),
            target="postgres",
            extra_env={
                "CRM_PG_HOST": "127.0.0.1",
                "CRM_PG_PORT": str(cluster.port),
                "CRM_PG_USER": cluster.user,
                "CRM_PG_DBNAME": "warehouse",
            },
        )
        con = psycopg2.connect(**dsn)
        with con.cursor() as cur:
            cur.execute(CHANGES_SQL)
            changes = cur.fetchall()
            cur.execute(SPELLS_SQL)
            spells = [(*row[:4], int(row[4]) if row[4] is not None else None, row[5])
                      for row in cur.fetchall()]  # fmt: skip
        con.close()
    finally:
        cluster.stop()
    assert changes == night.con.execute(CHANGES_SQL).fetchall()
    assert spells == night.con.execute(SPELLS_SQL).fetchall()
