"""The DAG imports without secrets or servers, and one night runs through real Airflow."""

from __future__ import annotations

import pytest

from conftest import write_golden_config
from golden_marts import AS_OF, GRAIN, mart_differences

pytestmark = pytest.mark.slow(seconds=27)


def test_dag_imports_with_one_extract_task_per_source(tmp_path, monkeypatch):
    monkeypatch.setenv("CRM_PIPELINE_CONFIG", str(write_golden_config(tmp_path)))
    from airflow.dag_processing.dagbag import DagBag

    from night import REPO_ROOT

    bag = DagBag(dag_folder=str(REPO_ROOT / "dags"))
    assert bag.import_errors == {}
    dag = bag.dags["crm_nightly"]
    assert sorted(dag.task_ids) == ["dbt_build", "extract_golden", "publish", "publish_docs"]
    assert dag.catchup is False
    assert dag.max_active_runs == 1
    assert dag.default_args["retries"] == 2
    assert dag.default_args["retry_exponential_backoff"] is True
    assert callable(dag.default_args["on_failure_callback"])
    assert dag.get_task("dbt_build").upstream_task_ids == {"extract_golden"}
    assert dag.get_task("publish").upstream_task_ids == {"dbt_build"}
    assert dag.get_task("publish_docs").upstream_task_ids == {"publish"}


@pytest.mark.airflow
def test_one_night_through_airflow_publishes_the_golden_marts(tmp_path):
    # GIVEN a fresh Airflow home (SQLite) and the golden pipeline config
    import duckdb

    from devkit import local_airflow
    from night.config import load_config
    from night.tasks import parse_as_of

    config_path = write_golden_config(tmp_path / "pipeline")
    env = local_airflow.airflow_env(tmp_path / "airflow", config_path)
    assert local_airflow.ensure_metadata_db(env)  # migrated
    # WHEN crm_nightly runs one night with `airflow dags test`
    local_airflow.run_night(env, parse_as_of(AS_OF), AS_OF)
    # THEN a second `make run` would not migrate the current database again
    assert not local_airflow.ensure_metadata_db(env)
    # THEN every task succeeded and the published marts are the hand-computed ones
    published = load_config(config_path).published_path
    con = duckdb.connect(str(published), read_only=True)
    try:
        (as_of_at, run_id) = con.execute(
            "select as_of_at, run_id from meta.publish_info"
        ).fetchall()[0]
        assert as_of_at.strftime("%Y-%m-%dT%H:%M:%SZ") == AS_OF
        assert run_id.startswith("manual__")
        assert local_airflow.task_states(env, run_id) == {
            "extract_golden": "success",
            "dbt_build": "success",
            "publish": "success",
            "publish_docs": "success",
        }
        # THEN each task pushed its summary as one XCom, not each of its keys besides
        assert _xcom_keys(env, run_id) == {
            (task, "return_value")
            for task in ("extract_golden", "dbt_build", "publish", "publish_docs")
        }
        for mart in GRAIN:
            rel = con.sql(f"select * from marts.{mart}")
            assert mart_differences(mart, rel.columns, rel.fetchall()) == [], mart
    finally:
        con.close()


def _xcom_keys(env, run_id):
    """(task_id, key) of the XComs of one run, from the SQLite metadata database."""
    import sqlite3

    path = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].removeprefix("sqlite:///")
    con = sqlite3.connect(path)
    try:
        rows = con.execute("select task_id, key from xcom where run_id = ?", [run_id])
        return set(rows.fetchall())
    finally:
        con.close()
