"""The macros of dbt's `dbt` namespace that the project calls, rendered as dbt-duckdb
renders them (lint only)."""

from __future__ import annotations


def date_trunc(datepart: str, date: str) -> str:
    return f"date_trunc('{datepart}', {date})"


def datediff(first_date: str, second_date: str, datepart: str) -> str:
    return f"date_diff('{datepart}', {first_date}::timestamp, {second_date}::timestamp)"


def dateadd(datepart: str, interval: int | str, from_date_or_timestamp: str) -> str:
    return f"({from_date_or_timestamp} + cast({interval} as bigint) * interval 1 {datepart})"


def bool_or(expression: str) -> str:
    return f"bool_or({expression})"


def listagg(
    measure: str,
    delimiter_text: str = "','",
    order_by_clause: str | None = None,
    limit_num: int | None = None,
) -> str:
    order = f" {order_by_clause}" if order_by_clause else ""
    return f"string_agg({measure}, {delimiter_text}{order})"
