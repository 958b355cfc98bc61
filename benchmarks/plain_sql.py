"""The lower bound beside dbt: the night's own compiled SQL run as plain DuckDB statements.

After a `dbt build`, the manifest holds every node's compiled SQL. Running the models'
SQL in dependency order as `create table ... as` (views as views) in a schema of its own,
then each data test's SQL as a count, on one DuckDB connection, is what the same marts
cost without dbt: no Jinja, no events, no per-node metadata queries, no thread pool. The
figure shows dbt's own share of a night (benchmarks/full_night.py prints both).
"""

from __future__ import annotations

import json
import time
from graphlib import TopologicalSorter
from pathlib import Path

import duckdb
import yaml

SCHEMA = "bench_plain"
PROFILES = Path(__file__).resolve().parents[1] / "dbt_project" / "profiles.yml"


def _profile_settings() -> dict[str, object]:
    """The DuckDB settings of the dbt profile (time zone, insertion order), so the plain
    SQL runs under the same session as dbt's models."""
    profile = yaml.safe_load(PROFILES.read_text(encoding="utf-8"))["crm_funnel"]
    output = profile["outputs"]["duckdb"]
    return {**(output.get("config_options") or {}), **(output.get("settings") or {})}


def plain_sql_build(warehouse: Path, target_dir: Path) -> dict[str, float]:
    """Seconds to build every model (`models`) and run every data test (`tests`) of the
    last build's manifest as plain SQL; the schema is dropped afterwards."""
    manifest = json.loads((target_dir / "manifest.json").read_text(encoding="utf-8"))
    nodes = {
        uid: node
        for uid, node in manifest["nodes"].items()
        if node["resource_type"] in ("model", "test") and node.get("compiled_code")
    }
    models = {uid: n for uid, n in nodes.items() if n["resource_type"] == "model"}
    renamed = {
        n["relation_name"]: f'{SCHEMA}."{n["alias"]}"'
        for n in models.values()
        if n["relation_name"]
    }

    def local(sql: str) -> str:
        for relation, plain in renamed.items():
            sql = sql.replace(relation, plain)
        return sql

    order = TopologicalSorter(
        {uid: [d for d in n["depends_on"]["nodes"] if d in models] for uid, n in models.items()}
    ).static_order()
    con = duckdb.connect(str(warehouse))
    try:
        for name, value in _profile_settings().items():
            shown = str(value).lower() if isinstance(value, bool) else value
            con.execute(f"set {name} = '{shown}'")
        con.execute(f"drop schema if exists {SCHEMA} cascade")
        con.execute(f"create schema {SCHEMA}")
        t = time.perf_counter()
        for uid in order:
            node = models[uid]
            kind = "view" if node["config"]["materialized"] == "view" else "table"
            con.execute(
                f'create {kind} {SCHEMA}."{node["alias"]}" as {local(node["compiled_code"])}'
            )
        built = time.perf_counter() - t
        t = time.perf_counter()
        failing = 0
        for node in nodes.values():
            if node["resource_type"] == "test":
                sql = local(node["compiled_code"])
                failing += con.execute(f"select count(*) from ({sql}) as t").fetchone()[0] > 0
        tested = time.perf_counter() - t
        con.execute(f"drop schema {SCHEMA} cascade")
    finally:
        con.close()
    if failing:
        raise RuntimeError(f"{failing} data test(s) fail on the plain-SQL build")
    return {"models": built, "tests": tested, "model_count": len(models)}
