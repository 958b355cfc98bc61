"""A throwaway PostgreSQL cluster for tests: initdb in a temp dir, started on a free port.

PostgreSQL refuses to run as root; when the tests run as root (CI does), the cluster is
created and run as the `postgres` system user that the Debian package installs.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

PG_BIN_DIRS = [Path(p) for p in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)]


def pg_bin() -> Path | None:
    """The newest installed PostgreSQL server binaries, or None."""
    for candidate in PG_BIN_DIRS:
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PgCluster:
    """Start with `start()`, stop with `stop()`; `dsn` connects as the superuser."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.port = _free_port()
        self.root = Path(tempfile.mkdtemp(prefix="crm-pg-"))
        self.data = self.root / "data"
        self.user = "postgres"
        self.as_root = os.geteuid() == 0

    def _run(self, *args: str) -> None:
        cmd = [str(self.bin_dir / args[0]), *args[1:]]
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=120)

    def start(self) -> PgCluster:
        if self.as_root:
            shutil.chown(self.root, "postgres", "postgres")
        else:
            self.user = os.environ.get("USER", "postgres")
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            self.user,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.root / "server.log"),
            "-w",
            "-o",
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c timezone=UTC",
            "start",
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.2)
        raise RuntimeError(f"PostgreSQL did not start: see {self.root / 'server.log'}")

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def drop_database(self, name: str) -> None:
        self._admin(f'drop database "{name}" with (force)')

    def create_database(self, name: str) -> None:
        self._admin(f'create database "{name}"')

    def _admin(self, sql: str) -> None:
        """One statement outside a transaction, on the maintenance database."""
        import psycopg2

        con = psycopg2.connect(host="127.0.0.1", port=self.port, user=self.user, dbname="postgres")
        con.autocommit = True
        with con.cursor() as cur:
            cur.execute(sql)
        con.close()


def copy_raw_to_postgres(
    duckdb_path: Path, dsn: dict, schemas: tuple[str, ...] = ("raw", "reference")
) -> None:
    """Copy every table of the DuckDB warehouse's raw and reference schemas (`schemas`)
    into the same schemas on PostgreSQL, with the same column types.

    The raw layer is landed by the extract step and the reference data by the build step in
    DuckDB; this puts the identical rows on the server so the dbt project can be built there
    from the same data (with the PostgreSQL publish's own type mapping and copy).
    """
    import duckdb
    import psycopg2

    from night.publish_postgres import copy_table, pg_type

    src = duckdb.connect(str(duckdb_path), read_only=True)
    tables = src.execute(
        "select table_schema, table_name from information_schema.tables "
        f"where table_schema in ({', '.join(repr(name) for name in schemas)}) order by all"
    ).fetchall()
    pg = psycopg2.connect(**dsn)
    with pg, pg.cursor() as cur:
        for schema, table in tables:
            columns = src.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = ? and table_name = ? order by ordinal_position",
                [schema, table],
            ).fetchall()
            ddl = ", ".join(f'"{name}" {pg_type(kind)}' for name, kind in columns)
            cur.execute(f"create schema if not exists {schema}")
            cur.execute(f'drop table if exists {schema}."{table}"')
            cur.execute(f'create table {schema}."{table}" ({ddl})')
            qualified = f'{schema}."{table}"'
            copy_table(cur, src, qualified, qualified, [name for name, _ in columns])
    pg.close()
    src.close()
