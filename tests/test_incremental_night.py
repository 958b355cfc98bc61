"""An incremental night (only the deals with new raw rows rebuilt, macros/incremental.sql)
gives exactly the marts of a full refresh on the same data, on DuckDB and on PostgreSQL.

The data: the 300-deal sample as of 2026-07-01, plus an activity dated 2026-07-01 12:00 on
an open deal (in the future on the first night, counted as a touch on the second without
any new row for that deal), then a day's export of changes (devkit.sample_data.
write_changes: deals won or lost, amounts corrected, deals moved to another customer,
activities moved between deals, new deals) landed beside the files, as of 2026-07-02.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
from pathlib import Path

import duckdb
import pytest
from api_nights import ALL_MARTS, pipeline_config

pytestmark = pytest.mark.slow(seconds=20)

NIGHT_1 = "2026-07-01T00:00:00Z"
NIGHT_2 = "2026-07-02T00:00:00Z"
# The per-deal tables an incremental night replaces in part (besides the marts).
PER_DEAL = (
    "int_stage_changes__mapped",
    "int_deals__enriched",
    "int_deal_stage_spells",
    "int_deal_stage_segments",
    "int_deal_touches",
    "int_deals__measured",
)
# Bookkeeping of which build wrote a per-deal table's row (macros/incremental.sql,
# build_mark): a full refresh of the same data writes the same rows with other marks.
BOOKKEEPING = ("_build_mark",)


def _canonical(root, landing):
    return pipeline_config(
        root, f"  - {{name: demo_crm, type: canonical_csv, landing_dir: {landing}}}\n"
    )


def land_sample(sample, landing) -> str:
    """The sample's files in `landing`, plus an activity of its first open deal dated
    2026-07-01 12:00 (between the two nights' as-of times); returns that deal's id."""
    shutil.copytree(sample, landing)
    with (landing / "deals.csv").open(newline="") as f:
        deal = next(row for row in csv.DictReader(f) if row["status"] == "open")
    (landing / "activities_future.csv").write_text(
        "activity_id,deal_id,activity_type,occurred_at,owner_id\n"
        f"AFUTURE1,{deal['deal_id']},meeting,2026-07-01T12:00:00Z,{deal['owner_id']}\n"
    )
    return deal["deal_id"]


def _deal_ids(path, column="deal_id") -> set[str]:
    with path.open(newline="") as f:
        return {row[column] for row in csv.DictReader(f)}


@pytest.fixture(scope="module")
def nights(sample, tmp_path_factory):
    """Night 1 and the incremental night 2 in one warehouse; night 2's data as a full
    refresh in another. Returns both configs, night 2's results and the changes."""
    from devkit.sample_data import write_changes
    from night.tasks import parse_as_of, run_night

    root = tmp_path_factory.mktemp("incremental")
    landing = root / "landing"
    future_deal = land_sample(sample, landing)
    config = _canonical(root / "incremental", landing)
    first = run_night(as_of=parse_as_of(NIGHT_1), run_id="n1", config=config)
    con = duckdb.connect(str(config.warehouse_path), read_only=True)
    first_touches = con.sql(
        f"select touches_before_close from marts.fct_deals where deal_id = 'demo_crm:{future_deal}'"
    ).fetchall()
    first_batch = con.sql("select max(batch_id) from raw._batches").fetchall()[0][0]
    con.close()
    changes = write_changes(landing, landing, fraction=0.1, night="20260701", since="2026-07-01")
    second = run_night(
        as_of=parse_as_of(NIGHT_2), run_id="n2", config=config, accept_publish_guard=True
    )
    reference = _canonical(root / "full", landing)
    run_night(as_of=parse_as_of(NIGHT_2), run_id="full", config=reference)
    return {
        "config": config,
        "reference": reference,
        "landing": landing,
        "first": first,
        "second": second,
        "changes": changes,
        "future_deal": future_deal,
        "first_touches": first_touches,
        "changed_since_batch": first_batch,  # the last batch night 1 read
    }


def _rows(path, schema, table):
    """A table's rows in order, without the bookkeeping columns."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        columns = con.sql(f"select * from {schema}.{table}").columns
        kept = ", ".join(f'"{c}"' for c in columns if c not in BOOKKEEPING)
        return con.sql(f"select {kept} from {schema}.{table} order by all").fetchall()
    finally:
        con.close()


def test_the_second_night_is_incremental_and_publishes_in_part(nights):
    assert nights["first"]["built"]["incremental"] is False
    assert nights["first"]["built"]["full_because"] == "no earlier build to continue from"
    assert nights["second"]["built"]["incremental"] is True
    assert nights["second"]["published"]["in_part"] is True
    # every kind of change is in the data (write_changes' counts for this seed)
    assert nights["changes"] == {
        "closed": 2,
        "corrected": 28,
        "customer_moved": 3,
        "activity_moved": 2,
        "new": 7,
    }


def test_it_rebuilds_the_changed_deals_and_no_others(nights):
    """int_changed_deals is exactly the set worked out from the files alone."""
    landing = nights["landing"]
    rebuilt = {
        row[0]
        for row in _rows(nights["config"].warehouse_path, "intermediate", "int_changed_deals")
    }
    expected, left_only = expected_changed_deals(landing, nights["future_deal"])
    assert left_only  # an activity left a deal that is in none of tonight's files
    assert rebuilt == expected
    assert len(rebuilt) < 0.25 * len(_deals(landing / "deals.csv"))


def expected_changed_deals(landing, future_deal) -> tuple[set[str], set[str]]:
    """The deals an incremental night after write_changes rebuilds (docs/incremental.md),
    from the files: every deal of tonight's files, the deal whose activity came due, the
    deals moved activities left, and, for each of those won last night or now, every won
    deal of its customer then and now. Also the left deals in none of tonight's files."""
    before = _deals(landing / "deals.csv")
    after = {**before, **_deals(landing / "deals_20260701.csv")}
    earlier_activities = {}
    for name in ("activities.csv", "activities_future.csv"):
        with (landing / name).open(newline="") as f:
            earlier_activities |= {r["activity_id"]: r["deal_id"] for r in csv.DictReader(f)}
    with (landing / "activities_20260701.csv").open(newline="") as f:
        tonight = list(csv.DictReader(f))
    left = {
        earlier_activities[a["activity_id"]]
        for a in tonight
        if a["activity_id"] in earlier_activities
    }
    delivered = (
        set(_deals(landing / "deals_20260701.csv"))
        | _deal_ids(landing / "deal_stage_history_20260701.csv")
        | {a["deal_id"] for a in tonight}
    )
    changed = delivered | left | {future_deal}
    customers = {
        _customer(deals[d], d)
        for deals in (before, after)
        for d in changed
        if d in deals and deals[d]["status"] == "won"
    }
    expected = changed | {
        d for d, row in after.items() if row["status"] == "won" and _customer(row, d) in customers
    }
    return {f"demo_crm:{d}" for d in expected}, left - delivered


def _deals(path) -> dict[str, dict]:
    with path.open(newline="") as f:
        return {row["deal_id"]: row for row in csv.DictReader(f)}


def _customer(row, deal_id) -> str:
    return row["company_id"] or f"deal:{deal_id}"


def test_the_as_of_move_counts_the_activity_that_came_due(nights):
    deal = f"demo_crm:{nights['future_deal']}"
    con = duckdb.connect(str(nights["config"].warehouse_path), read_only=True)
    after = con.sql(
        f"select touches_before_close from marts.fct_deals where deal_id = '{deal}'"
    ).fetchall()
    con.close()
    assert after[0][0] == nights["first_touches"][0][0] + 1


@pytest.mark.parametrize("table", [*ALL_MARTS, "mart_customer_retention", "mart_unit_economics"])
def test_each_mart_equals_the_full_refresh(nights, table):
    incremental = _rows(nights["config"].warehouse_path, "marts", table)
    full = _rows(nights["reference"].warehouse_path, "marts", table)
    assert incremental == full
    assert full  # a mart with rows


@pytest.mark.parametrize("table", PER_DEAL)
def test_each_per_deal_table_equals_the_full_refresh(nights, table):
    full = _rows(nights["reference"].warehouse_path, "intermediate", table)
    assert _rows(nights["config"].warehouse_path, "intermediate", table) == full
    assert full  # a table with rows


def test_the_published_file_equals_the_full_refresh(nights):
    config, reference = nights["config"], nights["reference"]
    con = duckdb.connect(str(config.published_path), read_only=True)
    tables = [
        row[0]
        for row in con.sql(
            "select table_name from information_schema.tables where table_schema = 'marts' "
            "order by 1"
        ).fetchall()
    ]
    con.close()
    assert len(tables) == 14
    for table in tables:
        full = _rows(reference.published_path, "marts", table)
        assert _rows(config.published_path, "marts", table) == full, table
        assert full, table  # a mart with rows


def test_the_file_published_in_part_opens_in_duckdb_1_x(nights):
    """The copy written in place keeps DuckDB 1.0's storage format (BI drivers bundling
    DuckDB 1.x read it), as a whole copy does (tests/test_golden_duckdb.py)."""
    python = Path(__file__).resolve().parents[1] / ".venv-bi" / "bin" / "python"
    if not python.exists():
        pytest.skip("no .venv-bi (DuckDB 1.1): `make test` creates it")
    script = (
        "import duckdb, sys; con = duckdb.connect(sys.argv[1], read_only=True); "
        "print(duckdb.__version__, con.execute('select count(*) from marts.fct_deals')"
        ".fetchall()[0][0])"
    )
    out = subprocess.run(
        [str(python), "-c", script, str(nights["config"].published_path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    deals = len(_rows(nights["reference"].published_path, "marts", "fct_deals"))
    assert out == ["1.1.3", str(deals)]


def test_the_tests_of_models_replaced_in_part_checked_tonights_rows(nights):
    """On the incremental night a per-deal model's data test reads the deals rebuilt
    tonight, a staging model's the deals staged tonight, a table rebuilt in full every
    row (macros/incremental.sql, get_where_subquery)."""
    run = nights["config"].state_dir / "dbt_target_duckdb" / "run" / "crm_funnel" / "models"
    tests = run / "intermediate" / "_intermediate__models.yml"
    staging = run / "staging" / "canonical_csv" / "_canonical_csv__models.yml"
    per_deal = (tests / "primary_key_int_deals__measured_deal_id.sql").read_text()
    staged = (staging / "row_checks_stg_canonical_csv__activities.sql").read_text()
    full = (tests / "primary_key_int_months_month.sql").read_text()
    assert "deal_id in (select deal_id from intermediate.int_changed_deals)" in per_deal
    # ... of the rows marked tonight (build_mark: the batch after the last build's)
    since = nights["changed_since_batch"]
    assert f"_build_mark = cast({since + 1} as bigint) and deal_id in" in per_deal
    assert "deal_id in (select deal_id from meta.changed_deals_log)" in staged
    # the staging model's checks (one row_checks, one query) read it filtered in each arm
    assert staged.count("changed_deals_log") == staged.count("stg_canonical_csv__activities") == 2
    assert "changed_deals" not in full


def test_a_per_deal_table_marks_the_rows_each_build_wrote(nights):
    """The rows of the deals rebuilt tonight carry tonight's mark, every other row the
    full refresh's (0); a per-deal model reads its per-deal inputs by that mark (and the
    deal), so DuckDB reads only the row groups written tonight (macros/incremental.sql)."""
    since = nights["changed_since_batch"]
    rebuilt = {
        row[0]
        for row in _rows(nights["config"].warehouse_path, "intermediate", "int_changed_deals")
    }
    for table in PER_DEAL:
        for path, tonight in (
            (nights["config"].warehouse_path, since + 1),
            (nights["reference"].warehouse_path, 0),
        ):
            con = duckdb.connect(str(path), read_only=True)
            try:
                marks = con.sql(
                    f"select deal_id, _build_mark from intermediate.{table} group by all"
                ).fetchall()
            finally:
                con.close()
            assert marks, table
            if tonight:
                # (some of the table's deals were rebuilt: the equality below is not of
                # two empty sets)
                assert rebuilt & {d for d, _ in marks}, table
                assert {d for d, mark in marks if mark == tonight} == rebuilt & {
                    d for d, _ in marks
                }, table
                assert {mark for d, mark in marks if d not in rebuilt} == {0}, table
            else:
                assert {mark for _, mark in marks} == {0}, table
    compiled = nights["config"].state_dir / "dbt_target_duckdb" / "compiled" / "crm_funnel"
    measured = (compiled / "models" / "intermediate" / "int_deals__measured.sql").read_text()
    # its three per-deal inputs, by mark and deal
    assert measured.count(f"where _build_mark = cast({since + 1} as bigint) and deal_id in") == 3


def test_each_warehouse_holds_its_builds_artifacts(nights):
    """A build writes no manifest.json of its own (night/transform.py, NO_MANIFEST_WRITE):
    the second warehouse this process built, which it did not parse for, still gets the
    manifest the in-part publish reads, and each build's run results."""
    import json

    from night.transform import per_deal_marts

    for config, run_id in ((nights["config"], "n2"), (nights["reference"], "full")):
        target = config.state_dir / "dbt_target_duckdb"
        assert per_deal_marts(config) == {"fct_deals", "fct_deal_funnel", "fct_deal_stage_spells"}
        results = json.loads((target / "run_results.json").read_text(encoding="utf-8"))
        assert results["args"]["which"] == "build"
        assert results["args"].get("full_refresh", False) is (run_id == "full")
        statuses = {r["unique_id"]: r["status"] for r in results["results"]}
        assert statuses["model.crm_funnel.fct_deals"] == "success"
        assert set(statuses.values()) <= {"success", "pass"}
