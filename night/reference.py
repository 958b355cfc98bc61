"""Reference data (funnel stages, stage mapping, channels, FX rates): the config names the
files, this module checks them and hands them to dbt as its seeds."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from extract.errors import LoadError
from extract.warehouse import read_header
from night.config import ConfigError, PipelineConfig

REQUIRED_COLUMNS = {
    "funnel_stages": ("stage_order", "funnel_stage", "description"),
    "stage_mapping": ("source_system", "pipeline", "crm_stage", "funnel_stage", "probability"),
    "channel_mapping": ("lead_source", "channel"),
    "fx_rates": ("month", "currency", "rate_to_reporting"),
}


def prepare_seed_dir(config: PipelineConfig) -> Path:
    """Copy the configured reference files into one folder dbt reads as its seeds.

    Checked first, so a file with a missing column fails here naming file and column
    instead of deep inside dbt. The folder is swapped in whole.
    """
    target = config.state_dir / "reference"
    staging = config.state_dir / ".reference.new"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    for name, path in config.reference.items():
        if not path.is_file():
            raise ConfigError(f"{config.path}: reference.{name}: file {path} does not exist")
        try:
            header = [h.lower() for h in read_header(path)]
        except LoadError as exc:
            raise ConfigError(f"{config.path}: reference.{name}: {exc}") from exc
        missing = [c for c in REQUIRED_COLUMNS[name] if c not in header]
        if missing:
            raise ConfigError(
                f"{path}: reference data {name} is missing column(s) {', '.join(missing)} "
                f"(needs: {', '.join(REQUIRED_COLUMNS[name])})"
            )
        shutil.copyfile(path, staging / f"{name}.csv")
    if target.exists():
        old = config.state_dir / ".reference.old"
        if old.exists():
            shutil.rmtree(old)
        os.replace(target, old)
        shutil.rmtree(old)
    os.replace(staging, target)
    return target
