"""Landing API records in raw: written in batches as pages arrive, merged in one transaction.

A night of an API source stages every page in temp tables of the warehouse connection (so
memory stays flat however many records the CRM holds), gathering pages into inserts of up
to STAGE_FLUSH_RECORDS records (an insert costs about a millisecond whatever its size, and
Pipedrive answers one deal's history per request), and only once the whole window has
been read, one transaction replaces the raw rows whose merge key was re-read and records
the batch and the new high-water mark. A failure before that leaves raw as it was, and a
rerun of the night (or a backfill over several nights) merges to the same rows.

Fields a source declares typed (`fields`: a JSON path and its kind) are checked at the
merge as file values are at load (extract.file_formats): a record whose amount is not a
plain number or beyond the warehouse's, or whose date is not ISO-8601 or outside the
plausible window around the night's as-of, is quarantined with its endpoint, its place in
the night's reading, the field and the reason, and its earlier version leaves raw (the
CRM's current version is the bad one). A later good version clears the quarantine row.

A source too big for one night (a first load beyond the API's daily budget) merges in
chunks: each `merge` is its own transaction and moves the high-water mark of each stream
it carries (a stream: records read in the order of their cursor, e.g. deals by update
time). Until a night reads a stream to its end, `raw._api_loading` names it with the
cursor value it has loaded through, and the marts say so (mart_data_quality); the next
night continues from there.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import duckdb

from extract.file_formats import CANONICAL, Plausible, typed_select_items, typed_sql
from extract.warehouse import RAW_SCHEMA, RawObject

log = logging.getLogger(__name__)

API_COLUMNS = ("record_id", "merge_key", "record")
STAGING_MEMORY_LIMIT = "256MB"
# Records gathered in memory before one insert into the stage table: whichever comes first.
STAGE_FLUSH_RECORDS = 5000
STAGE_FLUSH_BYTES = 16 * 1024 * 1024


def api_object(table: str) -> RawObject:
    """The raw table of one API object: the record as JSON text, keyed for merging."""
    return RawObject(table=table, columns=API_COLUMNS, required_columns=())


def ensure_watermarks(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        f"""create table if not exists {RAW_SCHEMA}._api_watermarks (
                source_system varchar not null,
                raw_table varchar not null,
                high_water varchar not null,
                primary key (source_system, raw_table)
            )"""
    )


def watermark(con: duckdb.DuckDBPyConnection, source_system: str, stream: str) -> str | None:
    """The highest cursor value (e.g. update time) merged so far for a source's stream (by
    default a stream is named after its raw table)."""
    ensure_watermarks(con)
    rows = con.execute(
        f"""select high_water from {RAW_SCHEMA}._api_watermarks
            where source_system = ? and raw_table = ?""",
        [source_system, stream],
    ).fetchall()
    return rows[0][0] if rows else None


def mark_loading(
    con: duckdb.DuckDBPyConnection,
    source_system: str,
    streams: Sequence[str],
    *,
    as_of: datetime,
    reason: str,
) -> None:
    """Record streams a night left before their end (each loaded through its high-water
    mark, NULL: nothing yet), so the marts say the source is still loading."""
    con.execute("begin transaction")
    try:
        for stream in streams:
            _set_loading(con, source_system, stream, as_of, reason)
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise


def _set_loading(
    con: duckdb.DuckDBPyConnection, source_system: str, stream: str, as_of: datetime, reason: str
) -> None:
    con.execute(
        f"""insert or replace into {RAW_SCHEMA}._api_loading
            select ?, ?, (select high_water from {RAW_SCHEMA}._api_watermarks
                          where source_system = ? and raw_table = ?), ?, ?""",
        [source_system, stream, source_system, stream, as_of.replace(tzinfo=None), reason],
    )


@dataclass
class _Staged:
    obj: RawObject
    replace_all: bool
    fields: tuple[tuple[str, str], ...] = ()
    stream: str = ""  # the high-water mark's key (default: the raw table)
    rows: int = 0
    high_water: str | None = None
    # Records added but not inserted yet: (record_id, merge_key, record, endpoint, ordinal)
    # as five columns, and the records' size.
    pending: tuple[list, list, list, list, list] = field(
        default_factory=lambda: ([], [], [], [], [])
    )
    pending_bytes: int = 0


class ApiNight:
    """Stage one source's records for a night, then merge them into raw at once."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        source_system: str,
        plausible: Plausible | None = None,
    ) -> None:
        self.con = con
        self.source_system = source_system
        self.plausible = plausible
        self._staged: dict[str, _Staged] = {}
        self._ordinal = 0
        # Staged pages live in temp tables; a bounded buffer makes DuckDB spill them to
        # disk, so memory stays flat however many records the CRM holds.
        con.execute(f"set memory_limit = '{STAGING_MEMORY_LIMIT}'")
        ensure_watermarks(con)

    def _stage_table(self, obj: RawObject) -> str:
        return f"_stage_{obj.table}"

    def begin(
        self,
        obj: RawObject,
        *,
        replace_all: bool = False,
        fields: tuple[tuple[str, str], ...] = (),
        stream: str | None = None,
    ) -> None:
        """Start staging an object; `replace_all` swaps the whole table (small lookups).
        `fields`: (JSON path such as `properties.amount`, kind) of the values checked at
        the merge (kinds of extract.file_formats: number, date, timestamp). `stream`: the
        key of its high-water mark when one raw table is read as several streams (e.g.
        live and archived deals); default the raw table's name."""
        self.con.execute(f"drop table if exists {self._stage_table(obj)}")
        self.con.execute(
            f"""create temp table {self._stage_table(obj)} (
                    record_id varchar, merge_key varchar, record varchar,
                    _source_file varchar, _row_number bigint)"""
        )
        self._staged[obj.table] = _Staged(obj, replace_all, tuple(fields), stream or obj.table)

    def add(
        self,
        obj: RawObject,
        records: Iterable[dict],
        *,
        endpoint: str,
        record_id: Callable[[dict], object],
        merge_key: Callable[[dict], object] | None = None,
        cursor_value: Callable[[dict], str | None] | None = None,
    ) -> int:
        """Stage one batch (a page) of records; returns how many."""
        staged = self._staged[obj.table]
        ids, keys, bodies, endpoints, ordinals = staged.pending
        added = 0
        for record in records:
            self._ordinal += 1
            rid = str(record_id(record))
            ids.append(rid)
            keys.append(str(merge_key(record)) if merge_key else rid)
            # The record as the API gave it; sort_keys only fixes the text for reruns.
            body = json.dumps(record, sort_keys=True, ensure_ascii=False)
            bodies.append(body)
            staged.pending_bytes += len(body)
            endpoints.append(endpoint)
            ordinals.append(self._ordinal)
            added += 1
            if cursor_value is not None:
                value = cursor_value(record)
                if value and (staged.high_water is None or value > staged.high_water):
                    staged.high_water = value
        if len(ids) >= STAGE_FLUSH_RECORDS or staged.pending_bytes >= STAGE_FLUSH_BYTES:
            self._flush(staged)
        staged.rows += added
        return added

    def _flush(self, staged: _Staged) -> None:
        """Insert the records gathered in memory into the stage table."""
        if staged.pending[0]:
            self.con.execute(
                f"""insert into {self._stage_table(staged.obj)}
                    select unnest(?), unnest(?), unnest(?), unnest(?), unnest(?)""",
                list(staged.pending),
            )
        staged.pending = ([], [], [], [], [])
        staged.pending_bytes = 0

    def discard(self) -> None:
        """Forget what is staged (a chunk cut short): raw stays as the last merge left it."""
        for staged in self._staged.values():
            self.con.execute(f"drop table if exists {self._stage_table(staged.obj)}")
        self._staged = {}

    def merge(self, *, as_of: datetime | None = None, complete: bool = True) -> dict[str, int]:
        """Replace re-read rows in raw, in one transaction; return rows merged per table.

        A chunk of a longer read (`complete=False`, with the night's `as_of`) records its
        streams in raw._api_loading, loaded through their new high-water marks; a merge
        that completes its streams clears them. Staging starts afresh afterwards (`begin`)."""
        if not complete and as_of is None:
            raise ValueError("a chunk's merge needs the night's as_of")
        now = datetime.now(UTC).replace(tzinfo=None)
        merged: dict[str, int] = {}
        con = self.con
        for staged in self._staged.values():
            self._flush(staged)
        con.execute("begin transaction")
        try:
            for staged in self._staged.values():
                obj, stage = staged.obj, self._stage_table(staged.obj)
                batch_id = con.execute(f"select nextval('{RAW_SCHEMA}._batch_seq')").fetchall()[0][
                    0
                ]
                if staged.replace_all:
                    con.execute(
                        f"delete from {obj.qualified} where _source_system = ?",
                        [self.source_system],
                    )
                else:
                    con.execute(
                        f"""delete from {obj.qualified}
                            where _source_system = ?
                              and merge_key in (select merge_key from {stage})""",
                        [self.source_system],
                    )
                # A record read twice in one night (it changed between pages): the last wins.
                con.execute(
                    f"""create temp table _latest as
                        select * from {stage}
                        qualify row_number() over (
                            partition by record_id order by _row_number desc
                        ) = 1"""
                )
                quarantined = self._check(staged, batch_id, now)
                con.execute(
                    f"""insert into {obj.qualified}
                        select record_id, merge_key, record, ?, ?, ?, _source_file, _row_number
                        from _checked where _reason is null""",
                    [self.source_system, batch_id, now],
                )
                con.execute("drop table _latest; drop table _checked")
                merged[obj.table] = (
                    con.execute(f"select count(distinct record_id) from {stage}").fetchall()[0][0]
                    - quarantined
                )
                con.execute(
                    f"insert into {RAW_SCHEMA}._batches values (?, ?, ?, ?, ?, ?, ?, ?, null)",
                    [
                        batch_id,
                        self.source_system,
                        obj.table,
                        f"api:{obj.table}",
                        "",
                        merged[obj.table],
                        quarantined,
                        now,
                    ],
                )
                if staged.high_water is not None:
                    con.execute(
                        f"""insert or replace into {RAW_SCHEMA}._api_watermarks
                            values (?, ?, greatest(?, coalesce((
                                select high_water from {RAW_SCHEMA}._api_watermarks
                                where source_system = ? and raw_table = ?), ?)))""",
                        [
                            self.source_system,
                            staged.stream,
                            staged.high_water,
                            self.source_system,
                            staged.stream,
                            staged.high_water,
                        ],
                    )
                if not complete and staged.high_water is not None:
                    _set_loading(con, self.source_system, staged.stream, as_of, "read in chunks")
                elif complete:
                    con.execute(
                        f"""delete from {RAW_SCHEMA}._api_loading
                            where source_system = ? and stream = ?""",
                        [self.source_system, staged.stream],
                    )
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
        finally:
            con.execute("drop table if exists _latest; drop table if exists _checked")
            self.discard()
        log.info("%s: merged %s", self.source_system, merged)
        return merged

    def _check(self, staged: _Staged, batch_id: int, now: datetime) -> int:
        """`_checked`: each record of `_latest` with its `_reason` (NULL: fine) from its typed
        fields; quarantine those with one, clearing earlier quarantine rows of every re-read key.
        Returns how many were quarantined."""
        con, table = self.con, staged.obj.table
        fields = [(f"_f{i}", kind, path) for i, (path, kind) in enumerate(staged.fields)]
        typed = [
            typed_sql(kind, alias, path, CANONICAL, self.plausible) for alias, kind, path in fields
        ]
        if fields:
            extracted = ", ".join(
                f"json_extract_string(record, '$.{path}') as \"{alias}\""
                for alias, _, path in fields
            )
            values, readings, reasons = typed_select_items(typed)
            con.execute(
                f"""create temp table _checked as
                    with f as (select *, {extracted} from _latest),
                    v as (select *, {", ".join(values)} from f),
                    r as (select *{"".join(", " + r for r in readings)} from v)
                    select record_id, merge_key, record, _source_file, _row_number,
                           nullif(concat_ws('; ', {reasons}), '') as _reason
                    from r"""
            )
        else:
            con.execute(
                "create temp table _checked as"
                " select *, cast(null as varchar) as _reason from _latest"
            )
        con.execute(
            f"""delete from {RAW_SCHEMA}._quarantine
                where _source_system = ? and raw_table = ?
                  and record_key in (select merge_key from _checked)""",
            [self.source_system, table],
        )
        con.execute(
            f"""insert into {RAW_SCHEMA}._quarantine by position
                select ?, ?, ?, _source_file, ?, _row_number, _reason, record, merge_key
                from _checked where _reason is not null""",
            [self.source_system, batch_id, now, table],
        )
        (bad,) = con.execute("select count(*) from _checked where _reason is not null").fetchone()
        if bad:
            log.warning(
                "%s: %d %s record(s) quarantined (a value outside any real range or not typed "
                "as declared): see raw._quarantine",
                self.source_system,
                bad,
                table,
            )
        return bad
