"""The incremental night on a real PostgreSQL: the same dbt project, built in full as of
night 1, then incrementally after night 2's changes landed, equals a full build of night
2's data in another database, table for table (tests/test_incremental_night.py does the
same on DuckDB, with the data described there)."""

from __future__ import annotations

import pytest
from test_incremental_night import (
    BOOKKEEPING,
    NIGHT_1,
    NIGHT_2,
    PER_DEAL,
    _canonical,
    expected_changed_deals,
    land_sample,
)

from pg_cluster import PgCluster, copy_raw_to_postgres, pg_bin

pytestmark = [pytest.mark.postgres, pytest.mark.slow(seconds=20)]

DB = "warehouse"

TABLES = (
    *(f"intermediate.{table}" for table in PER_DEAL),
    "marts.fct_deals",
    "marts.fct_deal_stage_spells",
    "marts.fct_deal_funnel",
    "marts.mart_funnel_conversion",
    "marts.mart_stage_duration",
    "marts.mart_stage_open_spells",
    "marts.mart_sales_velocity",
    "marts.mart_pipeline_snapshot",
    "marts.mart_rep_performance",
    "marts.mart_cac",
    "marts.mart_cac_by_channel",
    "marts.mart_customer_retention",
    "marts.mart_unit_economics",
    "marts.mart_data_quality",
)


@pytest.fixture(scope="module")
def databases(sample, tmp_path_factory):
    """Night 1 in full then night 2 incremental, and night 2 in full in a new database:
    every compared table's rows from each, and the deals night 2 should rebuild."""
    bin_dir = pg_bin()
    if bin_dir is None:
        pytest.skip("no PostgreSQL server binaries under /usr/lib/postgresql (Debian: postgresql)")
    import psycopg2

    from devkit.sample_data import write_changes
    from extract.warehouse import connect
    from night import transform
    from night.build_state import IncrementalPlan
    from night.reference import load_reference
    from night.tasks import extract_source, parse_as_of

    root = tmp_path_factory.mktemp("incremental_pg")
    landing = root / "landing"
    future_deal = land_sample(sample, landing)
    config = _canonical(root / "duckdb", landing)
    cluster = PgCluster(bin_dir).start()
    try:
        # One database name (as the other PostgreSQL tests): dbt parses the project once per
        # target and database in a test process.
        dsn = {"host": "127.0.0.1", "port": cluster.port, "user": cluster.user, "dbname": DB}

        def build(as_of, incremental=None):
            full = () if incremental else ("--full-refresh",)
            transform.dbt_command(
                config,
                parse_as_of(as_of),
                (*transform.NIGHT_BUILD, *full),
                target="postgres",
                staged_types=["canonical_csv"],
                extra_vars=incremental.dbt_vars() if incremental else None,
                extra_env={
                    "CRM_PG_HOST": "127.0.0.1",
                    "CRM_PG_PORT": str(cluster.port),
                    "CRM_PG_USER": cluster.user,
                    "CRM_PG_DBNAME": DB,
                },
            )

        def tables():
            pg = psycopg2.connect(**dsn)
            try:
                with pg.cursor() as cur:
                    found = {}
                    for table in (*TABLES, "intermediate.int_changed_deals"):
                        cur.execute(f"select * from {table}")
                        kept = [
                            i
                            for i, column in enumerate(cur.description)
                            if column.name not in BOOKKEEPING
                        ]
                        rows = [tuple(row[i] for i in kept) for row in cur.fetchall()]
                        found[table] = sorted(rows, key=lambda r: [(v is None, str(v)) for v in r])
                    return found
            finally:
                pg.close()

        # night 1: landed in DuckDB, copied, built in full
        extract_source("demo_crm", as_of=parse_as_of(NIGHT_1), config=config)
        con = connect(config.warehouse_path)
        load_reference(con, config)
        last_batch = con.execute("select max(batch_id) from raw._batches").fetchall()[0][0]
        con.close()
        cluster.create_database(DB)
        copy_raw_to_postgres(config.warehouse_path, dsn)
        build(NIGHT_1)
        # night 2: the changes landed, the raw layer copied again, built incrementally
        write_changes(landing, landing, fraction=0.1, night="20260701", since="2026-07-01")
        extract_source("demo_crm", as_of=parse_as_of(NIGHT_2), config=config)
        copy_raw_to_postgres(config.warehouse_path, dsn, schemas=("raw",))
        plan = IncrementalPlan(changed_since_batch=last_batch, previous_as_of="2026-07-01 00:00:00")
        build(NIGHT_2, plan)
        incremental = tables()
        # the reference: night 2's data built in full, in a new database of the same name
        cluster.drop_database(DB)
        cluster.create_database(DB)
        copy_raw_to_postgres(config.warehouse_path, dsn)
        build(NIGHT_2)
        full = tables()
        yield (
            {"incremental": incremental, "full": full},
            expected_changed_deals(landing, future_deal)[0],
        )
    finally:
        cluster.stop()


def test_postgres_rebuilt_exactly_the_changed_deals(databases):
    """The same set as on DuckDB, worked out from the files (test_incremental_night)."""
    built, expected = databases
    changed = built["incremental"]["intermediate.int_changed_deals"]
    assert {deal_id for (deal_id,) in changed} == expected


@pytest.mark.parametrize("table", TABLES)
def test_postgres_incremental_table_equals_the_full_build(databases, table):
    built, _ = databases
    full = built["full"][table]
    assert built["incremental"][table] == full
    assert full
