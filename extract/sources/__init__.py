"""Source types: each module lands one kind of source (an export format or an API) in raw.

A source type module provides:
- `TYPE`: the name used as `type:` in the pipeline config;
- `RAW_OBJECTS`: the raw tables it writes (created empty even before the first load, so
  the dbt staging models that read them always compile);
- `validate_settings(settings, where) -> dict`: checks its keys of the config;
- `extract(con, source, *, as_of) -> LoadReport`: lands the source into raw.
"""

from __future__ import annotations

from types import ModuleType

from extract.sources import canonical_csv, pipedrive
from extract.warehouse import RawObject

SOURCE_TYPES: dict[str, ModuleType] = {
    canonical_csv.TYPE: canonical_csv,
    pipedrive.TYPE: pipedrive,
}


def all_raw_objects() -> list[RawObject]:
    """Every raw table of every known source type."""
    return [obj for module in SOURCE_TYPES.values() for obj in module.RAW_OBJECTS]
