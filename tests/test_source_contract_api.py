"""Every API source type (each against its fake server over HTTP) passes the same contract
(tests/source_contract.py) on the same generated data: the canonical figures, idempotent
reloads, batch accounting, and every raw row reaching staging."""

from __future__ import annotations

import pytest
from source_contract_checks import (  # noqa: F401  the checks and their fixtures run here
    canonical,
    night,
    parametrize_doors,
    sample,
    test_every_batch_holds_what_it_reported,
    test_every_raw_row_reaches_staging_or_quarantine,
    test_figures_equal_the_canonical_path,
    test_reloading_the_night_changes_neither_raw_nor_any_mart,
)

pytestmark = pytest.mark.slow(seconds=40)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    parametrize_doors(metafunc, door="api")
