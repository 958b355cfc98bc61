"""`python -m night.check_source <source name> [--config FILE]`: the preflight a user runs
before a source's first night. Authenticates, checks permissions and optional fields, reads
one page of each endpoint (the connector's `preflight`, extract/preflight.py), then lists
the CRM's stages that the stage mapping does not map yet. Writes nothing: no warehouse, no
raw table, no high-water mark. Exit 0 when nothing blocks a first night, 1 otherwise.
"""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import UTC, datetime

from extract.http import HttpError
from extract.preflight import Preflight
from extract.sources import PREFLIGHTS
from night.config import ConfigError, PipelineConfig, load_config
from night.reference import read_reference


def unmapped_stages(preflight: Preflight, config: PipelineConfig) -> list[str]:
    """The CRM's stages with no row in the stage mapping for this source, as sentences."""
    mapped: set[tuple[str, str]] = set()
    for table in read_reference(config):
        if table.name == "stage_mapping":
            mapped |= {
                (row[1] or "", row[2] or "") for row in table.rows if row[0] == preflight.source
            }
    return [
        f"stage {s.crm_stage!r} of pipeline {s.pipeline!r}"
        + (" (deleted from the pipeline, still in stage history)" if s.deleted else "")
        + f": add a stage_mapping row (source_system {preflight.source})"
        for s in preflight.stages
        if (s.pipeline, s.crm_stage) not in mapped
    ]


def check(config: PipelineConfig, name: str, *, as_of: datetime) -> Preflight:
    """Run the named source's preflight and add the unmapped stages as problems."""
    source = config.source(name)
    preflight_of = PREFLIGHTS.get(source.type)
    if preflight_of is None:
        raise ConfigError(
            f"{config.path}: source {name!r} is of type {source.type!r}, a file export: "
            "there is no API to check (drop its files in the landing folder)"
        )
    found: Preflight = preflight_of(source, as_of=as_of)
    found.problems.extend(unmapped_stages(found, config))
    return found


def render(found: Preflight) -> str:
    width = max((len(what) for what, _ in found.facts), default=0)
    lines = [f"source {found.source}:"]
    lines += [f"  {what.ljust(width)}  {value}" for what, value in found.facts]
    lines += [f"  note: {note}" for note in found.notes]
    if found.ok:
        lines.append("ready for a first night")
    else:
        lines.append(f"{len(found.problems)} thing(s) to do before a first night:")
        lines += [f"  - {problem}" for problem in found.problems]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m night.check_source", description=__doc__)
    parser.add_argument("source", help="a source name from the pipeline config")
    parser.add_argument("--config", help="the pipeline config (default: $CRM_PIPELINE_CONFIG)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    try:
        config = load_config(args.config)
        # The window's end for the sample reads only; nothing is written, so nothing here
        # makes a figure depend on the clock.
        found = check(config, args.source, as_of=datetime.now(UTC))
    except (ConfigError, HttpError) as exc:
        print(f"{args.source}: {exc}", file=sys.stderr)
        return 1
    print(render(found))
    return 0 if found.ok else 1


if __name__ == "__main__":
    sys.exit(main())
