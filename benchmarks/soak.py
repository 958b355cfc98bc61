"""Soak: kill nights at random moments, rerun them, and count what went wrong.

    .venv/bin/python benchmarks/soak.py [--kills 20] [--deals 10000] [--seed 7]
                                        [--workdir /tmp/crm-soak]

A clean night on generated sample data gives the reference marts and raw row counts. Then,
`--kills` times: a night starts in a process of its own (session and process group of its
own), runs to a phase chosen at random (extract, dbt, publish), and is killed with SIGKILL
at a random moment inside it, either the process alone or its whole group; the night is
then rerun to the end, as the scheduler's retry would, and checked:

- the published marts equal the clean night's, row for row;
- every raw table holds the clean night's rows: none twice, none missing;
- no temp file of a killed publish is left in the publish folder;
- a reader opening the published file in a loop the whole time never fails (before the
  first publish there is no file, which is not a failure).

A kill in extract starts from an empty warehouse (the first, long load of a new
installation); kills in dbt and publish hit a warehouse that has loaded everything, with
every night rebuilt and republished (`full_refresh`), so each one really runs. Prints the
figures; exits 1 if any check failed. Not part of `make test`: it takes minutes.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import duckdb

REPO_ROOT = Path(__file__).resolve().parent.parent
AS_OF = "2026-07-01T02:00:00Z"
PHASES = ("extract", "dbt", "publish")
MARK = "soak-phase: "  # dbt logs to stdout too: phases are the lines with this mark
CONFIG = """reporting_currency: USD
warehouse:
  path: {root}/warehouse/warehouse.duckdb
  publish_dir: {root}/published
sources:
  - name: demo_crm
    type: canonical_csv
    landing_dir: {landing}
"""


def child(config_path: str, full_refresh: bool) -> None:
    """One night, announcing each phase on stdout (the parent kills inside one)."""
    from night.config import load_config
    from night.tasks import build_marts, extract_source, parse_as_of, publish_marts

    config = load_config(config_path)
    as_of = parse_as_of(AS_OF)

    def phase(name: str) -> None:
        print(MARK + name, flush=True)

    phase("extract")
    for source in config.sources:
        extract_source(source.name, as_of=as_of, config=config)
    phase("dbt")
    build_marts(as_of=as_of, config=config, full_refresh=full_refresh)
    phase("publish")
    publish_marts(as_of=as_of, run_id="soak", config=config, full_refresh=full_refresh)
    phase("done")


def _start(config_path: Path, *, full_refresh: bool) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            __file__,
            "child",
            str(config_path),
            *(["--full"] if full_refresh else []),
        ],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,  # a group of its own: killing the group spares the soak
    )


def _run(config_path: Path, *, full_refresh: bool = False) -> dict[str, float]:
    """A night to the end; returns the seconds of each phase."""
    night = _start(config_path, full_refresh=full_refresh)
    times, last, started = {}, None, time.monotonic()
    for line in night.stdout:
        if not line.startswith(MARK):
            continue
        now = time.monotonic()
        if last:
            times[last] = now - started
        last, started = line.removeprefix(MARK).strip(), now
    if night.wait() != 0:
        raise RuntimeError(f"the night failed (exit {night.returncode}); rerun the child alone")
    return times


def _marts(path: Path) -> dict[str, str]:
    """Every published mart as a digest of its sorted rows."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = [r[0] for r in con.execute(
            "select table_name from information_schema.tables where table_schema = 'marts'"
        ).fetchall()]  # fmt: skip
        digests = {}
        for table in sorted(tables):
            rows = sorted(repr(r) for r in con.execute(f"select * from marts.{table}").fetchall())
            digests[table] = hashlib.sha256("\n".join(rows).encode()).hexdigest()
        return digests
    finally:
        con.close()


