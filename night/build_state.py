"""What the marts in the warehouse were built from, so a night whose inputs did not change
since the last successful build skips the build (and publish skips an identical copy).

The inputs of a build: the raw layer (each raw table's rows and batches, and the batch
log: a reload of an unchanged file adds no batch), the reference files' bytes, the dbt
project's files, the as-of time, the reporting currency, the configured source types and
the target. Recorded in `meta.last_build` only after a build passed; forgotten before a
build starts, so a failed build is never taken as done.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

import duckdb

from night.config import PipelineConfig

SCHEMA = "meta"
TABLE = f"{SCHEMA}.last_build"


def build_fingerprint(
    con: duckdb.DuckDBPyConnection,
    config: PipelineConfig,
    *,
    as_of: str,
    project: str,
    target: str = "duckdb",
) -> str:
    """A digest of everything a build reads; equal digests give equal marts."""
    raw = {
        "_batches": list(
            con.execute(
                """select count(*), coalesce(max(batch_id), 0), count(superseded_by),
                          coalesce(sum(rows_loaded), 0), coalesce(sum(rows_quarantined), 0)
                   from raw._batches"""
            ).fetchall()[0]
        )
    }
    # Every raw table too: a source may write rows that are not a file's or an API
    # window's batch (e.g. the ad spend sources' campaign channels, from the config).
    for (table,) in con.execute(
        """select table_name from information_schema.columns
           where table_schema = 'raw' and column_name = '_batch_id' order by table_name"""
    ).fetchall():
        raw[table] = list(
            con.execute(
                f"select count(*), coalesce(max(_batch_id), 0), coalesce(sum(_batch_id), 0) "
                f'from raw."{table}"'
            ).fetchall()[0]
        )
    # Streams still loading (mart_data_quality names them): a night that finishes one
    # changes the marts even when its last pages brought no new rows.
    raw["_api_loading"] = [
        [str(value) for value in row]
        for row in con.execute(
            "select source_system, stream, loaded_through, as_of from raw._api_loading order by all"
        ).fetchall()
    ]
    reference = {
        name: hashlib.sha256(path.read_bytes()).hexdigest()
        for name, path in sorted(config.reference.items())
    }
    state = {
        "raw": raw,
        "reference": reference,
        "project": project,
        "as_of": as_of,
        "reporting_currency": config.reporting_currency,
        "source_types": sorted({source.type for source in config.sources}),
        "target": target,
    }
    return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()


def last_build(con: duckdb.DuckDBPyConnection) -> str | None:
    """The fingerprint of the last build that passed, if its marts are still there."""
    exists = con.execute(
        """select count(*) from information_schema.tables
           where table_schema = ? and table_name = 'last_build'""",
        [SCHEMA],
    ).fetchall()[0][0]
    if not exists:
        return None
    marts = con.execute(
        "select count(*) from information_schema.tables where table_schema = 'marts'"
    ).fetchall()[0][0]
    row = con.execute(f"select fingerprint from {TABLE}").fetchall()
    return row[0][0] if row and marts else None


def forget_build(con: duckdb.DuckDBPyConnection) -> None:
    """Before a build: whatever happens to it, the old record no longer describes the marts."""
    con.execute(f"create schema if not exists {SCHEMA}")
    con.execute(
        f"create table if not exists {TABLE} (fingerprint varchar, as_of varchar, "
        "built_at timestamp)"
    )
    con.execute(f"delete from {TABLE}")


def record_build(
    con: duckdb.DuckDBPyConnection, fingerprint: str, *, as_of: str, built_at: datetime
) -> None:
    """After a build passed: the marts are those of this fingerprint."""
    forget_build(con)
    con.execute(f"insert into {TABLE} values (?, ?, ?)", [fingerprint, as_of, built_at])
