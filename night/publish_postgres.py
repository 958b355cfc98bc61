"""Publish the marts into a PostgreSQL schema too, for BI tools that speak PostgreSQL.

Most BI tools (Metabase, Superset, Looker, Power BI, Tableau) connect to PostgreSQL
natively. When the config names a PostgreSQL target (`publish: postgres:`), every night
that publishes its DuckDB file also copies the same marts, from that file, into the
target database:

1. into a fresh schema `<schema>__incoming` (tables, rows, the dbt descriptions as table
   and column comments, SELECT granted to the read-only BI role), committed;
2. then, in one transaction holding every live table exclusively, last night's tables
   move out of `<schema>` and tonight's in: a reader's statement sees last night's tables
   or tonight's, never a mix, and never a missing table (see _swap);
3. last night's tables are dropped.

The connection comes from an Airflow connection or an environment variable holding a
libpq connection string, never from the config file. A target that already holds the
marts of the same build (its `publish_info` table) is left alone unless forced.
"""

from __future__ import annotations

import io
import json
import logging
import os
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from extract.credentials import airflow_connection
from night.config import PipelineConfig, PostgresTarget

log = logging.getLogger(__name__)

MARTS_SCHEMA = "marts"


class PostgresPublishError(RuntimeError):
    """The PostgreSQL target cannot be reached or written; the message says which."""


@dataclass(frozen=True)
class _Table:
    name: str
    columns: list[tuple[str, str]]  # (name, PostgreSQL type)


def publish_postgres(
    config: PipelineConfig, published: Path, *, run_id: str, force: bool = False
) -> dict:
    """Copy the marts of the published DuckDB file into the PostgreSQL target and swap
    them in; return what was done."""
    import psycopg2

    target = config.publish_postgres
    assert target is not None
    src = duckdb.connect(str(published), read_only=True)
    try:
        fingerprint, as_of_at = src.execute(
            "select build_fingerprint, as_of_at from meta.publish_info"
        ).fetchall()[0]
        try:
            pg = psycopg2.connect(connection_string(target))
        except psycopg2.Error as exc:
            raise PostgresPublishError(
                f"PostgreSQL target ({_where(target)}): cannot connect: {exc}".strip()
            ) from None
        try:
            if not force and fingerprint and _published_fingerprint(pg, target) == fingerprint:
                log.info("PostgreSQL schema %s already holds these marts: skipped", target.schema)
                return {"schema": target.schema, "skipped": True}
            tables = _tables(src)
            descriptions = _descriptions(config)
            incoming = f"{target.schema}__incoming"
            with pg, pg.cursor() as cur:
                _load(cur, src, incoming, tables, descriptions, target)
                cur.execute(
                    f"""create table "{incoming}".publish_info (
                            run_id text, as_of_at timestamp, published_at timestamp,
                            reporting_currency text, build_fingerprint text)"""
                )
                cur.execute(
                    f'insert into "{incoming}".publish_info values (%s, %s, %s, %s, %s)',
                    [
                        run_id,
                        as_of_at,
                        datetime.now(UTC).replace(tzinfo=None),
                        config.reporting_currency,
                        fingerprint,
                    ],
                )
                _grant(cur, incoming, target)
            _swap(pg, target)
        finally:
            pg.close()
    finally:
        src.close()
    log.info("published %d marts to PostgreSQL schema %s", len(tables), target.schema)
    return {"schema": target.schema, "tables": len(tables), "skipped": False}


def connection_string(target: PostgresTarget) -> str:
    """The libpq connection string of the target: from its Airflow connection, else from
    its environment variable."""
    if target.airflow_conn_id:
        conn = airflow_connection(
            target.airflow_conn_id, who="PostgreSQL publish", error=PostgresPublishError
        )
        parts = {
            "host": conn.host,
            "port": conn.port,
            "user": conn.login,
            "password": conn.password,
            "dbname": conn.schema,
        }
        return " ".join(f"{k}={_quote(str(v))}" for k, v in parts.items() if v)
    dsn = os.environ.get(target.dsn_env_var)
    if not dsn:
        raise PostgresPublishError(
            f"no PostgreSQL connection for publish: set the environment variable "
            f"{target.dsn_env_var} (a libpq connection string) or name an Airflow "
            "connection in publish.postgres.airflow_conn_id"
        )
    return dsn


