"""dbt's unit tests of the metric math (spells, conversion, duration, velocity, CAC, retention), run
once per test session: they do not depend on the data, so a night leaves them out
(night.transform.NIGHT_BUILD) and the PostgreSQL golden build runs them on that target."""

from __future__ import annotations

import json


def test_every_dbt_unit_test_passes_on_duckdb(golden_night, golden_as_of):
    from night import transform

    config, _ = golden_night
    # WHEN dbt runs only the unit tests, on the golden warehouse (their upstream tables exist)
    transform.dbt_command(config, golden_as_of, ("test", "--select", "test_type:unit"))
    # THEN each of the 17 ran and passed (13 of the metric math, 4 of Salesforce staging)
    run_results = config.state_dir / "dbt_target_duckdb" / "run_results.json"
    results = json.loads(run_results.read_text())["results"]
    # (besides the project's on-run-start hook, an operation, which is idle here)
    hooks = [r for r in results if r["unique_id"].startswith("operation.")]
    results = [r for r in results if r not in hooks]
    assert [r["status"] for r in hooks] == ["success"]
    statuses = {r["unique_id"].split(".")[-1]: r["status"] for r in results}
    assert len(statuses) == 17
    assert all(r["unique_id"].startswith("unit_test.") for r in results)
    assert set(statuses.values()) == {"pass"}
    # AND each name fits PostgreSQL's 63-character identifiers (dbt names a relation after it)
    assert max(len(name) for name in statuses) <= 63
