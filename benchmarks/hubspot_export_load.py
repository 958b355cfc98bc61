"""Benchmark: loading a 1,000,000-row HubSpot deals export into raw.

    .venv/bin/python benchmarks/hubspot_export_load.py [--rows 1000000] [--workdir DIR]

Writes one export as HubSpot does (tests/export_writers/hubspot.py: property labels, the
`Date entered "<stage> (<pipeline>)"` column of every stage of every pipeline, Asia/Kolkata
wall times, MM/DD/YYYY, amounts with thousands separators) from 10,000 generated deals
repeated under new record ids, then runs the source's extract (extract_source: header
check, bulk read, every value normalized and checked, raw insert, quarantine) into a
fresh warehouse in a child process, and prints rows per second and the child's peak RSS.
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from export_writers import hubspot  # noqa: E402

from devkit.sample_data import generate  # noqa: E402

DISTINCT_DEALS = 10_000
AS_OF = "2026-07-01T00:00:00Z"


def write_export(root: Path, rows: int) -> Path:
    """The export file of `rows` deals: the distinct deals' lines, repeated with record
    ids shifted by 10,000,000 per repetition (so every row is its own deal)."""
    generate(root / "sample", DISTINCT_DEALS, seed=42, workers=1)
    hubspot.write_hubspot_export_files(root / "sample", root / "template")
    template = (root / "template" / hubspot.FILE_NAME).read_text(encoding="utf-8")
    header, *lines = template.splitlines(keepends=True)
    landing = root / "landing"
    landing.mkdir()
    path = landing / hubspot.FILE_NAME
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(header)
        written = 0
        repetition = 0
        while written < rows:
            shift = repetition * 10_000_000
            for line in lines[: rows - written]:
                record_id, rest = line.split(",", 1)
                out.write(f"{int(record_id) + shift},{rest}")
            written += min(len(lines), rows - written)
            repetition += 1
    return path


def load(root: Path) -> dict:
    """Extract the source into a fresh warehouse (run in the child process)."""
    from night.config import load_config
    from night.tasks import extract_source, parse_as_of

    (root / "pipeline.yml").write_text(
        "reporting_currency: USD\n"
        f"warehouse: {{path: '{root}/wh.duckdb', publish_dir: '{root}/published'}}\n"
        "sources:\n" + hubspot.source_yaml("demo_crm", root / "landing")
    )
    config = load_config(root / "pipeline.yml")
    started = time.perf_counter()
    cpu_before = _cpu_seconds()
    summary = extract_source("demo_crm", as_of=parse_as_of(AS_OF), config=config)
    seconds = time.perf_counter() - started
    return {
        "rows_loaded": summary["rows_loaded"],
        "rows_quarantined": summary["rows_quarantined"],
        "seconds": seconds,
        "cpu_seconds": _cpu_seconds() - cpu_before,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _cpu_seconds() -> float:
    """CPU time of this process, all threads (DuckDB's included): on a shared machine the
    wall time also counts other processes' turns."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/crm-bench-hubspot-export"))
    parser.add_argument("--load-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    root = args.workdir.resolve()
    if args.load_only:
        print(json.dumps(load(root)))
        return 0
    shutil.rmtree(root, ignore_errors=True)
    started = time.perf_counter()
    path = write_export(root, args.rows)
    with path.open(encoding="utf-8", newline="") as fh:
        columns = len(next(csv.reader(fh)))
    print(
        f"wrote {args.rows:,} rows ({path.stat().st_size / 2**20:,.0f} MiB, "
        f"{columns} columns) in {time.perf_counter() - started:.0f}s"
    )
    child = subprocess.run(
        [sys.executable, __file__, "--load-only", "--workdir", str(root)],
        check=True,
        capture_output=True,
        text=True,
    )
    result = json.loads(child.stdout.strip().splitlines()[-1])
    print(
        f"loaded {result['rows_loaded']:,} rows ({result['rows_quarantined']:,} quarantined) "
        f"in {result['seconds']:.1f}s: {result['rows_loaded'] / result['seconds']:,.0f} rows/s, "
        f"{result['cpu_seconds']:.1f} CPU seconds, peak RSS {result['peak_rss_mib']:,.0f} MiB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
