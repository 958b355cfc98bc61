"""Benchmark: extracting N generated deals (with stage history) from the fake Pipedrive API.

    .venv/bin/python benchmarks/pipedrive_extract.py [--deals 20000]

The fake server runs in its own process (its memory is not ours); this process runs the
Pipedrive extract into a fresh warehouse and prints deals per second and its peak RSS.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from extract.config import load_config
from extract.pipeline import extract_source, parse_as_of
from extract.sample_data import generate

TOKEN = "bench-token"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--deals", type=int, default=20_000)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/crm-bench-pipedrive"))
    args = parser.parse_args()
    root = args.workdir.resolve()
    shutil.rmtree(root, ignore_errors=True)
    generate(root / "sample", args.deals, seed=42)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "extract.fake_servers.pipedrive",
            "--data",
            str(root / "sample"),
            "--port",
            "0",
            "--token",
            TOKEN,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = server.stdout.readline().split(" on ", 1)[1].split(" ", 1)[0]
        (root / "pipeline.yml").write_text(
            "reporting_currency: USD\n"
            f"warehouse: {{path: {root}/wh.duckdb, publish_dir: {root}/published}}\n"
            f"sources: [{{name: demo_crm, type: pipedrive, base_url: '{url}',"
            " token_env: BENCH_PIPEDRIVE_TOKEN}]\n"
        )
        os.environ["BENCH_PIPEDRIVE_TOKEN"] = TOKEN
        config = load_config(root / "pipeline.yml")
        started = time.perf_counter()
        summary = extract_source(
            "demo_crm", as_of=parse_as_of("2026-07-01T00:00:00Z"), config=config
        )
        seconds = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait()
    rows = summary["api_rows"]
    print(
        f"deals: {rows['pipedrive__deals']:,}, flow entries: {rows['pipedrive__deal_flow']:,}, "
        f"activities: {rows['pipedrive__activities']:,}"
    )
    print(
        f"extract: {seconds:.1f} s, {rows['pipedrive__deals'] / seconds:,.0f} deals/s "
        "(with stage history)"
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of the extracting process: {peak:.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
