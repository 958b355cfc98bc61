"""One night of the pipeline as plain functions: what each Airflow task calls.

Each runs without Airflow (tests and the CLI call them directly) and takes the run's
as-of time explicitly: nothing here reads the clock for data.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from extract.sources import SOURCE_TYPES, all_raw_objects
from extract.warehouse import connect, ensure_raw_schema
from night import transform
from night.build_state import (
    build_state,
    fingerprint_of,
    forget_build,
    incremental_plan,
    last_build,
    record_build,
)
from night.config import PipelineConfig, load_config
from night.docs import docs_path
from night.docs import publish_docs as _publish_docs
from night.publish import publish
from night.publish_postgres import publish_postgres
from night.reference import load_reference, read_reference
from night.report_html import report_paths, write_report

log = logging.getLogger(__name__)


def parse_as_of(value: str | datetime) -> datetime:
    """An as-of time from ISO-8601 text or a datetime, as an aware UTC datetime."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def extract_source(
    source_name: str, *, as_of: datetime, config: PipelineConfig | None = None
) -> dict:
    """Land one configured source in the raw layer; return its load summary.

    The reference data is checked first: a bad file fails the night before anything loads.
    """
    config = config or load_config()
    read_reference(config)
    source = config.source(source_name)
    module = SOURCE_TYPES[source.type]
    con = connect(config.warehouse_path)
    try:
        ensure_raw_schema(con, all_raw_objects())
        report = module.extract(con, source, as_of=as_of)
    finally:
        con.close()
    summary = report.summary()
    log.info(
        "%s: %d rows loaded, %d rows quarantined (%d files loaded, %d unchanged)",
        source_name,
        summary["rows_loaded"],
        summary["rows_quarantined"],
        summary["files_loaded"],
        summary["files_unchanged"],
    )
    if summary["still_loading"]:
        log.warning(
            "%s: still loading, continued by the next night (mart_data_quality says so "
            "meanwhile): %s",
            source_name,
            "; ".join(summary["still_loading"]),
        )
    if summary["rows_quarantined"]:
        log.warning(
            "%s: %d rows quarantined: see raw._quarantine (file, line, reason)",
            source_name,
            summary["rows_quarantined"],
        )
    return summary


def build_marts(
    *, as_of: datetime, config: PipelineConfig | None = None, full_refresh: bool = False
) -> dict:
    """The reference data loaded, then `dbt build` on the warehouse as of the run's time.

    Skipped when nothing it reads changed since the last build that passed (same raw
    batches, reference files, project, as-of time and currency), unless `full_refresh`.
    Incremental (only the deals with new raw rows rebuilt, night.build_state.
    incremental_plan) when the raw layer only grew since then, unless `full_refresh`.
    """
    config = config or load_config()
    as_of_text = transform.format_as_of(as_of)
    con = connect(config.warehouse_path)
    try:
        ensure_raw_schema(con, all_raw_objects())
        state = build_state(con, config, as_of=as_of_text, project=transform.project_fingerprint())
        last = last_build(con)
        previous = last.state if last else None
        if not full_refresh and last and last.fingerprint == fingerprint_of(state):
            log.info("nothing changed since the last build (as of %s): build skipped", as_of_text)
            return {"as_of": as_of_text, "built": False}
        plan, why_full = (
            (None, "full refresh asked")
            if full_refresh
            else (incremental_plan(con, state, previous))
        )
        reference_rows = load_reference(con, config)
        forget_build(con)
    finally:
        con.close()
    if plan is None:
        log.info("full build: %s", why_full)
    else:
        log.info(
            "incremental build: the deals with raw rows after batch %d, as of %s (last build "
            "as of %s)",
            plan.changed_since_batch,
            as_of_text,
            plan.previous_as_of,
        )
    transform.build(config, as_of, incremental=plan)
    con = connect(config.warehouse_path)
    try:
        record_build(
            con,
            state,
            built_at=datetime.now(UTC),
            continued_from=last.fingerprint if plan is not None else None,
        )
    finally:
        con.close()
    return {
        "as_of": as_of_text,
        "built": True,
        "incremental": plan is not None,
        "full_because": why_full if plan is None else None,
        "reference_rows": reference_rows,
    }


def publish_marts(
    *,
    as_of: datetime,
    run_id: str,
    config: PipelineConfig | None = None,
    full_refresh: bool = False,
    accept_publish_guard: bool = False,
) -> dict:
    """Swap the freshly built marts in for BI readers (skipped if they are there already,
    unless `full_refresh`). The publish guard refuses marts that moved too far from the
    published ones (night.publish.PublishRefused), unless `accept_publish_guard`. With a
    PostgreSQL target in the config, the same marts are then swapped into its schema.
    The funnel report (night/report_html.py) is written after the DuckDB publish."""
    config = config or load_config()
    result = publish(
        config, as_of=as_of, run_id=run_id, force=full_refresh, accept_guard=accept_publish_guard
    )
    # The funnel report of the DuckDB file (well under a second), before PostgreSQL can
    # fail: after a publish, or when it is missing.
    report = report_paths(config.publish_dir, as_of.date())
    if not result["backfill"] and (
        not result.get("skipped") or not all(path.exists() for path in report)
    ):
        result["report"] = write_report(config.published_path, config.publish_dir)
    if config.publish_postgres is not None and not result["backfill"]:
        result["postgres"] = publish_postgres(
            config, config.published_path, run_id=run_id, force=full_refresh
        )
    return result


def run_night(
    *,
    as_of: datetime,
    run_id: str,
    config: PipelineConfig | None = None,
    full_refresh: bool = False,
    accept_publish_guard: bool = False,
) -> dict:
    """A whole night without Airflow: every source, dbt build, publish."""
    config = config or load_config()
    loads = [extract_source(s.name, as_of=as_of, config=config) for s in config.sources]
    built = build_marts(as_of=as_of, config=config, full_refresh=full_refresh)
    published = publish_marts(
        as_of=as_of,
        run_id=run_id,
        config=config,
        full_refresh=full_refresh,
        accept_publish_guard=accept_publish_guard,
    )
    return {"loads": loads, "built": built, "published": published}


def publish_docs(
    *, as_of: datetime, config: PipelineConfig | None = None, published: dict | None = None
) -> dict:
    """The dbt docs (every mart's and column's description, lineage) as one static page in
    the publish folder, which the report links to. A task of its own after publish (its
    process parses the dbt project first: ~4 s, too much for every night the tests run).
    Skipped when `published` (publish_marts' result) says nothing new was published and
    the page is there."""
    config = config or load_config()
    unchanged = published is not None and (published.get("skipped") or published.get("backfill"))
    if unchanged and docs_path(config).exists():
        log.info("marts unchanged: the dbt docs at %s stay as they are", docs_path(config))
        return {"docs": str(docs_path(config)), "skipped": True}
    return _publish_docs(config, as_of)
