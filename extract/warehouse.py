"""The raw layer in DuckDB: load bookkeeping, quarantine, and the bulk CSV load of file sources."""

from __future__ import annotations

import hashlib
import logging
import re
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from itertools import repeat
from pathlib import Path

import duckdb

from extract.errors import LoadError
from extract.file_formats import (
    CANONICAL,
    FileFormat,
    Plausible,
    as_utf8,
    header_cells,
    typed_select_items,
    typed_sql,
)

log = logging.getLogger(__name__)

RAW_SCHEMA = "raw"
LOAD_MEMORY_LIMIT = "1GB"
LOAD_COLUMNS = ("_source_system", "_batch_id", "_loaded_at", "_source_file", "_row_number")


@dataclass(frozen=True)
class Check:
    """A row rule: `bad` is a SQL condition over the file's text columns, `reason` a SQL text."""

    bad: str
    reason: str


@dataclass(frozen=True)
class Wide:
    """Columns named by a pattern (e.g. one `Date entered "<stage>"` column per stage),
    gathered into one raw JSON column `{header: normalized value}`, each value typed."""

    column: str  # the raw column holding the JSON object
    pattern: str  # regex over header names
    kind: str = "text"


@dataclass(frozen=True)
class RawObject:
    """One source object landed as one raw table of text columns.

    `columns` are the raw columns; a file's header names them (case-insensitive), or
    `labels` gives the header a column has in the file (`("deal_name", "Deal Name")`).
    `kinds` types columns (extract.file_formats: number, date, timestamp): their values
    are checked and normalized under the source's file format before the `checks` run.
    """

    table: str
    columns: tuple[str, ...]
    required_columns: tuple[str, ...]
    checks: tuple[Check, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    kinds: tuple[tuple[str, str], ...] = ()
    wide: Wide | None = None

    @property
    def qualified(self) -> str:
        return f"{RAW_SCHEMA}.{self.table}"

    def label(self, column: str) -> str:
        """The header a column has in the file."""
        return dict(self.labels).get(column, column)

    def kind(self, column: str) -> str:
        return dict(self.kinds).get(column, "text")

    @property
    def file_columns(self) -> tuple[str, ...]:
        """The columns read from a header cell of their own (not the wide JSON column)."""
        return tuple(c for c in self.columns if not self.wide or c != self.wide.column)


@dataclass
class FileLoad:
    """What loading one file did, for the task log and XCom."""

    source_file: str
    table: str
    action: str  # loaded | replaced | unchanged
    rows_loaded: int = 0
    rows_quarantined: int = 0
    batch_id: int | None = None


@dataclass
class LoadReport:
    """All file loads of one source in one run."""

    source_system: str
    files: list[FileLoad] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)  # still being written: next night
    rejected: list[str] = field(default_factory=list)  # set aside, with the reason
    api_rows: dict[str, int] = field(default_factory=dict)  # raw table -> records merged
    # API streams the night left before their end (e.g. the daily budget spent), with why:
    # the marts say so (raw._api_loading) and the next night continues them.
    still_loading: list[str] = field(default_factory=list)

    @property
    def rows_loaded(self) -> int:
        return sum(f.rows_loaded for f in self.files) + sum(self.api_rows.values())

    @property
    def rows_quarantined(self) -> int:
        return sum(f.rows_quarantined for f in self.files)

    def summary(self) -> dict:
        return {
            "source_system": self.source_system,
            "files_loaded": sum(f.action in ("loaded", "replaced") for f in self.files),
            "files_unchanged": sum(f.action == "unchanged" for f in self.files),
            "rows_loaded": self.rows_loaded,
            "rows_quarantined": self.rows_quarantined,
            "errors": list(self.errors),
            "ignored_files": list(self.ignored),
            "waiting_files": list(self.waiting),
            "rejected_files": list(self.rejected),
            "api_rows": dict(self.api_rows),
            "still_loading": list(self.still_loading),
        }


def connect(
    path: Path | str, *, read_only: bool = False, lock_timeout: float = 600.0
) -> duckdb.DuckDBPyConnection:
    """Open the warehouse with UTC as the session time zone (timestamps are UTC everywhere).

    DuckDB lets one process write a file at a time; extract tasks of several sources may
    run in parallel on a scheduler, so a locked file is waited for, up to `lock_timeout`.
    """
    if not read_only:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + lock_timeout
    while True:
        try:
            con = duckdb.connect(str(path), read_only=read_only)
            break
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise
            log.info("%s is locked by another task, waiting", path)
            time.sleep(1.0)
    con.execute("set TimeZone = 'UTC'")
    return con


