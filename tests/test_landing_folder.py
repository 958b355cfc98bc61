"""The landing folder every file source shares (extract/landing.py), through the canonical
CSV source's extract task: files still being written are left alone, a file is loaded once
by content and archived, a broken file is set aside with its reason while the others load;
without `archive` the legacy behaviour (corrections by name, a broken file fails the task).

Real files in a landing folder, a real DuckDB warehouse in tmp_path, real dbt for staging.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from conftest import copy_golden_landing, write_golden_config
from extract.errors import LoadError
from night.config import PipelineConfig, load_config
from night.tasks import extract_source

NIGHT_1 = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)
NIGHT_2 = NIGHT_1 + timedelta(days=1)
NIGHT_3 = NIGHT_1 + timedelta(days=2)
SOURCE = "crm"

DEALS_HEADER = (
    "deal_id,deal_name,pipeline,stage,status,amount,currency,owner_id,owner_name,"
    "company_id,lead_source,created_at,closed_at,updated_at"
)
D1 = "D1,Acme,direct,Proposal,open,1000.00,EUR,u1,Alice,C1,,2026-11-01T09:00:00Z,,"
D2 = "D2,Beta,direct,Qualified,open,500.00,EUR,u2,Bob,C2,,2026-11-02T09:00:00Z,,"
D1_WON = (
    "D1,Acme,direct,Closed Won,won,1200.00,EUR,u1,Alice,C1,,2026-11-01T09:00:00Z,"
    "2026-11-27T15:00:00Z,2026-11-27T15:00:00Z"
)
ACTIVITIES = (
    "activity_id,deal_id,activity_type,occurred_at,owner_id\n"
    "A1,D1,call,2026-11-03T10:00:00Z,u1\n"
    "A2,D2,email,2026-11-04T10:00:00Z,u2\n"
)
# `stage` is missing: a file that cannot be loaded at all.
BROKEN_DEALS = (
    "deal_id,deal_name,pipeline,status,amount,currency,created_at,closed_at\n"
    "D7,Broken,direct,open,10.00,EUR,2026-11-01T09:00:00Z,\n"
    "D8,Broken too,direct,open,20.00,EUR,2026-11-01T09:00:00Z,\n"
)


def csv_text(*rows: str) -> str:
    return "\n".join([DEALS_HEADER, *rows]) + "\n"


def make_config(root: Path, *, archive: bool, settle_seconds: int = 0) -> PipelineConfig:
    (root / "landing").mkdir(parents=True, exist_ok=True)
    path = root / "pipeline.yml"
    path.write_text(
        "reporting_currency: EUR\n"
        "warehouse: {path: wh.duckdb, publish_dir: published}\n"
        "sources:\n"
        f"  - {{name: {SOURCE}, type: canonical_csv, landing_dir: landing,\n"
        f"     archive: {str(archive).lower()}, settle_seconds: {settle_seconds}}}\n"
    )
    return load_config(path)


def land(config: PipelineConfig, rel: str, content: str, *, age_seconds: int = 3600) -> Path:
    """Drop a file in the landing folder, last written `age_seconds` ago."""
    path = config.source(SOURCE).settings["landing_dir"] / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content, encoding="utf-8")
    stamp = time.time() - age_seconds
    os.utime(path, (stamp, stamp))
    return path


def night(config: PipelineConfig, as_of: datetime) -> dict:
    """The source's extract task for one night."""
    return extract_source(SOURCE, as_of=as_of, config=config)


