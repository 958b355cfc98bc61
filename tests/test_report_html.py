"""The nightly funnel report (night/report_html.py) in a real headless browser (Debian's
chromium): the golden night's page renders every chart without a console message, and every
figure of its tables equals the hand-computed golden marts (tests/golden/expected), re-
aggregated from their counts where the page sums months or cohorts.

One chromium run for the page (`--dump-dom`, after the charts are drawn); the rest reads
the DOM it printed.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pytest

from golden_marts import EXPECTED_DIR
from night.report import ReportData, stage_leaks
from night.report_html import leak_sentence

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TOLERANCE = Decimal("1e-9")


def chromium_command(*args: str) -> list[str]:
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: .ci/run installs Debian's chromium package")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", *args]


class Dom(HTMLParser):
    """What the test reads from the rendered page: chart containers and what they hold,
    table cells with their attributes, the leak sentence, links and scripts."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.body: dict[str, str] = {}
        self.charts: dict[str, list[str]] = {}  # chart id -> tags inside it
        self.cells: dict[str, dict[str, dict[str, tuple[str, str]]]] = defaultdict(dict)
        self.tables: dict[str, str] = {}  # table id -> mart
        self.links: list[str] = []
        self.script_sources: list[str] = []
        self.leak = ""
        self._stack: list[tuple[str, str | None]] = []  # (tag, chart id open at it)
        self._table = self._row = None
        self._cell: dict | None = None
        self._in_leak = False

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        chart = self._stack[-1][1] if self._stack else None
        if chart is not None:
            self.charts[chart].append(tag)
        if tag == "div" and "chart" in a.get("class", "").split():
            chart = a["data-chart"]
            self.charts[chart] = []
        if tag == "body":
            self.body = a
        elif tag == "table":
            self._table = a["data-table"]
            self.tables[self._table] = a["data-mart"]
        elif tag == "tr" and "data-key" in a:
            self._row = a["data-key"]
            self.cells[self._table][self._row] = {}
        elif tag == "td" and "data-column" in a:
            self._cell = {"column": a["data-column"], "value": a["data-value"], "text": ""}
        elif tag == "a":
            self.links.append(a.get("href", ""))
        elif tag == "script" and "src" in a:
            self.script_sources.append(a["src"])
        elif tag == "p" and a.get("id") == "leak":
            self._in_leak = True
        if tag not in {"br", "meta", "img", "input", "link", "hr"}:
            self._stack.append((tag, chart))

    def handle_endtag(self, tag):
        while self._stack:
            if self._stack.pop()[0] == tag:
                break
        if tag == "td" and self._cell is not None:
            self.cells[self._table][self._row][self._cell["column"]] = (
                self._cell["value"],
                self._cell["text"].strip(),
            )
            self._cell = None
        elif tag == "p":
            self._in_leak = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell["text"] += data
        if self._in_leak:
            self.leak += data


def equal(shown: str, expected: str) -> bool:
    """A `data-value` against a golden CSV value: numbers within 1e-9 (money and counts
    exact), empty for NULL, text as is."""
    if shown == "" or expected == "":
        return shown == expected
    try:
        return abs(Decimal(shown) - Decimal(expected)) <= TOLERANCE
    except InvalidOperation:
        return (
            shown == expected.lower()
            if expected.lower() in ("true", "false")
            else (shown == expected)
        )


def expected_rows(mart: str) -> list[dict[str, str]]:
    with (EXPECTED_DIR / f"{mart}.csv").open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def differences(page: dict, expected: dict[str, dict[str, object]], table: str) -> list[str]:
    """Every cell of `expected` (key -> column -> value) the page's table shows otherwise."""
    problems = []
    if sorted(page) != sorted(expected):
        problems.append(f"{table}: rows {sorted(page)} != expected {sorted(expected)}")
    for key, columns in expected.items():
        for column, want in columns.items():
            got = page.get(key, {}).get(column, ("<missing>", ""))[0]
            if not equal(got, "" if want is None else str(want)):
                problems.append(f"{table} {key} {column}: page {got!r}, expected {want!r}")
    return problems


def ratio(numerator: int, denominator: int) -> str:
    return "" if denominator == 0 else str(Decimal(numerator) / Decimal(denominator))


@pytest.fixture(scope="module")
def page(golden_night, tmp_path_factory):
    """The golden night's report (written by its publish), rendered by chromium."""
    config, result = golden_night
    index = config.publish_dir / "report" / "index.html"
    command = chromium_command(
        # A profile of its own: another chromium running (make report) is not joined
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=10000",
        "--dump-dom",
        index.as_uri(),
    )
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    dom = Dom()
    dom.feed(done.stdout)
    return config, result, index, dom, done.stderr


def test_publish_writes_the_report_and_its_archive_copy(page):
    config, result, index, _, _ = page
    archive = index.with_name("2026-06-01.html")
    assert result["published"]["report"]["report"] == str(index)
    assert archive.read_bytes() == index.read_bytes()
    # Generating it is cheap enough for every publish (well under a second)
    assert result["published"]["report"]["seconds"] < 1.0


