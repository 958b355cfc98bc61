"""The nightly funnel report: one self-contained static HTML page from the published marts.

`write_report` reads the figures once (night.report.read_report_data), then writes
`<publish_dir>/report/index.html` and the archive copy `<publish_dir>/report/<as-of
date>.html`. The page needs no server and no network: the chart library (Vega, Vega-Lite
and vega-embed, vendored in night/report_assets/ with their licenses) is inlined, and so is
every chart's data. Each chart has its figures in an HTML table next to it, numbers
formatted for people and the exact mart values in `data-value` attributes (the browser
test reads them). The dbt docs are linked at `../docs/index.html` (night/docs.py).
"""

from __future__ import annotations

import html
import json
import math
import os
import time
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from pathlib import Path
from typing import Any

from night.report import REP_MONTHS, TRAILING_MONTHS, ReportData, Rows, biggest_leak

ASSETS_DIR = Path(__file__).resolve().parent / "report_assets"
LIBRARIES = ("vega.min.js", "vega-lite.min.js", "vega-embed.min.js")
REPORT_FOLDER = "report"
DOCS_LINK = "../docs/index.html"
CHART_WIDTH = 460
CHART_HEIGHT = 240


# ---- numbers for people, exact values for machines -------------------------------------


def exact(value: object) -> str:
    """The exact value of a figure as text (the `data-value` attribute)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def shown(value: object, kind: str) -> str:
    """A figure formatted for people: counts with separators, rates in %, money in whole
    units (half up), days and ratios with one or two decimals."""
    if value is None:
        return "–"
    if kind == "count":
        return f"{int(value):,}"
    if kind == "pct":
        return f"{float(value) * 100:.1f}%"
    if kind == "money":
        return f"{Decimal(str(value)).quantize(Decimal(1), rounding=ROUND_HALF_UP):,}"
    if kind == "days":
        return f"{float(value):.1f}"
    if kind == "ratio":
        return f"{float(value):.2f}×"
    if kind == "points":
        return f"{float(value) * 100:+.1f} pt"
    if kind == "month":
        return f"{value:%b %Y}"
    if kind == "bool":
        return "yes" if value else "no"
    return str(value)


def _month_name(month: date) -> str:
    return f"{month:%B %Y}"


# ---- tables ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Col:
    name: str  # the mart column (or the derived figure's name)
    header: str
    kind: str = "text"


def table(table_id: str, mart: str, key: tuple[str, ...], cols: list[Col], rows: Rows) -> str:
    """An HTML table of mart rows: `data-table`/`data-mart` on the table, the row's grain
    values joined by '|' in `data-key`, each cell's column and exact value as attributes."""
    head = "".join(
        f'<th class="{"num" if c.kind not in ("text", "month") else "txt"}">'
        f"{html.escape(c.header)}</th>"
        for c in cols
    )
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="{"num" if c.kind not in ("text", "month") else "txt"}" '
            f'data-column="{c.name}" data-value="{html.escape(exact(row[c.name]))}">'
            f"{html.escape(shown(row[c.name], c.kind))}</td>"
            for c in cols
        )
        row_key = "|".join(exact(row[k]) for k in key)
        body.append(f'<tr data-key="{html.escape(row_key)}">{cells}</tr>')
    return (
        f'<table data-table="{table_id}" data-mart="{mart}" data-grain="{",".join(key)}">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def _details(summary: str, content: str) -> str:
    return f"<details><summary>{html.escape(summary)}</summary>{content}</details>"


# ---- charts (Vega-Lite specs with their data inline) -------------------------------------


def _num(value: object) -> float | None:
    """A figure for a chart: a float, or None (not drawn) when absent or not finite."""
    if value is None:
        return None
    number = float(value)  # type: ignore[arg-type]
    return number if math.isfinite(number) else None


def _json_value(value: object) -> object:
    """Chart data that JSON has no type for: exact numbers as floats, dates as text."""
    if isinstance(value, Decimal):
        return _num(value)
    if isinstance(value, date):
        return exact(value)
    raise TypeError(f"not JSON serializable in a chart: {value!r}")


def _spec(values: list[dict], **spec: Any) -> dict:
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v6.json",
        "data": {"values": values},
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        **spec,
    }