def ensure_raw_schema(con: duckdb.DuckDBPyConnection, objects: Sequence[RawObject]) -> None:
    """Create the raw schema, the bookkeeping tables and the given raw tables if missing."""
    con.execute(f"create schema if not exists {RAW_SCHEMA}")
    con.execute(f"create sequence if not exists {RAW_SCHEMA}._batch_seq start 1")
    con.execute(
        f"""
        create table if not exists {RAW_SCHEMA}._batches (
            batch_id bigint primary key,
            source_system varchar not null,
            raw_table varchar not null,
            source_file varchar not null,
            file_sha256 varchar not null,
            rows_loaded bigint not null,
            rows_quarantined bigint not null,
            loaded_at timestamp not null,
            superseded_by bigint
        )"""
    )
    con.execute(
        f"""
        create table if not exists {RAW_SCHEMA}._quarantine (
            _source_system varchar not null,
            _batch_id bigint not null,
            _loaded_at timestamp not null,
            _source_file varchar not null,
            raw_table varchar not null,
            line_number bigint,
            reason varchar not null,
            record varchar
        )"""
    )
    # API streams a night left before their end (extract.api_load): the marts say so.
    con.execute(
        f"""
        create table if not exists {RAW_SCHEMA}._api_loading (
            source_system varchar not null,
            stream varchar not null,
            loaded_through varchar,
            as_of timestamp not null,
            reason varchar not null,
            primary key (source_system, stream)
        )"""
    )
    # The content hash of each file a landing folder holds, with the file's status when it
    # was read (extract.landing.file_identities): a file still there, unchanged, the next
    # night is not read again. A cache: its rows are no data and no night reads them else.
    con.execute(
        f"""
        create table if not exists {RAW_SCHEMA}._landing_hashes (
            source_system varchar not null,
            source_file varchar not null,
            file_status varchar not null,
            file_sha256 varchar not null,
            primary key (source_system, source_file)
        )"""
    )
    # The merge key of an API record (files have lines instead): a later good version of
    # the record clears its quarantine row.
    con.execute(f"alter table {RAW_SCHEMA}._quarantine add column if not exists record_key varchar")
    for obj in objects:
        cols = ",\n            ".join(f'"{c}" varchar' for c in obj.columns)
        con.execute(
            f"""
            create table if not exists {obj.qualified} (
                {cols},
                _source_system varchar not null,
                _batch_id bigint not null,
                _loaded_at timestamp not null,
                _source_file varchar not null,
                _row_number bigint not null
            )"""
        )


