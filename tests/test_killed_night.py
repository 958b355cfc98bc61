"""A night killed with SIGKILL in the middle of dbt leaves nothing running and nothing
broken: dbt runs inside the night's process (no orphan keeps writing the warehouse), the
user's reference files are read, never written, and the rerun publishes the right marts."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from conftest import write_golden_config
from golden_marts import AS_OF, GOLDEN_DIR, GRAIN, mart_differences
from night import REPO_ROOT

pytestmark = pytest.mark.slow(seconds=12)

NIGHT = (
    "import sys; from night.config import load_config; "
    "from night.tasks import parse_as_of, run_night; "
    "run_night(as_of=parse_as_of(sys.argv[1]), run_id='killed', config=load_config(sys.argv[2]))"
)


def _processes_with(variable: str) -> list[int]:
    """PIDs of live processes whose environment holds `variable` (e.g. the warehouse path)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if variable.encode() in (proc / "environ").read_bytes().split(b"\0"):
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_a_night_killed_during_dbt_leaves_no_process_and_reruns_cleanly(tmp_path, golden_as_of):
    from night.config import load_config
    from night.tasks import run_night

    config_path = write_golden_config(tmp_path / "night")
    config = load_config(config_path)
    reference_before = _digests(GOLDEN_DIR / "reference")
    marker = f"CRM_KILL_TEST={tmp_path}"
    env = {**os.environ, "CRM_KILL_TEST": str(tmp_path), "PYTHONPATH": str(REPO_ROOT)}
    # GIVEN a night running in its own process, killed with SIGKILL once dbt has started
    night = subprocess.Popen(
        [sys.executable, "-c", NIGHT, AS_OF, str(config_path)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    dbt_log = config.state_dir / "dbt_logs" / "dbt.log"
    deadline = time.monotonic() + 120
    while not (dbt_log.exists() and " START " in dbt_log.read_text(errors="replace")):
        assert night.poll() is None, "the night ended before dbt started"
        assert time.monotonic() < deadline, "dbt did not start within 120 s"
        time.sleep(0.05)
    os.kill(night.pid, signal.SIGKILL)
    night.wait(timeout=30)
    # THEN no process of that night is left (the process alone was killed, not a group)
    time.sleep(0.5)
    assert _processes_with(marker) == []
    # AND the user's reference files are untouched
    assert _digests(GOLDEN_DIR / "reference") == reference_before
    # WHEN the night is rerun THEN it publishes the hand-computed marts
    run_night(as_of=golden_as_of, run_id="rerun", config=config)
    con = duckdb.connect(str(config.published_path), read_only=True)
    try:
        for mart in GRAIN:
            rel = con.sql(f"select * from marts.{mart}")
            assert mart_differences(mart, rel.columns, rel.fetchall()) == [], mart
    finally:
        con.close()
