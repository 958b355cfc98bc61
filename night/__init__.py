"""The night itself: config, the task functions, transform (dbt), reference data, publish, report.

What each Airflow task of `dags/crm_nightly.py` calls lives here (`night.tasks`), runnable
without Airflow. It may import `extract` (getting data in) and the standard library; it
never imports `dags` or `devkit`.
"""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