def _stage_color(stages: list[str]) -> dict:
    return {"field": "stage", "type": "nominal", "title": "stage", "sort": stages,
            "scale": {"domain": stages}}  # fmt: skip


def _line(
    values: list[dict], field: str, title: str, fmt: str, scale: str = "linear", **extra: Any
) -> dict:
    return _spec(
        values,
        mark={"type": "line", "point": True},
        encoding={
            "x": {"field": "month", "type": "temporal", "timeUnit": "utcyearmonth",
                  "title": None},
            "y": {"field": field, "type": "quantitative", "title": None,
                  "axis": {"format": fmt}, "scale": {"type": scale}},
            **extra,
        },
        title=title,
    )  # fmt: skip


class Page:
    """The page being built: sections in order, and the chart specs by element id."""

    def __init__(self) -> None:
        self.sections: list[str] = []
        self.charts: dict[str, dict] = {}

    def chart(self, chart_id: str, spec: dict) -> str:
        """A chart's container, or a note when it has nothing to draw."""
        if not spec["data"]["values"]:
            return (
                f'<p class="note empty" data-chart-empty="{chart_id}">No figures to draw yet.</p>'
            )
        self.charts[f"chart-{chart_id}"] = spec
        return f'<div class="chart" id="chart-{chart_id}" data-chart="{chart_id}"></div>'

    def section(self, section_id: str, title: str, *parts: str) -> None:
        self.sections.append(
            f'<section id="{section_id}"><h2>{html.escape(title)}</h2>{"".join(parts)}</section>'
        )


# ---- sections ----------------------------------------------------------------------------


def _month_shift(month: date, months: int) -> date:
    index = month.year * 12 + month.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def trailing_window(latest: date) -> str:
    """The leak's trailing months in words, e.g. 'February–April 2026'."""
    first, last = _month_shift(latest, -TRAILING_MONTHS), _month_shift(latest, -1)
    start = f"{first:%B}" if first.year == last.year else f"{first:%B %Y}"
    return f"{start}–{last:%B %Y}"


def leak_sentence(data: ReportData) -> str:
    """The biggest leak in words (docs/metric-decisions.md, "Biggest leak")."""
    latest = _month_name(data.latest_month)
    window = trailing_window(data.latest_month)
    leak = biggest_leak(data["leak"])
    if leak is None:
        if not any(row["change"] is not None for row in data["leak"]):
            return (
                f"Not enough stage exits to compare {latest} with {window}: "
                "no biggest leak this time."
            )
        return (
            f"No leak: no stage converted below its trailing average in {latest} "
            f"(deals leaving each stage, compared with {window})."
        )
    return (
        f"Biggest leak: {leak['funnel_stage']}. In {latest}, "
        f"{leak['latest_advanced']:,} of {leak['latest_exits']:,} deals leaving "
        f"{leak['funnel_stage']} moved forward ({shown(leak['latest_conversion'], 'pct')}), "
        f"against {shown(leak['trailing_conversion'], 'pct')} "
        f"({leak['trailing_advanced']:,} of {leak['trailing_exits']:,}) in {window}: "
        f"{abs(leak['change']) * 100:.1f} points lower."
    )


