"""
### crm_nightly

Every night: land each configured CRM source in the raw layer (one task per source),
run `dbt build` (models and every data test) as of the run's data interval end, then
publish the marts atomically to the file BI tools read.

- Sources, reference data, warehouse and schedule come from the pipeline config
  (`config/pipeline.yml`, or the file `$CRM_PIPELINE_CONFIG` names).
- The as-of time of every figure is the run's `data_interval_end`; trigger with
  `{"as_of": "2026-06-01T00:00:00Z"}` as conf to rebuild a given night. A manual trigger
  without `as_of` is as of the schedule's latest time before it (the UI's trigger: its
  data interval end; the REST API's with `logical_date: null`: no data interval, the same
  time), not the moment it was triggered.
- A failure no retry can fix (invalid config or reference data, an unmapped CRM stage, a
  missing FX rate, a file that cannot be loaded, a refused publish: night/errors.py) fails
  its task on the first try; other failures (a CRM API down) are retried with backoff.
- A night whose inputs did not change since the last build skips the build and publish;
  `{"full_refresh": true}` as conf rebuilds and republishes all the same.
- Publish refuses marts that moved too far from the published ones (config
  `publish_guard`); `{"accept_publish_guard": true}` as conf accepts them for that run.
- A failed extract or dbt test stops the night before publish: BI keeps yesterday's marts.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from datetime import datetime, timedelta

import pendulum
from airflow.sdk import (
    CronDataIntervalTimetable,
    DeadlineAlert,
    DeadlineReference,
    Param,
    SyncCallback,
    dag,
    get_current_context,
    task,
)

from night.config import load_config

log = logging.getLogger(__name__)

# Reads one local YAML file: no network, database or Variable at import.
CONFIG = load_config()


def _on_failure(context) -> None:
    """Failure callback: one log line naming the night, the task and the error, and an
    e-mail through the SMTP notifier when the config's `notifications.email` asks."""
    from night.alerts import night_failed

    night_failed(context, CONFIG.notifications)


def _deadline() -> DeadlineAlert | None:
    """With `notifications.marts_due_within`: an alert when a night has not published its
    marts that long after it was queued (Airflow's DeadlineAlert, run by the executor)."""
    due = CONFIG.notifications.marts_due_within
    if due is None:
        return None
    notifications = CONFIG.notifications
    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=due,
        callback=SyncCallback(
            "night.alerts.marts_late",
            kwargs={
                "to": list(notifications.email_to),
                "smtp_conn_id": notifications.smtp_conn_id,
                "from_email": notifications.from_email,
                "due_within": str(due),
            },
        ),
    )


@contextmanager
def _no_retry_for_data_errors():
    """Fail the task now, without its retries, on a failure no retry can fix."""
    from airflow.sdk.exceptions import AirflowFailException

    from night.errors import no_retry_can_fix

    try:
        yield
    except Exception as exc:
        if no_retry_can_fix(exc):
            raise AirflowFailException(f"{type(exc).__name__} (not retried): {exc}") from exc
        raise


def _as_of():
    """The run's as-of time: the explicit `as_of` param, else the data interval end, else
    (a run triggered through the REST API with `logical_date: null` has no data interval)
    the schedule's latest time before the trigger, as a trigger from the UI would have."""
    from night.tasks import parse_as_of

    context = get_current_context()
    explicit = context["params"].get("as_of") or context.get("data_interval_end")
    if explicit:
        return parse_as_of(explicit)
    from croniter import croniter

    run_after = parse_as_of(context["dag_run"].run_after)
    return parse_as_of(croniter(CONFIG.schedule, run_after).get_prev(datetime))


def _full_refresh() -> bool:
    """Whether the run conf asks to rebuild and republish even if nothing changed."""
    return bool(get_current_context()["params"].get("full_refresh"))


@dag(
    dag_id="crm_nightly",
    doc_md=__doc__,
    schedule=CronDataIntervalTimetable(CONFIG.schedule, timezone="UTC"),
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    deadline=_deadline(),
    tags=["crm", "funnel"],
    params={
        "as_of": Param(
            None,
            type=["null", "string"],
            description=(
                "The as-of time (ISO-8601, UTC). Default: the data interval end, which for "
                "a manual run is the schedule's latest time, not the moment of the trigger."
            ),
        ),
        "full_refresh": Param(
            False,
            type="boolean",
            description="Rebuild and republish even if nothing changed since the last build.",
        ),
        "accept_publish_guard": Param(
            False,
            type="boolean",
            description="Publish even if the marts moved past the publish guard's limits.",
        ),
    },
    default_args={
        "owner": "data",
        "retries": 2,
        "retry_delay": timedelta(minutes=5),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=30),
        "on_failure_callback": _on_failure,
    },
)
def crm_nightly():
    # Each task returns a summary dict, pushed as one XCom (return_value): a `-> dict`
    # return type alone would make Airflow push every key as an XCom of its own too (a
    # dozen Execution API calls per extract task) that nothing reads.
    @task(multiple_outputs=False)
    def extract_source(source_name: str) -> dict:
        from night.tasks import extract_source as run

        with _no_retry_for_data_errors():
            return run(source_name, as_of=_as_of())

    @task(multiple_outputs=False)
    def dbt_build() -> dict:
        from night.tasks import build_marts

        with _no_retry_for_data_errors():
            return build_marts(as_of=_as_of(), full_refresh=_full_refresh())

    @task(multiple_outputs=False)
    def publish() -> dict:
        from night.tasks import publish_marts

        with _no_retry_for_data_errors():
            return publish_marts(
                as_of=_as_of(),
                run_id=get_current_context()["run_id"],
                full_refresh=_full_refresh(),
                accept_publish_guard=bool(
                    get_current_context()["params"].get("accept_publish_guard")
                ),
            )

    @task(multiple_outputs=False)
    def publish_docs(published: dict) -> dict:
        from night.tasks import publish_docs as run

        with _no_retry_for_data_errors():
            return run(as_of=_as_of(), published=published)

    extracts = [
        extract_source.override(task_id=f"extract_{source.name}")(source.name)
        for source in CONFIG.sources
    ]
    built = dbt_build()
    published = publish()
    extracts >> built >> published
    publish_docs(published)


crm_nightly()
