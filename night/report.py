"""Print the funnel and the latest month's headline figures from the published marts."""

from __future__ import annotations

import argparse
from pathlib import Path

import duckdb

from night.config import load_config


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


def render(published: Path) -> str:
    """The funnel over all cohorts and the latest month with closed deals, as text."""
    con = duckdb.connect(str(published), read_only=True)
    try:
        meta = con.execute("select as_of_at, reporting_currency from meta.publish_info").fetchall()[
            0
        ]
        # Counts are summed over cohorts, then divided: rates are never summed.
        funnel = con.execute(
            """
            with stages as (
                select stage_order, funnel_stage, sum(deals_reached) as reached,
                       sum(deals_advanced) as advanced
                from marts.mart_funnel_conversion
                group by stage_order, funnel_stage
            )
            select funnel_stage, reached,
                   case when stage_order < max(stage_order) over () and reached > 0
                        then advanced / reached end,
                   reached / nullif(first_value(reached) over (order by stage_order), 0)
            from stages order by stage_order
            """
        ).fetchall()
        month = con.execute(
            """
            select v.month, v.deals_won, v.deals_lost, v.win_rate, v.avg_deal_size,
                   v.avg_sales_cycle_days, v.sales_velocity_per_month, c.new_customers, c.cac
            from marts.mart_sales_velocity as v
            join marts.mart_cac as c on c.month = v.month
            where v.deals_won + v.deals_lost > 0
            order by v.month desc limit 1
            """
        ).fetchall()
    finally:
        con.close()

    as_of, currency = meta
    lines = [f"Sales funnel as of {as_of:%Y-%m-%d %H:%M} UTC (all cohorts)", ""]
    lines.append(f"{'stage':<24}{'deals reached':>15}{'to next':>10}{'from top':>10}")
    for stage, reached, to_next, from_top in funnel:
        lines.append(
            f"{stage:<24}{_fmt(int(reached)):>15}{_fmt(to_next, 'pct'):>10}"
            f"{_fmt(from_top, 'pct'):>10}"
        )
    if month:
        m, won, lost, win_rate, size, cycle, velocity, new_customers, cac = month[0]
        lines += [
            "",
            f"Latest month with closed deals: {m:%Y-%m} ({won} won, {lost} lost)",
            f"  win rate              {_fmt(win_rate, 'pct')}",
            f"  average deal size     {_fmt(size, 'money')} {currency}",
            f"  average sales cycle   {_fmt(cycle, 'days')}",
            f"  sales velocity        {_fmt(velocity, 'money')} {currency} per month",
            f"  CAC (blended)         {_fmt(cac, 'money')} {currency} "
            f"({new_customers} new customers)",
        ]
    lines += ["", f"Published marts: {published} (schema marts; open it read-only)"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--published", type=Path, help="published DuckDB file (default: config)")
    args = parser.parse_args(argv)
    print(render(args.published or load_config().published_path))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
