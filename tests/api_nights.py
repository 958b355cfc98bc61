"""Helpers shared by the API-source night tests (tests/test_<crm>_night.py): a pipeline
config in a temporary folder, the published marts, the raw tables' row counts, a day of
CRM changes, each file's first night with what it wrote to stdout and stderr, and the
backoff of the retries a night logged."""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import SimpleNamespace

import duckdb

# The as-of time of each API night file's first night (served_first_night).
FIRST_NIGHT = "2026-07-01T00:00:00Z"

# Aggregate marts: they do not carry CRM ids, so every door must give the same rows.
SAME_ROWS = (
    "mart_funnel_conversion",
    "mart_stage_duration",
    "mart_stage_open_spells",
    "mart_sales_velocity",
    "mart_cac",
    "mart_cac_by_channel",
    "mart_pipeline_snapshot",
)

# Every mart, for comparing two nights of the same source (ids included).
ALL_MARTS = (
    *SAME_ROWS,
    "fct_deals",
    "fct_deal_stage_spells",
    "fct_deal_funnel",
    "mart_rep_performance",
    "mart_data_quality",
)


# The fault tests' retry_backoff_seconds: their retries wait at most a few tenths of a
# second each (the default 0.5 would wait seconds), except where the server sends a
# Retry-After.
TEST_BACKOFF = 0.05
_RETRY = re.compile(r"; retry (\d+) of \d+ in ([\d.]+)s$")


def assert_backoff_within(records, base: float = TEST_BACKOFF) -> int:
    """Every retry the HTTP client logged (in `records`, caplog's) that did not wait for a
    429's Retry-After waited at most `base` * 2**(n-1) seconds, n its retry number: the
    source's retry_backoff_seconds reached the client. Returns how many were checked."""
    checked = 0
    for record in records:
        message = record.getMessage()
        match = _RETRY.search(message)
        if match is None or "HTTP 429" in message:
            continue
        retry, wait = int(match.group(1)), float(match.group(2))
        assert wait <= base * 2 ** (retry - 1) + 0.005, message  # logged to 0.01 s
        checked += 1
    return checked


def marts(path, names):
    """The rows of the named marts of a published warehouse, in a fixed order."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {
            name: con.sql(f"select * from marts.{name} order by all").fetchall() for name in names
        }
    finally:
        con.close()


def pipeline_config(root, sources_yaml):
    """A validated pipeline config under `root` with the given `sources:` list items."""
    from night.config import load_config

    root.mkdir(parents=True, exist_ok=True)
    (root / "pipeline.yml").write_text(
        "reporting_currency: USD\n"
        f"warehouse: {{path: {root}/wh.duckdb, publish_dir: {root}/published}}\n"
        f"sources:\n{sources_yaml}"
    )
    return load_config(root / "pipeline.yml")


def raw_counts(config):
    """Rows per raw table (batch records included) of a config's warehouse."""
    con = duckdb.connect(str(config.warehouse_path), read_only=True)
    try:
        tables = [
            r[0]
            for r in con.execute(
                "select table_name from information_schema.tables where table_schema = 'raw' "
                "order by 1"
            ).fetchall()
        ]
        return {t: con.execute(f'select count(*) from raw."{t}"').fetchall()[0][0] for t in tables}
    finally:
        con.close()


@dataclass(frozen=True)
class DayOfChanges:
    """The sample deals a day of CRM changes touched (canonical ids)."""

    moved: str
    won: str
    deleted: str
    new: str = "D0900001"


def apply_a_day_of_changes(
    dataset, at, *, deleted_with_activities=False, new_amount="1000.00"
) -> DayOfChanges:
    """What an incremental night must pick up: two open Prospect deals of the first
    pipeline, one moved on and one won; a lost deal deleted (archived); a new deal."""
    from devkit.sample_data import PIPELINES

    new_business = PIPELINES[0]
    open_deals = dataset.rows(
        "select deal_id from deals where status = 'open' and stage = 'Prospect' "
        "and pipeline = ? and deleted_at is null order by deal_id limit 2",
        [new_business.name],
    )
    assert len(open_deals) == 2
    moved, won = (r["deal_id"] for r in open_deals)
    with_activities = (
        " and exists (select 1 from activities as a where a.deal_id = d.deal_id)"
        if deleted_with_activities
        else ""
    )
    deleted = dataset.rows(
        "select deal_id from deals as d where status = 'lost' and deleted_at is null"
        f"{with_activities} order by deal_id limit 1"
    )[0]["deal_id"]
    dataset.move_deal(moved, "Contacted", at=at)
    dataset.move_deal(won, new_business.won_stage, at=at, status="won")
    dataset.delete_deal(deleted, at=at)
    changes = DayOfChanges(moved, won, deleted)
    dataset.add_deal(
        {
            "deal_id": changes.new,
            "deal_name": "New",
            "pipeline": new_business.name,
            "stage": "Prospect",
            "status": "open",
            "amount": new_amount,
            "currency": "USD",
            "owner_id": "U1001",
            "owner_name": "x",
            "company_id": "C900001",
            "lead_source": "Referral",
            "created_at": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        at=at,
    )
    return changes


@dataclass
class Output:
    text: str = ""


@contextmanager
def process_output() -> Iterator[Output]:
    """What the process writes to stdout and stderr while the block runs, as a task's log
    holds it (what pytest's capfd reads, for a night a module fixture runs): file
    descriptors 1 and 2, with sys.stdout and sys.stderr writing to them. `.text` is set
    when the block ends."""
    output = Output()
    sys.stdout.flush()
    sys.stderr.flush()
    saved_fds, saved_streams = (os.dup(1), os.dup(2)), (sys.stdout, sys.stderr)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        stream = open(1, "w", encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
        sys.stdout = sys.stderr = stream
        try:
            yield output
        finally:
            stream.flush()
            sys.stdout, sys.stderr = saved_streams
            for fd, saved in zip((1, 2), saved_fds, strict=True):
                os.dup2(saved, fd)
                os.close(saved)
            sink.seek(0)
            output.text = sink.read().decode("utf-8", errors="replace")


@contextmanager
def served_first_night(sample, tmp_path_factory, build_server, api_config, *, token, token_env):
    """A module fixture's first night through a fake CRM API: the sample served by
    `build_server` (devkit.fake_servers), a night as of FIRST_NIGHT with the token in
    `token_env`, its result and what it wrote to stdout and stderr (process_output, for the
    token test). Yields them with the dataset, server and config; the server serves until
    the block ends (later tests change its data and run the next nights)."""
    import pytest

    from devkit.fake_servers.dataset import SampleDataset
    from night.tasks import parse_as_of, run_night

    dataset = SampleDataset(sample)
    with build_server(dataset, token=token) as server:
        config = api_config(tmp_path_factory.mktemp("first-night"), server.url)
        with pytest.MonkeyPatch.context() as mp, process_output() as output:
            mp.setenv(token_env, token)
            result = run_night(as_of=parse_as_of(FIRST_NIGHT), run_id="n1", config=config)
        yield SimpleNamespace(
            dataset=dataset, server=server, config=config, result=result, output=output
        )
