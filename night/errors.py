"""Which failures of a night no retry can fix: the DAG fails those on their first try.

A retry helps when the failure was the world's (a CRM API's 5xx, a lost connection, a
locked file); it cannot help when the night's own inputs are wrong: an invalid config, a
reference file with a bad line, a CRM stage the stage mapping lacks, a missing FX rate, a
file that cannot be loaded at all, marts the publish guard refuses. Those fail the same way
until someone changes the data or the config; retrying them only delays the alert (with the
DAG's backoff, by 24 minutes).
"""

from __future__ import annotations

import re

# What dbt prints when the night's data, not the machine, is at fault: a build guard's
# error (dbt_project/tests/generic/build_guards.sql: unmapped stage, missing FX rate) or a
# data test that failed. Any other dbt failure (a crash, an I/O or lock error) is retried.
_DBT_DATA_FAILURE = re.compile(
    r"Unmapped CRM stage|Missing FX rate|Compilation Error in test|Failure in test"
)


class DataError(RuntimeError):
    """A failure of the night's inputs (data, reference data, config): no retry can fix it."""


def no_retry_can_fix(exc: BaseException) -> bool:
    """Whether `exc` is a failure that a retry would only repeat (see the module doc)."""
    # Imported here: this module is imported by the DAG file, which imports nothing heavy.
    from extract.errors import LoadError
    from night.config import ConfigError
    from night.publish import PublishRefused
    from night.transform import DbtError

    if isinstance(exc, DataError | ConfigError | LoadError | PublishRefused):
        return True
    return isinstance(exc, DbtError) and bool(_DBT_DATA_FAILURE.search(str(exc)))
