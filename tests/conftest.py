"""Shared fixtures: the golden dataset's pipeline config and one golden night on DuckDB."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from golden_marts import AS_OF, GOLDEN_DIR

# Airflow reads its home at import: keep every test run out of ~/airflow, in a folder made
# for the run (xdist workers inherit it from the main process), removed when it exits.
if "AIRFLOW_HOME" not in os.environ:
    os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="crm-airflow-home-")
    atexit.register(shutil.rmtree, os.environ["AIRFLOW_HOME"], ignore_errors=True)
os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")


def pytest_collection_modifyitems(config, items):
    """The slow files first, the slowest (`pytest.mark.slow(seconds=...)`, a rough figure
    of the file's wall time; default 30) leading: xdist (`make test`: one file per worker
    at a time) then gives the short ones to whichever worker is free, and the workers
    finish together."""

    def weight(item) -> float:
        marker = item.get_closest_marker("slow")
        return 0.0 if marker is None else float(marker.kwargs.get("seconds", 30))

    items.sort(key=lambda item: -weight(item))


def write_golden_config(root: Path, *, landing: Path | None = None, **reference: Path) -> Path:
    """A pipeline config for the golden dataset under `root` (reference files overridable)."""
    refs = {
        name: reference.get(name, GOLDEN_DIR / "reference" / f"{name}.csv")
        for name in ("funnel_stages", "stage_mapping", "channel_mapping", "fx_rates")
    }
    lines = [
        "reporting_currency: EUR",
        "warehouse:",
        # "wh", as every test's warehouse: dbt parses the project once per database name
        # and target in a test process (night.transform._manifest).
        f"  path: {root / 'warehouse' / 'wh.duckdb'}",
        f"  publish_dir: {root / 'published'}",
        "reference:",
        *[f"  {name}: {path}" for name, path in refs.items()],
        "sources:",
        "  - name: golden",
        "    type: canonical_csv",
        f"    landing_dir: {landing or GOLDEN_DIR / 'landing'}",
    ]
    path = root / "pipeline.yml"
    root.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def copy_golden_landing(target: Path) -> Path:
    shutil.copytree(GOLDEN_DIR / "landing", target)
    return target


@pytest.fixture(scope="session")
def sample(tmp_path_factory):
    """300 generated deals (seed 11) with their history, activities and spend: the data the
    API night tests serve from their fake CRMs (each test reads it into its own
    SampleDataset, so nothing here is ever changed)."""
    from devkit.sample_data import generate

    folder = tmp_path_factory.mktemp("sample")
    generate(folder, 300, seed=11, workers=1)
    return folder


@pytest.fixture(scope="session")
def canonical_sample_night(sample, tmp_path_factory):
    """The sample through the canonical CSV path, as of 2026-07-01: the figures each API
    night test (tests/test_<crm>_night.py) must give. Built once per worker; read only."""
    from api_nights import pipeline_config

    from night.tasks import parse_as_of, run_night

    config = pipeline_config(
        tmp_path_factory.mktemp("canonical"),
        f"  - {{name: demo_crm, type: canonical_csv, landing_dir: {sample}}}\n",
    )
    run_night(as_of=parse_as_of("2026-07-01T00:00:00Z"), run_id="csv", config=config)
    return config


@pytest.fixture(scope="session")
def golden_as_of():
    from night.tasks import parse_as_of

    return parse_as_of(AS_OF)


@pytest.fixture(scope="session")
def golden_night(tmp_path_factory, golden_as_of):
    """One night on the golden dataset (extract, dbt build, publish), shared by the tests."""
    from night.config import load_config
    from night.tasks import run_night

    config = load_config(write_golden_config(tmp_path_factory.mktemp("golden")))
    result = run_night(as_of=golden_as_of, run_id="golden-1", config=config)
    return config, result