def _where(target: PostgresTarget) -> str:
    if target.airflow_conn_id:
        return f"Airflow connection {target.airflow_conn_id!r}"
    return f"${target.dsn_env_var}"


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _published_fingerprint(pg: Any, target: PostgresTarget) -> str | None:
    with pg, pg.cursor() as cur:
        cur.execute("select to_regclass(%s)", [f'"{target.schema}".publish_info'])
        if cur.fetchone()[0] is None:
            return None
        cur.execute(f'select build_fingerprint from "{target.schema}".publish_info')
        row = cur.fetchone()
        return row[0] if row else None


def _tables(src: duckdb.DuckDBPyConnection) -> list[_Table]:
    names = [
        r[0]
        for r in src.execute(
            """select table_name from information_schema.tables
               where table_schema = ? order by table_name""",
            [MARTS_SCHEMA],
        ).fetchall()
    ]
    tables = []
    for name in names:
        columns = src.execute(
            """select column_name, data_type from information_schema.columns
               where table_schema = ? and table_name = ? order by ordinal_position""",
            [MARTS_SCHEMA, name],
        ).fetchall()
        tables.append(_Table(name, [(c, pg_type(t)) for c, t in columns]))
    return tables


def pg_type(duckdb_type: str) -> str:
    """The PostgreSQL type holding a DuckDB column's values exactly."""
    if duckdb_type.startswith("DECIMAL"):
        return duckdb_type.replace("DECIMAL", "numeric")
    types = {
        "VARCHAR": "text",
        "BIGINT": "bigint",
        "INTEGER": "integer",
        "SMALLINT": "smallint",
        "HUGEINT": "numeric(38, 0)",
        "DOUBLE": "double precision",
        "FLOAT": "real",
        "BOOLEAN": "boolean",
        "DATE": "date",
        "TIMESTAMP": "timestamp",
        "TIMESTAMP WITH TIME ZONE": "timestamptz",
    }
    if duckdb_type not in types:
        raise PostgresPublishError(f"no PostgreSQL type for DuckDB type {duckdb_type}")
    return types[duckdb_type]


def copy_table(
    cur: Any, src: duckdb.DuckDBPyConnection, source: str, target: str, columns: list[str]
) -> None:
    """Rows of DuckDB table `source` into PostgreSQL table `target` (same columns), with
    COPY in text format (values exact: decimals as written, NULL as \\N)."""
    buffer = io.StringIO()
    cols = ", ".join(f'"{c}"' for c in columns)
    for row in src.execute(f"select {cols} from {source}").fetchall():
        buffer.write("\t".join(_copy_text(v) for v in row) + "\n")
    buffer.seek(0)
    cur.copy_expert(f"copy {target} ({cols}) from stdin", buffer)


def _copy_text(value: object) -> str:
    if value is None:
        return r"\N"
    if isinstance(value, float):
        return repr(value)
    text = str(value)
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _load(
    cur: Any,
    src: duckdb.DuckDBPyConnection,
    schema: str,
    tables: list[_Table],
    descriptions: dict[str, tuple[str, dict[str, str]]],
    target: PostgresTarget,
) -> None:
    cur.execute(f'drop schema if exists "{schema}" cascade')
    cur.execute(f'create schema "{schema}"')
    for table in tables:
        ddl = ", ".join(f'"{name}" {kind}' for name, kind in table.columns)
        qualified = f'"{schema}"."{table.name}"'
        cur.execute(f"create table {qualified} ({ddl})")
        copy_table(
            cur, src, f'{MARTS_SCHEMA}."{table.name}"', qualified, [c for c, _ in table.columns]
        )
        description, columns = descriptions.get(table.name, ("", {}))
        if description:
            cur.execute(f"comment on table {qualified} is %s", [description])
        for name, _ in table.columns:
            if columns.get(name):
                cur.execute(f'comment on column {qualified}."{name}" is %s', [columns[name]])


