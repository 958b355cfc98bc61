"""The funnel report's figures, read from the published marts: printed as text by `make run`,
drawn as the nightly HTML page by night/report_html.py.

This module is the one place that reads the marts for a report: one read-only connection to
the published file, every figure a mart row or a re-aggregation of mart counts (counts are
summed, then divided; rates are never summed). The biggest leak is defined in
docs/metric-decisions.md ("Biggest leak").
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb

from night.config import load_config

# The leak compares the latest complete month with the months before it, pooled.
TRAILING_MONTHS = 3
# Rep performance: the complete months up to the latest one.
REP_MONTHS = 12
OPTIONAL_MARTS = ("mart_customer_retention", "mart_unit_economics")

Rows = list[dict[str, Any]]


@dataclass
class ReportData:
    """Every figure of the report, as rows of named columns (exact values: Decimal money,
    float rates, date months), with the publish it comes from."""

    published: Path
    run_id: str
    as_of_at: datetime
    currency: str
    latest_month: date  # the latest complete month at the as-of time
    tables: dict[str, Rows] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Rows:
        return self.tables[name]


def _months_before(month: date, count: int) -> date:
    index = month.year * 12 + month.month - 1 - count
    return date(index // 12, index % 12 + 1, 1)


# name -> SQL; `$latest` is the latest complete month, `$first_rep` the first month of the
# rep window, `$first_trailing` the first of the leak's trailing months.
QUERIES: dict[str, str] = {
    # Over all cohorts: summed counts, then divided (METRICS.md "Reached and conversion").
    "funnel": """
        with stages as (
            select stage_order, funnel_stage, sum(deals_reached)::bigint as deals_reached,
                   sum(deals_advanced)::bigint as deals_advanced
            from marts.mart_funnel_conversion
            group by stage_order, funnel_stage
        )
        select stage_order, funnel_stage, deals_reached, deals_advanced,
               case when stage_order < max(stage_order) over () and deals_reached > 0
                    then deals_advanced / deals_reached end as conversion_to_next,
               deals_reached / nullif(first_value(deals_reached)
                   over (order by stage_order), 0) as conversion_from_top
        from stages order by stage_order
    """,
    # Spells that ended in a complete month of the leak's window, by how they ended.
    "stage_exits": """
        select stage_order, funnel_stage,
               cast(date_trunc('month', exited_at) as date) as month,
               count(*)::bigint as exits,
               count(*) filter (where exit_kind = 'advanced')::bigint as advanced
        from marts.fct_deal_stage_spells
        where exit_kind in ('advanced', 'regressed', 'lost')
          and exited_at >= $first_trailing
          and exited_at < $latest + interval 1 month
        group by all order by stage_order, month
    """,
    "stage_time_latest": """
        select o.stage_order, o.funnel_stage, d.spells_completed, d.median_days, d.p90_days,
               d.avg_days, o.open_spells, o.avg_age_days
        from marts.mart_stage_open_spells as o
        left join marts.mart_stage_duration as d
          on d.stage_order = o.stage_order and d.month = $latest
        order by o.stage_order
    """,
    "stage_time_by_month": """
        select month, stage_order, funnel_stage, spells_completed, median_days, p90_days
        from marts.mart_stage_duration
        where spells_completed > 0
        order by month, stage_order
    """,
    "velocity": """
        select month, opportunities, deals_won, deals_lost, win_rate, avg_deal_size,
               avg_sales_cycle_days, sales_velocity_per_month
        from marts.mart_sales_velocity order by month
    """,
    "cac": """
        select month, marketing_spend, sales_spend, total_spend, new_customers, cac
        from marts.mart_cac order by month
    """,
    "cac_by_channel": """
        select month, channel, spend, new_customers, cac
        from marts.mart_cac_by_channel order by month, channel
    """,
    # The last day of each month, and the as-of date's (latest) snapshot.
    "pipeline": """
        select snapshot_date, stage_order, funnel_stage, open_deals, open_amount,
               weighted_amount
        from marts.mart_pipeline_snapshot
        where snapshot_date = last_day(snapshot_date)
           or snapshot_date = (select max(snapshot_date) from marts.mart_pipeline_snapshot)
        order by snapshot_date, stage_order
    """,
    # The rep window's months summed per owner; win rate from the summed counts.
    "reps": """
        select owner_id, any_value(owner_name order by month desc) as owner_name,
               sum(deals_created)::bigint as deals_created,
               sum(deals_won)::bigint as deals_won,
               sum(deals_lost)::bigint as deals_lost,
               sum(deals_won) / nullif(sum(deals_won) + sum(deals_lost), 0) as win_rate,
               sum(won_amount) as won_amount
        from marts.mart_rep_performance
        where month between $first_rep and $latest
        group by owner_id
        order by won_amount desc, owner_id
    """,
    "data_quality": """
        select check_name, affected_rows, effect
        from marts.mart_data_quality order by check_name
    """,
    "latest_closed_month": """
        select v.month, v.deals_won, v.deals_lost, v.win_rate, v.avg_deal_size,
               v.avg_sales_cycle_days, v.sales_velocity_per_month, c.new_customers, c.cac
        from marts.mart_sales_velocity as v
        join marts.mart_cac as c on c.month = v.month
        where v.deals_won + v.deals_lost > 0
        order by v.month desc limit 1
    """,
}

OPTIONAL_QUERIES = {
    "mart_customer_retention": """
        select cohort_month, new_customers, repeat_customers_12m, repeat_rate_12m,
               first_win_amount, follow_on_amount_12m, customer_value_12m, is_mature
        from marts.mart_customer_retention order by cohort_month
    """,
    "mart_unit_economics": """
        select month, new_customers, total_spend, cac, customer_value_12m, value_to_cac,
               is_mature
        from marts.mart_unit_economics order by month
    """,
}


def read_report_data(published: Path) -> ReportData:
    """Every figure of the report, through one read-only connection to the published file."""
    con = duckdb.connect(str(published), read_only=True)
    try:
        run_id, as_of_at, currency = con.execute(
            "select run_id, as_of_at, reporting_currency from meta.publish_info"
        ).fetchall()[0]
        latest = _months_before(date(as_of_at.year, as_of_at.month, 1), 1)
        params = {
            "latest": latest,
            "first_rep": _months_before(latest, REP_MONTHS - 1),
            "first_trailing": _months_before(latest, TRAILING_MONTHS),
        }
        data = ReportData(published, run_id, as_of_at, currency, latest)
        present = {
            row[0]
            for row in con.execute(
                "select table_name from information_schema.tables where table_schema = 'marts'"
            ).fetchall()
        }
        queries = {**QUERIES, **{m: q for m, q in OPTIONAL_QUERIES.items() if m in present}}
        for name, sql in queries.items():
            used = {k: v for k, v in params.items() if f"${k}" in sql}
            cursor = con.execute(sql, used)
            columns = [d[0] for d in cursor.description]
            data.tables[name] = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
    finally:
        con.close()
    data.tables["leak"] = stage_leaks(data["stage_exits"], latest)
    return data


def stage_leaks(exits: Rows, latest: date) -> Rows:
    """Per stage: exit conversion in the latest complete month against the pooled trailing
    months, and the change in points; sorted by stage (docs/metric-decisions.md)."""
    stages: dict[int, dict[str, Any]] = {}
    for row in exits:
        stage = stages.setdefault(
            row["stage_order"],
            {
                "stage_order": row["stage_order"],
                "funnel_stage": row["funnel_stage"],
                "latest_exits": 0,
                "latest_advanced": 0,
                "trailing_exits": 0,
                "trailing_advanced": 0,
            },
        )
        when = "latest" if row["month"] == latest else "trailing"
        stage[f"{when}_exits"] += row["exits"]
        stage[f"{when}_advanced"] += row["advanced"]
    rows = []
    for stage in sorted(stages.values(), key=lambda s: s["stage_order"]):
        for when in ("latest", "trailing"):
            exits_ = stage[f"{when}_exits"]
            stage[f"{when}_conversion"] = stage[f"{when}_advanced"] / exits_ if exits_ else None
        both = stage["latest_conversion"] is not None and stage["trailing_conversion"] is not None
        stage["change"] = (
            stage["latest_conversion"] - stage["trailing_conversion"] if both else None
        )
        rows.append(stage)
    return rows


def biggest_leak(leaks: Rows) -> dict[str, Any] | None:
    """The stage whose conversion fell furthest below its trailing average (the lower stage
    on a tie); None when no stage fell below it."""
    fallen = [row for row in leaks if row["change"] is not None and row["change"] < 0]
    return min(fallen, key=lambda r: (r["change"], r["stage_order"])) if fallen else None


def _fmt(value: object, kind: str = "") -> str:
    if value is None:
        return "-"
    if kind == "pct":
        return f"{float(value) * 100:.1f}%"
    if kind == "days":
        return f"{float(value):.1f} days"
    if kind == "money":
        return f"{value:,.2f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def render(published: Path | ReportData) -> str:
    """The funnel over all cohorts and the latest month with closed deals, as text."""
    data = published if isinstance(published, ReportData) else read_report_data(published)
    lines = [f"Sales funnel as of {data.as_of_at:%Y-%m-%d %H:%M} UTC (all cohorts)", ""]
    lines.append(f"{'stage':<24}{'deals reached':>15}{'to next':>10}{'from top':>10}")
    for row in data["funnel"]:
        lines.append(
            f"{row['funnel_stage']:<24}{_fmt(int(row['deals_reached'])):>15}"
            f"{_fmt(row['conversion_to_next'], 'pct'):>10}"
            f"{_fmt(row['conversion_from_top'], 'pct'):>10}"
        )
    if data["latest_closed_month"]:
        m = data["latest_closed_month"][0]
        currency = data.currency
        lines += [
            "",
            f"Latest month with closed deals: {m['month']:%Y-%m} "
            f"({m['deals_won']} won, {m['deals_lost']} lost)",
            f"  win rate              {_fmt(m['win_rate'], 'pct')}",
            f"  average deal size     {_fmt(m['avg_deal_size'], 'money')} {currency}",
            f"  average sales cycle   {_fmt(m['avg_sales_cycle_days'], 'days')}",
            f"  sales velocity        {_fmt(m['sales_velocity_per_month'], 'money')} "
            f"{currency} per month",
            f"  CAC (blended)         {_fmt(m['cac'], 'money')} {currency} "
            f"({m['new_customers']} new customers)",
        ]
    lines += ["", f"Published marts: {data.published} (schema marts; open it read-only)"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--published", type=Path, help="published DuckDB file (default: config)")
    args = parser.parse_args(argv)
    print(render(args.published or load_config().published_path))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
