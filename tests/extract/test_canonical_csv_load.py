"""Loading a canonical CSV landing folder into the raw layer: every row as text with its load
metadata, idempotent reruns, corrected files, and quarantine with file, line and reason.

Real CSV files in a landing folder, a real DuckDB warehouse in tmp_path, no mocks.
"""

from __future__ import annotations

import csv
import io
import json
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from extract.errors import LoadError
from extract.sources import all_raw_objects, canonical_csv
from extract.warehouse import LoadReport, connect, ensure_raw_schema
from night.config import PipelineConfig, load_config
from night.tasks import extract_source

AS_OF = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)
SOURCE = "crm"

# The canonical headers of ARCHITECTURE.md, spelled out so the tests pin the contract.
DEALS_HEADER = (
    "deal_id,deal_name,pipeline,stage,status,amount,currency,owner_id,owner_name,"
    "company_id,lead_source,created_at,closed_at,updated_at"
)
HISTORY_HEADER = "deal_id,stage,changed_at"
ACTIVITIES_HEADER = "activity_id,deal_id,activity_type,occurred_at,owner_id"
SPEND_HEADER = "date,channel,category,amount,currency"

TABLES = (
    "canonical_csv__deals",
    "canonical_csv__deal_stage_history",
    "canonical_csv__activities",
    "canonical_csv__spend",
    "_quarantine",
    "_batches",
)

OPEN_DEAL = {
    "deal_name": "Acme Licence",
    "pipeline": "direct",
    "stage": "Proposal",
    "status": "open",
    "amount": "1000.00",
    "currency": "EUR",
    "owner_id": "u1",
    "owner_name": "Alice Martin",
    "company_id": "C1",
    "lead_source": "Google Ads",
    "created_at": "2026-01-05T09:00:00Z",
    "closed_at": "",
    "updated_at": "2026-01-06T09:00:00Z",
}


def deal(deal_id: str, **changes: str) -> str:
    """One deals.csv line: a valid open deal with the given fields changed."""
    row = {"deal_id": deal_id, **OPEN_DEAL, **changes}
    return ",".join(row[c] for c in DEALS_HEADER.split(","))


def lines(*rows: str) -> str:
    return "\n".join(rows) + "\n"


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    path = tmp_path / "landing" / SOURCE
    path.mkdir(parents=True)
    return path


@pytest.fixture
def config(tmp_path: Path, landing: Path) -> PipelineConfig:
    path = tmp_path / "pipeline.yml"
    path.write_text(
        textwrap.dedent(
            f"""\
            reporting_currency: EUR
            warehouse:
              path: var/warehouse.duckdb
              publish_dir: var/published
            sources:
              - name: {SOURCE}
                type: canonical_csv
                landing_dir: landing/{SOURCE}
            """
        ),
        encoding="utf-8",
    )
    return load_config(path)


def land(landing: Path, rel: str, content: str | bytes) -> Path:
    """Drop one file in the landing folder, exactly these bytes."""
    path = landing / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def extract(config: PipelineConfig) -> LoadReport:
    """What the extract task does, returning the per-file report."""
    con = connect(config.warehouse_path)
    try:
        ensure_raw_schema(con, all_raw_objects())
        return canonical_csv.extract(con, config.source(SOURCE), as_of=AS_OF)
    finally:
        con.close()


@pytest.fixture
def wh(config: PipelineConfig) -> Iterator[duckdb.DuckDBPyConnection]:
    """The warehouse, held open for the test so queries need not reopen the file.

    extract()'s own connect() in this process shares this DuckDB instance and sees its commits.
    """
    con = connect(config.warehouse_path)
    ensure_raw_schema(con, all_raw_objects())
    yield con
    con.close()


