"""dbt's debug events, built when first read (night/transform.py,
_build_debug_events_lazily): whoever reads one sees the event dbt's constructor builds."""

from __future__ import annotations

import pytest


def _eager(cls, **fields):
    """The event as dbt_common's own constructor builds it."""
    from dbt_common.events.base_types import BaseEvent

    event = object.__new__(cls)
    BaseEvent.__init__(event, **fields)
    return event


def test_a_debug_event_read_later_is_the_event_dbt_builds():
    from dbt.adapters.events.types import SQLQuery
    from dbt_common.events.base_types import msg_from_base_event

    from night import transform

    transform._build_debug_events_lazily()
    fields = {"conn_name": "model.crm_funnel.mart_cac", "sql": "select 1", "node_info": {}}
    # WHEN a debug event is fired and read afterwards
    lazy, eager = SQLQuery(**fields), _eager(SQLQuery, **fields)
    assert "pb_msg" not in vars(lazy)  # nothing built until read
    # THEN each field, its line, its dict and the message a logger builds are dbt's
    assert lazy.sql == "select 1"
    assert lazy.message() == eager.message() == "On model.crm_funnel.mart_cac: select 1"
    assert lazy.to_dict() == eager.to_dict()
    assert msg_from_base_event(lazy).data == msg_from_base_event(eager).data
    # AND an info event is built at once, as before
    from dbt.events.types import LogTestResult

    assert "pb_msg" in vars(LogTestResult(name="t", status="pass", index=1, num_models=1))


def test_a_debug_event_with_a_field_dbt_does_not_know_fails_when_read():
    """The constructor's check of the fields still runs, when the event is first read (the
    tests run with PYTEST_CURRENT_TEST set: dbt_common raises instead of logging a note)."""
    from dbt.adapters.events.types import SQLQuery

    from night import transform

    transform._build_debug_events_lazily()
    event = SQLQuery(conn_name="x", sql="select 1", no_such_field=1)
    with pytest.raises(Exception, match="Unable to parse logging event dictionary"):
        event.message()
