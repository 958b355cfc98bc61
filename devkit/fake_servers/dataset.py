"""The data behind the fake CRM servers: a canonical CSV folder in an in-memory DuckDB.

Every fake server (HubSpot, Pipedrive, Salesforce) serves the same generated deals, so a
night through any of their APIs can be compared with the same data loaded through the
canonical CSV path. The dataset can also change while a server runs (deals updated,
moved to another stage, deleted), for incremental-night and mid-paging tests.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

# Timestamp columns per table: times with an offset are served as the same instant in UTC.
TIMESTAMPS = {
    "deals": ("created_at", "closed_at", "updated_at"),
    "stage_history": ("changed_at",),
    "activities": ("occurred_at",),
}

TABLES = {
    "deals": "deals.csv",
    "stage_history": "deal_stage_history.csv",
    "activities": "activities.csv",
    "spend": "spend.csv",
}


class SampleDataset:
    """Canonical deals, stage history and activities, queryable and mutable, thread-safe.

    Columns are the canonical CSV columns (text, as in the files; times with a UTC offset
    rewritten as the same instant in UTC, `...Z`), plus on `deals` a
    `deleted_at` column (NULL unless the deal was deleted / archived in the CRM) and a
    `seq` column (file order, a stable tie-breaker for paging).
    """

    def __init__(self, folder: Path | str, stage_mapping: Path | str | None = None) -> None:
        """`stage_mapping`: a stage mapping CSV (config/reference/stage_mapping.csv's
        columns) that fakes whose API describes stages (closed, won, probability, order)
        read for stages the data alone does not describe; table `stage_mapping`."""
        self.folder = Path(folder)
        self._lock = threading.Lock()
        self._version = 0  # bumped by every change: what grouped() read is then stale
        self._grouped: dict[tuple[str, str, str], tuple[int, dict[Any, list[dict]]]] = {}
        self._con = duckdb.connect()
        for table, name in TABLES.items():
            path = self.folder / name
            if not path.exists():
                raise FileNotFoundError(f"{path}: sample dataset file missing")
            self._con.execute(
                f"""create table {table} as
                    select * exclude (ordinality), ordinality as seq
                    from read_csv(?, all_varchar = true, header = true) with ordinality""",
                [str(path)],
            )
        self._con.execute("alter table deals add column deleted_at varchar")
        self._con.execute(
            "create table stage_mapping (pipeline varchar, crm_stage varchar,"
            " funnel_stage varchar, probability double)"
        )
        if stage_mapping is not None:
            self._con.execute(
                """insert into stage_mapping
                   select trim(pipeline), trim(crm_stage), lower(trim(funnel_stage)),
                          cast(probability as double)
                   from read_csv(?, all_varchar = true, header = true)""",
                [str(stage_mapping)],
            )
        self._con.execute("set TimeZone = 'UTC'")
        for table, columns in TIMESTAMPS.items():
            for column in columns:
                # The fakes read `...Z` texts; an offset (`+05:30`) names the same instant.
                self._con.execute(
                    f"""update {table}
                        set "{column}" = strftime(
                            cast("{column}" as timestamptz), '%Y-%m-%dT%H:%M:%SZ')
                        where "{column}" not like '%Z'"""
                )

    @property
    def version(self) -> int:
        """Bumped by every change: rows read at one version are current while it holds."""
        return self._version

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Run a query over the dataset; rows as dicts."""
        with self._lock:
            rel = self._con.execute(sql, list(params))
            names = [d[0] for d in rel.description]
            return [dict(zip(names, row, strict=True)) for row in rel.fetchall()]

    def grouped(self, table: str, key: str, order_by: str = "seq") -> dict[Any, list[dict]]:
        """Every row of `table` (as dicts, in `order_by` order) by its `key` column, read
        once per version of the data: a fake serving one deal's records per request looks
        them up here instead of running a query for each request. Callers must not change
        the rows."""
        with self._lock:
            cached = self._grouped.get((table, key, order_by))
            if cached is None or cached[0] != self._version:
                rel = self._con.execute(f"select * from {table} order by {order_by}")
                names = [d[0] for d in rel.description]
                groups: dict[Any, list[dict]] = {}
                for values in rel.fetchall():
                    row = dict(zip(names, values, strict=True))
                    groups.setdefault(row[key], []).append(row)
                cached = self._grouped[(table, key, order_by)] = (self._version, groups)
            return cached[1]

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        rows = self.rows(sql, params)
        return next(iter(rows[0].values())) if rows else None

    # Changes, as a CRM user would make them between two nights (or between two pages).

    def update_deal(self, deal_id: str, *, at: datetime, **fields: str | None) -> None:
        """Change fields of a deal; `updated_at` becomes `at`."""
        fields = {**fields, "updated_at": _iso(at)}
        assignments = ", ".join(f'"{k}" = ?' for k in fields)
        with self._lock:
            self._version += 1
            self._con.execute(
                f"update deals set {assignments} where deal_id = ?", [*fields.values(), deal_id]
            )

    def move_deal(self, deal_id: str, stage: str, *, at: datetime, status: str = "open") -> None:
        """Move a deal to a CRM stage (recorded in its history), closing it if won/lost."""
        closed_at = _iso(at) if status in ("won", "lost") else None
        self.update_deal(deal_id, at=at, stage=stage, status=status, closed_at=closed_at)
        with self._lock:
            self._version += 1
            seq = self._con.execute("select max(seq) + 1 from stage_history").fetchall()[0][0]
            self._con.execute(
                "insert into stage_history values (?, ?, ?, ?)", [deal_id, stage, _iso(at), seq]
            )

    def add_deal(self, row: dict[str, str | None], *, at: datetime) -> None:
        """Create a deal (canonical columns) with its first stage change at `at`."""
        with self._lock:
            self._version += 1
            seq = self._con.execute("select max(seq) + 1 from deals").fetchall()[0][0]
            columns = [d[0] for d in self._con.execute("select * from deals limit 0").description]
            values = {**{c: None for c in columns}, **row, "seq": seq, "updated_at": _iso(at)}
            self._con.execute(
                f"insert into deals values ({', '.join('?' for _ in columns)})",
                [values[c] for c in columns],
            )
            hseq = self._con.execute("select max(seq) + 1 from stage_history").fetchall()[0][0]
            self._con.execute(
                "insert into stage_history values (?, ?, ?, ?)",
                [row["deal_id"], row["stage"], _iso(at), hseq],
            )

    def delete_deal(self, deal_id: str, *, at: datetime) -> None:
        """Delete (archive) a deal in the CRM: APIs stop listing it or flag it deleted."""
        with self._lock:
            self._version += 1
            self._con.execute(
                "update deals set deleted_at = ?, updated_at = ? where deal_id = ?",
                [_iso(at), _iso(at), deal_id],
            )


def _iso(at: datetime) -> str:
    if at.tzinfo is not None:
        at = at.astimezone(UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")