def file_sha256(path: Path) -> str:
    """Content hash of a file, read in chunks: the identity of one version of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_header(path: Path, fmt: FileFormat = CANONICAL) -> list[str]:
    """The header row of a CSV file under its format (a UTF-8 BOM tolerated), trimmed.

    The header is line `fmt.header_line` (1 unless a preamble precedes it, as in the
    report name and date range lines of an ad platform's report download)."""
    # Only the header line is decoded: a bad byte further down is a row for quarantine.
    with path.open("rb") as fh:
        for _ in range(fmt.header_line):
            first = fh.readline()
    return header_cells(first, fmt, path)


def load_csv_file(
    con: duckdb.DuckDBPyConnection,
    *,
    source_system: str,
    obj: RawObject,
    path: Path,
    source_file: str,
    fmt: FileFormat = CANONICAL,
    fixed: Mapping[str, str] | None = None,
    stop_line: int | None = None,
    sha: str | None = None,
    plausible: Plausible | None = None,
) -> FileLoad:
    """Bulk-load one CSV file into its raw table, idempotently.

    A file is identified by (source system, raw table, source_file). The same
    content loaded again changes nothing; new content under the same name is a
    corrected version and replaces every row (and quarantined row) the earlier
    version loaded, in one transaction. Values are read under the source's file format
    (`fmt`); rows with a value that does not parse, rows failing the object's checks, and
    lines DuckDB cannot parse go to raw._quarantine with line and reason. `fixed` fills
    columns the file has no header for with one value for the whole file. `stop_line`:
    the file's lines from that one on are a trailer the caller recognized (a report
    export's footer) and are not read; the file's identity is still its whole content.
    `sha`: the file's SHA-256 when the caller has it already (one read of a large file).
    `plausible`: the range typed values must fall in (extract.file_formats.Plausible); a
    value outside it is the row's reason, like one that does not parse.
    """
    fixed = dict(fixed or {})
    sha = sha or file_sha256(path)
    previous = _current_batch(con, source_system, obj, source_file)
    if previous and previous[1] == sha:
        return FileLoad(source_file, obj.table, "unchanged", batch_id=previous[0])

    layout = _file_layout(path, fmt, obj, fixed)
    loaded_at = datetime.now(UTC).replace(tzinfo=None)
    readable, lines = _readable(con, path, fmt, stop_line)

    con.execute("begin transaction")
    try:
        batch_id = con.execute(f"select nextval('{RAW_SCHEMA}._batch_seq')").fetchall()[0][0]
        batch = _Batch(source_system, obj, source_file, batch_id, loaded_at)
        _drop_scratch(con)
        before_first = _scan(con, readable, fmt, layout)
        _number_and_check(
            con, lines, _as_read(obj, fixed), fmt, layout.wide, before_first, plausible, fixed
        )
        if previous:
            _supersede(con, source_system, obj, source_file, batch_id)
        _merge(con, batch)
        _quarantine(con, batch, layout.wide, before_first)
        loaded, quarantined = _record_batch(con, batch, sha)
        con.execute("commit")
    except duckdb.Error as exc:
        con.execute("rollback")
        raise LoadError(f"{path}: cannot be loaded: {exc}") from exc
    except BaseException:
        con.execute("rollback")
        raise
    finally:
        _drop_scratch(con)
        if readable != path:
            readable.unlink(missing_ok=True)
    return FileLoad(
        source_file,
        obj.table,
        "replaced" if previous else "loaded",
        rows_loaded=loaded,
        rows_quarantined=quarantined,
        batch_id=batch_id,
    )


@dataclass(frozen=True)
class _Batch:
    """One load of one file: the bookkeeping every row it writes carries."""

    source_system: str
    obj: RawObject
    source_file: str
    batch_id: int
    loaded_at: datetime

    @property
    def meta(self) -> list:
        """The values of the raw tables' load columns (_row_number aside), in their order."""
        return [self.source_system, self.batch_id, self.loaded_at, self.source_file]


@dataclass(frozen=True)
class _Layout:
    """Where the object's columns are in one file: the file's header read against the
    object, as the SQL that reads them."""

    header: list[str]
    select_cols: str  # c<i> as "<column>", for every file column and each wide column
    wide: list[tuple[int, str]]  # (position, header) of the columns gathered into JSON


def _file_layout(path: Path, fmt: FileFormat, obj: RawObject, fixed: Mapping[str, str]) -> _Layout:
    """Read the header: fail on a missing or repeated required column, warn on extra ones,
    and map every column of the object to its position (or its fixed value, or null)."""
    header = read_header(path, fmt)
    lowered = [h.lower() for h in header]
    wanted = {obj.label(c).lower(): c for c in obj.file_columns if c not in fixed}
    missing = [
        obj.label(c)
        for c in obj.required_columns
        if c not in fixed and obj.label(c).lower() not in lowered
    ]
    if missing:
        others = [d for d in ";,\t|" if d != fmt.delimiter and len(header) == 1 and d in header[0]]
        hint = (
            f"; the header reads as one column: delimiter {others[0]!r}, not {fmt.delimiter!r}?"
            if others
            else ""
        )
        raise LoadError(
            f"{path}: missing required column(s) {', '.join(missing)} "
            f"(header has: {', '.join(header)}){hint}"
        )
    duplicated = sorted({h for h in lowered if lowered.count(h) > 1 and h in wanted})
    if duplicated:
        raise LoadError(f"{path}: column(s) {', '.join(duplicated)} appear more than once")
    wide = [
        (i, name)
        for i, name in enumerate(header)
        if obj.wide and name.lower() not in wanted and re.search(obj.wide.pattern, name)
    ]
    extra = [h for i, h in enumerate(header) if h.lower() not in wanted and (i, h) not in wide]
    if extra:
        log.warning("%s: ignoring column(s) not in the format: %s", path, ", ".join(extra))

    positions = {wanted[name]: i for i, name in enumerate(lowered) if name in wanted}
    select_cols = ", ".join(
        [
            f'c{positions[c]} as "{c}"'
            if c in positions
            else f'cast({_sql_text(fixed[c]) if c in fixed else "null"} as varchar) as "{c}"'
            for c in obj.file_columns
        ]
        + [f'c{i} as "_wide{i}"' for i, _ in wide]
    )
    return _Layout(header=header, select_cols=select_cols, wide=wide)


def _readable(
    con: duckdb.DuckDBPyConnection, path: Path, fmt: FileFormat, stop_line: int | None
) -> tuple[Path, Records]:
    """The file as DuckDB reads it, with its records: UTF-8, without the caller's trailer
    and with one kind of line break (a temp copy when any of these changes it), read under
    a bounded memory buffer."""
    readable = as_utf8(path, fmt)
    # The file's rows live in temp tables while they are checked: a bounded buffer makes
    # DuckDB spill them to disk, so memory stays flat however large the export.
    con.execute(f"set memory_limit = '{LOAD_MEMORY_LIMIT}'")
    # Every row carries its line (its record's ordinal in the file, see _scan), and nothing
    # reads raw rows in the order they were written: DuckDB may write them from its
    # threads unordered (1,000,000 deals: 27.6 s -> 23.1 s, raw rows identical).
    con.execute("set preserve_insertion_order = false")
    if stop_line is not None:
        readable = _head(readable, stop_line - 1, delete=readable != path)
    return _one_line_break(readable, fmt.quote, delete=readable != path)


def _one_line_break(path: Path, quote: str, *, delete: bool) -> tuple[Path, Records]:
    """The file and its records; when it mixes line breaks (CRLF, LF, a lone CR), a temp
    copy where each of them is LF, so that DuckDB, which reads one kind per file, splits
    every record, and a line is what an editor shows. `delete` removes `path`, itself a
    temp copy, when a copy replaces it."""
    records = scan_records(path, quote)
    if not records.mixed_breaks:
        return path, records
    log.info("%s mixes line breaks (CRLF, LF, CR): read with LF for each", path)
    handle = tempfile.NamedTemporaryFile("wb", suffix=".csv", prefix="breaks-", delete=False)
    with path.open("rb") as src, handle as dst:
        carry = b""
        for chunk in iter(lambda: src.read(1 << 20), b""):
            chunk = carry + chunk
            # A CR at the end of a chunk may be the first half of a CRLF.
            carry = b"\r" if chunk.endswith(b"\r") else b""
            dst.write(_BREAK.sub(b"\n", chunk[: len(chunk) - len(carry)]))
        dst.write(_BREAK.sub(b"\n", carry))
    if delete:
        path.unlink(missing_ok=True)
    copy = Path(handle.name)
    return copy, scan_records(copy, quote)


_BREAK = re.compile(rb"\r\n?")


def _drop_scratch(con: duckdb.DuckDBPyConnection) -> None:
    """Drop the temp tables of a file's load, so each file starts (and leaves) clean."""
    for table in _SCRATCH:
        con.execute(f"drop table if exists {table}")


def _scan(con: duckdb.DuckDBPyConnection, path: Path, fmt: FileFormat, layout: _Layout) -> int:
    """Temp table `_read`: the file's records as text, in the file's order; the lines
    DuckDB cannot parse into `_rejects`. Returns the rowid before the first record's: a
    record's ordinal is its rowid minus that."""
    col_types = ", ".join(f"'c{i}': 'VARCHAR'" for i in range(len(layout.header)))
    # The file's order is kept for this statement only: read on every thread, the records
    # are written in order, so rowid numbers them (`with ordinality` reads on one thread:
    # 1,000,000 deals, 3.7 s -> 2.4 s). Nothing after it needs the order.
    con.execute("set preserve_insertion_order = true")
    try:
        # Text only (all columns VARCHAR): typed columns are normalized next, staging casts.
        con.execute(
            f"""
            create temp table _read as
            select {layout.select_cols}
            from read_csv(?, header = false, skip = {fmt.header_line},
                          columns = {{{col_types}}}, delim = {_sql_text(fmt.delimiter)},
                          quote = {_sql_text(fmt.quote)}, escape = {_sql_text(fmt.quote)},
                          strict_mode = true, store_rejects = true, rejects_table = '_rejects',
                          rejects_scan = '_reject_scans', auto_detect = false)
            """,
            [str(path)],
        )
    finally:
        con.execute("set preserve_insertion_order = false")
    # Rowids are consecutive from a base DuckDB picks (0, or another in a transaction).
    span = "select min(rowid), max(rowid), count(*) from _read"
    first, last, records = con.execute(span).fetchone()
    if records and last - first + 1 != records:
        raise LoadError(f"{path}: its records cannot be numbered (rowids {first}..{last})")
    return (first or 0) - 1


def _as_read(obj: RawObject, fixed: Mapping[str, str]) -> RawObject:
    """The object as the file's text is typed: without the kinds of the fixed columns."""
    # Fixed values are the pipeline's own (e.g. a snapshot time), not the file's text.
    return replace(obj, kinds=tuple((c, k) for c, k in obj.kinds if c not in fixed))


def _merge(con: duckdb.DuckDBPyConnection, batch: _Batch) -> None:
    """The rows without a reason into the raw table, with their load metadata."""
    obj = batch.obj
    cols = ", ".join(f'"{c}"' for c in obj.columns)
    con.execute(
        f"""insert into {obj.qualified} ({cols}, {", ".join(LOAD_COLUMNS)})
            select {cols}, ?, ?, ?, ?, _line from _incoming where _reason is null""",
        batch.meta,
    )


def _quarantine(
    con: duckdb.DuckDBPyConnection,
    batch: _Batch,
    wide: Sequence[tuple[int, str]],
    before_first: int,
) -> None:
    """Rows with a reason, and lines DuckDB could not parse, into raw._quarantine with
    their line, reason and record as written."""
    obj = batch.obj
    # The record as written: the file's text, from _read (only for rejected rows).
    as_written = [f'"{obj.label(c)}" := r."{c}"' for c in obj.file_columns]
    if obj.wide:
        cells = ", ".join(f'{_sql_text(name)}, r."_wide{i}"' for i, name in wide)
        as_written.append(f'"{obj.wide.column}" := json_object({cells})')
    con.execute(
        f"""insert into {RAW_SCHEMA}._quarantine by position
            select ?, ?, ?, ?, ?, i._line, i._reason,
                   to_json(struct_pack({", ".join(as_written)})), null
            from _incoming as i
            inner join _read as r on r.rowid - ? = i._ord
            where i._reason is not null""",
        [*batch.meta, obj.table, before_first],
    )
    con.execute(
        f"""insert into {RAW_SCHEMA}._quarantine by position
            select ?, ?, ?, ?, ?, coalesce(any_value(_units.file_line), _rejects.line),
                   arg_min(cast(error_type as varchar) || ': ' || error_message,
                           column_idx),
                   any_value(csv_line), null
            from _rejects
            left join _units on _units.unit = _rejects.line
            group by _rejects.line""",
        [*batch.meta, obj.table],
    )


def _record_batch(con: duckdb.DuckDBPyConnection, batch: _Batch, sha: str) -> tuple[int, int]:
    """The batch's row in raw._batches, with what it loaded and quarantined; returns both."""
    loaded, quarantined = con.execute(
        """select count(*) filter (where _reason is null),
                   count(*) filter (where _reason is not null)
                   + (select count(distinct line) from _rejects)
            from _incoming"""
    ).fetchall()[0]
    con.execute(
        f"insert into {RAW_SCHEMA}._batches values (?, ?, ?, ?, ?, ?, ?, ?, null)",
        [
            batch.batch_id,
            batch.source_system,
            batch.obj.table,
            batch.source_file,
            sha,
            loaded,
            quarantined,
            batch.loaded_at,
        ],
    )
    return loaded, quarantined


def reject_file(
    con: duckdb.DuckDBPyConnection,
    *,
    source_system: str,
    obj: RawObject,
    path: Path,
    source_file: str,
    reason: str,
    fmt: FileFormat = CANONICAL,
    sha: str | None = None,
) -> FileLoad:
    """Record a file that cannot be loaded at all: each of its records is quarantined with
    the file's reason and line, so loaded (0) + quarantined = the file's records."""
    readable, records = _one_line_break(path, fmt.quote, delete=False)
    wanted = {
        line
        for line, blank in zip(records.first_lines, records.blanks, strict=True)
        if line > fmt.header_line and not blank
    }
    texts: dict[int, str] = {}
    with readable.open("rb") as fh:
        for number, line in enumerate(fh, start=1):
            if number in wanted:
                texts[number] = line.rstrip(b"\r\n").decode(
                    "utf-8" if fmt.is_utf8 else fmt.encoding, errors="replace"
                )
    if readable != path:
        readable.unlink(missing_ok=True)
    loaded_at = datetime.now(UTC).replace(tzinfo=None)
    con.execute("begin transaction")
    try:
        batch_id = con.execute(f"select nextval('{RAW_SCHEMA}._batch_seq')").fetchall()[0][0]
        if texts:
            con.execute(
                f"""insert into {RAW_SCHEMA}._quarantine by position
                    select ?, ?, ?, ?, ?, unnest(?), ?, unnest(?), null""",
                [
                    source_system,
                    batch_id,
                    loaded_at,
                    source_file,
                    obj.table,
                    list(texts),
                    f"file rejected: {reason}",
                    list(texts.values()),
                ],
            )
        con.execute(
            f"insert into {RAW_SCHEMA}._batches values (?, ?, ?, ?, ?, 0, ?, ?, null)",
            [
                batch_id,
                source_system,
                obj.table,
                source_file,
                sha or file_sha256(path),
                len(texts),
                loaded_at,
            ],
        )
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return FileLoad(
        source_file, obj.table, "rejected", rows_quarantined=len(texts), batch_id=batch_id
    )


_SCRATCH = ("_read", "_units", "_shifts", "_blanks", "_incoming", "_rejects", "_reject_scans")


def _head(path: Path, lines: int, *, delete: bool) -> Path:
    """A temp copy of the file's first `lines` lines (the caller deletes it); `delete`
    removes `path`, itself a temp copy."""
    handle = tempfile.NamedTemporaryFile("wb", suffix=".csv", prefix="head-", delete=False)
    with path.open("rb") as src, handle as dst:
        for number, line in enumerate(src, start=1):
            if number > lines:
                break
            dst.write(line)
    if delete:
        path.unlink(missing_ok=True)
    return Path(handle.name)


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _current_batch(
    con: duckdb.DuckDBPyConnection, source_system: str, obj: RawObject, source_file: str
) -> tuple[int, str] | None:
    rows = con.execute(
        f"""select batch_id, file_sha256 from {RAW_SCHEMA}._batches
            where source_system = ? and raw_table = ? and source_file = ?
              and superseded_by is null""",
        [source_system, obj.table, source_file],
    ).fetchall()
    return rows[0] if rows else None


@dataclass(frozen=True)
class Records:
    """A file's record units (see scan_records), compactly: unit k starts on line
    k + offset, where the offset is that of the last shift at or before k (a record that
    spans lines shifts the next ones)."""

    units: int  # record units: records and blank lines, the header and preamble included
    shifts: tuple[tuple[int, int], ...]  # (unit, line - unit from that unit on)
    blank_units: tuple[int, ...]
    mixed_breaks: bool  # records end in more than one kind of line break, or a lone CR

    @property
    def first_lines(self) -> list[int]:
        """The line each unit starts on."""
        lines, next_shift, offset = [], 0, 0
        for unit in range(1, self.units + 1):
            while next_shift < len(self.shifts) and self.shifts[next_shift][0] <= unit:
                offset = self.shifts[next_shift][1]
                next_shift += 1
            lines.append(unit + offset)
        return lines

    @property
    def blanks(self) -> list[bool]:
        blank = set(self.blank_units)
        return [unit in blank for unit in range(1, self.units + 1)]


def scan_records(path: Path, quote: str = '"') -> Records:
    """The file's record units: for each, its first line in the file and whether blank.

    DuckDB numbers rejected records by "line", counting a quoted field that spans lines as
    one and counting blank lines; accepted records only carry their ordinal. To report the
    line a text editor shows, the file is also read as plain lines: a line starts a
    record (or is a blank line) when the quotes before it are balanced, and the n-th such
    line is DuckDB's line n. Read as bytes (the quote is one byte in UTF-8 and in every
    encoding a file source may declare), so no byte can make the scan fail.

    It also tells whether the records end in both CRLF and LF (a line break inside quotes
    is part of a value and does not count) or a line holds a lone CR, which an editor
    shows as a line break too.

    A file without blank lines or CRs whose quoted values each sit on one line (most
    machine-written exports) is counted in large blocks instead of line by line: each of
    its lines is a record.
    """
    mark = quote.encode()
    simple = _simple_lines(path, mark)
    if simple is not None:
        return Records(simple, ((1, 0),), (), False)
    shifts: list[tuple[int, int]] = [(1, 0)]
    blank_units: list[int] = []
    quotes = 0
    line_no = 0
    unit = 0
    ends: set[bytes] = set()
    lone_cr = False
    with path.open("rb") as fh:
        for line in fh:
            line_no += 1
            if quotes % 2 == 0:
                unit += 1
                if line_no - unit != shifts[-1][1]:
                    shifts.append((unit, line_no - unit))
                if not line.strip(b"\r\n"):
                    blank_units.append(unit)
            quotes += line.count(mark)
            if b"\r" in line:
                lone_cr = lone_cr or line.count(b"\r") > line.endswith(b"\r\n")
            if quotes % 2 == 0:
                ends.add(b"\r\n" if line.endswith(b"\r\n") else line[-1:])
    mixed = lone_cr or {b"\r\n", b"\n"} <= ends
    return Records(unit, tuple(shifts), tuple(blank_units), mixed)


def _simple_lines(path: Path, mark: bytes) -> int | None:
    """The number of lines of a file whose every line is a record (no CR, no blank line,
    and no quoted value spanning lines: an even number of quote characters on each line),
    counted in blocks; None for any other file."""
    lines = 0
    # From the last line break read (a file's first line follows an imagined one, so a
    # break that starts the file, or a block, after another is a blank line).
    rest = b"\n"
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            chunk = rest + block
            if b"\r" in block or b"\n\n" in chunk:
                return None
            cut = chunk.rfind(b"\n")
            if _odd_quotes(chunk[:cut], mark):
                return None
            lines += block.count(b"\n")
            rest = chunk[cut:]
    if _odd_quotes(rest, mark):
        return None
    return lines + (rest != b"\n")


def _odd_quotes(text: bytes, mark: bytes) -> bool:
    """Whether a line of the text holds an odd number of quote characters."""
    if mark not in text:
        return False
    return any(count & 1 for count in map(bytes.count, text.split(b"\n"), repeat(mark)))


def record_units(con: duckdb.DuckDBPyConnection, records: Records | None) -> None:
    """Temp table `_units` (unit, file_line, is_blank) from scan_records, built in SQL from
    the shifts (a handful, however long the file); empty for None (a file whose lines are
    its records, numbered without it)."""
    if records is None:
        con.execute("create temp table _units (unit bigint, file_line bigint, is_blank boolean)")
        return
    con.execute(
        "create temp table _shifts as select unnest(?) as unit, unnest(?) as offset_",
        [[u for u, _ in records.shifts], [o for _, o in records.shifts]],
    )
    con.execute(
        "create temp table _blanks as select unnest(?) as unit", [list(records.blank_units)]
    )
    con.execute(
        """create temp table _units as
           select r.range as unit, r.range + s.offset_ as file_line,
                  b.unit is not null as is_blank
           from range(1, ? + 1) as r
           asof join _shifts as s on r.range >= s.unit
           left join _blanks as b on b.unit = r.range""",
        [records.units],
    )


def _number_and_check(
    con: duckdb.DuckDBPyConnection,
    records: Records,
    obj: RawObject,
    fmt: FileFormat,
    wide: Sequence[tuple[int, str]],
    before_first: int,
    plausible: Plausible | None = None,
    fixed: Mapping[str, str] | None = None,
) -> None:
    """Give every record its line in the file (from its ordinal, rowid - `before_first`),
    normalize typed values and apply the checks, into `_incoming`.

    Accepted record k is the k-th record unit (see record_units) that is neither blank,
    nor the header or a line above it, nor rejected. A value that does not parse under the
    format (or falls outside `plausible`) is the row's reason, with those of the object's
    checks (run over the normalized values). A record that repeats the header (files
    concatenated with their headers) has that as its only reason.
    """
    (rejected,) = con.execute("select count(*) from _rejects").fetchone()
    # Every line after the header is a record: record k is on line k + header.
    simple = records.shifts == ((1, 0),) and not records.blank_units and not rejected
    record_units(con, None if simple else records)
    columns = [(c, obj.kind(c), obj.label(c)) for c in obj.file_columns]
    if obj.wide:
        columns += [(f"_wide{i}", obj.wide.kind, name) for i, name in wide]
    typed = {col: typed_sql(kind, col, label, fmt, plausible) for col, kind, label in columns}
    values, readings, parse_sql = typed_select_items(typed.values())
    # A value that does not parse keeps its text, so the checks still see it (a rejected
    # row never reaches raw, only its reasons matter).
    normalized = [f'coalesce({typed[c].normalized}, "{c}") as "{c}"' for c in obj.file_columns]
    if obj.wide:
        pairs = ", ".join(f"{_sql_text(name)}, {typed[f'_wide{i}'].normalized}" for i, name in wide)
        normalized.append(f'cast(json_object({pairs}) as varchar) as "{obj.wide.column}"')
    if simple:
        line_of = f"p._ord + {fmt.header_line}"
        numbered = "from parsed as p"
    else:
        line_of = f"coalesce(records.file_line, p._ord + {fmt.header_line})"
        numbered = "from parsed as p left join records on records.record_ord = p._ord"
    con.execute(
        f"""
        create temp table _incoming as
        with records as (
            select row_number() over (order by unit) as record_ord, file_line
            from _units
            where file_line > {fmt.header_line} and not is_blank
                and unit not in (select distinct line from _rejects)
        ),
        trimmed as (
            select r.rowid - {before_first} as _ord, r.*{"".join(", " + v for v in values)}
            from _read as r
        ),
        parsed as (
            select t.*{"".join(", " + r for r in readings)} from trimmed as t
        ),
        typed as (
            -- The record ordinal (+ header) stands in should the line scan ever fall short.
            select p._ord, {line_of} as _line,
                   {", ".join(normalized)},
                   nullif(concat_ws('; ', {parse_sql}), '') as _parse_reason
            {numbered}
        )
        select * exclude (_parse_reason),
               case when {_header_again(obj, fixed or {})}
                    then 'the header row again (files joined with their headers?)'
                    else nullif(concat_ws('; ', _parse_reason, {_reason_sql(obj.checks)}), '')
               end as _reason
        from typed
        """
    )


def _header_again(obj: RawObject, fixed: Mapping[str, str]) -> str:
    """SQL: the record's required columns hold their own header names."""
    columns = [c for c in obj.required_columns if c not in fixed]
    if not columns:
        return "false"
    return " and ".join(
        f'coalesce(lower(trim("{c}")) = {_sql_text(obj.label(c).lower())}, false)' for c in columns
    )


def _reason_sql(checks: Sequence[Check]) -> str:
    if not checks:
        return "cast(null as varchar)"
    parts = ", ".join(f"case when {c.bad} then {c.reason} end" for c in checks)
    return f"nullif(concat_ws('; ', {parts}), '')"


def _supersede(
    con: duckdb.DuckDBPyConnection,
    source_system: str,
    obj: RawObject,
    source_file: str,
    new_batch_id: int,
) -> None:
    """Remove what earlier versions of a file loaded; the corrected version replaces it."""
    args = [source_system, source_file]
    con.execute(f"delete from {obj.qualified} where _source_system = ? and _source_file = ?", args)
    con.execute(
        f"""delete from {RAW_SCHEMA}._quarantine
            where _source_system = ? and _source_file = ? and raw_table = ?""",
        [*args, obj.table],
    )
    con.execute(
        f"""update {RAW_SCHEMA}._batches set superseded_by = ?
            where source_system = ? and source_file = ? and raw_table = ?
              and superseded_by is null""",
        [new_batch_id, *args, obj.table],
    )


# SQL snippets for row checks over text columns, shared by every file source.


def blank(col: str) -> str:
    return f"""nullif(trim("{col}"), '') is null"""


def quoted(col: str) -> str:
    """The column's value quoted for a reason message."""
    return f"""'''' || coalesce("{col}", '') || ''''"""


def require(col: str) -> Check:
    return Check(blank(col), f"'{col} is empty'")


def one_of_check(col: str, allowed: Sequence[str]) -> Check:
    values = ", ".join(f"'{v}'" for v in allowed)
    return Check(
        f"""coalesce(lower(trim("{col}")), '') not in ({values})""",
        f"'{col} must be one of {'|'.join(allowed)}: ' || {quoted(col)}",
    )


def not_before(
    later: str, earlier: str, *, labels: Mapping[str, str] | None = None, by_day: bool = False
) -> Check:
    """`later` must not precede `earlier` (both timestamps, normalized by their kind; a
    blank one passes). `by_day`: `later` is a day picked in a calendar (midnight in the
    source's zone) and `earlier` a moment, as a CRM's close date and create date: only a
    day before the day of `earlier` is wrong, i.e. a full day or more before it."""
    labels = labels or {}
    a, b = (f'try_cast(trim("{c}") as timestamptz)' for c in (later, earlier))
    bad = f"{a} + interval 1 day <= {b}" if by_day else f"{a} < {b}"
    return Check(
        bad,
        f"'{labels.get(later, later)} ' || {quoted(later)}"
        f" || ' is before {labels.get(earlier, earlier)} ' || {quoted(earlier)}",
    )


def currency_check(col: str, *, required: bool) -> Check:
    invalid = f"""not regexp_full_match(trim("{col}"), '[A-Za-z]{{3}}')"""
    bad = f"({blank(col)} or {invalid})" if required else f"(not {blank(col)} and {invalid})"
    return Check(bad, f"'{col} is not a 3-letter currency code: ' || {quoted(col)}")