def test_the_page_draws_every_chart_without_a_console_message(page):
    _, _, index, dom, stderr = page
    console = [line for line in stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert console == []
    assert dom.body.get("data-charts") == "rendered"
    # Every chart container holds a drawn SVG with marks in it
    assert len(dom.charts) >= 10, sorted(dom.charts)
    empty = [chart for chart, tags in dom.charts.items() if "svg" not in tags or "path" not in tags]
    assert empty == []
    # Self-contained: no script or stylesheet from anywhere; the docs are linked beside it
    html = index.read_text(encoding="utf-8")
    assert dom.script_sources == []
    assert "<link" not in html and "@import" not in html
    assert "../docs/index.html" in dom.links


def test_the_leak_is_called_out_in_words(page):
    # In May 2026 no stage's exits moved forward less often than in February-April
    # (fct_deal_stage_spells: e.g. negotiation 2 of 2 against 4 of 5)
    _, _, _, dom, _ = page
    assert dom.leak == (
        "No leak: no stage converted below its trailing average in May 2026 "
        "(deals leaving each stage, compared with February–April 2026)."
    )


def test_the_leak_sentence_names_the_stage_that_fell_furthest():
    # GIVEN stage exits where proposal fell 30 points and negotiation 10
    exits = [
        {"stage_order": 6, "funnel_stage": "proposal", "month": date(2026, 5, 1),
         "exits": 10, "advanced": 5},
        {"stage_order": 6, "funnel_stage": "proposal", "month": date(2026, 3, 1),
         "exits": 20, "advanced": 16},
        {"stage_order": 7, "funnel_stage": "negotiation", "month": date(2026, 5, 1),
         "exits": 10, "advanced": 8},
        {"stage_order": 7, "funnel_stage": "negotiation", "month": date(2026, 2, 1),
         "exits": 10, "advanced": 9},
    ]  # fmt: skip
    data = ReportData(Path("x"), "r", datetime(2026, 6, 1), "EUR", date(2026, 5, 1))
    data.tables["leak"] = stage_leaks(exits, date(2026, 5, 1))
    # THEN the sentence names proposal, with both shares and their counts
    assert leak_sentence(data) == (
        "Biggest leak: proposal. In May 2026, 5 of 10 deals leaving proposal moved forward "
        "(50.0%), against 80.0% (16 of 20) in February–April 2026: 30.0 points lower."
    )


def test_every_table_figure_equals_the_golden_marts(page):
    config, _, _, dom, _ = page
    cells = dom.cells
    problems: list[str] = []

    # Funnel: counts summed over cohorts, conversions from the sums
    reached: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0])
    for r in expected_rows("mart_funnel_conversion"):
        reached[(int(r["stage_order"]), r["funnel_stage"])][0] += int(r["deals_reached"])
        reached[(int(r["stage_order"]), r["funnel_stage"])][1] += int(r["deals_advanced"])
    top = reached[min(reached)][0]
    last = max(reached)
    problems += differences(
        cells["funnel"],
        {
            stage: {
                "deals_reached": n,
                "deals_advanced": advanced,
                "conversion_to_next": "" if (order, stage) == last else ratio(advanced, n),
                "conversion_from_top": ratio(n, top),
            }
            for (order, stage), (n, advanced) in reached.items()
        },
        "funnel",
    )
    assert cells["funnel"]["first_contact"]["conversion_to_next"][1] == "86.7%"

    # Leak: spells that ended in May 2026 against February-April 2026
    exits: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for r in expected_rows("fct_deal_stage_spells"):
        if r["exit_kind"] not in ("advanced", "regressed", "lost"):
            continue
        month = r["exited_at"][:7]
        slot = 0 if month == "2026-05" else 2 if "2026-02" <= month <= "2026-04" else None
        if slot is not None:
            exits[r["funnel_stage"]][slot] += 1
            exits[r["funnel_stage"]][slot + 1] += r["exit_kind"] == "advanced"
    problems += differences(
        cells["leak"],
        {
            stage: {
                "latest_exits": n,
                "latest_conversion": ratio(adv, n),
                "trailing_exits": tn,
                "trailing_conversion": ratio(tadv, tn),
            }
            for stage, (n, adv, tn, tadv) in exits.items()
        },
        "leak",
    )

    # Time in stage: May 2026's completed spells, and the spells open at the as-of time
    open_spells = {r["funnel_stage"]: r for r in expected_rows("mart_stage_open_spells")}
    problems += differences(
        cells["stage_time"],
        {
            r["funnel_stage"]: {
                **{c: r[c] for c in ("spells_completed", "median_days", "p90_days", "avg_days")},
                **{c: open_spells[r["funnel_stage"]][c] for c in ("open_spells", "avg_age_days")},
            }
            for r in expected_rows("mart_stage_duration")
            if r["month"] == "2026-05-01"
        },
        "stage_time",
    )

    # Month marts: every row and shown column as published
    for table, mart, grain in (
        ("velocity", "mart_sales_velocity", ("month",)),
        ("cac", "mart_cac", ("month",)),
        ("cac_by_channel", "mart_cac_by_channel", ("month", "channel")),
        ("retention", "mart_customer_retention", ("cohort_month",)),
        ("unit_economics", "mart_unit_economics", ("month",)),
    ):
        shown_columns = {c for row in cells[table].values() for c in row}
        problems += differences(
            cells[table],
            {
                "|".join(r[g] for g in grain): {c: r[c] for c in shown_columns}
                for r in expected_rows(mart)
            },
            table,
        )
    assert cells["cac"]["2026-03-01"]["cac"][1] == "3,398"  # 3,397.50 rounded for people

    # Pipeline: month ends and the as-of date's snapshot
    snapshot = expected_rows("mart_pipeline_snapshot")
    latest = max(r["snapshot_date"] for r in snapshot)
    month_ends = {
        r["snapshot_date"]
        for r in snapshot
        if r["snapshot_date"] == latest
        or (date.fromisoformat(r["snapshot_date"]) + timedelta(days=1)).day == 1
    }
    assert month_ends
    for table, rows in (
        ("pipeline", [r for r in snapshot if r["snapshot_date"] in month_ends]),
        ("pipeline_latest", [r for r in snapshot if r["snapshot_date"] == latest]),
    ):
        problems += differences(
            cells[table],
            {
                f"{r['snapshot_date']}|{r['stage_order']}": {
                    c: r[c] for c in ("open_deals", "open_amount", "weighted_amount")
                }
                for r in rows
            },
            table,
        )

    # Reps: June 2025 to May 2026 summed per owner; win rate from the sums
    reps: dict[str, list] = defaultdict(lambda: [0, 0, 0, Decimal(0)])
    for r in expected_rows("mart_rep_performance"):
        if "2025-06-01" <= r["month"] <= "2026-05-01":
            rep = reps[r["owner_id"]]
            rep[0] += int(r["deals_created"])
            rep[1] += int(r["deals_won"])
            rep[2] += int(r["deals_lost"])
            rep[3] += Decimal(r["won_amount"])
    problems += differences(
        cells["reps"],
        {
            owner: {
                "deals_created": created,
                "deals_won": won,
                "deals_lost": lost,
                "win_rate": ratio(won, won + lost),
                "won_amount": amount,
            }
            for owner, (created, won, lost, amount) in reps.items()
        },
        "reps",
    )

    # Data quality: as the published mart says (no hand-computed file for it)
    con = duckdb.connect(str(config.published_path), read_only=True)
    try:
        quality = con.execute("select check_name, affected_rows from marts.mart_data_quality")
        expected_quality = {name: {"affected_rows": n} for name, n in quality.fetchall()}
    finally:
        con.close()
    problems += differences(cells["data_quality"], expected_quality, "data_quality")

    assert problems == []


