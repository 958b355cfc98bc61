"""Benchmark: what the range checks at load cost (extract.file_formats.Plausible).

    .venv/bin/python benchmarks/range_checks.py [--landing /tmp/crm-bench/landing/demo_crm]
                                                [--rounds 2]

Loads each canonical CSV file of a landing folder (benchmarks/generate.py writes 1,000,000
deals to the default folder) into a fresh warehouse, without and with the range checks,
alternating `--rounds` times so a busy machine weighs on both alike, and prints the median
seconds of each and the difference.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from extract.file_formats import Plausible
from extract.sources import canonical_csv
from extract.warehouse import connect, ensure_raw_schema, load_csv_file

AS_OF = datetime(2026, 7, 1, 2, tzinfo=UTC)


def load(path: Path, plausible: Plausible | None) -> float:
    obj = canonical_csv.object_for(path)
    with tempfile.TemporaryDirectory() as tmp:
        con = connect(Path(tmp) / "warehouse.duckdb")
        try:
            ensure_raw_schema(con, [obj])
            started = time.perf_counter()
            result = load_csv_file(
                con,
                source_system="bench",
                obj=obj,
                path=path,
                source_file=path.name,
                plausible=plausible,
            )
            seconds = time.perf_counter() - started
        finally:
            con.close()
    print(
        f"  {path.name:24s} {'checked' if plausible else 'unchecked':9s} {seconds:6.1f} s "
        f"({result.rows_loaded:,} loaded, {result.rows_quarantined:,} quarantined)",
        flush=True,
    )
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--landing", type=Path, default=Path("/tmp/crm-bench/landing/demo_crm"))
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    plausible = Plausible.around(AS_OF)
    totals = {"unchecked": 0.0, "checked": 0.0}
    for path in sorted(args.landing.glob("*.csv")):
        if canonical_csv.object_for(path) is None:
            continue
        runs: dict[str, list[float]] = {"unchecked": [], "checked": []}
        for _ in range(args.rounds):
            runs["unchecked"].append(load(path, None))
            runs["checked"].append(load(path, plausible))
        for kind, seconds in runs.items():
            totals[kind] += statistics.median(seconds)
    extra = totals["checked"] - totals["unchecked"]
    print(
        f"all files (medians): unchecked {totals['unchecked']:.1f} s, checked "
        f"{totals['checked']:.1f} s: the range checks cost {extra:+.1f} s "
        f"({extra / totals['unchecked']:+.1%})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
