"""Telling the team: a night failed, or its marts are late (the DAG's callbacks).

Both send e-mail through Airflow's SMTP notifier (apache-airflow-providers-smtp) and the
Airflow connection the config names (`notifications.email` in the pipeline config), and
log one line either way, so a night without e-mail configured is still reported in the
task's log. Airflow is imported only when a message is sent: `night` runs without it.
"""

from __future__ import annotations

import logging
from typing import Any

from night.config import Notifications

log = logging.getLogger(__name__)


def night_failed(context: Any, notifications: Notifications) -> None:
    """on_failure_callback: the failed night, task and error, logged and e-mailed."""
    ti = context.get("task_instance")
    run_id = context.get("run_id")
    task = getattr(ti, "task_id", "?")
    error = context.get("exception")
    log.error(
        "crm_nightly failed: run=%s task=%s try=%s error=%s",
        run_id,
        task,
        getattr(ti, "try_number", "?"),
        error,
    )
    _send(
        notifications,
        subject=f"crm_nightly failed: {task} in {run_id}",
        body=(
            f"<p>The night {run_id} failed in task <b>{task}</b>; BI keeps the marts "
            f"published before it.</p><pre>{_escape(str(error))}</pre>"
        ),
        context=context,
    )


def marts_late(
    context: dict | None = None,
    *,
    to: list[str],
    smtp_conn_id: str,
    from_email: str | None,
    due_within: str,
) -> None:
    """DeadlineAlert callback: the night's marts are not published `due_within` after it
    was queued (the run may still be going, or stuck waiting)."""
    run = (context or {}).get("dag_run") or {}
    run_id = run.get("dag_run_id") or run.get("run_id") or "?"
    log.error("crm_nightly marts late: run=%s not published within %s", run_id, due_within)
    _send(
        Notifications(tuple(to), smtp_conn_id, from_email),
        subject=f"crm_nightly marts late: {run_id} not published within {due_within}",
        body=(
            f"<p>The night {run_id} (state {run.get('state', '?')}) has not published its "
            f"marts within {due_within} of being queued; BI still shows the previous night."
            "</p>"
        ),
        context=context or {},
    )


def _send(notifications: Notifications, *, subject: str, body: str, context: Any) -> None:
    if not notifications.email_to:
        return
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    notifier = SmtpNotifier(
        to=list(notifications.email_to),
        from_email=notifications.from_email,
        smtp_conn_id=notifications.smtp_conn_id,
        subject=subject,
        html_content=body,
    )
    notifier.notify(context)
    log.info("sent to %s: %s", ", ".join(notifications.email_to), subject)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
