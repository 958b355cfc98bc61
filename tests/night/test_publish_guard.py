"""The publish guard: tonight's marts are compared with the published ones before the swap,
and a night whose figures moved past the configured limits is not published (a CRM export
cut in half looks like a plausible funnel), unless an operator accepts it for that run."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import duckdb
import pytest

from conftest import copy_golden_landing, write_golden_config
from night.config import PublishGuard
from night.publish import PublishRefused, guard_crossings


def _published(path):
    con = duckdb.connect(str(path), read_only=True)
    try:
        run_id = con.execute("select run_id from meta.publish_info").fetchall()[0][0]
        deals = con.execute("select count(*) from marts.fct_deals").fetchall()[0][0]
        return run_id, deals
    finally:
        con.close()


def test_an_export_cut_in_half_is_refused_then_accepted_for_one_run(tmp_path, golden_as_of):
    from night.config import load_config
    from night.tasks import run_night

    # GIVEN the golden night is published: 15 deals, open pipeline 9,800.00 + 13,950.00,
    # won by closed month 2026-03: 12,000.00 + 4,500.52; 2026-04: 11,250.06 + 7,816.25;
    # 2026-05: 6,000.00 + 7,250.00 + 5,000.00 + 9,000.00
    landing = copy_golden_landing(tmp_path / "landing")
    config = load_config(write_golden_config(tmp_path / "night", landing=landing))
    run_night(as_of=golden_as_of, run_id="yesterday", config=config)
    before = config.published_path.read_bytes()
    # WHEN tonight's deals export stops after D8 (the file is replaced by a shorter one)
    deals = landing / "deals.csv"
    deals.write_text("".join(deals.read_text().splitlines(keepends=True)[:9]))
    tonight = golden_as_of + timedelta(days=1)
    with pytest.raises(PublishRefused) as refused:
        run_night(as_of=tonight, run_id="cut", config=config)
    # THEN publish refuses, naming each figure, both values and the limit
    assert str(refused.value) == (
        "publish refused: "
        "the deal count fell from 15 to 8 (-46.7%; the guard allows -20%); "
        "the open pipeline amount moved from 23,750.00 to 0.00 (-100.0%; the guard allows "
        "±50%); "
        "the won amount of closed month 2026-03 moved from 16,500.52 to 12,000.00 (-27.3%; "
        "the guard allows ±5%); "
        "the won amount of closed month 2026-04 moved from 19,066.31 to 7,816.25 (-59.0%; "
        "the guard allows ±5%); "
        "the won amount of closed month 2026-05 moved from 27,250.00 to 14,000.00 (-48.6%; "
        "the guard allows ±5%), "
        "tonight (as of 2026-06-02 00:00:00) against the published night "
        f"(as of 2026-06-01 00:00:00). {config.published_path} stays as it was. If the change "
        'is real, run the night again with {"accept_publish_guard": true} in the run conf '
        f"(or change publish_guard in {config.path})."
    )
    # ... and BI keeps yesterday's file, byte for byte
    assert config.published_path.read_bytes() == before
    # WHEN the operator accepts it for this run
    run_night(as_of=tonight, run_id="accepted", config=config, accept_publish_guard=True)
    # THEN tonight's marts are published
    assert _published(config.published_path) == ("accepted", 8)


BEFORE = {
    "deals": 100,
    "open_pipeline": Decimal("1000.00"),
    "won": {"2026-04": Decimal("200.00"), "2026-05": Decimal("300.00")},
}


@pytest.mark.parametrize(
    ("after", "guard", "crossed"),
    [
        pytest.param(
            {**BEFORE, "deals": 80, "open_pipeline": Decimal("1500.00")},
            PublishGuard(),
            [],
            id="at-the-limits",
        ),
        pytest.param(
            {**BEFORE, "deals": 250},
            PublishGuard(),
            [],
            id="more-deals-is-no-drop",
        ),
        pytest.param(
            {**BEFORE, "deals": 79},
            PublishGuard(),
            ["the deal count fell from 100 to 79 (-21.0%; the guard allows -20%)"],
            id="deal-drop",
        ),
        pytest.param(
            {**BEFORE, "open_pipeline": Decimal("1500.01")},
            PublishGuard(),
            [
                "the open pipeline amount moved from 1,000.00 to 1,500.01 (+50.0%; the guard "
                "allows ±50%)"
            ],
            id="pipeline-up",
        ),
        pytest.param(
            {**BEFORE, "won": {"2026-05": Decimal("300.00"), "2026-03": Decimal("1.00")}},
            PublishGuard(),
            [
                "the won amount of closed month 2026-04 moved from 200.00 to 0.00 (-100.0%; "
                "the guard allows ±5%)"
            ],
            id="a-closed-month-lost-its-wins",
        ),
        pytest.param(
            {"deals": 1, "open_pipeline": Decimal(0), "won": {}},
            PublishGuard(None, None, None),
            [],
            id="guard-off",
        ),
    ],
)
def test_guard_limits(after, guard, crossed):
    assert guard_crossings(BEFORE, after, guard) == crossed
