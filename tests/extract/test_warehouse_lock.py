"""Parallel tasks share one DuckDB file: a writer waits for the lock instead of failing."""

from __future__ import annotations

import subprocess
import sys
import time

import duckdb
import pytest

from extract.warehouse import connect

HOLD = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
con.execute("create table if not exists t (x int)")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
"""


def _hold_lock(path, seconds):
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_connect_waits_for_another_process_to_release_the_file(tmp_path):
    # GIVEN another process holds the warehouse for 2 seconds
    path = tmp_path / "wh.duckdb"
    holder = _hold_lock(path, 2)
    started = time.monotonic()
    # WHEN a task connects THEN it gets the file once the other is done
    con = connect(path, lock_timeout=60)
    waited = time.monotonic() - started
    con.execute("insert into t values (1)")
    assert con.execute("select count(*) from t").fetchall() == [(1,)]
    con.close()
    holder.wait()
    assert waited > 0.5


def test_connect_gives_up_after_the_lock_timeout(tmp_path):
    path = tmp_path / "wh.duckdb"
    holder = _hold_lock(path, 5)  # held past the timeout, then stopped: not waited out
    try:
        with pytest.raises(duckdb.IOException, match="lock"):
            connect(path, lock_timeout=1)
    finally:
        holder.terminate()
        holder.wait()
