"""What the marts in the warehouse were built from, so a night whose inputs did not change
since the last successful build skips the build (and publish skips an identical copy), and
a night whose raw layer only grew since then rebuilds only the deals that changed
(`incremental_plan`, docs/incremental.md).

The inputs of a build: the raw layer (each raw table's rows and batches, and the batch
log: a reload of an unchanged file adds no batch), the reference files' bytes, the dbt
project's files, the as-of time, the reporting currency, the configured source types and
the target. Recorded in `meta.last_build` only after a build passed; forgotten before a
build starts, so a failed build (whose incremental tables may be half replaced) is never
taken as done, and the night after it is a full refresh.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

import duckdb

from night.config import PipelineConfig

SCHEMA = "meta"
TABLE = f"{SCHEMA}.last_build"
COLUMNS = (
    "fingerprint varchar, as_of varchar, built_at timestamp, state varchar, continued_from varchar"
)
# The source types whose staging models rebuild only tonight's keys (macros/incremental.sql:
# `raw_rows_of_new_keys` or `raw_rows_of_new_batches`, strategy `replace`). A night with a
# source of another type rebuilds in full.
INCREMENTAL_SOURCE_TYPES = frozenset({"canonical_csv"})


@dataclass(frozen=True)
class IncrementalPlan:
    """An incremental night: rebuild the deals with raw rows in batches after
    `changed_since_batch` (and those the as-of move since `previous_as_of` touches)."""

    changed_since_batch: int
    previous_as_of: str

    def dbt_vars(self) -> dict:
        return {
            "changed_since_batch": self.changed_since_batch,
            "previous_as_of": self.previous_as_of,
        }


def fingerprint_of(state: dict) -> str:
    """A digest of everything a build reads (build_state); equal digests give equal marts."""
    return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()


def build_state(
    con: duckdb.DuckDBPyConnection,
    config: PipelineConfig,
    *,
    as_of: str,
    project: str,
    target: str = "duckdb",
) -> dict:
    """Everything a build reads, summed up: the raw tables' row counts and batches, the
    reference files' digests, the project, as-of time, currency, source types, target."""
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
    return {
        "raw": raw,
        "reference": reference,
        "project": project,
        "as_of": as_of,
        "reporting_currency": config.reporting_currency,
        "source_types": sorted({source.type for source in config.sources}),
        "target": target,
    }


def incremental_plan(
    con: duckdb.DuckDBPyConnection, state: dict, previous: dict | None
) -> tuple[IncrementalPlan | None, str]:
    """Whether tonight can rebuild only the changed deals, given the last passed build's
    state (`previous`); returns the plan, or None and why not (logged by the night).

    Incremental when the last build's marts are there and everything but the raw rows and
    the as-of time is as it was, the as-of time did not go back, every source type stages
    incrementally, and the raw layer only grew: each raw table still holds exactly the
    rows it had up to the last build's highest batch (a corrected file that replaced a
    batch, or an API merge that replaced rows, removes some: that night is a full refresh).
    """
    if previous is None:
        return None, "no earlier build to continue from"
    for part in ("reference", "project", "reporting_currency", "source_types", "target"):
        if state[part] != previous[part]:
            return None, f"the {part.replace('_', ' ')} changed since the last build"
    not_incremental = sorted(set(state["source_types"]) - INCREMENTAL_SOURCE_TYPES)
    if not_incremental:
        return None, f"source types {', '.join(not_incremental)} rebuild in full"
    if state["as_of"] < previous["as_of"]:
        return None, f"as-of {state['as_of']} is before the last build's ({previous['as_of']})"
    since = previous["raw"]["_batches"][1]
    for table, stats in previous["raw"].items():
        if table in ("_batches", "_api_loading"):
            continue
        if table not in state["raw"]:
            return None, f"raw.{table} is gone"
        count = stats[0]
        kept = con.execute(
            f'select count(*) from raw."{table}" where _batch_id <= ?', [since]
        ).fetchall()[0][0]
        if kept != count:
            return None, (
                f"raw.{table} lost or replaced rows since the last build "
                f"({count} rows up to batch {since}, now {kept})"
            )
    return IncrementalPlan(changed_since_batch=since, previous_as_of=previous["as_of"]), ""


class LastBuild(NamedTuple):
    """The record of the last build that passed: its fingerprint, its state (None in a
    record of an older layout) and the build it continued from (an incremental one)."""

    fingerprint: str
    state: dict | None
    continued_from: str | None


def last_build(con: duckdb.DuckDBPyConnection) -> LastBuild | None:
    """The last build that passed, if its marts are still there."""
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
    columns = {
        row[0]
        for row in con.execute(
            """select column_name from information_schema.columns
               where table_schema = ? and table_name = 'last_build'""",
            [SCHEMA],
        ).fetchall()
    }
    picked = ", ".join(
        name if name in columns else "null" for name in ("fingerprint", "state", "continued_from")
    )
    row = con.execute(f"select {picked} from {TABLE}").fetchall()
    if not row or not marts:
        return None
    fingerprint, state, started_from = row[0]
    return LastBuild(fingerprint, json.loads(state) if state else None, started_from)


def forget_build(con: duckdb.DuckDBPyConnection) -> None:
    """Before a build: whatever happens to it, the old record no longer describes the marts."""
    con.execute(f"create schema if not exists {SCHEMA}")
    con.execute(f"create table if not exists {TABLE} ({COLUMNS})")
    con.execute(f"delete from {TABLE}")


def record_build(
    con: duckdb.DuckDBPyConnection,
    state: dict,
    *,
    built_at: datetime,
    continued_from: str | None = None,
) -> None:
    """After a build passed: the marts are those of this state. `continued_from`: the
    fingerprint of the build an incremental one replaced deals of (publish then replaces
    the same deals in a file holding that build's marts)."""
    con.execute(f"drop table if exists {TABLE}")  # a record of an older layout, too
    forget_build(con)
    con.execute(
        f"insert into {TABLE} values (?, ?, ?, ?, ?)",
        [
            fingerprint_of(state),
            state["as_of"],
            built_at,
            json.dumps(state, sort_keys=True),
            continued_from,
        ],
    )