def _raw_rows(warehouse: Path) -> dict[str, tuple[int, int]]:
    """Per raw table with rows: (rows, distinct (source, file, line))."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        tables = [r[0] for r in con.execute(
            """select table_name from information_schema.tables
               where table_schema = 'raw' and table_name not like '\\_%' escape '\\'"""
        ).fetchall()]  # fmt: skip
        out = {}
        for table in tables:
            rows, distinct = con.execute(
                f"""select count(*),
                           count(distinct (_source_system, _source_file, _row_number))
                    from raw.{table}"""
            ).fetchall()[0]
            if rows:
                out[table] = (rows, distinct)
        return out
    finally:
        con.close()


class Reader(threading.Thread):
    """Opens the published file and counts every mart's rows, over and over."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path, self.reads, self.failures = path, 0, []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            if not self.path.exists():
                time.sleep(0.05)
                continue
            try:
                con = duckdb.connect(str(self.path), read_only=True)
                try:
                    for (table,) in con.execute(
                        "select table_name from information_schema.tables"
                        " where table_schema = 'marts'"
                    ).fetchall():
                        con.execute(f"select count(*) from marts.{table}").fetchall()
                finally:
                    con.close()
                self.reads += 1
            except duckdb.Error as exc:
                self.failures.append(repr(exc))
            time.sleep(0.02)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--deals", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/crm-soak"))
    args = parser.parse_args()
    rng = random.Random(args.seed)
    root = args.workdir.resolve()
    shutil.rmtree(root, ignore_errors=True)
    landing = root / "landing"
    landing.mkdir(parents=True)

    from devkit.sample_data import generate

    generate(landing, args.deals)

    # The clean night: the reference.
    clean_config = root / "clean" / "pipeline.yml"
    clean_config.parent.mkdir()
    clean_config.write_text(CONFIG.format(root=root / "clean", landing=landing))
    phase_seconds = _run(clean_config)
    clean_marts = _marts(root / "clean" / "published" / "sales_funnel.duckdb")
    clean_raw = _raw_rows(root / "clean" / "warehouse" / "warehouse.duckdb")
    print(f"clean night on {args.deals:,} deals: "
          + ", ".join(f"{p} {s:.1f} s" for p, s in phase_seconds.items()), flush=True)  # fmt: skip

    soak = root / "soak"
    config_path = soak / "pipeline.yml"
    soak.mkdir()
    config_path.write_text(CONFIG.format(root=soak, landing=landing))
    published = soak / "published" / "sales_funnel.duckdb"
    warehouse = soak / "warehouse" / "warehouse.duckdb"
    reader = Reader(published)
    reader.start()

    kills: Counter[str] = Counter()
    missed = reruns = failed_reruns = 0
    mismatches: list[str] = []
    duplicates = missing = leftovers = 0
    for i in range(1, args.kills + 1):
        phase = rng.choice(PHASES)
        whole_group = rng.random() < 0.5
        if phase == "extract":
            # A first night: everything to load.
            shutil.rmtree(warehouse.parent, ignore_errors=True)
        night = _start(config_path, full_refresh=True)
        for line in night.stdout:
            if line.startswith(MARK) and line.removeprefix(MARK).strip() == phase:
                break
        # Keep reading its output, so a full pipe never pauses the night before the kill.
        threading.Thread(target=night.stdout.read, daemon=True).start()
        delay = rng.uniform(0, phase_seconds.get(phase, 1.0))
        time.sleep(delay)
        if night.poll() is None:
            if whole_group:
                os.killpg(night.pid, signal.SIGKILL)
            else:
                os.kill(night.pid, signal.SIGKILL)
            kills[f"{phase}/{'group' if whole_group else 'process'}"] += 1
            outcome = "killed"
        else:
            missed += 1
            outcome = "finished before the kill"
        night.wait()
        # The rerun, as Airflow's retry would.
        reruns += 1
        try:
            _run(config_path)
        except RuntimeError as exc:
            failed_reruns += 1
            print(f"  night {i}: rerun failed: {exc}", flush=True)
            continue
        wrong = sorted(t for t, d in _marts(published).items() if clean_marts.get(t) != d)
        wrong += sorted(set(clean_marts) - set(_marts(published)))
        raw = _raw_rows(warehouse)
        dup = sum(rows - distinct for rows, distinct in raw.values())
        miss = sum(max(0, clean_raw[t][1] - raw.get(t, (0, 0))[1]) for t in clean_raw)
        extra = sorted(set(raw) - set(clean_raw))
        left = [p.name for p in published.parent.rglob(".*.tmp*")]
        leftovers += len(left)
        duplicates += dup
        missing += miss
        mismatches += [f"night {i}: {t}" for t in wrong]
        print(
            f"  night {i:2d}: {phase:7s} {'group' if whole_group else 'process':7s} after "
            f"{delay:5.2f} s: {outcome}; rerun: {len(wrong)} marts differ, {dup} duplicate "
            f"and {miss} missing raw rows, {len(left)} temp files left"
            f"{', unexpected tables ' + str(extra) if extra else ''}",
            flush=True,
        )
    reader.stop.set()
    reader.join()

    print()
    print(f"kills:                       {sum(kills.values())} ({dict(sorted(kills.items()))})")
    print(f"nights done before the kill: {missed}")
    print(f"reruns:                      {reruns} ({failed_reruns} failed)")
    print(f"marts differing from clean:  {len(mismatches)} {mismatches if mismatches else ''}")
    print(f"duplicate raw rows:          {duplicates}")
    print(f"missing raw rows:            {missing}")
    print(f"publish temp files left:     {leftovers}")
    print(f"published-file reads:        {reader.reads} ({len(reader.failures)} failed)")
    for failure in reader.failures[:5]:
        print(f"  {failure}")
    bad = failed_reruns or mismatches or duplicates or missing or leftovers or reader.failures
    return 1 if bad else 0


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "child":
        child(sys.argv[2], full_refresh="--full" in sys.argv[3:])
    else:
        sys.exit(main())
