"""Publish the marts to the file BI tools read, atomically.

The warehouse file is dbt's workspace; BI tools never open it. After `dbt build` has
passed, every table and view of the `marts` schema is copied into a new DuckDB file next
to the published one (a view's rows as a table), written in the storage format of DuckDB
1.0 (BI drivers that bundle DuckDB 1.x can open it), synced to disk, and renamed over the
published file. A rename is atomic: a reader opens either the old file or the new one,
never a half-written one, and a reader that already has the old file open keeps reading
it. A night that fails before this step leaves yesterday's file in place. After an
incremental build (docs/incremental.md) whose starting build is the published one, the
new file is a copy of the published file with the rebuilt deals' rows of the per-deal
marts replaced and the other marts copied whole: the same rows as a full copy, far less
to write. Row order in the file is no contract (BI queries order their results), so
marts are written unordered, in parallel.

A guard stands before the swap: a CRM export cut in half or an API token that lost
permissions gives a plausible but wrong funnel, so tonight's marts are compared with the
published ones (deal count, open pipeline amount, won amount of each closed month) and
publish refuses when one moves further than the config's `publish_guard` allows, naming
the figure and both values. An operator who knows the change is real accepts it for one
night (`accept_publish_guard`). A published night that was still loading a source (a
first load over several nights' API budgets, mart_data_quality) is no baseline: the guard
lets the next night through.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from night.build_state import last_build
from night.config import PipelineConfig, PublishGuard
from night.transform import format_as_of, per_deal_marts

log = logging.getLogger(__name__)

MARTS_SCHEMA = "marts"
# DuckDB 1.0's storage format: readable by every DuckDB from 1.0 on.
STORAGE_VERSION = "v1.0.0"


class PublishRefused(RuntimeError):
    """Tonight's marts moved further from the published ones than the guard allows."""


