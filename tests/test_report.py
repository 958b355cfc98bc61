"""What `make run` prints comes from the published marts, re-aggregated from counts."""

from __future__ import annotations

from night.report import render


def test_report_prints_the_funnel_and_the_latest_closed_month(golden_night):
    config, _ = golden_night
    text = render(config.published_path)
    lines = text.splitlines()
    assert lines[0] == "Sales funnel as of 2026-06-01 00:00 UTC (all cohorts)"
    # Reached per stage over all cohorts (tests/golden/expected/mart_funnel_conversion.csv
    # summed): 15, 15, 15, 13, 12, 10, 9, 8; to next = advanced / reached.
    assert lines[3].split() == ["prospecting", "15", "100.0%", "100.0%"]
    assert lines[5].split() == ["first_contact", "15", "86.7%", "100.0%"]
    assert lines[6].split() == ["needs_assessment", "13", "92.3%", "86.7%"]
    assert lines[10].split() == ["closed_won", "8", "-", "53.3%"]
    # May 2026: 4 won, 0 lost (mart_sales_velocity, mart_cac expected rows).
    assert "Latest month with closed deals: 2026-05 (4 won, 0 lost)" in text
    assert "  win rate              100.0%" in text
    assert "  average deal size     6,812.50 EUR" in text
    assert "  average sales cycle   64.2 days" in text
    assert "  sales velocity        6,578.20 EUR per month" in text
    assert "  CAC (blended)         2,655.00 EUR (2 new customers)" in text
    assert text.endswith(
        f"Published marts: {config.published_path} (schema marts; open it read-only)"
    )
