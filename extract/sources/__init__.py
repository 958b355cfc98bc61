"""Source types: each module lands one kind of source (an export format or an API) in raw.

A source type module provides:
- `TYPE`: the name used as `type:` in the pipeline config;
- `RAW_OBJECTS`: the raw tables it writes (created empty even before the first load, so
  the dbt staging models that read them always compile);
- `validate_settings(settings, where) -> dict`: checks its keys of the config;
- `extract(con, source, *, as_of) -> LoadReport`: lands the source into raw.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

from extract.preflight import Preflight
from extract.sources import (
    ad_spend,
    canonical_csv,
    hubspot,
    hubspot_export,
    hubspot_preflight,
    pipedrive,
    pipedrive_export,
    pipedrive_preflight,
    salesforce,
    salesforce_export,
    zoho_export,
)
from extract.warehouse import RawObject

SOURCE_TYPES: dict[str, ModuleType] = {
    canonical_csv.TYPE: canonical_csv,
    pipedrive.TYPE: pipedrive,
    hubspot.TYPE: hubspot,
    salesforce.TYPE: salesforce,
    hubspot_export.TYPE: hubspot_export,
    ad_spend.TYPE: ad_spend,
    pipedrive_export.TYPE: pipedrive_export,
    salesforce_export.TYPE: salesforce_export,
    zoho_export.TYPE: zoho_export,
}

# API source types -> their preflight (`python -m night.check_source`): `(source, *, as_of)`
# -> Preflight, read-only. File exports have none.
PREFLIGHTS: dict[str, Callable[..., Preflight]] = {
    hubspot.TYPE: hubspot_preflight.preflight,
    pipedrive.TYPE: pipedrive_preflight.preflight,
    salesforce.TYPE: salesforce.preflight,
}


def all_raw_objects() -> list[RawObject]:
    """Every raw table of every known source type."""
    return [obj for module in SOURCE_TYPES.values() for obj in module.RAW_OBJECTS]
