"""Benchmark: one whole night (extract, dbt build, publish) on N generated deals, then
the nights after it.

    .venv/bin/python benchmarks/full_night.py [--deals 1000000] [--workdir /tmp/crm-bench]
                                              [--changed 0.01 0.1]

Prints the wall time and peak RSS of each phase, the row counts, the same models and data
tests run as plain SQL without dbt (benchmarks/plain_sql.py: the lower bound), what the
same night costs again on unchanged files, and then one incremental night per `--changed`
fraction: a day's export of that fraction of the deals changed (devkit.sample_data.
write_changes) landed beside the files, the night as of the next day, and its cost against
the full night. Rerun it to compare. Airflow is not in the loop here (it adds a constant
few seconds of scheduling per task); the tasks call exactly these functions.

A shared machine's speed drifts (on the 2-core machine of docs/incremental.md, by 1.7x
within an hour): the first and last lines time a fixed pure-Python loop, so two runs are
compared only when their loops took about as long.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import time
from datetime import timedelta
from pathlib import Path

from plain_sql import plain_sql_build

from devkit.sample_data import generate, write_changes
from night.config import load_config
from night.tasks import build_marts, extract_source, parse_as_of, publish_marts
from night.transform import write_compiled_manifest

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
    parser.add_argument("--changed", type=float, nargs="*", default=[0.01, 0.1])
    args = parser.parse_args()
    before = _machine_speed()
    print(f"machine speed: a fixed loop took {before:.2f} s (lower is faster)", flush=True)
    root = args.workdir.resolve()
    shutil.rmtree(root, ignore_errors=True)
    (root / "landing").mkdir(parents=True)
    (root / "pipeline.yml").write_text(CONFIG.format(root=root))
    config = load_config(root / "pipeline.yml")
    as_of = parse_as_of("2026-07-01T00:00:00Z")

    timings, peaks = {}, {}

    def phase(name, run):
        return _phase(name, run, timings, peaks)

    counts = phase(
        "generate sample data", lambda: generate(root / "landing" / "demo_crm", args.deals, seed=42)
    )
    _landed()
    load = phase(
        "extract (CSV -> raw)", lambda: extract_source("demo_crm", as_of=as_of, config=config)
    )
    phase("dbt build (models + tests)", lambda: build_marts(as_of=as_of, config=config))
    published = phase(
        "publish", lambda: publish_marts(as_of=as_of, run_id="benchmark", config=config)
    )

    # The lower bound: the same compiled SQL (models, then data tests) as plain statements.
    write_compiled_manifest(config)
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

    # Incremental nights: each a day later, with that fraction of the deals changed.
    for fraction in args.changed:
        as_of += timedelta(days=1)
        _incremental_night(config, root, as_of, fraction, full_night=night)
    after = _machine_speed()
    print(f"machine speed: the loop took {before:.2f} s before the nights, {after:.2f} s after")
    return 0


def _incremental_night(config, root: Path, as_of, fraction: float, *, full_night: float) -> None:
    """A day's changes to `fraction` of the deals landed, then the night as of `as_of`."""
    changes = write_changes(
        root / "landing" / "demo_crm",
        root / "landing" / "demo_crm",
        fraction=fraction,
        night=as_of.strftime("%Y%m%d"),
        since=(as_of - timedelta(days=1)).date().isoformat(),
    )
    _landed()
    times, rss = {}, {}
    for name, run in (
        ("extract", lambda: extract_source("demo_crm", as_of=as_of, config=config)),
        ("dbt build", lambda: build_marts(as_of=as_of, config=config)),
        (
            "publish",
            lambda: publish_marts(
                as_of=as_of, run_id=f"changed-{fraction}", config=config, accept_publish_guard=True
            ),
        ),
    ):
        result = _phase(name, run, times, rss)
        if name == "dbt build" and not result.get("incremental"):
            print(f"  (not incremental: {result.get('full_because')})")
    total = sum(times.values())
    print(
        f"incremental night, {fraction:.0%} of the deals changed "
        f"({sum(changes.values()):,} changes: {changes}):"
    )
    for name in times:
        print(f"  {name:<28}{times[name]:8.1f} s{rss[name]:8.0f} MiB")
    print(f"  {'night':<28}{total:8.1f} s = {total / full_night:.1%} of the full night")


def _machine_speed() -> float:
    """Seconds a fixed CPU-bound loop takes (20M iterations, one core): the machine's speed
    at that moment, printed beside the figures."""
    t = time.perf_counter()
    total = 0
    for i in range(20_000_000):
        total += i * i % 7
    return time.perf_counter() - t


def _landed() -> None:
    """The generated files written to disk before the night, untimed: a night's exports
    land well before it starts. Otherwise the extract would pay for the kernel writing back
    the generator's files (about 700 MB at 1,000,000 deals) while it reads them: 3-4 s."""
    os.sync()


def _phase(name: str, run, timings: dict, peaks: dict):
    """Run one phase; record its wall time and its own peak RSS under `name`."""
    _reset_peak()
    t = time.perf_counter()
    result = run()
    timings[name] = time.perf_counter() - t
    peaks[name] = _peak_mib()
    return result


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