def _funnel(page: Page, data: ReportData) -> None:
    rows = data["funnel"]
    stages = [r["funnel_stage"] for r in rows]
    chart = page.chart(
        "funnel",
        _spec(
            [{"stage": r["funnel_stage"], "reached": r["deals_reached"],
              "from_top": _num(r["conversion_from_top"])} for r in rows],
            height=28 * len(rows),
            encoding={
                "y": {"field": "stage", "type": "nominal", "sort": stages, "title": None},
                "x": {"field": "reached", "type": "quantitative", "title": "deals reached"},
            },
            layer=[
                {"mark": {"type": "bar", "color": "#4c78a8"}},
                {"mark": {"type": "text", "align": "left", "dx": 4},
                 "encoding": {"text": {"field": "from_top", "format": ".1%"}}},
            ],
        ),
    )  # fmt: skip
    funnel_table = table(
        "funnel",
        "mart_funnel_conversion",
        ("funnel_stage",),
        [
            Col("funnel_stage", "stage"),
            Col("deals_reached", "deals reached", "count"),
            Col("deals_advanced", "advanced to next", "count"),
            Col("conversion_to_next", "to next stage", "pct"),
            Col("conversion_from_top", "from top", "pct"),
        ],
        rows,
    )
    leak_table = table(
        "leak",
        "fct_deal_stage_spells",
        ("funnel_stage",),
        [
            Col("funnel_stage", "stage"),
            Col("latest_exits", f"left in {data.latest_month:%b %Y}", "count"),
            Col("latest_conversion", "moved forward", "pct"),
            Col("trailing_exits", f"left in the {TRAILING_MONTHS} months before", "count"),
            Col("trailing_conversion", "moved forward", "pct"),
            Col("change", "change", "points"),
        ],
        data["leak"],
    )
    page.section(
        "funnel",
        "Funnel (all cohorts)",
        '<p class="note">Deals reached per stage over all cohorts (month of creation); '
        "conversion = deals that reached the next stage / deals that reached this one.</p>",
        chart,
        funnel_table,
        f"<h3>Stage exits: {html.escape(_month_name(data.latest_month))} against the "
        f"{TRAILING_MONTHS} months before</h3>",
        '<p class="note">Deals leaving each stage in the month (moved forward, back or '
        "lost); the share that moved forward. The biggest leak above is the stage whose "
        "share fell most below its trailing average.</p>",
        leak_table,
    )


def _stage_time(page: Page, data: ReportData) -> None:
    latest = data["stage_time_latest"]
    stages = [r["funnel_stage"] for r in latest]
    bars = [
        {"stage": r["funnel_stage"], "measure": measure, "days": _num(r[column])}
        for r in latest
        if r["spells_completed"]
        for measure, column in (("median", "median_days"), ("p90", "p90_days"))
    ]
    by_month = [
        {"month": exact(r["month"]), "stage": r["funnel_stage"], "median": _num(r["median_days"])}
        for r in data["stage_time_by_month"]
    ]
    latest_chart = page.chart(
        "stage-time",
        _spec(
            bars,
            title=f"Days in stage, spells completed in {_month_name(data.latest_month)}",
            mark="bar",
            encoding={
                "x": {"field": "stage", "type": "nominal", "sort": stages, "title": None,
                      "scale": {"domain": stages}},
                "xOffset": {"field": "measure", "sort": ["median", "p90"]},
                "y": {"field": "days", "type": "quantitative", "title": "days"},
                "color": {"field": "measure", "type": "nominal", "title": None,
                          "sort": ["median", "p90"]},
            },
        ),
    )  # fmt: skip
    trend = page.chart(
        "stage-time-trend",
        _line(by_month, "median", "Median days in stage, by month of exit", ".1f",
              color=_stage_color(stages)),
    )  # fmt: skip
    page.section(
        "stage-time",
        "Time in stage",
        f'<p class="note">Completed spells (left the stage in '
        f"{html.escape(_month_name(data.latest_month))}): median and 90th percentile of the "
        "days spent in the stage; open spells and their average age at the as-of time.</p>",
        '<div class="row">',
        latest_chart,
        trend,
        "</div>",
        table(
            "stage_time",
            "mart_stage_duration",
            ("funnel_stage",),
            [
                Col("funnel_stage", "stage"),
                Col("spells_completed", "spells completed", "count"),
                Col("median_days", "median days", "days"),
                Col("p90_days", "p90 days", "days"),
                Col("avg_days", "average days", "days"),
                Col("open_spells", "open now", "count"),
                Col("avg_age_days", "average age of open (days)", "days"),
            ],
            latest,
        ),
    )


