"""Publish the marts to the file BI tools read, atomically.

The warehouse file is dbt's workspace; BI tools never open it. After `dbt build` has
passed, every table of the `marts` schema is copied into a new DuckDB file next to the
published one, written in the storage format of DuckDB 1.0 (BI drivers that bundle
DuckDB 1.x can open it), synced to disk, and renamed over the published file. A rename is
atomic: a reader opens either the old file or the new one, never a half-written one, and a
reader that already has the old file open keeps reading it. A night that fails before
this step leaves yesterday's file in place.
"""

from __future__ import annotations

import logging
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from night.config import PipelineConfig
from night.transform import format_as_of

log = logging.getLogger(__name__)

MARTS_SCHEMA = "marts"
# DuckDB 1.0's storage format: readable by every DuckDB from 1.0 on.
STORAGE_VERSION = "v1.0.0"


def publish(config: PipelineConfig, *, as_of: datetime, run_id: str) -> dict:
    """Copy the marts into a fresh file and swap it in; return what was published."""
    target = config.published_path
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    con = duckdb.connect()
    try:
        con.execute(f"attach '{config.warehouse_path}' as warehouse (read_only)")
        tables = [
            row[0]
            for row in con.execute(
                """select table_name from information_schema.tables
                   where table_catalog = 'warehouse' and table_schema = ?
                     and table_type = 'BASE TABLE'
                   order by table_name""",
                [MARTS_SCHEMA],
            ).fetchall()
        ]
        if not tables:
            raise RuntimeError(f"{config.warehouse_path}: no tables in schema {MARTS_SCHEMA}")
        con.execute(f"attach '{tmp}' as published (storage_version '{STORAGE_VERSION}')")
        con.execute(f"create schema published.{MARTS_SCHEMA}")
        counts = {}
        for table in tables:
            con.execute(
                f"""create table published.{MARTS_SCHEMA}."{table}" as
                    select * from warehouse.{MARTS_SCHEMA}."{table}" order by all"""
            )
            counts[table] = con.execute(
                f'select count(*) from published.{MARTS_SCHEMA}."{table}"'
            ).fetchall()[0][0]
        con.execute("create schema published.meta")
        con.execute(
            """create table published.meta.publish_info as
               select ? as run_id, cast(? as timestamp) as as_of_at,
                      cast(? as timestamp) as published_at, ? as reporting_currency""",
            [
                run_id,
                format_as_of(as_of),
                datetime.now(UTC).replace(tzinfo=None),
                config.reporting_currency,
            ],
        )
        con.execute("detach published")
    except BaseException:
        con.close()
        tmp.unlink(missing_ok=True)
        raise
    con.close()
    _fsync(tmp)
    os.replace(tmp, target)
    _fsync(target.parent)
    log.info("published %d marts to %s (as of %s)", len(tables), target, format_as_of(as_of))
    return {"published_path": str(target), "tables": counts, "as_of": format_as_of(as_of)}


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
