"""The same dbt project on a real PostgreSQL gives the same hand-computed figures."""

from __future__ import annotations

import pytest

from golden_marts import GRAIN, mart_differences
from pg_cluster import PgCluster, copy_raw_to_postgres, pg_bin

pytestmark = [pytest.mark.postgres, pytest.mark.slow(seconds=11)]


@pytest.fixture(scope="module")
def postgres_marts(golden_night, golden_as_of):
    """Build the project on a throwaway PostgreSQL cluster from the golden raw layer."""
    bin_dir = pg_bin()
    if bin_dir is None:
        pytest.skip("no PostgreSQL server binaries under /usr/lib/postgresql (Debian: postgresql)")
    import psycopg2

    from night import transform

    config, _ = golden_night
    cluster = PgCluster(bin_dir).start()
    try:
        cluster.create_database("warehouse")
        dsn = {
            "host": "127.0.0.1",
            "port": cluster.port,
            "user": cluster.user,
            "dbname": "warehouse",
        }
        copy_raw_to_postgres(config.warehouse_path, dsn)
        transform.dbt_command(
            config,
            golden_as_of,
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
        marts = {}
        with con.cursor() as cur:
            for mart in GRAIN:
                cur.execute(f"select * from marts.{mart}")
                marts[mart] = ([d[0] for d in cur.description], cur.fetchall())
        con.close()
        yield marts
    finally:
        cluster.stop()


@pytest.mark.parametrize("mart", sorted(GRAIN))
def test_postgres_mart_equals_hand_computed_figures(postgres_marts, mart):
    columns, rows = postgres_marts[mart]
    assert mart_differences(mart, columns, rows) == []