def query(config: PipelineConfig, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(config.warehouse_path), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def raw_deals(config: PipelineConfig) -> list[tuple]:
    return query(
        config,
        """select deal_id, stage, amount, _batch_id, _source_file, _row_number
           from raw.canonical_csv__deals order by _batch_id, _row_number""",
    )


def batches(config: PipelineConfig) -> list[tuple]:
    return query(
        config,
        """select batch_id, raw_table, source_file, rows_loaded, rows_quarantined, superseded_by
           from raw._batches order by batch_id""",
    )


def files_under(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


# --- archive: true ------------------------------------------------------------------------


def test_files_with_temporary_names_are_not_loaded_and_stay(tmp_path):
    # GIVEN a finished deals.csv and copies still being written under writers' temporary names
    config = make_config(tmp_path, archive=True)
    landing = tmp_path / "landing"
    land(config, "deals.csv", csv_text(D1))
    temporary = [
        "deals.csv.part",
        ".deals.csv",
        "~$deals.csv",
        "deals.csv.tmp",
        "deals.csv.crdownload",
        ".incoming/deals.csv",
    ]
    for name in temporary:
        land(config, name, csv_text(D2))
    # WHEN the night runs
    summary = night(config, NIGHT_1)
    # THEN only deals.csv is loaded (D1); the others stay where they are, untouched
    assert [r[:3] for r in raw_deals(config)] == [("D1", "Proposal", "1000.00")]
    assert (summary["files_loaded"], summary["ignored_files"], summary["waiting_files"]) == (
        1,
        [],
        [],
    )
    assert files_under(landing) == sorted(["_archive/2026-11-27/deals.csv", *temporary])
    for name in temporary:
        assert (landing / name).read_text() == csv_text(D2)


def test_a_file_younger_than_settle_seconds_waits_and_loads_the_next_night(tmp_path):
    # GIVEN settle_seconds 600, a deals.csv written just now and an activities.csv an hour ago
    config = make_config(tmp_path, archive=True, settle_seconds=600)
    landing = tmp_path / "landing"
    deals = land(config, "deals.csv", csv_text(D1, D2), age_seconds=0)
    land(config, "activities.csv", ACTIVITIES)
    # WHEN the first night runs THEN deals.csv is left for the next night, activities load
    first = night(config, NIGHT_1)
    assert first["waiting_files"] == ["deals.csv"]
    assert (first["files_loaded"], first["rows_loaded"]) == (1, 2)
    assert raw_deals(config) == []
    assert files_under(landing) == ["_archive/2026-11-27/activities.csv", "deals.csv"]
    # WHEN the writer has long finished by the next night
    stamp = time.time() - 3600
    os.utime(deals, (stamp, stamp))
    second = night(config, NIGHT_2)
    # THEN deals.csv loads then, archived under that night's date
    assert (second["waiting_files"], second["files_loaded"], second["rows_loaded"]) == ([], 1, 2)
    assert [(r[0], r[4], r[5]) for r in raw_deals(config)] == [
        ("D1", "2026-11-28/deals.csv", 2),
        ("D2", "2026-11-28/deals.csv", 3),
    ]
    assert files_under(landing) == [
        "_archive/2026-11-27/activities.csv",
        "_archive/2026-11-28/deals.csv",
    ]


def test_a_loaded_file_is_archived_and_its_content_is_never_loaded_twice(tmp_path):
    # GIVEN deals.csv loaded and archived on the first night
    config = make_config(tmp_path, archive=True)
    landing = tmp_path / "landing"
    land(config, "deals.csv", csv_text(D1, D2))
    first = night(config, NIGHT_1)
    assert (first["files_loaded"], first["rows_loaded"]) == (1, 2)
    assert files_under(landing) == ["_archive/2026-11-27/deals.csv"]
    raw_after_first = raw_deals(config)
    assert [(r[0], r[4]) for r in raw_after_first] == [
        ("D1", "2026-11-27/deals.csv"),
        ("D2", "2026-11-27/deals.csv"),
    ]
    # WHEN the same content is dropped again under another name, and again under its own
    land(config, "deals_resent.csv", csv_text(D1, D2))
    second = night(config, NIGHT_2)
    land(config, "export/deals.csv", csv_text(D1, D2))
    third = night(config, NIGHT_3)
    # THEN neither is loaded: reported unchanged, raw and the batches as after the first night
    for summary in (second, third):
        assert (summary["files_loaded"], summary["files_unchanged"]) == (0, 1)
        assert (summary["rows_loaded"], summary["rows_quarantined"]) == (0, 0)
    assert raw_deals(config) == raw_after_first
    assert batches(config) == [
        (1, "canonical_csv__deals", "2026-11-27/deals.csv", 2, 0, None),
    ]
    # ... and each copy is archived under the night it arrived
    assert files_under(landing) == [
        "_archive/2026-11-27/deals.csv",
        "_archive/2026-11-28/deals_resent.csv",
        "_archive/2026-11-29/export/deals.csv",
    ]


def test_the_same_name_with_new_content_is_a_new_delivery_not_a_correction(tmp_path):
    # GIVEN deals.csv on one night, and a deals.csv with new content the next night and
    # twice more on that same night (a rerun)
    config = make_config(tmp_path, archive=True)
    land(config, "deals.csv", csv_text(D1, D2))
    night(config, NIGHT_1)
    land(config, "deals.csv", csv_text(D1_WON))
    second = night(config, NIGHT_2)
    land(config, "deals.csv", csv_text(D1_WON, D2))
    rerun = night(config, NIGHT_2)
    # THEN every delivery is kept as its own batch, none superseded
    assert (second["files_loaded"], second["rows_loaded"]) == (1, 1)
    assert (rerun["files_loaded"], rerun["rows_loaded"]) == (1, 2)
    assert batches(config) == [
        (1, "canonical_csv__deals", "2026-11-27/deals.csv", 2, 0, None),
        (2, "canonical_csv__deals", "2026-11-28/deals.csv", 1, 0, None),
        (3, "canonical_csv__deals", "2026-11-28/deals.csv~2", 2, 0, None),
    ]
    assert [r[:4] for r in raw_deals(config)] == [
        ("D1", "Proposal", "1000.00", 1),
        ("D2", "Qualified", "500.00", 1),
        ("D1", "Closed Won", "1200.00", 2),
        ("D1", "Closed Won", "1200.00", 3),
        ("D2", "Qualified", "500.00", 3),
    ]
    archive = tmp_path / "landing" / "_archive"
    assert [p.name for p in sorted((archive / "2026-11-28").iterdir())] == [
        "deals.csv",
        "deals.csv~2",
    ]


def test_a_broken_file_is_set_aside_with_its_reason_and_the_others_load(tmp_path):
    # GIVEN a deals.csv without its stage column next to a good activities.csv
    config = make_config(tmp_path, archive=True)
    landing = tmp_path / "landing"
    land(config, "deals.csv", BROKEN_DEALS)
    land(config, "activities.csv", ACTIVITIES)
    # WHEN the night runs THEN the task succeeds and reports the rejected file
    summary = night(config, NIGHT_1)
    reason = "missing required column(s) stage"
    assert len(summary["rejected_files"]) == 1
    assert summary["rejected_files"][0].startswith(f"deals.csv: {reason} (header has: deal_id,")
    assert (summary["files_loaded"], summary["rows_loaded"], summary["rows_quarantined"]) == (
        1,
        2,
        2,
    )
    # ... the broken file sits in _rejected/<date>/ with its reason beside it
    assert files_under(landing) == [
        "_archive/2026-11-27/activities.csv",
        "_rejected/2026-11-27/deals.csv",
        "_rejected/2026-11-27/deals.csv.reason.txt",
    ]
    assert (landing / "_rejected/2026-11-27/deals.csv").read_text() == BROKEN_DEALS
    assert reason in (landing / "_rejected/2026-11-27/deals.csv.reason.txt").read_text()
    # ... each of its records is quarantined with that reason and its line
    assert query(
        config,
        "select _source_file, raw_table, line_number, reason, record from raw._quarantine"
        " order by line_number",
    ) == [
        (
            "2026-11-27/deals.csv",
            "canonical_csv__deals",
            line,
            f"file rejected: {summary['rejected_files'][0].removeprefix('deals.csv: ')}",
            record,
        )
        for line, record in zip((2, 3), BROKEN_DEALS.splitlines()[1:], strict=True)
    ]
    assert query(config, "select count(*) from raw.canonical_csv__activities") == [(2,)]
    assert raw_deals(config) == []


def test_a_night_with_a_broken_file_builds_and_the_later_delivery_wins_in_staging(
    tmp_path, golden_as_of
):
    # GIVEN the golden landing folder loaded by an archiving source on the first night
    config_path = write_golden_config(tmp_path / "night", landing=tmp_path / "landing")
    with config_path.open("a") as fh:
        fh.write("    archive: true\n")
    config = load_config(config_path)
    landing = copy_golden_landing(tmp_path / "landing")
    golden_deals = (landing / "deals.csv").read_text().splitlines()
    assert extract_source("golden", as_of=golden_as_of, config=config)["rows_quarantined"] == 0
    # ... and on the next night a new deals.csv with D1's amount changed (same updated_at,
    # so only the delivery order decides) next to a spend file with a wrong delimiter
    d1 = next(line for line in golden_deals if line.startswith("D1,"))
    assert ",12000.00,EUR," in d1
    (landing / "deals.csv").write_text(
        golden_deals[0] + "\n" + d1.replace(",12000.00,", ",12500.00,") + "\n"
    )
    (landing / "spend.csv").write_text(
        "date;channel;category;amount;currency\n2026-05-01;paid_search;marketing;10.00;EUR\n"
    )
    # WHEN the next night runs (extract, dbt build, publish)
    from night.tasks import run_night

    result = run_night(
        as_of=golden_as_of + timedelta(days=1), run_id="landing-next-night", config=config
    )
    # THEN the night completes and publishes, the spend file set aside with its reason
    (load,) = result["loads"]
    assert load["rejected_files"] == [
        "spend.csv: missing required column(s) date, channel, category, amount, currency "
        "(header has: date;channel;category;amount;currency); the header reads as one "
        "column: delimiter ';', not ','?"
    ]
    assert (load["files_loaded"], load["rows_loaded"], load["rows_quarantined"]) == (1, 1, 1)
    assert config.published_path.exists()
    assert (landing / "_rejected/2026-06-02/spend.csv.reason.txt").exists()
    # ... and staging holds D1 as the later delivery has it
    con = duckdb.connect(str(config.warehouse_path), read_only=True)
    try:
        (schema,) = con.execute(
            """select table_schema from information_schema.tables
               where table_name = 'stg_canonical_csv__deals'"""
        ).fetchone()
        staged = con.execute(
            f"""select amount, _source_file from {schema}.stg_canonical_csv__deals
                where deal_id = 'golden:D1'"""
        ).fetchall()
        in_raw = con.execute(
            "select count(*) from raw.canonical_csv__deals where deal_id = 'D1'"
        ).fetchall()
    finally:
        con.close()
    assert staged == [(12500, "2026-06-02/deals.csv")]
    assert in_raw == [(2,)]


# --- archive: false (the default): the legacy behaviour -----------------------------------


def test_without_archive_new_content_under_a_name_corrects_the_earlier_version(tmp_path):
    # GIVEN deals.csv loaded, then corrected in place (D1 won, D2 gone)
    config = make_config(tmp_path, archive=False)
    landing = tmp_path / "landing"
    land(config, "deals.csv", csv_text(D1, D2))
    first = night(config, NIGHT_1)
    land(config, "deals.csv", csv_text(D1_WON))
    second = night(config, NIGHT_2)
    third = night(config, NIGHT_3)
    # THEN the correction replaces what the first version loaded; the file stays in place
    assert (first["files_loaded"], second["files_loaded"], third["files_unchanged"]) == (1, 1, 1)
    assert [r[:5] for r in raw_deals(config)] == [("D1", "Closed Won", "1200.00", 2, "deals.csv")]
    assert batches(config) == [
        (1, "canonical_csv__deals", "deals.csv", 2, 0, 2),
        (2, "canonical_csv__deals", "deals.csv", 1, 0, None),
    ]
    assert files_under(landing) == ["deals.csv"]


def test_without_archive_a_broken_file_fails_the_task_after_the_others_load(tmp_path):
    # GIVEN a deals.csv without its stage column next to a good activities.csv
    config = make_config(tmp_path, archive=False)
    landing = tmp_path / "landing"
    land(config, "deals.csv", BROKEN_DEALS)
    land(config, "activities.csv", ACTIVITIES)
    # WHEN the night runs THEN the task fails naming the broken file and why
    with pytest.raises(LoadError) as failure:
        night(config, NIGHT_1)
    message = str(failure.value)
    assert "crm: 1 file(s) could not be loaded (the other files were loaded)" in message
    assert f"{landing / 'deals.csv'}: missing required column(s) stage" in message
    # ... after loading the others; nothing is moved or recorded for the broken file
    assert query(config, "select count(*) from raw.canonical_csv__activities") == [(2,)]
    assert query(config, "select count(*) from raw._quarantine") == [(0,)]
    assert files_under(landing) == ["activities.csv", "deals.csv"]


def test_archived_and_rejected_folders_are_never_read_again(tmp_path):
    # GIVEN a night that archived one file and set another aside
    config = make_config(tmp_path, archive=True)
    land(config, "activities.csv", ACTIVITIES)
    land(config, "deals.csv", BROKEN_DEALS)
    night(config, NIGHT_1)
    before = batches(config)
    # WHEN the next night finds nothing new
    summary = night(config, NIGHT_2)
    # THEN it loads nothing and reports nothing
    assert (summary["files_loaded"], summary["files_unchanged"], summary["rejected_files"]) == (
        0,
        0,
        [],
    )
    assert batches(config) == before


def test_links_that_lead_nowhere_are_skipped_with_a_warning_naming_them(tmp_path, caplog):
    # GIVEN a deals file beside a dangling link and two links pointing at each other
    config = make_config(tmp_path, archive=False)
    landing = tmp_path / "landing"
    land(config, "deals.csv", csv_text(D1))
    (landing / "dangling.csv").symlink_to(landing / "gone.csv")
    (landing / "loop_a.csv").symlink_to(landing / "loop_b.csv")
    (landing / "loop_b.csv").symlink_to(landing / "loop_a.csv")
    # WHEN the night runs
    with caplog.at_level("WARNING", logger="extract.landing"):
        summary = night(config, NIGHT_1)
    # THEN the file loads, and each link is named in one warning
    assert [r[:3] for r in raw_deals(config)] == [("D1", "Proposal", "1000.00")]
    assert summary["files_loaded"] == 1
    skipped = sorted(m for m in caplog.messages if "leads to no file" in m)
    assert skipped == [
        f"{landing / name}: skipped, a link that leads to no file (dangling or a loop)"
        for name in ("dangling.csv", "loop_a.csv", "loop_b.csv")
    ]


# --- the content hash of a file left in place ---------------------------------------------


def _count_reads(monkeypatch) -> list[str]:
    """The files whose content the extract reads to hash it, in order."""
    from extract import landing

    reads: list[str] = []

    def counted(path: Path) -> str:
        reads.append(path.name)
        return landing_sha(path)

    landing_sha = landing.file_sha256
    monkeypatch.setattr(landing, "file_sha256", counted)
    return reads


def test_without_archive_a_file_left_unchanged_is_not_read_again(tmp_path, monkeypatch):
    import hashlib

    from extract import landing

    # (the file's last change counts as settled at once: see the next test for the margin)
    monkeypatch.setattr(landing, "_SETTLED_NS", 0)
    reads = _count_reads(monkeypatch)
    config = make_config(tmp_path, archive=False)
    deals = land(config, "deals.csv", csv_text(D1, D2))
    content = deals.read_bytes()
    # GIVEN deals.csv loaded: read once, its hash recorded with the file's status
    assert night(config, NIGHT_1)["files_loaded"] == 1
    assert reads == ["deals.csv"]
    assert query(
        config, "select source_system, source_file, file_sha256 from raw._landing_hashes"
    ) == [(SOURCE, "deals.csv", hashlib.sha256(content).hexdigest())]
    # WHEN the next night finds it as it was
    second = night(config, NIGHT_2)
    # THEN it is known unchanged without being read
    assert (second["files_loaded"], second["files_unchanged"]) == (0, 1)
    assert reads == ["deals.csv"]
    # WHEN its content changes in place to the same size, its modification time restored
    # (as a copy that keeps times would leave it): only the change time tells
    before = deals.stat()
    deals.write_bytes(content.replace(b"1000.00", b"9000.00"))
    os.utime(deals, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (deals.stat().st_size, deals.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    third = night(config, NIGHT_3)
    # THEN it is read again and loaded as the correction it is
    assert reads == ["deals.csv", "deals.csv"]
    assert third["files_loaded"] == 1
    assert [r[:3] for r in raw_deals(config)] == [
        ("D1", "Proposal", "9000.00"),
        ("D2", "Qualified", "500.00"),
    ]
    # WHEN deals.csv leaves the folder and activities.csv arrives
    deals.unlink()
    land(config, "activities.csv", ACTIVITIES)
    night(config, NIGHT_3 + timedelta(days=1))
    # THEN only the file the folder holds keeps a record
    assert query(config, "select source_file from raw._landing_hashes") == [("activities.csv",)]


def test_a_file_changed_just_before_the_night_is_read_again_the_next_night(tmp_path, monkeypatch):
    from extract import landing

    # (the margin stretched to an hour: both nights run within it however slow the machine,
    # where the real 2 s could pass between the write and the second night)
    monkeypatch.setattr(landing, "_SETTLED_NS", 3600 * 10**9)
    # GIVEN deals.csv written just now (its change time: a write in the same tick of the
    # file system's clock as the read would leave its status unchanged)
    reads = _count_reads(monkeypatch)
    config = make_config(tmp_path, archive=False)
    land(config, "deals.csv", csv_text(D1, D2))
    # WHEN two nights find it
    first, second = night(config, NIGHT_1), night(config, NIGHT_2)
    # THEN its hash is never taken from its status: both nights read it
    assert (first["files_loaded"], second["files_unchanged"]) == (1, 1)
    assert reads == ["deals.csv", "deals.csv"]
    assert query(config, "select count(*) from raw._landing_hashes") == [(0,)]


def test_with_archive_no_hash_is_recorded(tmp_path, monkeypatch):
    from extract import landing

    monkeypatch.setattr(landing, "_SETTLED_NS", 0)
    # GIVEN a folder whose loaded files go to the archive
    config = make_config(tmp_path, archive=True)
    land(config, "deals.csv", csv_text(D1, D2))
    # WHEN a night loads its file
    assert night(config, NIGHT_1)["files_loaded"] == 1
    # THEN no status is kept for it: it is no longer in the folder
    assert query(config, "select count(*) from raw._landing_hashes") == [(0,)]
