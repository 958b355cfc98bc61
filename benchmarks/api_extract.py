"""Benchmark: extracting N generated deals (with stage history) from a fake CRM API.

    .venv/bin/python benchmarks/api_extract.py --crm pipedrive [--deals 20000]

The fake server runs in its own process (its memory is not ours); this process runs the
source's extract into a fresh warehouse and prints deals per second and its peak RSS.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from devkit.sample_data import generate
from night.config import load_config
from night.tasks import extract_source, parse_as_of

TOKEN = "bench-token"


@dataclass(frozen=True)
class Crm:
    server_module: str  # runs as `python -m <module> --data --port --token`
    deals_table: str  # the raw table whose merged rows are the deals
    counted: tuple[str, ...]  # further raw tables to report


CRMS = {
    "pipedrive": Crm(
        "devkit.fake_servers.pipedrive",
        "pipedrive__deals",
        ("pipedrive__deal_flow", "pipedrive__activities"),
    ),
    "hubspot": Crm(
        "devkit.fake_servers.hubspot",
        "hubspot__deals",
        ("hubspot__deal_stage_history", "hubspot__activities"),
    ),
    "salesforce": Crm(
        "devkit.fake_servers.salesforce",
        "salesforce__opportunities",
        ("salesforce__opportunity_history", "salesforce__tasks", "salesforce__events"),
    ),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--crm", choices=sorted(CRMS), required=True)
    parser.add_argument("--deals", type=int, default=20_000)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    crm = CRMS[args.crm]
    root = (args.workdir or Path(f"/tmp/crm-bench-{args.crm}")).resolve()
    shutil.rmtree(root, ignore_errors=True)
    generate(root / "sample", args.deals, seed=42)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            crm.server_module,
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
            f"sources: [{{name: demo_crm, type: {args.crm}, base_url: '{url}',"
            " token_env: BENCH_API_TOKEN}]\n"
        )
        os.environ["BENCH_API_TOKEN"] = TOKEN
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
    deals = rows[crm.deals_table]
    print(", ".join(f"{table}: {rows[table]:,}" for table in (crm.deals_table, *crm.counted)))
    print(f"extract: {seconds:.1f} s, {deals / seconds:,.0f} deals/s (with stage history)")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of the extracting process: {peak:.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
