"""Benchmark: one whole night (extract, dbt build, publish) on N generated deals.

    .venv/bin/python benchmarks/full_night.py [--deals 1000000] [--workdir /tmp/crm-bench]

Prints the wall time of each phase, the row counts, the same models and data tests run as
plain SQL without dbt (benchmarks/plain_sql.py: the lower bound), and what the same night
costs again on unchanged files; rerun it to compare. Airflow is not in the loop here (it
adds a constant few seconds of scheduling per task); the tasks call exactly these functions.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import time
from pathlib import Path

from plain_sql import plain_sql_build

from devkit.sample_data import generate
from night.config import load_config
from night.tasks import build_marts, extract_source, parse_as_of, publish_marts

CONFIG = """reporting_currency: USD
warehouse:
  path: {root}/warehouse/warehouse.duckdb
  publish_dir: {root}/published
sources:
  - name: demo_crm
    type: canonical_csv
    landing_dir: {root}/landing/demo_crm
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--deals", type=int, default=1_000_000)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/crm-bench"))
    args = parser.parse_args()
    root = args.workdir.resolve()
    shutil.rmtree(root, ignore_errors=True)
    (root / "landing").mkdir(parents=True)
    (root / "pipeline.yml").write_text(CONFIG.format(root=root))
    config = load_config(root / "pipeline.yml")
    as_of = parse_as_of("2026-07-01T00:00:00Z")

    timings, peaks = {}, {}

    def phase(name, run):
        _reset_peak()
        t = time.perf_counter()
        result = run()
        timings[name] = time.perf_counter() - t
        peaks[name] = _peak_mib()
        return result

    counts = phase(
        "generate sample data", lambda: generate(root / "landing" / "demo_crm", args.deals, seed=42)
    )
    load = phase(
        "extract (CSV -> raw)", lambda: extract_source("demo_crm", as_of=as_of, config=config)
    )
    phase("dbt build (models + tests)", lambda: build_marts(as_of=as_of, config=config))
    published = phase(
        "publish", lambda: publish_marts(as_of=as_of, run_id="benchmark", config=config)
    )

    # The lower bound: the same compiled SQL (models, then data tests) as plain statements.
    plain = phase(
        "plain SQL (same models+tests)",
        lambda: plain_sql_build(config.warehouse_path, config.state_dir / "dbt_target_duckdb"),
    )

    print(f"deals: {args.deals:,}; rows per file: {counts}")
    print(f"raw rows loaded: {load['rows_loaded']:,}, quarantined: {load['rows_quarantined']:,}")
    print(f"{'phase':<30}{'wall':>10}{'peak RSS':>12}")
    for name, seconds in timings.items():
        print(f"{name:<30}{seconds:8.1f} s{peaks[name]:8.0f} MiB")
    dbt = timings["dbt build (models + tests)"]
    floor = plain["models"] + plain["tests"]
    print(
        f"  plain SQL: {plain['models']:.1f} s for {plain['model_count']} models + "
        f"{plain['tests']:.1f} s of data tests; dbt build = {dbt / floor:.2f}x plain SQL "
        f"({dbt - floor:.1f} s of dbt's own)"
    )
    night = sum(
        v
        for k, v in timings.items()
        if k not in ("generate sample data", "plain SQL (same models+tests)")
    )
    print(f"{'one night (without generation)':<30}{night:8.1f} s")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of the night's process (dbt runs in it): {peak:.0f} MiB")
    print(f"published marts: {published['tables']}")

    # The same night again on unchanged files: what a second `make run` costs.
    t = time.perf_counter()
    again = extract_source("demo_crm", as_of=as_of, config=config)
    built = build_marts(as_of=as_of, config=config)
    republished = publish_marts(as_of=as_of, run_id="benchmark-again", config=config)
    print(
        f"{'the same night again':<30}{time.perf_counter() - t:8.1f} s "
        f"({again['files_unchanged']} files unchanged, build skipped: {not built['built']}, "
        f"publish skipped: {bool(republished.get('skipped'))})"
    )
    return 0


def _reset_peak() -> None:
    """Reset this process's peak RSS (Linux: 5 > /proc/self/clear_refs), so each phase's
    own peak is read after it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass  # not Linux: the peaks are then cumulative


def _peak_mib() -> float:
    """This process's peak RSS since the last reset (VmHWM), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    raise SystemExit(main())
