"""Benchmark the sample-data generator: wall time and peak memory for N deals (default 1,000,000).

Usage: .venv/bin/python benchmarks/generate.py [--deals N] [--seed S] [--workers W] [--out DIR]

The generation runs in a fresh child process so that its peak RSS is measured alone; the
figures come from resource.getrusage (no /usr/bin/time needed). Without --out the files go to
a temporary folder that is deleted afterwards.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Runs in the child: generate, then report wall time, rows and peak RSS of the child itself
# (the writer) and of its largest worker process (RUSAGE_CHILDREN, reaped at pool shutdown).
_CHILD = """
import json, resource, sys, time
from pathlib import Path
from devkit.sample_data import generate

out, n, seed, workers = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
t0 = time.perf_counter()
counts = generate(out, n, seed=seed, workers=int(workers) if workers else None)
wall = time.perf_counter() - t0
print(json.dumps({
    "wall_s": wall,
    "counts": counts,
    "bytes": {name: (out / name).stat().st_size for name in counts},
    "maxrss_main_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    "maxrss_worker_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
}))
"""


def run(deals: int, seed: int, workers: int | None, out: Path) -> dict:
    """Generate `deals` deals into `out` in a child process and return its measurements."""
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(out), str(deals), str(seed), str(workers or "")],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    """Parse arguments, run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--workers", type=int, default=None, help="default: up to 2")
    parser.add_argument("--out", type=Path, default=None, help="keep the files here")
    args = parser.parse_args()

    out = args.out or Path(tempfile.mkdtemp(prefix="sample-data-bench-"))
    try:
        r = run(args.deals, args.seed, args.workers, out)
    finally:
        if args.out is None:
            shutil.rmtree(out, ignore_errors=True)

    print(f"deals:           {args.deals:,} (seed {args.seed})")
    print(f"wall time:       {r['wall_s']:.1f} s")
    print(f"peak RSS main:   {r['maxrss_main_kb'] / 1024:.0f} MiB (writer process)")
    if r["maxrss_worker_kb"]:
        print(f"peak RSS worker: {r['maxrss_worker_kb'] / 1024:.0f} MiB (largest worker process)")
    else:
        print("peak RSS worker: n/a (generated in the main process)")
    for name, n in r["counts"].items():
        print(f"{name:<24} {n:>12,} rows {r['bytes'][name] / 1e6:>9.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
