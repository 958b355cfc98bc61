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

import fcntl
import logging
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from night.build_state import last_build
from night.config import PipelineConfig
from night.transform import format_as_of

log = logging.getLogger(__name__)

MARTS_SCHEMA = "marts"
# DuckDB 1.0's storage format: readable by every DuckDB from 1.0 on.
STORAGE_VERSION = "v1.0.0"


def publish(config: PipelineConfig, *, as_of: datetime, run_id: str, force: bool = False) -> dict:
    """Copy the marts into a fresh file and swap it in; return what was published.

    When the published file already holds the marts of the warehouse's last build (same
    build fingerprint, night/build_state.py), nothing is copied, unless `force`. A night
    older than the published one (a backfill) never replaces it: its marts go to
    `<publish_dir>/backfill/<name>.<as-of>.duckdb` instead, and the log says so.

    One publish at a time per warehouse (a lock file in its state folder): the temp files
    of a publish that was killed are then known to be dead, and are removed.
    """
    config.state_dir.mkdir(parents=True, exist_ok=True)
    with (config.state_dir / "publish.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _remove_dead_temp_files(config.publish_dir)
        return _publish(config, as_of=as_of, run_id=run_id, force=force)


def _remove_dead_temp_files(folder: Path) -> None:
    """Temp files (and their WAL) that a killed publish left behind."""
    for sub in (folder, folder / "backfill"):
        for path in [*sub.glob(".*.tmp"), *sub.glob(".*.tmp.wal")]:
            log.info("removing %s, left by a publish that did not finish", path)
            path.unlink(missing_ok=True)


def _publish(config: PipelineConfig, *, as_of: datetime, run_id: str, force: bool) -> dict:
    target = config.published_path
    target.parent.mkdir(parents=True, exist_ok=True)
    published_as_of, published_fingerprint = _published_info(target)
    if published_as_of is not None and published_as_of > format_as_of(as_of):
        backfill = target.parent / "backfill" / f"{target.stem}.{as_of:%Y%m%dT%H%M%S}.duckdb"
        log.warning(
            "%s holds a newer night (as of %s) than this one (as of %s): it stays published; "
            "this night's marts go to %s",
            target,
            published_as_of,
            format_as_of(as_of),
            backfill,
        )
        target = backfill
        target.parent.mkdir(parents=True, exist_ok=True)
        published_fingerprint = _published_info(target)[1]
    fingerprint = _warehouse_fingerprint(config)
    if not force and fingerprint is not None and fingerprint == published_fingerprint:
        log.info("%s already holds these marts (as of %s): publish skipped", target, as_of)
        return {
            "published_path": str(target),
            "as_of": format_as_of(as_of),
            "skipped": True,
            "backfill": target != config.published_path,
        }
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
                      cast(? as timestamp) as published_at, ? as reporting_currency,
                      ? as build_fingerprint""",
            [
                run_id,
                format_as_of(as_of),
                datetime.now(UTC).replace(tzinfo=None),
                config.reporting_currency,
                fingerprint,
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
    return {
        "published_path": str(target),
        "tables": counts,
        "as_of": format_as_of(as_of),
        "backfill": target != config.published_path,
    }


def _warehouse_fingerprint(config: PipelineConfig) -> str | None:
    """The fingerprint of the warehouse's last passed build, if recorded."""
    con = duckdb.connect(str(config.warehouse_path), read_only=True)
    try:
        return last_build(con)
    finally:
        con.close()


def _published_info(target: Path) -> tuple[str | None, str | None]:
    """The as-of time ('YYYY-MM-DD HH:MM:SS') and build fingerprint of a published file's
    marts; None for what it does not have."""
    if not target.exists():
        return None, None
    con = duckdb.connect(str(target), read_only=True)
    try:
        columns = {
            row[0]
            for row in con.execute(
                """select column_name from information_schema.columns
                   where table_schema = 'meta' and table_name = 'publish_info'"""
            ).fetchall()
        }
        if "as_of_at" not in columns:
            return None, None
        fingerprint = "build_fingerprint" if "build_fingerprint" in columns else "null"
        as_of_at, built = con.execute(
            f"select strftime(as_of_at, '%Y-%m-%d %H:%M:%S'), {fingerprint} from meta.publish_info"
        ).fetchall()[0]
        return as_of_at, built
    finally:
        con.close()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
