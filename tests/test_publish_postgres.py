"""Publishing to PostgreSQL: the marts land in a schema BI tools read with a read-only role,
equal to the DuckDB marts, with the dbt descriptions as comments; readers querying during
twenty publishes never fail and never see two nights in one statement."""

from __future__ import annotations

import shutil
import threading
from datetime import timedelta
from decimal import Decimal

import duckdb
import pytest

from conftest import write_golden_config
from pg_cluster import PgCluster, pg_bin

pytestmark = [pytest.mark.postgres, pytest.mark.slow(seconds=22)]

DSN_VAR = "CRM_TEST_BI_DSN"


@pytest.fixture(scope="module")
def cluster():
    bin_dir = pg_bin()
    if bin_dir is None:
        pytest.skip("no PostgreSQL server binaries under /usr/lib/postgresql (Debian: postgresql)")
    cluster = PgCluster(bin_dir).start()
    cluster.create_database("bi")
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def nights(cluster, tmp_path_factory, golden_as_of):
    """The golden night and the one a month later, published to DuckDB and PostgreSQL."""
    import os

    from night.config import load_config
    from night.tasks import run_night

    os.environ[DSN_VAR] = f"host=127.0.0.1 port={cluster.port} user={cluster.user} dbname=bi"
    root = tmp_path_factory.mktemp("pg-publish")
    path = write_golden_config(root)
    path.write_text(
        path.read_text()
        + f"publish:\n  postgres:\n    schema: funnel\n    dsn_env_var: {DSN_VAR}\n"
    )
    config = load_config(path)
    files = {}
    for run_id, as_of in (("june", golden_as_of), ("july", golden_as_of + timedelta(days=30))):
        result = run_night(as_of=as_of, run_id=run_id, config=config)
        assert result["published"]["postgres"] == {
            "schema": "funnel",
            "tables": len(result["published"]["tables"]),
            "skipped": False,
        }
        files[run_id] = root / f"{run_id}.duckdb"
        shutil.copyfile(config.published_path, files[run_id])
    yield config, files
    os.environ.pop(DSN_VAR, None)


def _connect(cluster, user=None):
    import psycopg2

    return psycopg2.connect(
        host="127.0.0.1", port=cluster.port, user=user or cluster.user, dbname="bi"
    )


def _rows(rows):
    # DuckDB and PostgreSQL give the same Python values (Decimal, datetime, float, ...).
    return sorted(rows, key=repr)


def test_postgres_marts_equal_the_duckdb_marts(cluster, nights):
    config, files = nights
    duck = duckdb.connect(str(files["july"]), read_only=True)
    pg = _connect(cluster)
    try:
        tables = [
            r[0]
            for r in duck.execute(
                "select table_name from information_schema.tables where table_schema = 'marts'"
            ).fetchall()
        ]
        assert len(tables) >= 12
        with pg.cursor() as cur:
            cur.execute("select run_id from funnel.publish_info")
            assert cur.fetchall() == [("july",)]
            for table in tables:
                cur.execute(f"select * from funnel.{table}")
                pg_rows = cur.fetchall()
                duck_rows = duck.execute(f"select * from marts.{table}").fetchall()
                assert _rows(pg_rows) == _rows(duck_rows), table
                assert [d[0] for d in cur.description] == [
                    c[0] for c in duck.execute(f"describe marts.{table}").fetchall()
                ]
            # Money stays exact: numeric, not float.
            cur.execute(
                "select amount_reporting from funnel.fct_deals where deal_id = 'golden:D10'"
            )
            assert cur.fetchall() == [(Decimal("4500.52"),)]
            # The dbt descriptions are the comments BI tools show.
            cur.execute("select obj_description('funnel.fct_deals'::regclass)")
            assert cur.fetchone()[0].startswith("One row per deal")
            cur.execute(
                """select col_description('funnel.fct_deals'::regclass, ordinal_position)
                   from information_schema.columns
                   where table_schema = 'funnel' and table_name = 'fct_deals'
                     and column_name = 'deal_id'"""
            )
            assert cur.fetchone()[0]
            # No schema is left behind by the swaps.
            cur.execute("select nspname from pg_namespace where nspname like 'funnel%'")
            assert cur.fetchall() == [("funnel",)]
    finally:
        pg.close()
        duck.close()


def test_the_bi_role_reads_and_cannot_write(cluster, nights):
    import psycopg2

    admin = _connect(cluster)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("create role metabase login in role bi_reader")
    admin.close()
    bi = _connect(cluster, user="metabase")
    bi.autocommit = True
    try:
        with bi.cursor() as cur:
            cur.execute("select count(*) from funnel.fct_deals")
            assert cur.fetchone() == (15,)
            for statement in (
                "delete from funnel.fct_deals",
                "create table funnel.mine (x int)",
                "drop table funnel.mart_cac",
            ):
                with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                    cur.execute(statement)
    finally:
        bi.close()


def test_readers_never_fail_nor_see_two_nights_during_twenty_publishes(cluster, nights):
    from night.publish_postgres import publish_postgres

    config, files = nights
    # What each night holds: the pipeline snapshot has one day per day up to its as-of.
    expected = {}
    for run_id, path in files.items():
        con = duckdb.connect(str(path), read_only=True)
        expected[run_id] = con.execute(
            """select (select count(*) from marts.mart_pipeline_snapshot),
                      (select count(*) from marts.fct_deals)"""
        ).fetchall()[0]
        con.close()
    assert expected["june"] != expected["july"]
    seen, errors, stop = [], [], threading.Event()

    def reader():
        con = _connect(cluster)
        con.autocommit = True
        with con.cursor() as cur:
            while not stop.is_set():
                try:
                    # One statement: its tables are resolved once, all from one night.
                    cur.execute(
                        """select p.run_id,
                                  (select count(*) from funnel.mart_pipeline_snapshot),
                                  (select count(*) from funnel.fct_deals)
                           from funnel.publish_info as p"""
                    )
                    seen.append(cur.fetchone())
                except Exception as exc:
                    errors.append(repr(exc))
        con.close()

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(20):
            run_id = ("june", "july")[i % 2]
            publish_postgres(config, files[run_id], run_id=run_id, force=True)
    finally:
        stop.set()
        thread.join()
    assert errors == []
    assert len({row[0] for row in seen}) == 2, "the reader saw both nights in turn"
    for run_id, snapshot_rows, deals in seen:
        assert (snapshot_rows, deals) == expected[run_id]


def test_an_unchanged_night_is_not_copied_again(nights):
    from night.publish_postgres import publish_postgres

    config, files = nights
    publish_postgres(config, files["july"], run_id="july", force=True)
    assert publish_postgres(config, files["july"], run_id="july") == {
        "schema": "funnel",
        "skipped": True,
    }