def query(wh: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[tuple]:
    return wh.execute(sql, params or []).fetchall()


def counts(wh: duckdb.DuckDBPyConnection) -> dict[str, int]:
    return {t: query(wh, f"select count(*) from raw.{t}")[0][0] for t in TABLES}


def quarantined(wh: duckdb.DuckDBPyConnection, source_file: str) -> list[tuple[int, str]]:
    return query(
        wh,
        """select line_number, reason from raw._quarantine
           where _source_file = ? order by line_number""",
        [source_file],
    )


def record_lines(path: Path) -> list[int]:
    """The line each data record starts on (header = line 1), read by an independent parser."""
    text = path.read_bytes().decode("utf-8-sig", errors="replace")
    reader = csv.reader(io.StringIO(text, newline=""))
    next(reader)
    starts, end_of_previous = [], reader.line_num
    for record in reader:
        if record:
            starts.append(end_of_previous + 1)
        end_of_previous = reader.line_num
    return starts


def assert_every_record_accounted(wh: duckdb.DuckDBPyConnection, landing: Path) -> None:
    """Each current file: loaded + quarantined == its data records, each record once, by line."""
    batches = query(
        wh,
        """select batch_id, raw_table, source_file, rows_loaded, rows_quarantined
           from raw._batches where superseded_by is null order by batch_id""",
    )
    assert batches
    for batch_id, table, source_file, loaded, n_quarantined in batches:
        in_raw = [
            r[0]
            for r in query(
                wh, f"select _row_number from raw.{table} where _batch_id = ?", [batch_id]
            )
        ]
        in_quarantine = [
            r[0]
            for r in query(
                wh, "select line_number from raw._quarantine where _batch_id = ?", [batch_id]
            )
        ]
        assert (len(in_raw), len(in_quarantine)) == (loaded, n_quarantined), source_file
        assert sorted(in_raw + in_quarantine) == record_lines(landing / source_file), source_file


# --- every row in raw, as text, with its load metadata -------------------------------------


def test_every_row_lands_in_raw_as_text_with_load_metadata(config, landing, wh):
    # GIVEN one night's export of all four canonical files in a dated subfolder
    land(
        landing,
        "2026-11-01/deals.csv",
        lines(
            DEALS_HEADER,
            "D1,Acme Platform,direct,Closed Won,won,12000.00,EUR,u1,Alice Martin,C1,Google Ads,"
            "2026-01-05T09:00:00Z,2026-03-02T15:00:00Z,2026-03-02T15:05:00Z",
            'D2,"Beta, Inc renewal",partner,Proposal,open,0500,usd,u2,Bob Chen,C2,,'
            "2026-02-01T10:00:00Z,,",
        ),
    )
    land(
        landing,
        "2026-11-01/deal_stage_history.csv",
        lines(
            HISTORY_HEADER,
            "D1,Prospect,2026-01-05T09:00:00Z",
            "D1,Closed Won,2026-03-02T15:00:00Z",
            "D2,Proposal,2026-02-01T10:00:00Z",
        ),
    )
    land(
        landing,
        "2026-11-01/activities.csv",
        lines(
            ACTIVITIES_HEADER,
            "A1,D1,call,2026-01-06T10:00:00Z,u1",
            "A2,D2,email,2026-02-02T09:00:00Z,",
        ),
    )
    land(
        landing,
        "2026-11-01/spend.csv",
        lines(
            SPEND_HEADER,
            "2026-01-15,paid_search,marketing,2000.00,EUR",
            "2026-01-31,,sales,15000,EUR",
        ),
    )
    before = datetime.now(UTC).replace(tzinfo=None)

    # WHEN the extract task runs
    summary = extract_source(SOURCE, as_of=AS_OF, config=config)
    after = datetime.now(UTC).replace(tzinfo=None)

    # THEN every row is in its raw table, values exactly as written
    assert summary == {
        "source_system": "crm",
        "files_loaded": 4,
        "files_unchanged": 0,
        "rows_loaded": 9,
        "rows_quarantined": 0,
        "errors": [],
        "ignored_files": [],
        "waiting_files": [],
        "rejected_files": [],
        "api_rows": {},
        "still_loading": [],
    }
    batch = {
        table: (batch_id, loaded_at)
        for batch_id, table, loaded_at in query(
            wh, "select batch_id, raw_table, loaded_at from raw._batches"
        )
    }
    assert sorted(batch) == [
        "canonical_csv__activities",
        "canonical_csv__deal_stage_history",
        "canonical_csv__deals",
        "canonical_csv__spend",
    ]
    meta = "_source_system, _batch_id, _source_file, _row_number"
    deals_id = batch["canonical_csv__deals"][0]
    assert query(
        wh,
        f"""select deal_id, deal_name, pipeline, stage, status, amount, currency, owner_id,
                   owner_name, company_id, lead_source, created_at, closed_at, updated_at, {meta}
            from raw.canonical_csv__deals order by _row_number""",
    ) == [
        ("D1", "Acme Platform", "direct", "Closed Won", "won", "12000.00", "EUR", "u1",
         "Alice Martin", "C1", "Google Ads", "2026-01-05T09:00:00Z", "2026-03-02T15:00:00Z",
         "2026-03-02T15:05:00Z", "crm", deals_id, "2026-11-01/deals.csv", 2),
        ("D2", "Beta, Inc renewal", "partner", "Proposal", "open", "0500", "usd", "u2",
         "Bob Chen", "C2", None, "2026-02-01T10:00:00Z", None, None,
         "crm", deals_id, "2026-11-01/deals.csv", 3),
    ]  # fmt: skip
    history_id = batch["canonical_csv__deal_stage_history"][0]
    assert query(
        wh,
        f"select deal_id, stage, changed_at, {meta} from raw.canonical_csv__deal_stage_history"
        " order by _row_number",
    ) == [
        ("D1", "Prospect", "2026-01-05T09:00:00Z", "crm", history_id,
         "2026-11-01/deal_stage_history.csv", 2),
        ("D1", "Closed Won", "2026-03-02T15:00:00Z", "crm", history_id,
         "2026-11-01/deal_stage_history.csv", 3),
        ("D2", "Proposal", "2026-02-01T10:00:00Z", "crm", history_id,
         "2026-11-01/deal_stage_history.csv", 4),
    ]  # fmt: skip
    activities_id = batch["canonical_csv__activities"][0]
    assert query(
        wh,
        "select activity_id, deal_id, activity_type, occurred_at, owner_id, "
        f"{meta} from raw.canonical_csv__activities order by _row_number",
    ) == [
        ("A1", "D1", "call", "2026-01-06T10:00:00Z", "u1",
         "crm", activities_id, "2026-11-01/activities.csv", 2),
        ("A2", "D2", "email", "2026-02-02T09:00:00Z", None,
         "crm", activities_id, "2026-11-01/activities.csv", 3),
    ]  # fmt: skip
    spend_id = batch["canonical_csv__spend"][0]
    assert query(
        wh,
        f"select date, channel, category, amount, currency, {meta} from raw.canonical_csv__spend"
        " order by _row_number",
    ) == [
        ("2026-01-15", "paid_search", "marketing", "2000.00", "EUR",
         "crm", spend_id, "2026-11-01/spend.csv", 2),
        ("2026-01-31", None, "sales", "15000", "EUR",
         "crm", spend_id, "2026-11-01/spend.csv", 3),
    ]  # fmt: skip

    # ... every row carries its batch's load time, taken during the run
    for table, (_, loaded_at) in batch.items():
        assert before <= loaded_at <= after
        assert query(wh, f"select distinct _loaded_at from raw.{table}") == [(loaded_at,)]
    # ... and the raw tables hold text only, whatever the source's values look like
    types = query(
        wh,
        """select table_name, column_name, data_type from information_schema.columns
           where table_schema = 'raw' and table_name like 'canonical_csv__%'""",
    )
    metadata_types = {
        "_source_system": "VARCHAR",
        "_batch_id": "BIGINT",
        "_loaded_at": "TIMESTAMP",
        "_source_file": "VARCHAR",
        "_row_number": "BIGINT",
    }
    assert len(types) == 27 + 4 * 5
    for table, column, data_type in types:
        assert data_type == metadata_types.get(column, "VARCHAR"), (table, column)
    assert_every_record_accounted(wh, landing)


def test_rerun_of_same_file_adds_no_rows(config, landing, wh):
    # GIVEN a deals file (one row quarantined) and a spend file, already loaded once
    land(landing, "deals.csv", lines(DEALS_HEADER, deal("D1"), deal("D2", amount="n/a")))
    land(landing, "spend.csv", lines(SPEND_HEADER, "2026-01-15,paid_search,marketing,20,EUR"))
    first = extract(config)
    before = counts(wh)

    # WHEN the same files are extracted again
    second = extract(config)

    # THEN nothing is loaded and every table keeps its exact rows
    assert [(f.source_file, f.action, f.rows_loaded, f.rows_quarantined) for f in first.files] == [
        ("deals.csv", "loaded", 1, 1),
        ("spend.csv", "loaded", 1, 0),
    ]
    assert [
        (f.source_file, f.action, f.rows_loaded, f.rows_quarantined, f.batch_id)
        for f in second.files
    ] == [
        ("deals.csv", "unchanged", 0, 0, first.files[0].batch_id),
        ("spend.csv", "unchanged", 0, 0, first.files[1].batch_id),
    ]
    assert second.summary()["files_unchanged"] == 2
    assert second.summary()["rows_loaded"] == 0
    assert (
        counts(wh)
        == before
        == {
            "canonical_csv__deals": 1,
            "canonical_csv__deal_stage_history": 0,
            "canonical_csv__activities": 0,
            "canonical_csv__spend": 1,
            "_quarantine": 1,
            "_batches": 2,
        }
    )


def test_corrected_file_replaces_exactly_what_its_earlier_version_loaded(config, landing, wh):
    # GIVEN deals.csv v1 (2 rows loaded, 1 quarantined) next to another deals file
    land(
        landing,
        "deals.csv",
        lines(DEALS_HEADER, deal("D1"), deal("D2"), deal("D3", amount="12k")),
    )
    land(
        landing,
        "archive/deals.csv",
        lines(DEALS_HEADER, deal("D9"), deal("D8", status="pending")),
    )
    first = extract(config)
    old_batch = {f.source_file: f.batch_id for f in first.files}

    # WHEN a corrected deals.csv arrives under the same name: D1 amended, D2 gone, D4 bad
    land(
        landing,
        "deals.csv",
        lines(DEALS_HEADER, deal("D1", amount="1500.00"), deal("D4", created_at="yesterday")),
    )
    second = extract(config)

    # THEN deals.csv now holds only v2's rows and quarantine, the other file is untouched
    new_batch = second.files[1].batch_id
    assert [(f.source_file, f.action, f.rows_loaded, f.rows_quarantined) for f in second.files] == [
        ("archive/deals.csv", "unchanged", 0, 0),
        ("deals.csv", "replaced", 1, 1),
    ]
    assert query(
        wh,
        """select _source_file, deal_id, amount, _batch_id, _row_number
           from raw.canonical_csv__deals order by _source_file, _row_number""",
    ) == [
        ("archive/deals.csv", "D9", "1000.00", old_batch["archive/deals.csv"], 2),
        ("deals.csv", "D1", "1500.00", new_batch, 2),
    ]
    assert query(
        wh,
        """select _source_file, _batch_id, line_number, reason
           from raw._quarantine order by _source_file, line_number""",
    ) == [
        ("archive/deals.csv", old_batch["archive/deals.csv"], 3,
         "status must be one of open|won|lost: 'pending'"),
        ("deals.csv", new_batch, 3, "created_at is not an ISO-8601 timestamp: 'yesterday'"),
    ]  # fmt: skip
    # ... and the books say v1 was superseded by v2
    assert query(
        wh,
        """select batch_id, source_file, rows_loaded, rows_quarantined, superseded_by
           from raw._batches order by batch_id""",
    ) == [
        (old_batch["archive/deals.csv"], "archive/deals.csv", 1, 1, None),
        (old_batch["deals.csv"], "deals.csv", 2, 1, new_batch),
        (new_batch, "deals.csv", 1, 1, None),
    ]
    assert_every_record_accounted(wh, landing)


def test_corrected_file_that_cannot_be_loaded_keeps_the_earlier_version(config, landing, wh):
    # GIVEN deals.csv v1 loaded
    land(landing, "deals.csv", lines(DEALS_HEADER, deal("D1"), deal("D2")))
    first = extract(config)

    # WHEN v2 arrives without its amount column
    header = DEALS_HEADER.replace(",amount", "")
    land(landing, "deals.csv", lines(header, deal("D1").replace(",1000.00", "")))
    with pytest.raises(LoadError, match="missing required column"):
        extract(config)

    # THEN v1's rows and batch stay current
    assert query(wh, "select deal_id, _batch_id from raw.canonical_csv__deals order by 1") == [
        ("D1", first.files[0].batch_id),
        ("D2", first.files[0].batch_id),
    ]
    assert query(wh, "select batch_id, superseded_by from raw._batches") == [
        (first.files[0].batch_id, None)
    ]


def test_files_with_different_names_both_load(config, landing, wh):
    # GIVEN the same deal exported on two nights into dated folders, and a dated file name
    land(landing, "2026-11-01/deals.csv", lines(DEALS_HEADER, deal("D1", stage="Lead")))
    land(landing, "2026-11-02/deals.csv", lines(DEALS_HEADER, deal("D1", stage="Proposal")))
    land(landing, "deals_2026-11-03.csv", lines(DEALS_HEADER, deal("D1", stage="Negotiation")))

    # WHEN extracted
    report = extract(config)

    # THEN each file is its own batch and all three rows are in raw
    assert [(f.source_file, f.action, f.rows_loaded) for f in report.files] == [
        ("2026-11-01/deals.csv", "loaded", 1),
        ("2026-11-02/deals.csv", "loaded", 1),
        ("deals_2026-11-03.csv", "loaded", 1),
    ]
    assert len({f.batch_id for f in report.files}) == 3
    assert query(
        wh,
        "select _source_file, deal_id, stage from raw.canonical_csv__deals order by 1",
    ) == [
        ("2026-11-01/deals.csv", "D1", "Lead"),
        ("2026-11-02/deals.csv", "D1", "Proposal"),
        ("deals_2026-11-03.csv", "D1", "Negotiation"),
    ]


# --- quarantine -------------------------------------------------------------------------


def test_deal_rows_failing_a_rule_are_quarantined_with_line_and_reason(config, landing, wh):
    # GIVEN a deals file where most rows break one rule each (line numbers on the right)
    land(
        landing,
        "deals.csv",
        lines(
            DEALS_HEADER,  # 1
            deal("D01"),  # 2
            deal("D02", amount="12k"),  # 3
            deal("D03", created_at="2026-13-01T00:00:00Z"),  # 4
            deal("D04", status="pending"),  # 5
            deal("D05", status="won", closed_at=""),  # 6
            deal("D06", status="open", closed_at="2026-02-01T00:00:00Z"),  # 7
            deal("D07", status="lost", created_at="2026-03-01T00:00:00Z",
                 closed_at="2026-02-01T00:00:00Z"),  # 8
            deal("D08", amount="500", currency=""),  # 9
            deal(""),  # 10
            deal("D10", status="WON", closed_at="2026-02-01T00:00:00Z"),  # 11
            deal("D11", amount="abc", currency=""),  # 12
            deal("D12", amount="", currency=""),  # 13
            deal("D13", currency="EURO"),  # 14
            deal("D14", updated_at="soon"),  # 15
        ),
    )  # fmt: skip

    # WHEN the extract task runs
    summary = extract_source(SOURCE, as_of=AS_OF, config=config)

    # THEN the good rows load, each bad one is quarantined at its line with a precise reason
    assert (summary["rows_loaded"], summary["rows_quarantined"]) == (3, 11)
    assert query(wh, "select deal_id, _row_number from raw.canonical_csv__deals order by 2") == [
        ("D01", 2),
        ("D10", 11),
        ("D12", 13),
    ]
    assert quarantined(wh, "deals.csv") == [
        (3, "amount is not a number: '12k'"),
        (4, "created_at is not an ISO-8601 timestamp: '2026-13-01T00:00:00Z'"),
        (5, "status must be one of open|won|lost: 'pending'"),
        (6, "status won needs closed_at"),
        (7, "open deal has closed_at: '2026-02-01T00:00:00Z'"),
        (8, "closed_at '2026-02-01T00:00:00Z' is before created_at '2026-03-01T00:00:00Z'"),
        (9, "currency is empty"),
        (10, "deal_id is empty"),
        (12, "amount is not a number: 'abc'; currency is empty"),
        (14, "currency is not a 3-letter currency code: 'EURO'"),
        (15, "updated_at is not an ISO-8601 timestamp: 'soon'"),
    ]
    # ... with the row itself, as text, so it can be fixed at the source
    (record,) = query(
        wh, "select record from raw._quarantine where line_number = 3 and raw_table = ?",
        ["canonical_csv__deals"],
    )[0]  # fmt: skip
    assert json.loads(record) == {"deal_id": "D02", **OPEN_DEAL, "amount": "12k", "closed_at": None}
    assert query(
        wh,
        """select distinct _source_system, _source_file, raw_table, _batch_id
           from raw._quarantine""",
    ) == [("crm", "deals.csv", "canonical_csv__deals", 1)]
    assert_every_record_accounted(wh, landing)


def test_closed_before_created_reason_names_both_values(config, landing, wh):
    land(
        landing,
        "deals.csv",
        lines(
            DEALS_HEADER,
            deal("D1", status="lost", created_at="2026-03-01T00:00:00Z",
                 closed_at="2026-02-01T00:00:00Z"),
        ),
    )  # fmt: skip

    extract(config)

    ((line, reason),) = quarantined(wh, "deals.csv")
    assert line == 2
    assert "'2026-02-01T00:00:00Z'" in reason and "'2026-03-01T00:00:00Z'" in reason


def test_spend_rows_with_bad_category_date_or_amount_are_quarantined(config, landing, wh):
    land(
        landing,
        "spend.csv",
        lines(
            SPEND_HEADER,  # 1
            "2026-01-15,paid_search,marketing,2000.00,EUR",  # 2
            "2026-01-16,paid_search,advertising,10,EUR",  # 3
            "2026-02-30,paid_search,marketing,10,EUR",  # 4
            "15/01/2026,events,marketing,10,EUR",  # 5
            "2026-01-17,,sales,1500,USD",  # 6
            "2026-01-18,events,marketing,,EUR",  # 7
            "2026-01-19,events,marketing,1.5k,EUR",  # 8
            "2026-01-20,events,,10,EUR",  # 9
            "2026-01-21,events,marketing,10,",  # 10
        ),
    )

    summary = extract_source(SOURCE, as_of=AS_OF, config=config)

    assert (summary["rows_loaded"], summary["rows_quarantined"]) == (2, 7)
    assert query(wh, "select _row_number, amount from raw.canonical_csv__spend order by 1") == [
        (2, "2000.00"),
        (6, "1500"),
    ]
    assert quarantined(wh, "spend.csv") == [
        (3, "category must be one of marketing|sales: 'advertising'"),
        (4, "date is not an ISO-8601 date: '2026-02-30'"),
        (5, "date is not an ISO-8601 date: '15/01/2026'"),
        (7, "amount is empty"),
        (8, "amount is not a number: '1.5k'"),
        (9, "category must be one of marketing|sales: ''"),
        (10, "currency is not a 3-letter currency code: ''"),
    ]
    assert_every_record_accounted(wh, landing)


def test_rejects_before_good_rows_keep_their_line_numbers(config, landing, wh):
    # GIVEN a stage history whose first rows are bad, structural rejects in between
    land(
        landing,
        "deal_stage_history.csv",
        lines(
            HISTORY_HEADER,  # 1
            ",Lead,2026-01-01T00:00:00Z",  # 2
            "D2,,2026-01-01T00:00:00Z",  # 3
            "D3,Lead,2026-01-01T00:00:00Z",  # 4
            "D4,Lead",  # 5
            "D5,Lead,2026-01-01T00:00:00Z,extra",  # 6
            "D6,Lead,2026-01-01T00:00:00Z",  # 7
            "D7,Lead,not a time",  # 8
            "D8,Lead",  # 9
            "D9,Lead,2026-01-02T00:00:00Z",  # 10
            "D10,Lead,2026-01-03T00:00:00Z",  # 11
        ),
    )

    report = extract(config)

    assert (report.rows_loaded, report.rows_quarantined) == (4, 6)
    assert query(
        wh,
        "select deal_id, _row_number from raw.canonical_csv__deal_stage_history order by 2",
    ) == [("D3", 4), ("D6", 7), ("D9", 10), ("D10", 11)]
    assert quarantined(wh, "deal_stage_history.csv") == [
        (2, "deal_id is empty"),
        (3, "stage is empty"),
        (5, "MISSING COLUMNS: Expected Number of Columns: 3 Found: 2"),
        (6, "TOO MANY COLUMNS: Expected Number of Columns: 3 Found: 4"),
        (8, "changed_at is not an ISO-8601 timestamp: 'not a time'"),
        (9, "MISSING COLUMNS: Expected Number of Columns: 3 Found: 2"),
    ]
    assert_every_record_accounted(wh, landing)


def test_structural_rejects_are_quarantined_with_the_line_as_written(config, landing, wh):
    land(
        landing,
        "activities.csv",
        lines(
            ACTIVITIES_HEADER,  # 1
            "A1,D1,call,2026-01-06T10:00:00Z,u1",  # 2
            "A2,D1,call",  # 3
            "A3,D1,call,2026-01-06T11:00:00Z,u1,extra",  # 4
            "A4,D1,email,2026-01-07T10:00:00Z,u1",  # 5
        ),
    )

    summary = extract_source(SOURCE, as_of=AS_OF, config=config)

    assert (summary["rows_loaded"], summary["rows_quarantined"]) == (2, 2)
    assert query(
        wh,
        "select line_number, reason, record, raw_table from raw._quarantine order by 1",
    ) == [
        (3, "MISSING COLUMNS: Expected Number of Columns: 5 Found: 3", "A2,D1,call",
         "canonical_csv__activities"),
        (4, "TOO MANY COLUMNS: Expected Number of Columns: 5 Found: 6",
         "A3,D1,call,2026-01-06T11:00:00Z,u1,extra", "canonical_csv__activities"),
    ]  # fmt: skip
    assert_every_record_accounted(wh, landing)


def test_invalid_utf8_line_past_the_first_8_kib_is_quarantined(config, landing, wh):
    # GIVEN 400 good rows (about 12 KiB), then one line with a byte that is not UTF-8
    good = b"".join(b"D%d,Lead,2026-01-01T00:00:00Z\n" % i for i in range(400))
    land(
        landing,
        "deal_stage_history.csv",
        HISTORY_HEADER.encode() + b"\n" + good + b"DX,L\xffad,2026-01-01T00:00:00Z\n"
        b"DY,Lead,2026-01-01T00:00:00Z\n",
    )

    report = extract(config)

    assert (report.rows_loaded, report.rows_quarantined) == (401, 1)
    assert quarantined(wh, "deal_stage_history.csv") == [
        (
            402,
            "INVALID ENCODING: Invalid unicode (byte sequence mismatch) detected. "
            "This file is not utf-8 encoded.",
        )
    ]
    assert query(
        wh, "select _row_number from raw.canonical_csv__deal_stage_history where deal_id = 'DY'"
    ) == [(403,)]
    assert_every_record_accounted(wh, landing)


def test_invalid_utf8_in_a_data_line_is_quarantined_not_a_file_error(config, landing, wh):
    land(
        landing,
        "deal_stage_history.csv",
        HISTORY_HEADER.encode() + b"\n"
        b"D1,Lead,2026-01-01T00:00:00Z\n"
        b"D2,L\xffad,2026-01-01T00:00:00Z\n"
        b"D3,Lead,2026-01-01T00:00:00Z\n",
    )

    report = extract(config)

    assert (report.rows_loaded, report.rows_quarantined) == (2, 1)
    assert [line for line, _ in quarantined(wh, "deal_stage_history.csv")] == [3]
    assert_every_record_accounted(wh, landing)


def test_structural_reject_on_the_first_data_line_is_quarantined(config, landing, wh):
    land(
        landing,
        "deal_stage_history.csv",
        lines(
            HISTORY_HEADER,
            "D1,Lead",
            "D2,Lead,2026-01-01T00:00:00Z",
            "D3,Lead,2026-01-02T00:00:00Z",
        ),
    )

    report = extract(config)

    assert (report.rows_loaded, report.rows_quarantined) == (2, 1)
    assert quarantined(wh, "deal_stage_history.csv") == [
        (2, "MISSING COLUMNS: Expected Number of Columns: 3 Found: 2")
    ]
    assert_every_record_accounted(wh, landing)


def test_quoted_field_spanning_two_lines_loads_with_its_line_break(config, landing, wh):
    land(
        landing,
        "deals.csv",
        lines(DEALS_HEADER, deal("D1", deal_name='"Acme\nrenewal"'), deal("D2")),
    )

    report = extract(config)

    assert (report.rows_loaded, report.rows_quarantined) == (2, 0)
    assert query(wh, "select deal_id, deal_name from raw.canonical_csv__deals order by 1") == [
        ("D1", "Acme\nrenewal"),
        ("D2", "Acme Licence"),
    ]


def test_line_numbers_after_a_multiline_field_are_the_lines_in_the_file(config, landing, wh):
    land(
        landing,
        "deals.csv",
        lines(
            DEALS_HEADER,  # 1
            deal("D1", deal_name='"Acme\nrenewal"'),  # 2-3
            deal("D2", amount="12k"),  # 4
            "D3,Acme,direct",  # 5
            deal("D4"),  # 6
        ),
    )

    report = extract(config)

    assert (report.rows_loaded, report.rows_quarantined) == (2, 2)
    assert query(wh, "select deal_id, _row_number from raw.canonical_csv__deals order by 2") == [
        ("D1", 2),
        ("D4", 6),
    ]
    assert [line for line, _ in quarantined(wh, "deals.csv")] == [4, 5]


def test_quoted_values_on_one_line_each_keep_every_line_a_record(config, landing, wh):
    # Quotes, doubled quotes and a delimiter inside quotes, each value on its line: the
    # file is numbered without its line-by-line scan, and the lines are still the file's.
    land(
        landing,
        "deals.csv",
        lines(
            DEALS_HEADER,  # 1
            deal("D1", deal_name='"Acme, ""Gold"" renewal"'),  # 2
            deal("D2", amount="12k"),  # 3
            deal("D3", deal_name='"Acme ""Silver"""'),  # 4
            deal("D4", deal_name='"Beta, Inc."', amount="1e3"),  # 5
            deal("D5"),  # 6
        ),
    )

    report = extract(config)

    assert (report.rows_loaded, report.rows_quarantined) == (3, 2)
    assert query(
        wh, "select deal_id, deal_name, _row_number from raw.canonical_csv__deals order by 3"
    ) == [
        ("D1", 'Acme, "Gold" renewal', 2),
        ("D3", 'Acme "Silver"', 4),
        ("D5", "Acme Licence", 6),
    ]
    assert [line for line, _ in quarantined(wh, "deals.csv")] == [3, 5]


def test_blank_line_does_not_shift_the_line_numbers_after_it(config, landing, wh):
    land(
        landing,
        "deal_stage_history.csv",
        lines(HISTORY_HEADER, "D1,Lead,2026-01-01T00:00:00Z", "", "D3,Lead,2026-01-01T00:00:00Z"),
    )

    extract(config)

    assert query(
        wh,
        "select deal_id, _row_number from raw.canonical_csv__deal_stage_history order by 2",
    ) == [("D1", 2), ("D3", 4)]


def test_header_only_file_loads_zero_rows(config, landing, wh):
    land(landing, "spend.csv", lines(SPEND_HEADER))

    report = extract(config)

    assert [(f.source_file, f.action, f.rows_loaded) for f in report.files] == [
        ("spend.csv", "loaded", 0)
    ]


# --- whole-file errors and headers ------------------------------------------------------


def test_file_missing_required_columns_fails_naming_file_and_columns_others_still_load(
    config, landing, wh
):
    # GIVEN activities without occurred_at, stage history without stage and changed_at,
    # and two good files in the same landing folder
    land(landing, "activities.csv", lines("activity_id,deal_id,activity_type,owner_id", "A1,D1,,"))
    land(landing, "deal_stage_history.csv", lines("deal_id,when", "D1,2026-01-01"))
    land(landing, "deals.csv", lines(DEALS_HEADER, deal("D1"), deal("D2")))
    land(landing, "spend.csv", lines(SPEND_HEADER, "2026-01-15,paid_search,marketing,20,EUR"))

    # WHEN extracted
    with pytest.raises(LoadError) as excinfo:
        extract(config)

    # THEN the error names each bad file and its missing columns ...
    assert str(excinfo.value) == (
        "crm: 2 file(s) could not be loaded (the other files were loaded):\n"
        f"{landing / 'activities.csv'}: missing required column(s) occurred_at "
        "(header has: activity_id, deal_id, activity_type, owner_id)\n"
        f"{landing / 'deal_stage_history.csv'}: missing required column(s) stage, changed_at "
        "(header has: deal_id, when)"
    )
    # ... and the good files are loaded all the same
    assert counts(wh) == {
        "canonical_csv__deals": 2,
        "canonical_csv__deal_stage_history": 0,
        "canonical_csv__activities": 0,
        "canonical_csv__spend": 1,
        "_quarantine": 0,
        "_batches": 2,
    }


def test_column_given_twice_fails_the_file(config, landing, wh):
    land(landing, "spend.csv", lines(SPEND_HEADER + ",Amount", "2026-01-15,x,sales,1,EUR,2"))

    with pytest.raises(LoadError, match=r"spend\.csv: column\(s\) amount appear more than once"):
        extract(config)


def test_utf8_bom_before_the_header_is_tolerated(config, landing, wh):
    land(
        landing,
        "spend.csv",
        b"\xef\xbb\xbf" + lines(SPEND_HEADER, "2026-01-15,x,sales,1,EUR").encode(),
    )

    report = extract(config)

    assert (report.rows_loaded, report.rows_quarantined) == (1, 0)
    assert query(wh, "select date, _row_number from raw.canonical_csv__spend") == [
        ("2026-01-15", 2)
    ]


def test_header_names_match_case_insensitively_with_spaces_trimmed(config, landing, wh):
    land(
        landing,
        "activities.csv",
        lines(
            " Owner_ID , ACTIVITY_ID,Deal_Id ,occurred_at  ,Activity_Type",
            "u1,A1,D1,2026-01-06,call",
        ),
    )

    report = extract(config)

    assert report.rows_loaded == 1
    assert query(
        wh,
        "select activity_id, deal_id, activity_type, occurred_at, owner_id"
        " from raw.canonical_csv__activities",
    ) == [("A1", "D1", "call", "2026-01-06", "u1")]


def test_extra_columns_are_ignored_and_absent_optional_columns_are_null(config, landing, wh):
    # GIVEN a deals export with two CRM-specific columns and without the optional ones
    header = (
        "deal_id,hs_object_id,pipeline,stage,status,amount,currency,created_at,closed_at,"
        "probability"
    )
    land(
        landing,
        "deals.csv",
        lines(header, "D1,987,direct,Lead,open,10,EUR,2026-01-05T09:00:00Z,,0.2"),
    )  # fmt: skip

    report = extract(config)

    assert (report.rows_loaded, report.rows_quarantined) == (1, 0)
    assert query(
        wh, "select * exclude (_loaded_at, _batch_id) from raw.canonical_csv__deals"
    ) == [
        ("D1", None, "direct", "Lead", "open", "10", "EUR", None, None, None, None,
         "2026-01-05T09:00:00Z", None, None, "crm", "deals.csv", 2),
    ]  # fmt: skip


def test_non_canonical_file_names_are_reported_as_ignored(config, landing, wh):
    # GIVEN canonical files under several name forms, plus files that are not canonical
    land(landing, "Deals.CSV", lines(DEALS_HEADER, deal("D1")))
    land(landing, "deal_stage_history_2026-11-01.csv", lines(HISTORY_HEADER, "D1,Lead,2026-01-01"))
    land(landing, "2026-11-01/activities.csv", lines(ACTIVITIES_HEADER, "A1,D1,call,2026-01-06,"))
    land(landing, "leads.csv", lines("lead_id", "L1"))
    land(landing, "deals.csv.bak", lines(DEALS_HEADER, deal("D2")))
    land(landing, "notes/readme.txt", "exported by the CRM\n")
    land(landing, ".DS_Store", b"\x00\x01")

    report = extract(config)

    assert [(f.source_file, f.table) for f in report.files] == [
        ("2026-11-01/activities.csv", "canonical_csv__activities"),
        ("Deals.CSV", "canonical_csv__deals"),
        ("deal_stage_history_2026-11-01.csv", "canonical_csv__deal_stage_history"),
    ]
    assert report.summary()["ignored_files"] == ["deals.csv.bak", "leads.csv", "notes/readme.txt"]
    assert counts(wh)["canonical_csv__deals"] == 1


def test_timestamps_with_offsets_load_and_stay_text(config, landing, wh):
    # GIVEN offsets: D1 closes at 09:30Z after opening at 08:00Z (10:00+02:00);
    # D2 opens at 15:00Z (10:00-05:00) and "closes" at 12:00Z, before it opened
    land(
        landing,
        "deals.csv",
        lines(
            DEALS_HEADER,
            deal("D1", status="won", created_at="2026-02-01T10:00:00+02:00",
                 closed_at="2026-02-01T09:30:00Z", updated_at="2026-02-01T11:45:00.123+02:00"),
            deal("D2", status="lost", created_at="2026-02-01T10:00:00-05:00",
                 closed_at="2026-02-01T12:00:00Z"),
        ),
    )  # fmt: skip
    land(
        landing,
        "deal_stage_history.csv",
        lines(HISTORY_HEADER, "D1,Lead,2026-02-01T10:00:00+02:00"),
    )

    report = extract(config)

    assert (report.rows_loaded, report.rows_quarantined) == (2, 1)
    assert query(
        wh, "select deal_id, created_at, closed_at, updated_at from raw.canonical_csv__deals"
    ) == [
        ("D1", "2026-02-01T10:00:00+02:00", "2026-02-01T09:30:00Z", "2026-02-01T11:45:00.123+02:00")
    ]
    assert query(wh, "select changed_at from raw.canonical_csv__deal_stage_history") == [
        ("2026-02-01T10:00:00+02:00",)
    ]
    assert quarantined(wh, "deals.csv") == [
        (3, "closed_at '2026-02-01T12:00:00Z' is before created_at '2026-02-01T10:00:00-05:00'")
    ]