def _velocity(page: Page, data: ReportData) -> None:
    rows = data["velocity"]
    values = [
        {"month": exact(r["month"]), "win_rate": _num(r["win_rate"]),
         "avg_deal_size": _num(r["avg_deal_size"]),
         "avg_sales_cycle_days": _num(r["avg_sales_cycle_days"]),
         "velocity": _num(r["sales_velocity_per_month"])}
        for r in rows
    ]  # fmt: skip
    cur = data.currency
    charts = [
        page.chart(chart_id, _line(values, field, title, fmt))
        for chart_id, field, title, fmt in (
            ("win-rate", "win_rate", "Win rate", ".0%"),
            ("deal-size", "avg_deal_size", f"Average deal size ({cur})", ",.0f"),
            ("cycle", "avg_sales_cycle_days", "Average sales cycle (days)", ".0f"),
            ("velocity", "velocity", f"Sales velocity ({cur} per month)", ",.0f"),
        )
    ]
    page.section(
        "velocity",
        "Win rate, deal size, cycle and velocity by month",
        '<p class="note">By month of close (opportunities: by month of creation). '
        "Velocity = opportunities × win rate × deal size / cycle, per month.</p>",
        '<div class="row">',
        *charts,
        "</div>",
        _details(
            "Figures by month",
            table(
                "velocity",
                "mart_sales_velocity",
                ("month",),
                [
                    Col("month", "month", "month"),
                    Col("opportunities", "opportunities", "count"),
                    Col("deals_won", "won", "count"),
                    Col("deals_lost", "lost", "count"),
                    Col("win_rate", "win rate", "pct"),
                    Col("avg_deal_size", f"average deal size ({cur})", "money"),
                    Col("avg_sales_cycle_days", "average cycle (days)", "days"),
                    Col("sales_velocity_per_month", f"velocity ({cur} per month)", "money"),
                ],
                rows,
            ),
        ),
    )


def _cac(page: Page, data: ReportData) -> None:
    cur = data.currency
    series = [
        {"month": exact(r["month"]), "series": "blended", "cac": _num(r["cac"])}
        for r in data["cac"]
        if r["cac"]
    ] + [
        {"month": exact(r["month"]), "series": r["channel"], "cac": _num(r["cac"])}
        for r in data["cac_by_channel"]
        if r["cac"]  # a channel without spend has CAC 0: in the table, not on a log scale
    ]
    chart = page.chart(
        "cac",
        _line(series, "cac", f"CAC ({cur} per new customer, log scale)", ",.0f",
              scale="log", color={"field": "series", "type": "nominal", "title": None}),
    )  # fmt: skip
    page.section(
        "cac",
        "Customer acquisition cost",
        '<p class="note">Blended: all spend of the month / new customers of the month. By '
        "channel: the channel's spend / new customers whose first won deal came from it "
        "(no CAC without new customers; a CAC of 0, a channel without spend, is in the tables "
        "only).</p>",
        chart,
        _details(
            "Blended CAC by month",
            table(
                "cac",
                "mart_cac",
                ("month",),
                [
                    Col("month", "month", "month"),
                    Col("marketing_spend", f"marketing ({cur})", "money"),
                    Col("sales_spend", f"sales ({cur})", "money"),
                    Col("total_spend", f"total spend ({cur})", "money"),
                    Col("new_customers", "new customers", "count"),
                    Col("cac", f"CAC ({cur})", "money"),
                ],
                data["cac"],
            ),
        ),
        _details(
            "CAC by channel and month",
            table(
                "cac_by_channel",
                "mart_cac_by_channel",
                ("month", "channel"),
                [
                    Col("month", "month", "month"),
                    Col("channel", "channel"),
                    Col("spend", f"spend ({cur})", "money"),
                    Col("new_customers", "new customers", "count"),
                    Col("cac", f"CAC ({cur})", "money"),
                ],
                data["cac_by_channel"],
            ),
        ),
    )


