"""Run the real Airflow locally on the embedded default: SQLite metadata, `airflow dags test`.

Used by the demo (`make run`) and the end-to-end test; production deployments run the
same DAG under a scheduler (docker-compose.yml).
"""

from __future__ import annotations

import json
import logging
import os
from datetime import datetime
from importlib.metadata import version
from pathlib import Path

from night import REPO_ROOT
from night.commands import CommandError, run, venv_tool

log = logging.getLogger(__name__)


class AirflowRunError(CommandError):
    """A local Airflow command failed; the message carries the end of its output."""


def airflow_env(airflow_home: Path, pipeline_config: Path) -> dict[str, str]:
    """Environment for local Airflow commands: its own home, our dags folder, no examples."""
    env = dict(os.environ)
    env.update(
        {
            "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home / 'airflow.db'}",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(airflow_home / "logs"),
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "CRM_PIPELINE_CONFIG": str(pipeline_config),
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p
            ),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "DO_NOT_TRACK": "1",
        }
    )
    return env


def _airflow(args: list[str], env: dict[str, str], log_file: Path | None = None) -> str:
    if log_file is None:
        return run(
            [venv_tool("airflow"), *args], env, on_line=lambda _: None, error=AirflowRunError
        )
    with log_file.open("a", encoding="utf-8") as sink:
        return run(
            [venv_tool("airflow"), *args],
            env,
            on_line=lambda line: sink.write(line + "\n"),
            error=AirflowRunError,
        )


def ensure_metadata_db(env: dict[str, str], log_file: Path | None = None) -> bool:
    """Create or upgrade Airflow's SQLite metadata database; returns whether it migrated.

    A database migrated by this Airflow version is current (migrations come only with a
    new version): then nothing runs, so a second `make run` skips the migration.
    """
    home = Path(env["AIRFLOW_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    stamp = home / ".migrated-by"
    current = f"apache-airflow {version('apache-airflow')}"
    if (home / "airflow.db").exists() and stamp.exists() and stamp.read_text() == current:
        return False
    _airflow(["db", "migrate"], env, log_file)
    stamp.write_text(current)
    return True


def run_night(
    env: dict[str, str], logical_date: datetime, as_of: str, log_file: Path | None = None
) -> str:
    """`airflow dags test crm_nightly` for one night with an explicit as-of time."""
    return _airflow(
        [
            "dags",
            "test",
            "crm_nightly",
            logical_date.isoformat(),
            "--conf",
            json.dumps({"as_of": as_of}),
        ],
        env,
        log_file,
    )


def task_states(env: dict[str, str], run_id: str) -> dict[str, str]:
    """{task_id: state} of one crm_nightly run, from Airflow's metadata database."""
    out = _airflow(["tasks", "states-for-dag-run", "crm_nightly", run_id, "--output", "json"], env)
    rows = json.loads(out[out.index("[") :])
    return {row["task_id"]: row["state"] for row in rows}
