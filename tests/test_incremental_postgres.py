"""The incremental night on a real PostgreSQL: the same dbt project, built in full as of
night 1, then incrementally after night 2's changes landed, equals a full build of night
2's data in another database, table for table (tests/test_incremental_night.py does the
same on DuckDB, with the data described there)."""

from __future__ import annotations

import duckdb
import pytest
from test_incremental_night import NIGHT_1, NIGHT_2, PER_DEAL, _canonical, land_sample

from pg_cluster import PgCluster, copy_raw_to_postgres, pg_bin

pytestmark = [pytest.mark.postgres, pytest.mark.slow(seconds=20)]

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
    """Database `incremental` (night 1 in full, night 2 incremental) and `full` (night 2 in
    full); yields a function reading a table's rows from either, and the changed deals."""
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
    land_sample(sample, landing)
    config = _canonical(root / "duckdb", landing)
    cluster = PgCluster(bin_dir).start()
    try:
        dsn = {"host": "127.0.0.1", "port": cluster.port, "user": cluster.user}

        def build(dbname, as_of, incremental=None):
            transform.dbt_command(
                config,
                parse_as_of(as_of),
                transform.NIGHT_BUILD
                if incremental
                else (*transform.NIGHT_BUILD, "--full-refresh"),
                target="postgres",
                staged_types=["canonical_csv"],
                extra_vars=incremental.dbt_vars() if incremental else None,
                extra_env={
                    "CRM_PG_HOST": "127.0.0.1",
                    "CRM_PG_PORT": str(cluster.port),
                    "CRM_PG_USER": cluster.user,
                    "CRM_PG_DBNAME": dbname,
                },
            )

        # night 1: landed in DuckDB, copied, built in full
        extract_source("demo_crm", as_of=parse_as_of(NIGHT_1), config=config)
        con = connect(config.warehouse_path)
        load_reference(con, config)
        last_batch = con.execute("select max(batch_id) from raw._batches").fetchall()[0][0]
        con.close()
        cluster.create_database("incremental")
        copy_raw_to_postgres(config.warehouse_path, {**dsn, "dbname": "incremental"})
        build("incremental", NIGHT_1)
        # night 2: the changes landed, the raw layer copied again, built incrementally
        write_changes(landing, landing, fraction=0.1, night="20260701", since="2026-07-01")
        extract_source("demo_crm", as_of=parse_as_of(NIGHT_2), config=config)
        copy_raw_to_postgres(
            config.warehouse_path, {**dsn, "dbname": "incremental"}, schemas=("raw",)
        )
        plan = IncrementalPlan(changed_since_batch=last_batch, previous_as_of="2026-07-01 00:00:00")
        build("incremental", NIGHT_2, plan)
        # the reference: night 2's data built in full
        cluster.create_database("full")
        copy_raw_to_postgres(config.warehouse_path, {**dsn, "dbname": "full"})
        build("full", NIGHT_2)

        def rows(dbname, table):
            pg = psycopg2.connect(**dsn, dbname=dbname)
            try:
                with pg.cursor() as cur:
                    cur.execute(f"select * from {table}")
                    return sorted(cur.fetchall(), key=lambda r: [(v is None, str(v)) for v in r])
            finally:
                pg.close()

        deals = duckdb.connect(str(config.warehouse_path), read_only=True)
        total = deals.sql("select count(distinct trim(deal_id)) from raw.canonical_csv__deals")
        yield rows, total.fetchall()[0][0]
        deals.close()
    finally:
        cluster.stop()


def test_postgres_rebuilt_a_few_deals(databases):
    rows, total = databases
    changed = rows("incremental", "intermediate.int_changed_deals")
    assert 30 < len(changed) < 0.25 * total


@pytest.mark.parametrize("table", TABLES)
def test_postgres_incremental_table_equals_the_full_build(databases, table):
    rows, _ = databases
    full = rows("full", table)
    assert rows("incremental", table) == full
    assert full