def publish(
    config: PipelineConfig,
    *,
    as_of: datetime,
    run_id: str,
    force: bool = False,
    accept_guard: bool = False,
) -> dict:
    """Copy the marts into a fresh file and swap it in; return what was published.

    When the published file already holds the marts of the warehouse's last build (same
    build fingerprint, night/build_state.py), nothing is copied, unless `force`. A night
    older than the published one (a backfill) never replaces it: its marts go to
    `<publish_dir>/backfill/<name>.<as-of>.duckdb` instead, and the log says so.

    One publish at a time per warehouse (a lock file in its state folder): the temp files
    of a publish that was killed are then known to be dead, and are removed.

    Raises PublishRefused when the marts crossed a threshold of the publish guard against
    the published night, unless `accept_guard` (the published file stays as it was).
    """
    config.state_dir.mkdir(parents=True, exist_ok=True)
    with (config.state_dir / "publish.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _remove_dead_temp_files(config.publish_dir)
        return _publish(config, as_of=as_of, run_id=run_id, force=force, accept=accept_guard)


def _remove_dead_temp_files(folder: Path) -> None:
    """Temp files (and their WAL) that a killed publish left behind."""
    for sub in (folder, folder / "backfill"):
        for path in [*sub.glob(".*.tmp"), *sub.glob(".*.tmp.wal")]:
            log.info("removing %s, left by a publish that did not finish", path)
            path.unlink(missing_ok=True)


def _publish(
    config: PipelineConfig, *, as_of: datetime, run_id: str, force: bool, accept: bool
) -> dict:
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
    fingerprint, started_from = _warehouse_build(config)
    if not force and fingerprint is not None and fingerprint == published_fingerprint:
        log.info("%s already holds these marts (as of %s): publish skipped", target, as_of)
        return {
            "published_path": str(target),
            "as_of": format_as_of(as_of),
            "skipped": True,
            "backfill": target != config.published_path,
        }
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    # An incremental build replaced some deals' rows of the build published in `target`:
    # the same deals' rows are replaced in a copy of it (the other marts are copied whole).
    in_part = (
        not force
        and target == config.published_path
        and published_fingerprint is not None
        and published_fingerprint == started_from
    )
    per_deal = (per_deal_marts(config) if in_part else None) or set()
    in_part = in_part and bool(per_deal)
    # Tables are sets: BI queries order their results, and a mart written from DuckDB's
    # threads in any row order is written much faster than one sorted or in order.
    con = duckdb.connect(config={"preserve_insertion_order": False})
    try:
        con.execute(f"attach '{config.warehouse_path}' as warehouse (read_only)")
        if target == config.published_path and published_as_of is not None:
            _guard(con, config, target, published_as_of, as_of=as_of, accept=accept)
        tables = _mart_tables(con, "warehouse")
        if not tables:
            raise RuntimeError(f"{config.warehouse_path}: no tables in schema {MARTS_SCHEMA}")
        if in_part:
            shutil.copyfile(target, tmp)
            con.execute(f"attach '{tmp}' as published")
            in_part = _mart_tables(con, "published") == tables
            if not in_part:  # the marts are not the same tables: a whole copy after all
                con.execute("detach published")
                tmp.unlink()
                per_deal = set()
        if not in_part:
            con.execute(f"attach '{tmp}' as published (storage_version '{STORAGE_VERSION}')")
            con.execute(f"create schema published.{MARTS_SCHEMA}")
        counts = {}
        for table in tables:
            if table in per_deal:
                changed = "select deal_id from warehouse.intermediate.int_changed_deals"
                con.execute(
                    f"""delete from published.{MARTS_SCHEMA}."{table}"
                        where deal_id in ({changed})"""
                )
                con.execute(
                    f"""insert into published.{MARTS_SCHEMA}."{table}"
                        select * from warehouse.{MARTS_SCHEMA}."{table}"
                        where deal_id in ({changed})"""
                )
            else:
                con.execute(f'drop table if exists published.{MARTS_SCHEMA}."{table}"')
                con.execute(
                    f'create table published.{MARTS_SCHEMA}."{table}" as '
                    f'select * from warehouse.{MARTS_SCHEMA}."{table}"'
                )
            counts[table] = con.execute(
                f'select count(*) from published.{MARTS_SCHEMA}."{table}"'
            ).fetchall()[0][0]
        con.execute("drop schema if exists published.meta cascade")
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
    log.info(
        "published %d marts to %s (as of %s%s)",
        len(tables),
        target,
        format_as_of(as_of),
        f"; the rows of {len(per_deal)} per-deal marts replaced for the deals rebuilt tonight"
        if in_part
        else "",
    )
    return {
        "published_path": str(target),
        "tables": counts,
        "as_of": format_as_of(as_of),
        "backfill": target != config.published_path,
        "in_part": in_part,
    }


def _mart_tables(con: duckdb.DuckDBPyConnection, catalog: str) -> list[str]:
    """The marts of a catalog: its tables and views (a view's rows are published as a
    table: fct_deals and fct_deal_stage_spells are views in the warehouse)."""
    return [
        row[0]
        for row in con.execute(
            """select table_name from information_schema.tables
               where table_catalog = ? and table_schema = ?
                 and table_type in ('BASE TABLE', 'VIEW')
               order by table_name""",
            [catalog, MARTS_SCHEMA],
        ).fetchall()
    ]


def _guard(
    con: duckdb.DuckDBPyConnection,
    config: PipelineConfig,
    published: Path,
    published_as_of: str,
    *,
    as_of: datetime,
    accept: bool,
) -> None:
    """Refuse to publish when tonight's figures moved past the guard's limits."""
    con.execute(f"attach '{published}' as previous (read_only)")
    try:
        if not _has_mart(con, "previous", "fct_deals"):
            return
        if _was_still_loading(con, "previous"):
            # A first load spread over nights (an API's daily budget): the published
            # figures were partial by design and said so; growing from them is expected.
            log.info(
                "publish guard skipped: the published night (as of %s) was still loading "
                "a source, so its figures are no baseline",
                published_as_of,
            )
            return
        before = _guard_figures(con, "previous", published_as_of)
        after = _guard_figures(con, "warehouse", published_as_of)
    finally:
        con.execute("detach previous")
    crossed = guard_crossings(before, after, config.publish_guard)
    if not crossed:
        return
    where = (
        f"tonight (as of {format_as_of(as_of)}) against the published night"
        f" (as of {published_as_of})"
    )
    if accept:
        log.warning(
            "publish guard crossed %s, accepted for this night: %s", where, "; ".join(crossed)
        )
        return
    raise PublishRefused(
        f"publish refused: {'; '.join(crossed)}, {where}. {published} stays as it was. "
        "If the change is real, run the night again with "
        '{"accept_publish_guard": true} in the run conf (or change publish_guard in '
        f"{config.path})."
    )


def _has_mart(con: duckdb.DuckDBPyConnection, catalog: str, table: str) -> bool:
    return bool(
        con.execute(
            """select count(*) from information_schema.tables
               where table_catalog = ? and table_schema = ? and table_name = ?""",
            [catalog, MARTS_SCHEMA, table],
        ).fetchall()[0][0]
    )


def _was_still_loading(con: duckdb.DuckDBPyConnection, catalog: str) -> bool:
    """The night published in `catalog` left an API source before the end of its first
    load (mart_data_quality's `sources_still_loading`)."""
    if not _has_mart(con, catalog, "mart_data_quality"):
        return False
    rows = con.execute(
        f"""select affected_rows from {catalog}.{MARTS_SCHEMA}.mart_data_quality
            where check_name = 'sources_still_loading'"""
    ).fetchall()
    return bool(rows and rows[0][0])


def _guard_figures(con: duckdb.DuckDBPyConnection, catalog: str, published_as_of: str) -> dict:
    """Deal count, open pipeline amount and won amount per month closed before the
    published night's month began (a whole month in both nights), from fct_deals."""
    deals, open_amount = con.execute(
        f"""select count(*), coalesce(sum(amount_reporting) filter (where status = 'open'), 0)
            from {catalog}.{MARTS_SCHEMA}.fct_deals"""
    ).fetchall()[0]
    won = con.execute(
        f"""select strftime(date_trunc('month', closed_at), '%Y-%m'), sum(amount_reporting)
            from {catalog}.{MARTS_SCHEMA}.fct_deals
            where status = 'won' and amount_reporting is not null
              and closed_at < date_trunc('month', cast(? as timestamp))
            group by 1""",
        [published_as_of],
    ).fetchall()
    return {"deals": deals, "open_pipeline": open_amount, "won": dict(won)}


def guard_crossings(before: dict, after: dict, guard: PublishGuard) -> list[str]:
    """Each figure that moved further than the guard allows, with both values."""
    crossed = []
    if guard.deal_count_drop is not None and before["deals"]:
        drop = (before["deals"] - after["deals"]) / before["deals"]
        if drop > guard.deal_count_drop:
            crossed.append(
                f"the deal count fell from {before['deals']:,} to {after['deals']:,}"
                f" ({-drop:+.1%}; the guard allows -{guard.deal_count_drop:.0%})"
            )
    if guard.open_pipeline_change is not None and before["open_pipeline"]:
        old, new = before["open_pipeline"], after["open_pipeline"]
        change = (new - old) / old
        if abs(change) > guard.open_pipeline_change:
            crossed.append(
                f"the open pipeline amount moved from {old:,.2f} to {new:,.2f}"
                f" ({change:+.1%}; the guard allows ±{guard.open_pipeline_change:.0%})"
            )
    if guard.won_amount_change is not None:
        for month, old in sorted(before["won"].items()):
            new = after["won"].get(month, 0)
            change = (new - old) / old if old else 0
            if abs(change) > guard.won_amount_change:
                crossed.append(
                    f"the won amount of closed month {month} moved from {old:,.2f} to"
                    f" {new:,.2f} ({change:+.1%}; the guard allows ±{guard.won_amount_change:.0%})"
                )
    return crossed


def _warehouse_build(config: PipelineConfig) -> tuple[str | None, str | None]:
    """The fingerprint of the warehouse's last passed build and of the build it continued
    from (an incremental one), None for what is not recorded."""
    con = duckdb.connect(str(config.warehouse_path), read_only=True)
    try:
        last = last_build(con)
    finally:
        con.close()
    return (last.fingerprint, last.continued_from) if last else (None, None)


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
