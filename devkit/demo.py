"""`make run`: generate sample CRM data, run one night through real Airflow, print the funnel.

`--crm pipedrive|hubspot|salesforce` (`make run-pipedrive`, `run-hubspot`,
`run-salesforce`) serves the same sample data from that CRM's local fake API and runs the
night against it over HTTP instead of the CSV files.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from contextlib import ExitStack
from datetime import date, timedelta
from pathlib import Path

from devkit import local_airflow
from devkit.fake_servers import hubspot, pipedrive, salesforce
from devkit.fake_servers.dataset import SampleDataset
from devkit.sample_data import generate
from night import REPO_ROOT
from night.config import config_path, load_config
from night.report import render
from night.tasks import parse_as_of

DEMO_SOURCE = "demo_crm"
# The fake servers' token: a demo value, not a secret.
FAKE_TOKEN = "demo-api-token"
# --crm value -> (fake server module, the source type's default token variable)
API_DEMOS = {
    "pipedrive": (pipedrive, "PIPEDRIVE_API_TOKEN"),
    "hubspot": (hubspot, "HUBSPOT_ACCESS_TOKEN"),
    "salesforce": (salesforce, "SALESFORCE_ACCESS_TOKEN"),
}


def ensure_sample_data(landing: Path, deals: int, seed: int, end: date) -> bool:
    """Generate the sample files into the landing folder unless the same ones are there.

    Generated into a side folder and moved in file by file, so the landing folder never
    holds a half-written file. Returns whether new files were written.
    """
    stamp = {"deals": deals, "seed": seed, "end": end.isoformat()}
    marker = landing / ".generated.json"
    if marker.exists() and json.loads(marker.read_text()) == stamp:
        return False
    work = landing.parent / f".{landing.name}.generating"
    shutil.rmtree(work, ignore_errors=True)
    generate(work, deals, seed=seed, end=end)
    landing.mkdir(parents=True, exist_ok=True)
    for path in sorted(work.glob("*.csv")):
        path.replace(landing / path.name)
    shutil.rmtree(work, ignore_errors=True)
    marker.write_text(json.dumps(stamp))
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--deals", type=int, default=20_000, help="sample deals to generate")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--crm",
        choices=("csv", *API_DEMOS),
        default="csv",
        help="where the night reads deals from: the CSV files, or a CRM's fake API",
    )
    parser.add_argument(
        "--as-of",
        default="2026-07-01T00:00:00Z",
        help="the night's as-of time (the sample data ends the day before)",
    )
    args = parser.parse_args(argv)

    config = load_config()
    as_of = parse_as_of(args.as_of)
    landing = Path(config.source(DEMO_SOURCE).settings["landing_dir"])
    var = REPO_ROOT / "var"
    log_file = var / "logs" / f"night-{as_of:%Y%m%dT%H%M%S}.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)

    started = time.monotonic()
    end = as_of.date() - timedelta(days=1)
    print(f"1/3 sample data: {args.deals:,} deals up to {end} in {landing}", flush=True)
    if not ensure_sample_data(landing, args.deals, args.seed, end):
        print("    (already generated: unchanged files load as no-ops)", flush=True)

    with ExitStack() as stack:
        pipeline_config, published = config_path(), config.published_path
        extra_env: dict[str, str] = {}
        if args.crm in API_DEMOS:
            module, token_env = API_DEMOS[args.crm]
            server = stack.enter_context(
                module.build_server(SampleDataset(landing), token=FAKE_TOKEN)
            )
            print(f"    serving it from the fake {args.crm} API at {server.url}", flush=True)
            pipeline_config = _api_config(
                var / f"demo-{args.crm}", args.crm, server.url, token_env, landing
            )
            published = load_config(pipeline_config).published_path
            extra_env[token_env] = FAKE_TOKEN
        print(f"2/3 running one night of crm_nightly in Airflow (log: {log_file})", flush=True)
        env = {**local_airflow.airflow_env(var / "airflow", pipeline_config), **extra_env}
        try:
            local_airflow.ensure_metadata_db(env, log_file)
            local_airflow.run_night(env, as_of, args.as_of, log_file)
        except local_airflow.AirflowRunError as exc:
            print(exc, file=sys.stderr)
            return 1
    print(f"    done in {time.monotonic() - started:.0f}s", flush=True)

    print("3/3 the funnel\n", flush=True)
    print(render(published))
    for what, page in (("Funnel report", "report/index.html"), ("dbt docs", "docs/index.html")):
        if (published.parent / page).exists():
            print(f"{what}: {published.parent / page}")
    return 0


def _api_config(root: Path, crm: str, url: str, token_env: str, sample: Path) -> Path:
    """A pipeline config reading deals from a CRM's fake API, spend from its file."""
    spend = root / "landing" / "spend"
    spend.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(sample / "spend.csv", spend / "spend.csv")
    path = root / "pipeline.yml"
    path.write_text(
        "reporting_currency: USD\n"
        f"warehouse: {{path: {root}/warehouse.duckdb, publish_dir: {root}/published}}\n"
        "sources:\n"
        f"  - {{name: {DEMO_SOURCE}, type: {crm}, base_url: '{url}', token_env: {token_env}}}\n"
        f"  - {{name: demo_spend, type: canonical_csv, landing_dir: {spend}}}\n"
    )
    return path


if __name__ == "__main__":
    raise SystemExit(main())
