"""Reference data (funnel stages, stage mapping, channels, FX rates): the config names the
files; this module checks them and loads them, typed, into the warehouse's `reference`
schema, which dbt reads as a source (models/staging/reference/).

Loaded by Python rather than as dbt seeds: every value is checked here with the user's file,
line and column in the error, the tables are replaced in one transaction (a failed load
keeps the last good set), and dbt never writes near the user's files.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path

import duckdb

from extract.errors import LoadError
from extract.warehouse import read_header
from night.config import ConfigError, PipelineConfig

log = logging.getLogger(__name__)

SCHEMA = "reference"

# name -> (column, SQL type) in table order; the types the marts rely on.
COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "funnel_stages": (
        ("stage_order", "integer"),
        ("funnel_stage", "varchar"),
        ("description", "varchar"),
    ),
    "stage_mapping": (
        ("source_system", "varchar"),
        ("pipeline", "varchar"),
        ("crm_stage", "varchar"),
        ("funnel_stage", "varchar"),
        ("probability", "decimal(9, 6)"),
    ),
    "channel_mapping": (("lead_source", "varchar"), ("channel", "varchar")),
    "fx_rates": (
        ("month", "date"),
        ("currency", "varchar"),
        ("rate_to_reporting", "decimal(28, 10)"),
    ),
}
REQUIRED_COLUMNS = {name: tuple(c for c, _ in columns) for name, columns in COLUMNS.items()}


@dataclass(frozen=True)
class ReferenceTable:
    """One reference file read and checked: its rows as normalized text, None for empty."""

    name: str
    path: Path
    rows: list[tuple[str | None, ...]]


def read_reference(config: PipelineConfig) -> list[ReferenceTable]:
    """Every configured reference file, checked: present, its columns, each value's type,
    no key twice. Stage mappings for a source system no configured source has are logged."""
    tables = [_read_file(config, name, path) for name, path in config.reference.items()]
    sources = {source.name for source in config.sources}
    for table in tables:
        if table.name != "stage_mapping":
            continue
        unknown = sorted({r[0].strip() for r in table.rows if r[0] and r[0].strip() not in sources})
        if unknown:
            log.warning(
                "%s: stage mapping rows for source_system(s) %s, which no configured source is "
                "(configured: %s): a typo leaves that source's stages unmapped",
                table.path,
                ", ".join(unknown),
                ", ".join(sorted(sources)),
            )
    return tables


def main(argv: list[str] | None = None) -> int:
    """`python -m night.reference [CONFIG]`: check the reference data alone, write nothing."""
    import sys

    from night.config import load_config

    args = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        config = load_config(args[0] if args else None)
        tables = read_reference(config)
    except ConfigError as exc:
        print(f"reference data: {exc}", file=sys.stderr)
        return 1
    for table in tables:
        print(f"{table.name}: {table.path}: {len(table.rows)} rows, ok")
    return 0


def load_reference(con: duckdb.DuckDBPyConnection, config: PipelineConfig) -> dict[str, int]:
    """Replace the warehouse's reference tables with the configured files; rows per table.

    Every file is read and checked before anything is written, and the tables are replaced
    in one transaction: a bad file fails naming it and leaves the last good set in place.
    """
    tables = read_reference(config)
    con.execute("begin transaction")
    try:
        con.execute(f"create schema if not exists {SCHEMA}")
        for table in tables:
            columns = COLUMNS[table.name]
            ddl = ", ".join(f"{column} {kind}" for column, kind in columns)
            con.execute(f"create or replace table {SCHEMA}.{table.name} ({ddl})")
            if not table.rows:
                continue
            unnested = ", ".join(f"unnest(?) as {column}" for column, _ in columns)
            casts = ", ".join(f"cast({column} as {kind})" for column, kind in columns)
            values = [list(column) for column in zip(*table.rows, strict=True)]
            con.execute(
                f"insert into {SCHEMA}.{table.name} select {casts} from (select {unnested})",
                values,
            )
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return {table.name: len(table.rows) for table in tables}


def _read_file(config: PipelineConfig, name: str, path: Path) -> ReferenceTable:
    if not path.is_file():
        raise ConfigError(f"{config.path}: reference.{name}: file {path} does not exist")
    try:
        header = [h.lower() for h in read_header(path)]
    except LoadError as exc:
        raise ConfigError(f"{config.path}: reference.{name}: {exc}") from exc
    needed = REQUIRED_COLUMNS[name]
    missing = [c for c in needed if c not in header]
    if missing:
        raise ConfigError(
            f"{path}: reference data {name} is missing column(s) {', '.join(missing)} "
            f"(needs: {', '.join(needed)})"
        )
    positions = [header.index(column) for column in needed]
    rows = []
    seen: dict[tuple, int] = {}
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        next(reader, None)
        for record in reader:
            if not any(cell.strip() for cell in record):
                continue
            row = tuple(
                _value(record[i] if i < len(record) else "", kind, path, reader.line_num, col)
                for i, (col, kind) in zip(positions, COLUMNS[name], strict=True)
            )
            for columns, key in _keys(name, row):
                if key in seen:
                    shown = key[1] if len(key) == 2 else key[1:]
                    raise ConfigError(
                        f"{path}, line {reader.line_num}: {name} lists {columns} {shown!r} "
                        f"again (line {seen[key]} has it; matched {MATCHED[name]})"
                    )
                seen[key] = reader.line_num
            rows.append(row)
    return ReferenceTable(name=name, path=path, rows=rows)


# How the models match each file's rows: a second row with the same key would duplicate
# deals or spend in the marts, so it fails here naming both lines.
MATCHED = {
    "funnel_stages": "trimmed, case-insensitively",
    "stage_mapping": "trimmed",
    "channel_mapping": "trimmed, case-insensitively",
    "fx_rates": "trimmed, case-insensitively",
}


def _keys(name: str, row: tuple[str | None, ...]) -> list[tuple[str, tuple]]:
    """(the key's columns, the key as the models match it) for each unique key of a row."""

    def norm(value: str | None, fold: bool = True) -> str | None:
        if value is None:
            return None
        return value.strip().lower() if fold else value.strip()

    if name == "funnel_stages":
        return [
            ("stage_order", ("order", row[0])),
            ("funnel_stage", ("stage", norm(row[1]))),
        ]
    if name == "stage_mapping":
        return [
            (
                "source_system, pipeline, crm_stage",
                ("crm stage", *(norm(v, fold=False) for v in row[:3])),
            )
        ]
    if name == "channel_mapping":
        return [("lead_source", ("lead source", norm(row[0])))]
    return [("month, currency", ("rate", row[0], norm(row[1])))]


def _value(text: str, kind: str, path: Path, line: int, column: str) -> str | None:
    """The cell as text the SQL cast accepts, None when empty; a wrong type names the cell."""
    if text == "":
        return None
    try:
        if kind == "integer":
            return str(int(text.strip()))
        if kind.startswith("decimal"):
            value = Decimal(text.strip())
            if not value.is_finite():
                raise InvalidOperation
            return str(value)
        if kind == "date":
            return date.fromisoformat(text.strip()).isoformat()
    except (ValueError, InvalidOperation):
        expected = {"integer": "an integer", "date": "a date (YYYY-MM-DD)"}
        raise ConfigError(
            f"{path}, line {line}, column {column}: {text!r} is not "
            f"{expected.get(kind, 'a number')}"
        ) from None
    return text


if __name__ == "__main__":
    raise SystemExit(main())
