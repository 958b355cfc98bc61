"""Extract and load for the sales funnel warehouse: config, raw layer, sources, dbt, publish."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