def _pipeline(page: Page, data: ReportData) -> None:
    rows = data["pipeline"]
    cur = data.currency
    stages = sorted({(r["stage_order"], r["funnel_stage"]) for r in rows})
    names = [s for _, s in stages]
    values = [
        {"date": exact(r["snapshot_date"]), "stage": r["funnel_stage"],
         "open_deals": r["open_deals"], "weighted": _num(r["weighted_amount"])}
        for r in rows
    ]  # fmt: skip

    def area(field: str, title: str, fmt: str) -> dict:
        return _spec(
            values,
            title=title,
            mark={"type": "area"},
            encoding={
                "x": {"field": "date", "type": "temporal", "timeUnit": "utcyearmonthdate",
                      "title": None},
                "y": {"field": field, "type": "quantitative", "stack": "zero", "title": None,
                      "axis": {"format": fmt}},
                "color": {**_stage_color(names),
                          "legend": {"orient": "bottom", "columns": 4}},
                "order": {"field": "stage_order_sort", "type": "quantitative"},
            },
            transform=[{"calculate": f"indexof({json.dumps(names)}, datum.stage)",
                        "as": "stage_order_sort"}],
        )  # fmt: skip

    latest_date = max((r["snapshot_date"] for r in rows), default=None)
    latest = [r for r in rows if r["snapshot_date"] == latest_date]
    cols = [
        Col("snapshot_date", "date", "text"),
        Col("funnel_stage", "stage"),
        Col("open_deals", "open deals", "count"),
        Col("open_amount", f"open amount ({cur})", "money"),
        Col("weighted_amount", f"weighted amount ({cur})", "money"),
    ]
    page.section(
        "pipeline",
        "Pipeline over time by stage",
        '<p class="note">Deals open at the end of each month (and of the as-of date), by '
        "their stage then; weighted amount = amount × the stage's probability.</p>",
        '<div class="row">',
        page.chart("pipeline-count", area("open_deals", "Open deals", ",.0f")),
        page.chart("pipeline-weighted", area("weighted", f"Weighted amount ({cur})", ",.0f")),
        "</div>",
        f"<h3>Open pipeline on {exact(latest_date)}</h3>",
        table("pipeline_latest", "mart_pipeline_snapshot", ("snapshot_date", "stage_order"),
              cols, latest),
        _details(
            "Month ends",
            table("pipeline", "mart_pipeline_snapshot", ("snapshot_date", "stage_order"),
                  cols, rows),
        ),
    )  # fmt: skip


def _reps(page: Page, data: ReportData) -> None:
    rows = data["reps"]
    cur = data.currency
    first = _month_shift(data.latest_month, -(REP_MONTHS - 1))
    names = [r["owner_name"] or r["owner_id"] or "(no owner)" for r in rows]
    # Two owners of one name stay two bars: their ids tell them apart.
    names = [
        f"{n} ({r['owner_id']})" if names.count(n) > 1 else n
        for n, r in zip(names, rows, strict=True)
    ]
    chart = page.chart(
        "reps",
        _spec(
            [{"owner": n, "won_amount": _num(r["won_amount"]), "win_rate": _num(r["win_rate"])}
             for n, r in zip(names, rows, strict=True)],
            height=max(60, 24 * len(rows)),
            mark="bar",
            title=f"Won amount ({cur})",
            encoding={
                "y": {"field": "owner", "type": "nominal", "sort": names, "title": None},
                "x": {"field": "won_amount", "type": "quantitative", "title": None,
                      "axis": {"format": ",.0f"}},
                "tooltip": [{"field": "win_rate", "format": ".1%", "title": "win rate"}],
            },
        ),
    )  # fmt: skip
    page.section(
        "reps",
        "Rep performance",
        f'<p class="note">{first:%B %Y} to {_month_name(data.latest_month)} '
        f"({REP_MONTHS} complete months), per owner: counts and won amount summed over the "
        "months; win rate = won / (won + lost).</p>",
        chart,
        table(
            "reps",
            "mart_rep_performance",
            ("owner_id",),
            [
                Col("owner_name", "owner"),
                Col("deals_created", "deals created", "count"),
                Col("deals_won", "won", "count"),
                Col("deals_lost", "lost", "count"),
                Col("win_rate", "win rate", "pct"),
                Col("won_amount", f"won amount ({cur})", "money"),
            ],
            rows,
        ),
    )


