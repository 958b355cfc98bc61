"""`make report`: the demo night's funnel report and dbt docs, and a screenshot of the report.

Needs the demo night's published marts (`make run`; the Makefile target runs it first when
they are missing). Regenerates the dbt docs and the report of the published night, then has
headless chromium (Debian's package) draw the page into `<publish_dir>/report/screenshot.png`.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import duckdb

from night.config import load_config
from night.report_html import write_report
from night.tasks import parse_as_of, publish_docs

WINDOW = "1400,4000"


def screenshot(page: Path, target: Path) -> None:
    """A PNG of the page as a 1400-pixel-wide browser shows it, once its charts are drawn."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("chromium is not installed: apt-get install chromium")
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                f"--user-data-dir={profile}",
                "--virtual-time-budget=10000",
                f"--window-size={WINDOW}",
                f"--screenshot={target}",
                page.as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--no-docs", action="store_true", help="leave the dbt docs as they are")
    args = parser.parse_args(argv)
    config = load_config()
    published = config.published_path
    if not published.exists():
        print(f"{published} is missing: run `make run` first", file=sys.stderr)
        return 1
    con = duckdb.connect(str(published), read_only=True)
    try:
        as_of = parse_as_of(con.execute("select as_of_at from meta.publish_info").fetchone()[0])
    finally:
        con.close()
    if not args.no_docs:
        docs = publish_docs(as_of=as_of, config=config)
        print(f"dbt docs:   {docs['docs']} ({docs['bytes'] / 1e6:.1f} MB, {docs['seconds']} s)")
    report = write_report(published, config.publish_dir)
    print(
        f"report:     {report['report']} ({report['bytes'] / 1e6:.1f} MB, "
        f"{report['seconds']} s), archived as {report['archive']}"
    )
    shot = Path(report["report"]).with_name("screenshot.png")
    screenshot(Path(report["report"]), shot)
    print(f"screenshot: {shot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
