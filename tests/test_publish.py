"""Publishing is atomic: readers see yesterday's complete marts or tonight's, never a mix."""

from __future__ import annotations

import threading
from datetime import timedelta

import duckdb
import pytest

from conftest import copy_golden_landing, write_golden_config
from golden_marts import GRAIN

pytestmark = pytest.mark.slow(seconds=20)


def _published_state(path):
    con = duckdb.connect(str(path), read_only=True)
    try:
        (run_id,) = con.execute("select run_id from meta.publish_info").fetchall()[0]
        counts = {
            mart: con.execute(f"select count(*) from marts.{mart}").fetchall()[0][0]
            for mart in sorted(GRAIN)
        }
        return run_id, counts
    finally:
        con.close()


def test_failed_night_leaves_yesterdays_marts_in_place(tmp_path, golden_as_of):
    # GIVEN last night's marts are published
    from night.config import load_config
    from night.tasks import run_night
    from night.transform import DbtError

    landing = copy_golden_landing(tmp_path / "landing")
    config = load_config(write_golden_config(tmp_path / "night", landing=landing))
    run_night(as_of=golden_as_of, run_id="yesterday", config=config)
    before_bytes = config.published_path.read_bytes()
    # WHEN tonight's data carries an unmapped stage, so dbt build fails
    with (landing / "deal_stage_history.csv").open("a") as fh:
        fh.write("D1,Legal Review,2026-02-20T10:00:00Z\n")
    with pytest.raises(DbtError):
        run_night(as_of=golden_as_of + timedelta(days=1), run_id="tonight", config=config)
    # THEN BI still reads yesterday's file, untouched
    assert config.published_path.read_bytes() == before_bytes
    assert _published_state(config.published_path)[0] == "yesterday"
    assert [p.name for p in config.publish_dir.iterdir() if p.is_file()] == [
        config.published_path.name
    ]


def test_reader_during_publish_sees_a_complete_set(golden_night, golden_as_of):
    # GIVEN a BI reader opening the published file over and over
    from night.publish import publish

    config, _ = golden_night
    expected_counts = _published_state(config.published_path)[1]
    seen, errors, stop = [], [], threading.Event()

    def reader():
        while not stop.is_set():
            try:
                seen.append(_published_state(config.published_path))
            except Exception as exc:  # a half-written file would land here
                errors.append(repr(exc))

    thread = threading.Thread(target=reader)
    thread.start()
    # WHEN the marts are published several times meanwhile
    try:
        for night in range(5):
            publish(config, as_of=golden_as_of, run_id=f"night-{night}", force=True)
    finally:
        stop.set()
        thread.join()
    # THEN every read saw one whole night: all marts, full row counts
    assert errors == []
    assert len(seen) > 0
    assert all(counts == expected_counts for _, counts in seen)
    assert _published_state(config.published_path)[0] == "night-4"


def test_a_backfilled_night_never_replaces_a_newer_publication(tmp_path, golden_as_of):
    # GIVEN the marts of a later night are published
    from night.config import load_config
    from night.tasks import run_night

    config = load_config(write_golden_config(tmp_path / "night"))
    later = golden_as_of + timedelta(days=2)
    run_night(as_of=later, run_id="later", config=config)
    # WHEN an earlier night is run again (a backfill)
    result = run_night(as_of=golden_as_of, run_id="backfill", config=config)
    # THEN the published file still holds the later night, and the backfill's marts are
    # in the backfill folder, named by its as-of time
    assert _published_state(config.published_path)[0] == "later"
    backfill = config.publish_dir / "backfill" / f"sales_funnel.{golden_as_of:%Y%m%dT%H%M%S}.duckdb"
    assert result["published"] == {
        **result["published"],
        "published_path": str(backfill),
        "backfill": True,
    }
    assert _published_state(backfill)[0] == "backfill"
    # AND a night newer than the published one replaces it as before
    run_night(as_of=later + timedelta(days=1), run_id="next", config=config)
    assert _published_state(config.published_path)[0] == "next"


def test_temp_files_of_a_killed_publish_are_removed_by_the_next(golden_night, golden_as_of):
    # GIVEN a publish killed mid-copy left its temp file and WAL behind
    from night.publish import publish

    config, _ = golden_night
    dead = config.publish_dir / f".{config.published_path.name}.0123456789abcdef.tmp"
    dead.write_bytes(b"half a database")
    wal = dead.with_name(dead.name + ".wal")
    wal.write_bytes(b"half a log")
    # WHEN the next publish runs
    publish(config, as_of=golden_as_of, run_id="after-kill", force=True)
    # THEN only the published file remains, and it is whole
    assert [p.name for p in config.publish_dir.iterdir() if p.is_file()] == [
        config.published_path.name
    ]
    assert _published_state(config.published_path)[0] == "after-kill"
