"""API records merged into raw: typed fields are checked at the merge, and a record with a
value outside any real range is quarantined (with endpoint, place and reason) instead of
failing the night in dbt; its earlier version leaves raw, and a later good one clears it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from extract.api_load import ApiNight, api_object
from extract.file_formats import NUMBER, TIMESTAMP, Plausible
from extract.warehouse import connect, ensure_raw_schema

DEALS = api_object("test_api__deals")
FIELDS = (("properties.amount", NUMBER), ("properties.createdate", TIMESTAMP))
AS_OF = datetime(2026, 7, 1, 2, tzinfo=UTC)


@pytest.fixture
def con(tmp_path):
    con = connect(tmp_path / "warehouse.duckdb")
    ensure_raw_schema(con, [DEALS])
    yield con
    con.close()


def _night(con, records):
    night = ApiNight(con, "crm", Plausible.around(AS_OF))
    night.begin(DEALS, fields=FIELDS)
    night.add(DEALS, records, endpoint="/crm/v3/objects/deals", record_id=lambda r: r["id"])
    return night.merge()


def _deal(id_, amount, created="2026-03-01T10:00:00.000Z"):
    return {"id": id_, "properties": {"amount": amount, "createdate": created}}


def test_records_outside_any_real_range_are_quarantined_not_merged(con):
    # WHEN a night reads one good deal and four with values no CRM can mean
    merged = _night(
        con,
        [
            _deal("1", "1500.50"),
            _deal("2", "1" + "0" * 40),
            _deal("3", 1e40),  # a JSON number (DuckDB reads it as 1e40)
            _deal("4", "100", created="9999-12-31T00:00:00Z"),
            _deal("5", None, created="2026-03-01T24:00:00Z"),
        ],
    )
    # THEN the good one is merged, the others quarantined with endpoint, place and reason
    assert merged == {"test_api__deals": 1}
    assert con.execute("select record_id from raw.test_api__deals").fetchall() == [("1",)]
    assert con.execute(
        """select _source_file, line_number, reason, record_key from raw._quarantine
           order by line_number"""
    ).fetchall() == [
        (
            "/crm/v3/objects/deals",
            2,
            "properties.amount is beyond the plausible amount (less than"
            " 1,000,000,000,000,000 either way): '10000000000000000000000000000000000000000'",
            "2",
        ),
        ("/crm/v3/objects/deals", 3, "properties.amount is not a number: '1e40'", "3"),
        (
            "/crm/v3/objects/deals",
            4,
            "properties.createdate is outside the plausible dates (1996-07-01 to 2031-07-01):"
            " '9999-12-31T00:00:00Z'",
            "4",
        ),
        (
            "/crm/v3/objects/deals",
            5,
            "properties.createdate is not an ISO-8601 timestamp: '2026-03-01T24:00:00Z'",
            "5",
        ),
    ]
    assert con.execute("select rows_loaded, rows_quarantined from raw._batches").fetchall() == [
        (1, 4)
    ]


def test_a_bad_version_replaces_the_good_one_and_a_fixed_one_clears_the_quarantine(con):
    # GIVEN deal 1 merged with a good amount
    _night(con, [_deal("1", "1500.50")])
    # WHEN the CRM's current version has an absurd amount
    _night(con, [_deal("1", "1" + "0" * 20)])
    # THEN the old version is gone from raw (it is not the CRM's any more), quarantined
    assert con.execute("select count(*) from raw.test_api__deals").fetchall() == [(0,)]
    assert con.execute("select record_key from raw._quarantine").fetchall() == [("1",)]
    # WHEN the next night reads it fixed THEN it is merged and its quarantine row cleared
    _night(con, [_deal("1", "1600.00")])
    assert con.execute(
        "select record_id, json_extract_string(record, '$.properties.amount')"
        " from raw.test_api__deals"
    ).fetchall() == [("1", "1600.00")]
    assert con.execute("select count(*) from raw._quarantine").fetchall() == [(0,)]


def _loading(con):
    return con.execute(
        "select source_system, stream, loaded_through, as_of, reason from raw._api_loading"
        " order by all"
    ).fetchall()


def _marks(con):
    return dict(
        con.execute("select raw_table, high_water from raw._api_watermarks order by all").fetchall()
    )


def test_a_read_in_chunks_names_its_streams_until_a_merge_completes_them(con):
    from extract.api_load import mark_loading, watermark

    night = ApiNight(con, "crm", Plausible.around(AS_OF))

    def chunk(stream, ids, updated):
        night.begin(DEALS, stream=stream)
        night.add(
            DEALS,
            [{"id": i, "update_time": updated} for i in ids],
            endpoint="/deals",
            record_id=lambda r: r["id"],
            cursor_value=lambda r: r["update_time"],
        )

    # WHEN a first chunk of live deals merges as a chunk (more to come)
    chunk("deals", [1, 2], "2026-01-05T00:00:00Z")
    assert night.merge(as_of=AS_OF, complete=False) == {"test_api__deals": 2}
    # THEN its rows are in raw, its mark moved, and the stream is named as still loading
    assert con.execute("select count(*) from raw.test_api__deals").fetchone() == (2,)
    assert _marks(con) == {"deals": "2026-01-05T00:00:00Z"}
    as_of = AS_OF.replace(tzinfo=None)
    assert _loading(con) == [("crm", "deals", "2026-01-05T00:00:00Z", as_of, "read in chunks")]
    # WHEN the next chunk reaches the stream's end THEN the stream is no longer loading
    chunk("deals", [3], "2026-02-01T00:00:00Z")
    night.merge()
    assert _loading(con) == []
    assert watermark(con, "crm", "deals") == "2026-02-01T00:00:00Z"
    # WHEN a second stream of the same table stops before its end (the budget spent) with
    # nothing merged, and a third after one chunk
    chunk("archived", [7], "2025-12-01T00:00:00Z")
    night.merge(as_of=AS_OF, complete=False)
    mark_loading(con, "crm", ["archived", "deleted"], as_of=AS_OF, reason="budget spent")
    # THEN each stream has its own mark, and both are named with what they loaded through
    assert _marks(con) == {"archived": "2025-12-01T00:00:00Z", "deals": "2026-02-01T00:00:00Z"}
    assert _loading(con) == [
        ("crm", "archived", "2025-12-01T00:00:00Z", as_of, "budget spent"),
        ("crm", "deleted", None, as_of, "budget spent"),
    ]
    assert con.execute("select count(*) from raw.test_api__deals").fetchone() == (4,)
    # AND a chunk's merge needs the night's as-of time (it is recorded, never the clock)
    chunk("deleted", [9], "2026-01-01T00:00:00Z")
    with pytest.raises(ValueError, match="as_of"):
        night.merge(complete=False)


def test_pages_gathered_into_fewer_inserts_keep_every_record_and_its_place(con, monkeypatch):
    import extract.api_load as api_load

    # GIVEN inserts of at most 3 records (pages: 2, 2, 1 records), and deal 2 read twice
    # (it changed between pages), the second time with a bad amount
    monkeypatch.setattr(api_load, "STAGE_FLUSH_RECORDS", 3)
    night = ApiNight(con, "crm", Plausible.around(AS_OF))
    night.begin(DEALS, fields=FIELDS)
    pages = [
        ([_deal("1", "10"), _deal("2", "20")], "/deals?page=1"),
        ([_deal("3", "30"), _deal("2", "1" + "0" * 40)], "/deals?page=2"),
        ([_deal("4", "40")], "/deals?page=3"),
    ]
    added = [
        night.add(DEALS, page, endpoint=endpoint, record_id=lambda r: r["id"])
        for page, endpoint in pages
    ]
    # THEN the first insert came after the second page, and the third page is still in memory
    assert added == [2, 2, 1]
    assert con.execute("select count(*) from _stage_test_api__deals").fetchone() == (4,)
    # WHEN the night merges THEN every record is there: deal 2's later version wins (and is
    # quarantined with its own page and place), the others merged with theirs
    assert night.merge() == {"test_api__deals": 3}
    assert con.execute(
        "select record_id, _source_file, _row_number from raw.test_api__deals order by 1"
    ).fetchall() == [
        ("1", "/deals?page=1", 1),
        ("3", "/deals?page=2", 3),
        ("4", "/deals?page=3", 5),
    ]
    assert con.execute(
        "select record_key, _source_file, line_number from raw._quarantine"
    ).fetchall() == [("2", "/deals?page=2", 4)]


def test_a_discarded_chunk_leaves_nothing_staged_for_the_next_merge(con, monkeypatch):
    import extract.api_load as api_load

    # GIVEN a chunk of which one record is inserted and one still in memory
    monkeypatch.setattr(api_load, "STAGE_FLUSH_RECORDS", 1)
    night = ApiNight(con, "crm", Plausible.around(AS_OF))
    night.begin(DEALS, fields=FIELDS)
    night.add(DEALS, [_deal("1", "10")], endpoint="/deals", record_id=lambda r: r["id"])
    monkeypatch.setattr(api_load, "STAGE_FLUSH_RECORDS", 5000)
    night.add(DEALS, [_deal("2", "20")], endpoint="/deals", record_id=lambda r: r["id"])
    # WHEN it is discarded and the next chunk stages one other record
    night.discard()
    night.begin(DEALS, fields=FIELDS)
    night.add(DEALS, [_deal("3", "30")], endpoint="/deals", record_id=lambda r: r["id"])
    # THEN that merge writes only the next chunk's record
    assert night.merge() == {"test_api__deals": 1}
    assert con.execute("select record_id from raw.test_api__deals").fetchall() == [("3",)]
