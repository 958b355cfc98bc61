"""Compare published marts with the hand-computed expectations in tests/golden/expected."""

from __future__ import annotations

import csv
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

GOLDEN_DIR = Path(__file__).parent / "golden"
EXPECTED_DIR = GOLDEN_DIR / "expected"
AS_OF = (GOLDEN_DIR / "as_of.txt").read_text().strip()
RATE_TOLERANCE = 1e-9

# The grain of every mart: rows are matched on these columns.
GRAIN = {
    "fct_deals": ("deal_id",),
    "fct_deal_stage_spells": ("deal_id", "spell_number"),
    "fct_deal_funnel": ("deal_id", "stage_order"),
    "mart_funnel_conversion": ("cohort_month", "stage_order"),
    "mart_stage_duration": ("month", "stage_order"),
    "mart_stage_open_spells": ("stage_order",),
    "mart_sales_velocity": ("month",),
    "mart_cac": ("month",),
    "mart_cac_by_channel": ("month", "channel"),
    "mart_pipeline_snapshot": ("snapshot_date", "stage_order"),
    "mart_rep_performance": ("month", "owner_id"),
    "mart_customer_retention": ("cohort_month",),
    "mart_unit_economics": ("month",),
}


def query(path: Path, sql: str) -> list[tuple]:
    """The rows of one query on a DuckDB file, opened read-only (and closed again)."""
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def data_quality_counts(published: Path) -> dict[str, int]:
    """mart_data_quality of a published file: affected rows by check name."""
    return dict(query(published, "select check_name, affected_rows from marts.mart_data_quality"))


def read_expected(mart: str) -> tuple[list[str], list[dict[str, str]]]:
    with (EXPECTED_DIR / f"{mart}.csv").open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _same(actual: object, expected: str) -> bool:
    if expected == "" or actual is None:
        return expected == "" and actual is None
    if isinstance(actual, bool):
        return _text(actual) == expected.lower()
    if isinstance(actual, Decimal):
        # Money: exact to the cent (and counts stored as decimals: exact).
        return actual == Decimal(expected)
    if isinstance(actual, float):
        return abs(actual - float(expected)) <= RATE_TOLERANCE
    if isinstance(actual, int):
        return actual == int(Decimal(expected))
    return _text(actual) == expected


def mart_differences(mart: str, columns: list[str], rows: list[tuple]) -> list[str]:
    """Every difference between actual rows (in `columns` order) and the expected file."""
    expected_columns, expected_rows = read_expected(mart)
    missing = [c for c in expected_columns if c not in columns]
    if missing:
        return [f"{mart}: columns missing from the mart: {missing}"]
    grain = GRAIN[mart]
    actual = {
        tuple(_text(row[columns.index(g)]) for g in grain): dict(zip(columns, row, strict=True))
        for row in rows
    }
    expected = {tuple(r[g] for g in grain): r for r in expected_rows}
    problems = []
    for key in sorted(set(expected) - set(actual)):
        problems.append(f"{mart} {dict(zip(grain, key, strict=True))}: expected row is missing")
    for key in sorted(set(actual) - set(expected)):
        problems.append(f"{mart} {dict(zip(grain, key, strict=True))}: unexpected row")
    for key in sorted(set(actual) & set(expected)):
        for column in expected_columns:
            got, want = actual[key][column], expected[key][column]
            if not _same(got, want):
                where = dict(zip(grain, key, strict=True))
                problems.append(f"{mart} {where}: {column} is {_text(got)!r}, expected {want!r}")
    return problems
