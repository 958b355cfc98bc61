"""Run the dbt project for one night, in this process: vars from the run, no clock.

dbt runs in-process (dbt's programmatic `dbtRunner`), not as a subprocess: a killed night
leaves no dbt behind, and the project is parsed once per process and target, then reused
by every later command of that process (the tests run dozens of nights; a task process
runs one). The parsed project depends on the project's files and the target's database
name only: the run's vars (`as_of`, `reporting_currency`) are rendered when each node is
compiled, and the reference data is a source (night/reference.py), not a seed path.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import Any

from extract.sources import SOURCE_TYPES
from night import DBT_PROJECT_DIR
from night.build_state import IncrementalPlan
from night.commands import CommandError
from night.config import PipelineConfig

log = logging.getLogger(__name__)

TAIL_LINES = 80
# A night builds and tests the data; the unit tests of the SQL logic do not depend on it
# and run once in the test suite (tests/test_dbt_unit_tests.py).
NIGHT_BUILD = ("build", "--exclude-resource-type", "unit_test")
# A build rewrites no manifest.json: the parse that every process starts with wrote it
# (configs, descriptions: what publish reads), and a rewrite costs ~0.3 s a build. The
# run results are still written (_write_artifacts); write_compiled_manifest writes the
# manifest with the build's compiled SQL for a tool that wants it.
NO_MANIFEST_WRITE = "--no-write-json"
_PROJECT_FOLDERS = ("models", "macros", "tests")

# One dbt invocation at a time per process: dbt's flags and event manager are global.
_LOCK = threading.Lock()
_MANIFESTS: dict[tuple[str, ...], Any] = {}
_KEEP_MANIFESTS = 4
_MANIFEST_WRITTEN: dict[Path, Any] = {}  # target folder -> the manifest last written there
# The compiled SQL files of the command running (_write_node_files_after_the_command).
_NODE_FILES: dict[str, str] | None = None


# dbt_env's entry saying whether the night writes dbt.log itself (_DbtLines) for this
# command: at info, the default level; DBT_LOG_LEVEL_FILE names dbt's own level for it.
_NIGHT_WRITES_DBT_LOG = "CRM_NIGHT_WRITES_DBT_LOG"


class DbtError(CommandError):
    """dbt failed; the message carries the failing nodes' output."""


def format_as_of(as_of: datetime) -> str:
    """The as-of time as the dbt var expects it: UTC, 'YYYY-MM-DD HH:MM:SS'."""
    if as_of.tzinfo is not None:
        as_of = as_of.astimezone(UTC).replace(tzinfo=None)
    return as_of.strftime("%Y-%m-%d %H:%M:%S")