def _grant(cur: Any, schema: str, target: PostgresTarget) -> None:
    """The read-only BI role may read the schema's tables, nothing more."""
    if not target.reader_role:
        return
    role = target.reader_role
    cur.execute("select 1 from pg_roles where rolname = %s", [role])
    if cur.fetchone() is None:
        cur.execute(f'create role "{role}" nologin')
    cur.execute(f'grant usage on schema "{schema}" to "{role}"')
    cur.execute(f'grant select on all tables in schema "{schema}" to "{role}"')


def _swap(pg: Any, target: PostgresTarget) -> None:
    """Move tonight's tables into the live schema and last night's out, in one transaction,
    then drop last night's.

    A statement resolves its table names one after the other, so renaming schemas would let
    a reader's statement take one table from each night. Instead the swap first holds every
    live table exclusively: it waits for no reader longer than a moment (and gives up and
    tries again rather than deadlock with one that is halfway through its tables), and
    readers arriving meanwhile wait for the commit, then find tonight's tables.
    """
    live, incoming, previous = (
        target.schema,
        f"{target.schema}__incoming",
        f"{target.schema}__previous",
    )
    deadline = time.monotonic() + SWAP_TIMEOUT
    while True:
        try:
            with pg, pg.cursor() as cur:
                _move_tables(cur, live, incoming, previous)
            break
        except psycopg2_lock_errors() as exc:
            if time.monotonic() > deadline:
                raise PostgresPublishError(
                    f"schema {live}: readers held its tables for {SWAP_TIMEOUT:.0f} s; "
                    f"tonight's marts wait in {incoming}: {exc}"
                ) from None
            time.sleep(random.uniform(0.05, 0.25))
    with pg, pg.cursor() as cur:
        cur.execute(f'drop schema if exists "{previous}" cascade')
        cur.execute(f'drop schema if exists "{incoming}" cascade')


SWAP_TIMEOUT = 300.0


def psycopg2_lock_errors() -> tuple[type[Exception], ...]:
    import psycopg2.errors

    return (psycopg2.errors.LockNotAvailable, psycopg2.errors.DeadlockDetected)


def _move_tables(cur: Any, live: str, incoming: str, previous: str) -> None:
    cur.execute("select 1 from pg_namespace where nspname = %s", [live])
    if cur.fetchone() is None:
        cur.execute(f'alter schema "{incoming}" rename to "{live}"')
        return
    cur.execute("set local lock_timeout = '200ms'")
    current = _table_names(cur, live)
    if current:
        names = ", ".join(f'"{live}"."{t}"' for t in current)
        cur.execute(f"lock table {names} in access exclusive mode")
    cur.execute(f'drop schema if exists "{previous}" cascade')
    cur.execute(f'create schema "{previous}"')
    for table in current:
        cur.execute(f'alter table "{live}"."{table}" set schema "{previous}"')
    for table in _table_names(cur, incoming):
        cur.execute(f'alter table "{incoming}"."{table}" set schema "{live}"')


def _table_names(cur: Any, schema: str) -> list[str]:
    cur.execute(
        "select tablename from pg_tables where schemaname = %s order by tablename", [schema]
    )
    return [r[0] for r in cur.fetchall()]


def _descriptions(config: PipelineConfig) -> dict[str, tuple[str, dict[str, str]]]:
    """Each mart's dbt description and its columns' (from the build's manifest)."""
    manifest = config.state_dir / "dbt_target_duckdb" / "manifest.json"
    if not manifest.exists():
        log.warning("%s not found: the PostgreSQL marts get no comments", manifest)
        return {}
    nodes = json.loads(manifest.read_text(encoding="utf-8")).get("nodes", {})
    out = {}
    for node in nodes.values():
        if node.get("resource_type") == "model" and node.get("schema") == MARTS_SCHEMA:
            columns = {
                name: column.get("description", "")
                for name, column in node.get("columns", {}).items()
            }
            out[node["name"]] = (node.get("description", ""), columns)
    return out
