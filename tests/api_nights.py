"""Helpers shared by the API-source night tests (tests/test_<crm>_night.py): a pipeline
config in a temporary folder, the published marts, the raw tables' row counts."""

from __future__ import annotations

import duckdb

# Aggregate marts: they do not carry CRM ids, so every door must give the same rows.
SAME_ROWS = (
    "mart_funnel_conversion",
    "mart_stage_duration",
    "mart_stage_open_spells",
    "mart_sales_velocity",
    "mart_cac",
    "mart_cac_by_channel",
    "mart_pipeline_snapshot",
)

# Every mart, for comparing two nights of the same source (ids included).
ALL_MARTS = (
    *SAME_ROWS,
    "fct_deals",
    "fct_deal_stage_spells",
    "fct_deal_funnel",
    "mart_rep_performance",
    "mart_data_quality",
)


def marts(path, names):
    """The rows of the named marts of a published warehouse, in a fixed order."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {
            name: con.sql(f"select * from marts.{name} order by all").fetchall() for name in names
        }
    finally:
        con.close()


def pipeline_config(root, sources_yaml):
    """A validated pipeline config under `root` with the given `sources:` list items."""
    from extract.config import load_config

    root.mkdir(parents=True, exist_ok=True)
    (root / "pipeline.yml").write_text(
        "reporting_currency: USD\n"
        f"warehouse: {{path: {root}/wh.duckdb, publish_dir: {root}/published}}\n"
        f"sources:\n{sources_yaml}"
    )
    return load_config(root / "pipeline.yml")


def raw_counts(config):
    """Rows per raw table (batch records included) of a config's warehouse."""
    con = duckdb.connect(str(config.warehouse_path), read_only=True)
    try:
        tables = [
            r[0]
            for r in con.execute(
                "select table_name from information_schema.tables where table_schema = 'raw' "
                "order by 1"
            ).fetchall()
        ]
        return {t: con.execute(f'select count(*) from raw."{t}"').fetchall()[0][0] for t in tables}
    finally:
        con.close()