def dbt_env(config: PipelineConfig, *, target: str = "duckdb") -> dict[str, str]:
    """The environment dbt reads (profiles.yml's env_var() and dbt's own flags)."""
    file_level = os.environ.get("DBT_LOG_LEVEL_FILE", "info")
    night_writes_log = file_level == "info"
    return {
        "DBT_PROFILES_DIR": str(DBT_PROJECT_DIR),
        "CRM_DBT_TARGET": target,
        "CRM_WAREHOUSE_PATH": str(config.warehouse_path),
        "DBT_TARGET_PATH": str(config.state_dir / f"dbt_target_{target}"),
        "DBT_LOG_PATH": str(config.state_dir / "dbt_logs"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DO_NOT_TRACK": "1",
        "DBT_USE_COLORS": "false",
        # The parse is kept in the target folder and reused by the next process (each
        # Airflow task is one) while the project's files, the profile and its env vars are
        # unchanged: dbt checks each, and the parse itself takes no run vars (_manifest).
        "DBT_PARTIAL_PARSE": "true",
        # dbt's own loggers are off: the night writes dbt's lines itself (_DbtLines), to
        # stdout, and to dbt.log at info (the default): the lines the task log shows, one
        # per node. Another level the environment asks for dbt.log (DBT_LOG_LEVEL_FILE=
        # debug: every SQL statement; none: no dbt.log) is dbt's file logger's.
        "DBT_LOG_LEVEL": "none",
        "DBT_LOG_LEVEL_FILE": "none" if night_writes_log else file_level,
        _NIGHT_WRITES_DBT_LOG: "true" if night_writes_log else "false",
    }


def dbt_command(
    config: PipelineConfig,
    as_of: datetime,
    args: Sequence[str] = NIGHT_BUILD,
    *,
    target: str = "duckdb",
    extra_env: dict[str, str] | None = None,
    staged_types: Sequence[str] | None = None,
    extra_vars: dict | None = None,
) -> None:
    """Run one dbt command against the config's warehouse; raise DbtError on failure.

    `staged_types`: the source types whose staging models the command builds and unions
    (default: every type in dbt_project.yml's `staged_source_types`). `extra_vars`: more
    run vars (an incremental night's, night.build_state.IncrementalPlan).
    """
    dbt_vars = {
        "as_of": format_as_of(as_of),
        "reporting_currency": config.reporting_currency,
        **(extra_vars or {}),
    }
    env = {**dbt_env(config, target=target), **(extra_env or {})}
    project = ["--project-dir", str(DBT_PROJECT_DIR)]
    command = [*args, *project]
    if staged_types is not None:
        # The parsed project knows every type's refs; this command renders the unions of
        # these types only and leaves the other types' staging models and tests out
        # (selected by their folder's fqn: a `path:` selector globs and compares paths of
        # every node, ~0.25 s a command).
        command += [
            "--exclude",
            *(f"fqn:staging.{t}" for t in sorted(SOURCE_TYPES) if t not in staged_types),
        ]
        command += ["--vars", json.dumps({**dbt_vars, "staged_source_types": list(staged_types)})]
    else:
        command += ["--vars", json.dumps(dbt_vars)]
    log.info("running: dbt %s (as_of=%s)", " ".join(args), dbt_vars["as_of"])
    with _LOCK, _environment(env):
        manifest = _manifest(target, env, project)
        lines, result = _invoke(command, manifest, env)
    if NO_MANIFEST_WRITE in command:
        _write_artifacts(manifest, result, Path(env["DBT_TARGET_PATH"]))
    if not result.success:
        detail = lines[-TAIL_LINES:]
        if result.exception is not None:
            detail.append(str(result.exception))
        raise DbtError(f"dbt {args[0]} failed:\n" + "\n".join(detail))


def build(
    config: PipelineConfig, as_of: datetime, *, incremental: IncrementalPlan | None = None
) -> None:
    """The night's `dbt build`: models and data tests, in dependency order, of the source
    types the config has (a type no source uses has nothing to stage). A full refresh,
    unless `incremental` says which deals to rebuild (macros/incremental.sql)."""
    dbt_command(
        config,
        as_of,
        (*NIGHT_BUILD, NO_MANIFEST_WRITE, *(() if incremental else ("--full-refresh",))),
        staged_types=sorted({source.type for source in config.sources}),
        extra_vars=incremental.dbt_vars() if incremental else None,
    )


def per_deal_marts(config: PipelineConfig, *, target: str = "duckdb") -> set[str] | None:
    """The marts an incremental build replaces per deal (strategy `replace` by
    int_changed_deals, macros/incremental.sql, or a view of such a table declared with
    `replace_by: changed_deals`), from the last command's manifest; None without one."""
    path = config.state_dir / f"dbt_target_{target}" / "manifest.json"
    if not path.exists():
        return None
    manifest = json.loads(path.read_text(encoding="utf-8"))
    return {
        node["alias"]
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model"
        and node["schema"] == "marts"
        and node["config"].get("materialized") in ("incremental", "view")
        and node["config"].get("replace_by") == "changed_deals"
    }


def _manifest(target: str, env: dict[str, str], common: list[str]) -> Any:
    """The parsed project for this target and database, parsed on first use.

    Parsed without the run's vars (dbt_project.yml's defaults): they are rendered when a
    node is compiled, and a parse that took them would be redone by every night with a new
    as-of instead of reusing the partial parse."""
    key = _manifest_key(target, env)
    fingerprint = key[2]
    if key not in _MANIFESTS:
        lines, result = _invoke(["parse", *common], None, env)
        if not result.success:
            detail = [*lines[-TAIL_LINES:], str(result.exception or "")]
            raise DbtError("dbt parse failed:\n" + "\n".join(detail))
        # A few targets and databases kept (a process alternating between them, as the
        # tests do, parses each once); a parse of project files since changed, never.
        for stale in [k for k in _MANIFESTS if k[2] != fingerprint]:
            del _MANIFESTS[stale]
        while len(_MANIFESTS) >= _KEEP_MANIFESTS:
            del _MANIFESTS[next(iter(_MANIFESTS))]  # the oldest
        _MANIFESTS[key] = result.result
        _MANIFEST_WRITTEN[Path(env["DBT_TARGET_PATH"])] = result.result  # the parse wrote it
    return _MANIFESTS[key]


def _manifest_key(target: str, env: dict[str, str]) -> tuple[str, str, str]:
    database = env.get("CRM_PG_DBNAME", "") if target != "duckdb" else ""
    database = database or Path(env["CRM_WAREHOUSE_PATH"]).stem
    return (target, database, project_fingerprint())


def write_compiled_manifest(config: PipelineConfig) -> Path:
    """The DuckDB target's manifest.json from this process's parse, with the SQL its last
    build compiled (a night's build writes none: NO_MANIFEST_WRITE), for a tool reading
    compiled SQL (benchmarks/plain_sql.py). KeyError when this process built nothing."""
    env = dbt_env(config)
    target_path = Path(env["DBT_TARGET_PATH"])
    _write_manifest(_MANIFESTS[_manifest_key("duckdb", env)], target_path)
    return target_path / "manifest.json"


def _invoke(args: list[str], manifest: Any, env: dict[str, str]) -> tuple[list[str], Any]:
    """One dbtRunner call; returns the lines dbt showed and its result."""
    from dbt.cli.main import dbtRunner

    to_file = env[_NIGHT_WRITES_DBT_LOG] == "true"
    output = _DbtLines(Path(env["DBT_LOG_PATH"]) / "dbt.log", to_file=to_file)
    _use_info_event_manager()
    _build_debug_events_lazily()
    _write_node_files_after_the_command()
    global _NODE_FILES
    _NODE_FILES = {}
    try:
        result = dbtRunner(manifest=manifest, callbacks=[output.event]).invoke(args)
    finally:
        files, _NODE_FILES = _NODE_FILES, None
        try:
            _write_node_files(files)
        finally:
            output.close()
            _release_duckdb()
    return output.lines, result


def _write_node_files_after_the_command() -> None:
    """dbt's compiled SQL files (target/compiled, target/run) written when the command
    ends (_invoke), not by each node as it runs.

    dbt writes two files a node (about 180 a small night's build) from its worker
    threads, each on the node's critical path: a wait on the file system while DuckDB
    writes too, then a wait for the interpreter the other thread took meanwhile. Kept
    until the command ends (as dbt would have written them: the last write of a path
    wins), they are written in one go, also when the command fails. Sample night's
    build, in turns: 2.82 -> 2.70 CPU-s, 2.49 -> 2.38 s (median of 12 each); writing the
    files at the end takes 0.03-0.05 s."""
    from dbt.contracts.graph.nodes import ParsedNode

    if ParsedNode.__dict__.get("writes_after_the_command"):
        return
    write = ParsedNode.write_node

    def write_node(self: Any, project_root: str, compiled_path: str, compiled_code: str) -> None:
        pending = _NODE_FILES
        if pending is None:  # outside _invoke
            write(self, project_root, compiled_path, compiled_code)
        else:  # the path as dbt's write_node makes it (an absolute one as it is)
            pending[os.path.join(project_root, compiled_path)] = compiled_code

    ParsedNode.write_node = write_node  # type: ignore[method-assign]
    ParsedNode.writes_after_the_command = True  # type: ignore[attr-defined]


def _write_node_files(files: dict[str, str]) -> None:
    from dbt_common.clients.system import write_file

    for path, code in files.items():
        write_file(path, code)


def _use_info_event_manager() -> None:
    """dbt's event manager, without the work for the debug events no one reads.

    dbt's EventManager builds a message (a protobuf conversion) for every event it fires
    before its loggers and callbacks look at the level; ~1,800 of a small build's ~2,000
    events are at debug. With no logger (dbt's are off, _DbtLines reads info and up) a
    debug event has no reader and is dropped here. dbt.log at debug is dbt's file logger:
    every event goes through then. Golden build, in turns: 1.81 -> 1.57 CPU-s (median of
    12 each)."""
    from dbt_common.events import event_manager_client
    from dbt_common.events.base_types import EventLevel
    from dbt_common.events.event_manager import EventManager

    if getattr(event_manager_client.get_event_manager(), "drops_unread_debug_events", False):
        return

    class _InfoEventManager(EventManager):
        drops_unread_debug_events = True

        def fire_event(
            self,
            e: Any,
            level: Any = None,
            node: Any = None,
            force_warn_or_error_handling: bool = False,
        ) -> None:
            if (
                not self.loggers
                and level is None
                and not force_warn_or_error_handling
                and e.level_tag() == EventLevel.DEBUG
            ):
                return
            super().fire_event(
                e, level=level, node=node, force_warn_or_error_handling=force_warn_or_error_handling
            )

    event_manager_client.ctx_set_event_manager(_InfoEventManager())


def _build_debug_events_lazily() -> None:
    """dbt's debug events build their message when it is first read, not when fired.

    A dbt event converts its fields into a protobuf message (json_format.ParseDict, pure
    Python) as it is constructed, before anyone looks at its level. A small night's build
    constructs some 1,800 debug events that nobody reads (_InfoEventManager drops them
    unless dbt.log is at debug): 0.2 of its 2.4 CPU-s. A debug event now keeps its
    arguments, and the first read of any of its attributes (a logger or callback
    formatting it, dbt reading a field) builds the message as the event's constructor
    would have: every reader sees the same event. Sample night's build, in turns: 2.05 ->
    1.89 CPU-s (median of 8 each)."""
    from dbt_common.events.base_types import BaseEvent, DebugLevel

    if DebugLevel.__dict__.get("builds_lazily"):
        return
    build, read = BaseEvent.__init__, BaseEvent.__getattr__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        # object's: BaseEvent.__setattr__ sends every other attribute to the message
        object.__setattr__(self, "_arguments", (args, kwargs))

    def __getattr__(self: Any, key: str) -> Any:
        # Called only for what the instance lacks: the message (and its fields, which
        # BaseEvent.__getattr__ reads from it), until it is built.
        pending = object.__getattribute__(self, "__dict__").pop("_arguments", None)
        if pending is not None:
            build(self, *pending[0], **pending[1])
        return read(self, key)

    DebugLevel.__init__ = __init__  # type: ignore[method-assign]
    DebugLevel.__getattr__ = __getattr__  # type: ignore[method-assign]
    DebugLevel.builds_lazily = True  # type: ignore[attr-defined]


class _DbtLines:
    """dbt's info, warning and error lines, written as dbt's own loggers write them: to
    stdout (`HH:MM:SS  message`) and, with `to_file`, to dbt.log (`HH:MM:SS.ffffff [level]
    [thread]: message`, rotated at 10 MB, as dbt does), and kept for an error message.

    dbt's loggers (off, DBT_LOG_LEVEL=none) format every event into a line before its
    level drops it: a small night's build fires about 2,000 events, some 190 of them at
    info, and that formatting was 0.4 of its 3.1 CPU-s (the golden night's build, in
    turns with and without, median of 12 each). A callback sees each event once, already
    built, and formats only the lines it writes."""

    def __init__(self, log_file: Path, *, to_file: bool) -> None:
        from dbt_common.events.functions import env_scrubber

        self.lines: list[str] = []
        self._scrub = env_scrubber  # the values of DBT_ENV_SECRET_* variables, as dbt's
        self._lock = threading.Lock()
        self._file: logging.Handler | None = None
        if to_file:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            self._file = RotatingFileHandler(
                log_file, encoding="utf8", maxBytes=10 * 1024 * 1024, backupCount=5
            )

    def event(self, event: Any) -> None:
        info = event.info
        if info.level not in ("info", "warn", "error"):
            return
        msg = self._scrub(info.msg)
        seconds = info.ts.seconds + info.ts.nanos / 1e9
        at = datetime.fromtimestamp(seconds)  # dbt.log: local time, stdout: UTC (as dbt's)
        # A print() from a macro is shown as it is, without a time (dbt's PrintEvent).
        shown = (
            msg
            if info.name == "PrintEvent"
            else f"{datetime.fromtimestamp(seconds, UTC):%H:%M:%S}  {msg}"
        )
        with self._lock:
            if info.msg:
                self.lines.append(info.msg)
            if sys.stdout is not None:  # None in a process started without one
                sys.stdout.write(shown + "\n")
                sys.stdout.flush()
            if self._file is not None:
                if info.name == "MainReportVersion":  # dbt's separator between invocations
                    rule = 30 * "="
                    self._write(f"\n\n{rule} {at:%H:%M:%S.%f} | {info.invocation_id} {rule}")
                thread = f"{info.thread[:10]:<10}"
                self._write(f"{at:%H:%M:%S.%f} [{info.level:<5}] [{thread}]: {msg}")

    def _write(self, line: str) -> None:
        assert self._file is not None
        self._file.handle(logging.makeLogRecord({"msg": line, "levelno": logging.INFO}))

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def _write_artifacts(manifest: Any, result: Any, target_path: Path) -> None:
    """What dbt writes into the target folder, for a command run without its JSON: the
    run results, and the manifest when this folder has none of this process's parse
    (a process building several warehouses parses once, in the first one's folder)."""
    target_path.mkdir(parents=True, exist_ok=True)
    if hasattr(result.result, "write"):
        result.result.write(str(target_path / "run_results.json"))
    if (
        _MANIFEST_WRITTEN.get(target_path) is not manifest
        or not (target_path / "manifest.json").exists()
    ):
        _write_manifest(manifest, target_path)


def _write_manifest(manifest: Any, target_path: Path) -> None:
    """dbt's manifest.json (and semantic manifest) of `manifest` into the target folder."""
    from dbt.parser.manifest import write_manifest

    write_manifest(manifest, str(target_path))
    _MANIFEST_WRITTEN[target_path] = manifest


def _release_duckdb() -> None:
    """Close the DuckDB database dbt-duckdb keeps open for the process after a command.

    dbt-duckdb holds one database instance per process in a class attribute; left open, it
    keeps the warehouse file attached here, and publish (or the next task's connection)
    could not open it.
    """
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    with DuckDBConnectionManager._LOCK:
        environment, DuckDBConnectionManager._ENV = DuckDBConnectionManager._ENV, None
    if environment is not None:
        environment.close()


def project_fingerprint() -> str:
    """Changes whenever a file of the project does (path, size, modification time)."""
    digest = hashlib.sha256()
    files = [DBT_PROJECT_DIR / "dbt_project.yml"] + sorted(
        path
        for folder in _PROJECT_FOLDERS
        for path in (DBT_PROJECT_DIR / folder).rglob("*")
        if path.is_file()
    )
    for path in files:
        stat = path.stat()
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of a dbt call, then restore them."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
