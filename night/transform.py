"""Run the dbt project for one night: seeds from the config, vars from the run, no clock."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from datetime import UTC, datetime

from night import DBT_PROJECT_DIR
from night.commands import CommandError, run, venv_tool
from night.config import PipelineConfig
from night.reference import prepare_seed_dir

log = logging.getLogger(__name__)


class DbtError(CommandError):
    """dbt failed; the message carries the failing nodes' output."""


def format_as_of(as_of: datetime) -> str:
    """The as-of time as the dbt var expects it: UTC, 'YYYY-MM-DD HH:MM:SS'."""
    if as_of.tzinfo is not None:
        as_of = as_of.astimezone(UTC).replace(tzinfo=None)
    return as_of.strftime("%Y-%m-%d %H:%M:%S")


def dbt_env(config: PipelineConfig, *, target: str = "duckdb") -> dict[str, str]:
    """Environment for a dbt subprocess: paths from the config, no telemetry."""
    env = dict(os.environ)
    env.update(
        {
            "DBT_PROFILES_DIR": str(DBT_PROJECT_DIR),
            "CRM_DBT_TARGET": target,
            "CRM_WAREHOUSE_PATH": str(config.warehouse_path),
            "CRM_SEED_DIR": str(config.state_dir / "reference"),
            "DBT_TARGET_PATH": str(config.state_dir / f"dbt_target_{target}"),
            "DBT_LOG_PATH": str(config.state_dir / "dbt_logs"),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "DO_NOT_TRACK": "1",
            "DBT_USE_COLORS": "false",
            "DBT_PARTIAL_PARSE": "false",
        }
    )
    return env


def dbt_command(
    config: PipelineConfig,
    as_of: datetime,
    args: Sequence[str] = ("build",),
    *,
    target: str = "duckdb",
    extra_env: dict[str, str] | None = None,
) -> None:
    """Run one dbt command against the config's warehouse; raise DbtError on failure."""
    prepare_seed_dir(config)
    dbt_vars = {"as_of": format_as_of(as_of), "reporting_currency": config.reporting_currency}
    cmd = [
        venv_tool("dbt"),
        *args,
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--vars",
        json.dumps(dbt_vars),
    ]
    env = dbt_env(config, target=target)
    env.update(extra_env or {})
    log.info("running: dbt %s (as_of=%s)", " ".join(args), dbt_vars["as_of"])
    run(cmd, env, on_line=lambda line: log.info("dbt | %s", line), error=DbtError)


def build(config: PipelineConfig, as_of: datetime) -> None:
    """`dbt build`: seeds, models and every test, in dependency order."""
    dbt_command(config, as_of, ("build",))
