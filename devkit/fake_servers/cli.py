"""The command line every fake CRM server shares: generate sample data if needed, serve."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from devkit.fake_servers.base import FakeApiServer
from devkit.fake_servers.dataset import SampleDataset
from devkit.sample_data import generate

BuildServer = Callable[..., FakeApiServer]


def serve(
    crm: str,
    build_server: BuildServer,
    argv: list[str] | None = None,
    *,
    token_env: str,
    url_suffix: str = "",
) -> int:
    """`python -m devkit.fake_servers.<crm> --data DIR [--deals N --seed S] [--port P]`."""
    parser = argparse.ArgumentParser(
        prog=f"python -m devkit.fake_servers.{crm.lower()}",
        description=f"Serve a local fake {crm} API over generated sample data (loopback only).",
    )
    parser.add_argument("--data", type=Path, required=True, help="canonical CSV folder")
    parser.add_argument("--deals", type=int, default=1000, help="deals to generate if empty")
    parser.add_argument("--seed", type=int, default=42, help="seed to generate with")
    parser.add_argument("--port", type=int, default=0, help="default: a free port")
    parser.add_argument(
        "--token",
        default=os.environ.get(token_env),
        help=f"the token clients must send (default: ${token_env})",
    )
    args = parser.parse_args(argv)
    if not args.token:
        parser.error(f"--token is required (or set {token_env})")
    if not (args.data / "deals.csv").exists():
        counts = generate(args.data, args.deals, args.seed)
        print(f"generated {counts['deals.csv']} deals into {args.data}", file=sys.stderr)
    server = build_server(SampleDataset(args.data), token=args.token)
    server.port = args.port
    # A shell starts background jobs with SIGINT ignored, and Python then never raises
    # KeyboardInterrupt: ask for it explicitly, and treat SIGTERM the same.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with server:
        print(f"fake {crm} API on {server.url}{url_suffix} (Ctrl-C to stop)", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0