def test_a_skipped_publish_writes_the_report_only_when_it_is_missing(page, golden_as_of):
    # GIVEN the golden night's report, then a night on unchanged data (publish skipped)
    from night.tasks import publish_marts

    config, _, index, _, _ = page
    result = publish_marts(as_of=golden_as_of, run_id="again", config=config)
    assert result["skipped"] and "report" not in result
    # WHEN the report is missing THEN the next skipped publish writes it again
    index.unlink()
    result = publish_marts(as_of=golden_as_of, run_id="again", config=config)
    assert result["skipped"] and index.exists()


def test_the_dbt_docs_describe_every_mart_and_column_beside_the_report(page, golden_as_of):
    # WHEN the night's docs task runs after publish
    import json

    from night.tasks import publish_docs

    config, _, index, dom, _ = page
    result = publish_docs(as_of=golden_as_of, config=config)
    # THEN the static docs page is where the report links to, self-contained
    docs = (index.parent / "../docs/index.html").resolve()
    assert result["docs"] == str(docs)
    assert "<script src=" not in docs.read_text(encoding="utf-8")
    # AND every published mart and every column of it has a description
    target = config.state_dir / "dbt_target_duckdb"
    nodes = json.loads((target / "manifest.json").read_text(encoding="utf-8"))["nodes"]
    described = {
        node["name"]: (node["description"], node["columns"])
        for node in nodes.values()
        if node["resource_type"] == "model" and node["schema"] == "marts"
    }
    con = duckdb.connect(str(config.published_path), read_only=True)
    try:
        columns = con.execute(
            "select table_name, column_name from information_schema.columns "
            "where table_schema = 'marts' order by all"
        ).fetchall()
    finally:
        con.close()
    undescribed = [
        f"{mart}.{column}"
        for mart, column in columns
        if not described[mart][0].strip()
        or not described[mart][1].get(column, {}).get("description", "").strip()
    ]
    assert undescribed == []
    # AND the lineage: the docs page carries the marts' parents (manifest inlined)
    assert "mart_funnel_conversion" in docs.read_text(encoding="utf-8")
