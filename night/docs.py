"""dbt docs in the publish folder: one static page with every model's and column's
description and the lineage graph, next to the published marts and linked from the report.

`dbt docs generate --static --no-compile` runs in-process (night.transform.dbt_command) on
the warehouse, as the night's build does, and writes `static_index.html` (manifest and
catalog inlined: it opens from a file, no server) into the state folder's dbt target; the
page is copied to `<publish_dir>/docs/index.html` through a temp file renamed into place.
About 0.3 s once the project is parsed (a task process parses it first: ~4 s).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from datetime import datetime
from pathlib import Path

from night import transform
from night.config import PipelineConfig

log = logging.getLogger(__name__)

DOCS_FOLDER = "docs"
# --no-compile: the docs show each model's SQL as written, not compiled. Compiling every
# node again costs ~4 s; descriptions, columns (the catalog) and lineage need no compile.
DOCS_GENERATE = ("docs", "generate", "--static", "--no-compile")


def docs_path(config: PipelineConfig) -> Path:
    """Where the published docs page is."""
    return config.publish_dir / DOCS_FOLDER / "index.html"


def publish_docs(config: PipelineConfig, as_of: datetime) -> dict:
    """Generate the dbt docs of the warehouse and publish the static page."""
    started = time.monotonic()
    transform.dbt_command(
        config,
        as_of,
        DOCS_GENERATE,
        staged_types=sorted({source.type for source in config.sources}),
    )
    built = Path(transform.dbt_env(config)["DBT_TARGET_PATH"]) / "static_index.html"
    target = docs_path(config)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.copyfile(built, tmp)
    os.replace(tmp, target)
    seconds = round(time.monotonic() - started, 1)
    log.info("dbt docs published to %s in %.1f s", target, seconds)
    return {"docs": str(target), "bytes": target.stat().st_size, "seconds": seconds}