def _data_quality(page: Page, data: ReportData) -> None:
    rows = data["data_quality"]
    flagged = sum(1 for r in rows if r["affected_rows"])
    page.section(
        "data-quality",
        "Data quality",
        f'<p class="note">{flagged} of {len(rows)} checks found rows that are not (fully) in '
        "the figures.</p>",
        table(
            "data_quality",
            "mart_data_quality",
            ("check_name",),
            [
                Col("check_name", "check"),
                Col("affected_rows", "rows", "count"),
                Col("effect", "what it means"),
            ],
            rows,
        ),
    )


def _retention(page: Page, data: ReportData) -> None:
    """Customer retention and unit economics, when the published file has those marts."""
    if "mart_customer_retention" not in data.tables or "mart_unit_economics" not in data.tables:
        return
    cur = data.currency
    economics = data["mart_unit_economics"]
    chart = page.chart(
        "value-to-cac",
        _spec(
            [{"month": exact(r["month"]), "value_to_cac": _num(r["value_to_cac"])}
             for r in economics if r["value_to_cac"] is not None],
            title="12-month customer value / CAC (mature cohorts)",
            layer=[
                {"mark": "bar",
                 "encoding": {
                     "x": {"field": "month", "type": "temporal", "timeUnit": "utcyearmonth",
                           "title": None},
                     "y": {"field": "value_to_cac", "type": "quantitative", "title": None}}},
                {"mark": {"type": "rule", "color": "#e45756", "strokeDash": [4, 4]},
                 "encoding": {"y": {"datum": 3}}},
            ],
        ),
    )  # fmt: skip
    page.section(
        "retention",
        "Customers and retention",
        '<p class="note">Per month of first win: repeat customers within 365 days and the '
        "12-month customer value; a cohort is mature once its 12 months are over (its rate, "
        "value and ratio are empty before). A value/CAC above 3 (dashed) is the usual health "
        "mark.</p>",
        chart,
        _details(
            "Retention by cohort",
            table(
                "retention",
                "mart_customer_retention",
                ("cohort_month",),
                [
                    Col("cohort_month", "cohort", "month"),
                    Col("new_customers", "new customers", "count"),
                    Col("repeat_customers_12m", "repeat (12 m)", "count"),
                    Col("repeat_rate_12m", "repeat rate", "pct"),
                    Col("first_win_amount", f"first wins ({cur})", "money"),
                    Col("follow_on_amount_12m", f"follow-on ({cur})", "money"),
                    Col("customer_value_12m", f"value per customer ({cur})", "money"),
                    Col("is_mature", "mature", "bool"),
                ],
                data["mart_customer_retention"],
            ),
        ),
        _details(
            "Unit economics by month",
            table(
                "unit_economics",
                "mart_unit_economics",
                ("month",),
                [
                    Col("month", "month", "month"),
                    Col("new_customers", "new customers", "count"),
                    Col("total_spend", f"spend ({cur})", "money"),
                    Col("cac", f"CAC ({cur})", "money"),
                    Col("customer_value_12m", f"value per customer ({cur})", "money"),
                    Col("value_to_cac", "value / CAC", "ratio"),
                    Col("is_mature", "mature", "bool"),
                ],
                economics,
            ),
        ),
    )


