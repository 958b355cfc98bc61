"""Pipeline config: one YAML file, validated on load with errors that name the bad key."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from night import REPO_ROOT

CONFIG_ENV_VAR = "CRM_PIPELINE_CONFIG"
DEFAULT_CONFIG_PATH = REPO_ROOT / "config" / "pipeline.yml"
REFERENCE_NAMES = ("funnel_stages", "stage_mapping", "channel_mapping", "fx_rates")
DEFAULT_REFERENCE_DIR = REPO_ROOT / "config" / "reference"

_SOURCE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


class ConfigError(ValueError):
    """The pipeline config is invalid; the message names the file and the key."""


@dataclass(frozen=True)
class SourceConfig:
    name: str
    type: str
    settings: dict[str, Any]


@dataclass(frozen=True)
class PublishGuard:
    """How far tonight's marts may move from the published ones before publish refuses
    (night/publish.py); a fraction of the published figure, None: not checked."""

    deal_count_drop: float | None = 0.2  # deals in fct_deals fall by more than this
    open_pipeline_change: float | None = 0.5  # open pipeline amount moves more, either way
    won_amount_change: float | None = 0.05  # a closed month's won amount moves more


GUARD_KEYS = ("deal_count_drop", "open_pipeline_change", "won_amount_change")


@dataclass(frozen=True)
class PostgresTarget:
    """`publish: postgres:`: the marts copied into a PostgreSQL schema for BI tools
    (night/publish_postgres.py). The connection is an Airflow connection or a libpq
    connection string in an environment variable, never in the config file."""

    schema: str = "marts"
    reader_role: str | None = "bi_reader"  # granted SELECT on the schema's tables
    airflow_conn_id: str | None = None
    dsn_env_var: str = "CRM_BI_POSTGRES_DSN"


_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,50}$")
_DURATION = re.compile(r"^(\d+)\s*([smh])$")


@dataclass(frozen=True)
class Notifications:
    """`notifications:`: who hears of a failed night or late marts (dags/crm_nightly.py).

    E-mail goes through Airflow's SMTP notifier and an Airflow connection (server and
    login; e.g. AIRFLOW_CONN_SMTP_DEFAULT in .env), never through the config file."""

    email_to: tuple[str, ...] = ()
    smtp_conn_id: str = "smtp_default"
    from_email: str | None = None
    # Deadline alert: the night's marts not published this long after it was queued.
    marts_due_within: timedelta | None = None


@dataclass(frozen=True)
class PipelineConfig:
    path: Path
    reporting_currency: str
    schedule: str
    warehouse_path: Path
    publish_dir: Path
    state_dir: Path
    reference: dict[str, Path]
    sources: tuple[SourceConfig, ...] = field(default_factory=tuple)
    publish_guard: PublishGuard = field(default_factory=PublishGuard)
    publish_postgres: PostgresTarget | None = None
    notifications: Notifications = field(default_factory=Notifications)

    @property
    def published_path(self) -> Path:
        """The DuckDB file BI tools open (read-only)."""
        return self.publish_dir / "sales_funnel.duckdb"

    def source(self, name: str) -> SourceConfig:
        for source in self.sources:
            if source.name == name:
                return source
        raise ConfigError(f"{self.path}: no source named {name!r} in sources")


def config_path() -> Path:
    """The config file in force: $CRM_PIPELINE_CONFIG or config/pipeline.yml."""
    return Path(os.environ.get(CONFIG_ENV_VAR) or DEFAULT_CONFIG_PATH).resolve()


def load_config(path: Path | str | None = None) -> PipelineConfig:
    """Read and validate the pipeline config; relative paths are relative to the file."""
    path = Path(path).resolve() if path else config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the pipeline config: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    return _parse(path, data)


def _parse(path: Path, data: Any) -> PipelineConfig:
    # Imported here: the source registry imports config types.
    from extract.sources import SOURCE_TYPES

    where = _Where(path)
    top = where.mapping(
        data,
        "",
        required={"reporting_currency", "warehouse", "sources"},
        optional={"schedule", "reference", "publish_guard", "publish", "notifications"},
    )
    currency = where.string(top["reporting_currency"], "reporting_currency")
    if not _CURRENCY.match(currency):
        raise where.error("reporting_currency", f"must be a 3-letter ISO code, got {currency!r}")
    schedule = where.string(top.get("schedule", "0 2 * * *"), "schedule")

    wh = where.mapping(
        top["warehouse"], "warehouse", required={"path", "publish_dir"}, optional={"state_dir"}
    )
    warehouse_path = where.path(wh["path"], "warehouse.path")
    publish_dir = where.path(wh["publish_dir"], "warehouse.publish_dir")
    state_dir = (
        where.path(wh["state_dir"], "warehouse.state_dir")
        if "state_dir" in wh
        else warehouse_path.parent / "state"
    )

    ref = where.mapping(top.get("reference") or {}, "reference", optional=set(REFERENCE_NAMES))
    reference = {
        name: where.path(ref[name], f"reference.{name}")
        if name in ref
        else DEFAULT_REFERENCE_DIR / f"{name}.csv"
        for name in REFERENCE_NAMES
    }

    publish_guard = _publish_guard(top.get("publish_guard"), where)
    publish_postgres = _publish_postgres(top.get("publish"), where)
    notifications = _notifications(top.get("notifications"), where)

    raw_sources = top["sources"]
    if not isinstance(raw_sources, list) or not raw_sources:
        raise where.error("sources", "must be a non-empty list of sources")
    sources: list[SourceConfig] = []
    for i, item in enumerate(raw_sources):
        key = f"sources[{i}]"
        if not isinstance(item, dict):
            raise where.error(key, "must be a mapping with name and type")
        for required in ("name", "type"):
            if required not in item:
                raise where.error(f"{key}.{required}", "is required")
        name = where.string(item["name"], f"{key}.name")
        if not _SOURCE_NAME.match(name):
            raise where.error(f"{key}.name", f"must be lowercase snake_case, got {name!r}")
        if any(s.name == name for s in sources):
            raise where.error(f"{key}.name", f"duplicate source name {name!r}")
        type_ = where.string(item["type"], f"{key}.type")
        if type_ not in SOURCE_TYPES:
            known = ", ".join(sorted(SOURCE_TYPES))
            raise where.error(f"{key}.type", f"unknown source type {type_!r} (known: {known})")
        settings = {k: v for k, v in item.items() if k not in ("name", "type")}
        settings = SOURCE_TYPES[type_].validate_settings(settings, where.sub(key))
        sources.append(SourceConfig(name=name, type=type_, settings=settings))

    return PipelineConfig(
        path=path,
        reporting_currency=currency,
        schedule=schedule,
        warehouse_path=warehouse_path,
        publish_dir=publish_dir,
        state_dir=state_dir,
        reference=reference,
        sources=tuple(sources),
        publish_guard=publish_guard,
        publish_postgres=publish_postgres,
        notifications=notifications,
    )


def _notifications(value: Any, where: _Where) -> Notifications:
    """`notifications:` with `email:` (to, smtp_conn_id, from_email) and `marts_due_within`
    (a duration: 90m, 5h, 30s)."""
    raw = where.mapping(value or {}, "notifications", optional={"email", "marts_due_within"})
    email = where.mapping(
        raw.get("email") or {},
        "notifications.email",
        optional={"to", "smtp_conn_id", "from_email"},
    )
    to = email.get("to", [])
    to = [to] if isinstance(to, str) else to
    if not isinstance(to, list) or not all(isinstance(a, str) and "@" in a for a in to):
        raise where.error("notifications.email.to", f"must be e-mail address(es), got {to!r}")
    if email and not to:
        raise where.error("notifications.email.to", "is required")
    conn_id = where.string(email.get("smtp_conn_id", "smtp_default"), "notifications.email")
    sender = email.get("from_email")
    if sender is not None:
        sender = where.string(sender, "notifications.email.from_email")
    due = raw.get("marts_due_within")
    if due is not None:
        match = _DURATION.match(str(due).strip())
        if not match or int(match.group(1)) == 0:
            raise where.error(
                "notifications.marts_due_within", f"must be a duration like 90m or 5h, got {due!r}"
            )
        unit = {"s": "seconds", "m": "minutes", "h": "hours"}[match.group(2)]
        due = timedelta(**{unit: int(match.group(1))})
    return Notifications(tuple(to), conn_id, sender, due)


def _publish_postgres(value: Any, where: _Where) -> PostgresTarget | None:
    """`publish:` with an optional `postgres:` target."""
    publish = where.mapping(value or {}, "publish", optional={"postgres"})
    if "postgres" not in publish:
        return None
    raw = where.mapping(
        publish["postgres"] or {},
        "publish.postgres",
        optional={"schema", "reader_role", "airflow_conn_id", "dsn_env_var"},
    )
    defaults = PostgresTarget()
    schema = where.string(raw.get("schema", defaults.schema), "publish.postgres.schema")
    role = raw.get("reader_role", defaults.reader_role)
    for key, name in (("schema", schema), ("reader_role", role)):
        if name is not None and not _IDENTIFIER.match(str(name)):
            raise where.error(
                f"publish.postgres.{key}",
                f"must be a lowercase identifier (letters, digits, _), got {name!r}",
            )
    conn_id = raw.get("airflow_conn_id")
    if conn_id is not None:
        conn_id = where.string(conn_id, "publish.postgres.airflow_conn_id")
    env_var = where.string(
        raw.get("dsn_env_var", defaults.dsn_env_var), "publish.postgres.dsn_env_var"
    )
    return PostgresTarget(schema, role, conn_id, env_var)


def _publish_guard(value: Any, where: _Where) -> PublishGuard:
    """`publish_guard:` thresholds as fractions (0.2 = 20%), `off` for one, or `off` whole."""
    if value in ("off", False):
        return PublishGuard(None, None, None)
    raw = where.mapping(value or {}, "publish_guard", optional=set(GUARD_KEYS))
    limits = {}
    for name in GUARD_KEYS:
        limit = raw.get(name, getattr(PublishGuard(), name))
        if limit in ("off", False):
            limit = None
        elif not _is_positive_number(limit):
            raise where.error(
                f"publish_guard.{name}",
                f"must be a fraction above 0 (0.2 = 20%) or off, got {limit!r}",
            )
        limits[name] = None if limit is None else float(limit)
    return PublishGuard(**limits)


def _is_positive_number(value: Any) -> bool:
    """An int or float above 0 (not a bool; NaN is not above 0)."""
    return not isinstance(value, bool) and isinstance(value, int | float) and value > 0


class _Where:
    """Validation helpers that prefix every error with the file and the key path."""

    def __init__(self, path: Path, prefix: str = "") -> None:
        self.file = path
        self.prefix = prefix

    def sub(self, key: str) -> _Where:
        return _Where(self.file, self._key(key))

    def _key(self, key: str) -> str:
        return f"{self.prefix}.{key}" if self.prefix and key else (self.prefix or key)

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.file}: {self._key(key) or '(top level)'}: {message}")

    def mapping(
        self,
        value: Any,
        key: str,
        *,
        required: set[str] = frozenset(),
        optional: set[str] = frozenset(),
    ) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.error(key, "must be a mapping")
        unknown = sorted(set(value) - set(required) - set(optional))
        if unknown:
            allowed = ", ".join(sorted(set(required) | set(optional)))
            raise self.error(
                f"{key}.{unknown[0]}" if key else unknown[0],
                f"unknown key (allowed here: {allowed})",
            )
        missing = sorted(set(required) - set(value))
        if missing:
            raise self.error(f"{key}.{missing[0]}" if key else missing[0], "is required")
        return value

    def string(self, value: Any, key: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, f"must be a non-empty string, got {value!r}")
        return value.strip()

    def path(self, value: Any, key: str) -> Path:
        text = os.path.expandvars(os.path.expanduser(self.string(value, key)))
        candidate = Path(text)
        return (candidate if candidate.is_absolute() else self.file.parent / candidate).resolve()

    def positive_int(self, value: Any, key: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise self.error(key, f"must be a positive integer, got {value!r}")
        return value

    def positive_number(self, value: Any, key: str) -> float:
        if not _is_positive_number(value):
            raise self.error(key, f"must be a positive number, got {value!r}")
        return float(value)