# ---- the page ----------------------------------------------------------------------------

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#222;
margin:0 auto;max-width:1280px;padding:16px 24px}
h1{font-size:22px;margin:8px 0 4px}h2{font-size:18px;margin:28px 0 8px;
border-bottom:1px solid #ddd;padding-bottom:4px}h3{font-size:15px;margin:16px 0 6px}
.meta{color:#555}.callout{background:#fff4e5;border-left:4px solid #f58518;padding:10px 14px;
font-size:16px;margin:14px 0}.note{color:#555;margin:4px 0 10px}
.row{display:flex;flex-wrap:wrap;gap:16px}.chart{min-height:40px;margin:6px 0}
table{border-collapse:collapse;margin:8px 0 12px;font-variant-numeric:tabular-nums}
th,td{padding:3px 10px;border-bottom:1px solid #eee}th{background:#f6f6f6;font-weight:600}
.num{text-align:right}.txt{text-align:left}details{margin:6px 0}summary{cursor:pointer;
color:#1f5fa8}nav a{margin-right:12px}a{color:#1f5fa8}
"""

# Draws every chart; the body's data-charts says when all are drawn (or that one failed).
EMBED = """
(function () {
  var specs = JSON.parse(document.getElementById('chart-specs').textContent);
  var jobs = Object.keys(specs).map(function (id) {
    return vegaEmbed('#' + id, specs[id], {renderer: 'svg', actions: false});
  });
  Promise.all(jobs).then(function () {
    document.body.setAttribute('data-charts', 'rendered');
  }, function (error) {
    document.body.setAttribute('data-charts', 'failed');
    console.error('chart not drawn: ' + error);
  });
})();
"""


@cache
def _libraries() -> str:
    return "".join(
        f"<script>/* {name}: see report_assets/THIRD_PARTY_LICENSES.txt */\n"
        f"{(ASSETS_DIR / name).read_text(encoding='utf-8')}</script>\n"
        for name in LIBRARIES
    )


def render_html(data: ReportData) -> str:
    """The whole page for one publish."""
    page = Page()
    _funnel(page, data)
    _stage_time(page, data)
    _velocity(page, data)
    _cac(page, data)
    _pipeline(page, data)
    _reps(page, data)
    _retention(page, data)
    _data_quality(page, data)
    specs = json.dumps(page.charts, separators=(",", ":"), allow_nan=False, default=_json_value)
    nav = "".join(
        f'<a href="#{sid}">{label}</a>'
        for sid, label in (
            ("funnel", "Funnel"), ("stage-time", "Time in stage"), ("velocity", "By month"),
            ("cac", "CAC"), ("pipeline", "Pipeline"), ("reps", "Reps"),
            ("retention", "Retention"), ("data-quality", "Data quality"),
        )
        if f'id="{sid}"' in "".join(page.sections)
    )  # fmt: skip
    as_of = f"{data.as_of_at:%Y-%m-%d %H:%M}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Sales funnel as of {as_of} UTC</title><style>{STYLE}</style></head>\n"
        f'<body data-as-of="{exact(data.as_of_at)}" data-run-id="{html.escape(data.run_id)}">'
        f"<h1>Sales funnel as of {as_of} UTC</h1>"
        f'<p class="meta">Amounts in {html.escape(data.currency)}; figures from the published '
        f"marts (run {html.escape(data.run_id)}). "
        f'<a href="{DOCS_LINK}">What every mart and column means (dbt docs)</a></p>'
        f'<p class="callout" id="leak">{html.escape(leak_sentence(data))}</p>'
        f"<nav>{nav}</nav>\n"
        + "\n".join(page.sections)
        + "\n"
        + _libraries()
        + '<script type="application/json" id="chart-specs">'
        + specs.replace("</", "<\\/")
        + f"</script>\n<script>{EMBED}</script>\n</body></html>\n"
    )


def report_paths(publish_dir: Path, as_of: date) -> tuple[Path, Path]:
    """The report's index page and its archive copy for an as-of date."""
    folder = publish_dir / REPORT_FOLDER
    return folder / "index.html", folder / f"{as_of:%Y-%m-%d}.html"


def write_report(published: Path, publish_dir: Path | None = None) -> dict:
    """Render the report of the published file and write its index and archive pages, each
    through a temp file renamed into place (a reader never sees half a page)."""
    from night.report import read_report_data

    started = time.monotonic()
    data = read_report_data(published)
    page = render_html(data).encode("utf-8")
    paths = report_paths(publish_dir or published.parent, data.as_of_at.date())
    paths[0].parent.mkdir(parents=True, exist_ok=True)
    for path in paths:
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(page)
        os.replace(tmp, path)
    return {
        "report": str(paths[0]),
        "archive": str(paths[1]),
        "bytes": len(page),
        "seconds": round(time.monotonic() - started, 3),
    }
