"""The docker-compose stack, run without Docker: the same services as local processes.

A throwaway PostgreSQL cluster stands in for the `postgres` service; docker-compose.yml's
airflow-init command, then its api-server, scheduler and dag-processor run as separate
processes with the environment of that file (read from it: x-airflow-common's env_file
and environment, `${VAR:-default}` filled from a .env made from .env.example, container
paths and addresses mapped by `to_local`). Nights are triggered through the REST API v2
with a token from the login in .env, and their marts read from the published DuckDB.

What Docker itself does (build the image, mounts, ports, restart, healthcheck scheduling)
is not run here; tests below check those parts of the file statically.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import socketserver
import subprocess
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import requests
import yaml

from golden_marts import AS_OF, GOLDEN_DIR, GRAIN, mart_differences, read_expected
from pg_cluster import PgCluster, pg_bin

pytestmark = [pytest.mark.slow(seconds=75), pytest.mark.airflow, pytest.mark.postgres]

REPO = Path(__file__).resolve().parent.parent
COMPOSE = REPO / "docker-compose.yml"
VENV_BIN = REPO / ".venv" / "bin"
AIRFLOW_SERVICES = ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor")
START_TIMEOUT = 120
RUN_TIMEOUT = 180


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- an SMTP server that keeps what it receives ------------------------------------


class _SmtpSession(socketserver.StreamRequestHandler):
    """Just enough SMTP for smtplib (no TLS, no auth): each DATA is kept, as text."""

    def handle(self) -> None:
        self.wfile.write(b"220 test ESMTP\r\n")
        message: list[bytes] | None = None
        for line in self.rfile:
            if message is not None:
                if line.rstrip(b"\r\n") == b".":
                    self.server.messages.append(b"".join(message).decode(errors="replace"))
                    message = None
                    self.wfile.write(b"250 queued\r\n")
                else:
                    message.append(line)
                continue
            verb = line[:4].upper()
            if verb == b"DATA":
                message = []
                self.wfile.write(b"354 end with .\r\n")
            elif verb == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")


class SmtpSink(socketserver.ThreadingTCPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _SmtpSession)
        self.messages: list[str] = []
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return self.server_address[1]


# --- docker-compose.yml as local processes -------------------------------------------


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's variable substitution: ${VAR}, ${VAR:-default}, ${VAR-default},
    ${VAR:?error} (fails when unset or empty, as `docker compose` does) and $$ for $."""

    def one(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group("name"), match.group("op"), match.group("arg") or ""
        value = variables.get(name)
        if op == ":-":
            return value or arg
        if op == "-":
            return arg if value is None else value
        if op == ":?":
            if not value:
                raise AssertionError(f"docker compose would refuse to start: {name}: {arg}")
            return value
        return value or ""

    return re.sub(
        r"\$\$|\$\{(?P<name>\w+)(?:(?P<op>:-|-|:\?)(?P<arg>[^}]*))?\}|\$(?P<bare>\w+)",
        lambda m: variables.get(m.group("bare"), "") if m.group("bare") else one(m),
        value,
    )


def to_local(value: str, places: dict[str, str]) -> str:
    """A container path or network address of docker-compose.yml as this test's local one.

    `places` maps each container-side prefix to its local stand-in (Stack.service_places):

      /opt/crm (the image's copy of the project)        -> this checkout
      /opt/airflow, /data (each container's own files)  -> <tmp>/containers/<service>/...
      each mount target of the service's `volumes:`     -> the same folder for every
        a named volume (crm-warehouse, airflow-logs)       service mounting it:
        a bind mount (./landing, ./published)              <tmp>/volumes/<name>,
        ./config                                           <tmp>/host/<name>, <tmp>/config
      airflow-apiserver:8080, localhost:8080            -> 127.0.0.1:<free port>
      localhost:8974 (the scheduler's health check)     -> 127.0.0.1:<free port>
      postgres:5432 (the postgres service)              -> 127.0.0.1:<cluster port>

    The longest prefix wins (a mount inside /opt/airflow before /opt/airflow); a path
    prefix matches whole path segments only.
    """
    for prefix in sorted(places, key=len, reverse=True):
        value = re.sub(re.escape(prefix) + r"(?=/|:|\s|$|\")", places[prefix], value)
    return value


def read_dotenv(path: Path) -> dict[str, str]:
    """KEY=value lines (comments and blank lines skipped), as compose reads an env_file."""
    pairs = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


def make_env_file(example: Path, target: Path, smtp_port: int) -> dict[str, str]:
    """A .env made as the README says: .env.example with every empty secret filled in,
    and the Airflow connection of the SMTP server the notifications go through."""
    from cryptography.fernet import Fernet

    pairs = read_dotenv(example)
    for key, value in pairs.items():
        if not value:
            pairs[key] = (
                Fernet.generate_key().decode() if "FERNET" in key else secrets.token_hex(16)
            )
    pairs["AIRFLOW_UID"] = str(os.getuid())
    pairs["AIRFLOW_CONN_CRM_SMTP"] = (
        f"smtp://127.0.0.1:{smtp_port}?disable_tls=true&disable_ssl=true"
        "&from_email=airflow%40example.com"
    )
    target.write_text("".join(f"{k}={v}\n" for k, v in pairs.items()), encoding="utf-8")
    return pairs


@dataclass
class Service:
    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    process: subprocess.Popen | None = None
    started: float = 0.0
    ready_after: float | None = None


@dataclass
class Stack:
    root: Path
    compose: dict
    dotenv: dict[str, str]
    places: dict[str, str]
    api: str
    smtp: SmtpSink
    services: dict[str, Service] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    token: str = ""

    def service_places(self, name: str) -> dict[str, str]:
        """`places` (to_local) for one service: a filesystem of its own, as each container
        has, with the volumes docker-compose.yml mounts in it shared with the services
        mounting the same: what is not on a volume is not seen by the other services."""
        places = dict(self.places)
        own = self.root / "containers" / name
        places["/opt/airflow"] = str(own / "opt-airflow")  # AIRFLOW_HOME: airflow.cfg
        places["/data"] = str(own / "data")
        for volume in self.compose["services"][name].get("volumes", []):
            source, _, target = re.sub(r":(ro|rw)$", "", volume).rpartition(":")
            source = interpolate(source, self.dotenv)
            if source in (self.compose.get("volumes") or {}):
                local = self.root / "volumes" / source
            elif source == "./config":
                local = self.root / "config"  # the test's copy, which it may edit
            else:
                local = self.root / "host" / Path(source).name
            local.mkdir(parents=True, exist_ok=True)
            places[target] = str(local)
        return places

    def local(self, container_path: str, service: str = "airflow-scheduler") -> Path:
        """Where a path of the service's container is here (a volume: every service's)."""
        return Path(to_local(container_path, self.service_places(service)))

    def service_env(self, name: str) -> dict[str, str]:
        """What the container of service `name` would have in its environment."""
        spec = self.compose["services"][name]
        places = self.service_places(name)
        env = {
            "PATH": f"{VENV_BIN}{os.pathsep}/usr/bin:/bin",
            "HOME": str(self.root / "home"),
            "LANG": "C.UTF-8",
            "AIRFLOW_HOME": to_local("/opt/airflow", places),  # the official image's
            "HOSTNAME": socket.gethostname(),  # as in a container: its hostname
        }
        env_files = spec.get("env_file") or []
        assert env_files, f"{name}: no env_file: the tokens of .env never reach it"
        for entry in [env_files] if isinstance(env_files, str) else env_files:
            path = entry["path"] if isinstance(entry, dict) else entry
            assert path == ".env", f"{name}: env_file {path}"
            env.update(self.dotenv)
        for key, value in (spec.get("environment") or {}).items():
            env[key] = to_local(interpolate(str(value), self.dotenv), places)
        # Test-only: the ports, free ones here (in the containers: 8080 and 8974).
        env["AIRFLOW__API__PORT"] = self.places["localhost:8080"].rsplit(":", 1)[1]
        env["AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT"] = self.places[
            "localhost:8974"
        ].rsplit(":", 1)[1]
        return env

    def argv(self, name: str) -> list[str]:
        """The service's command as the official image's entrypoint runs it: an Airflow
        subcommand (`api-server`) is run by `airflow`, anything else (`bash -c ...`) as is."""
        command = self.compose["services"][name]["command"]
        argv = command.split() if isinstance(command, str) else list(command)
        places = self.service_places(name)
        argv = [to_local(interpolate(a, self.dotenv), places) for a in argv]
        return argv if argv[0] in ("bash", "python") else ["airflow", *argv]

    def start(self, name: str) -> Service:
        env = self.service_env(name)
        log = self.root / "logs" / f"{name}.log"
        log.parent.mkdir(exist_ok=True)
        service = Service(name, self.argv(name), env, log)
        with log.open("wb") as sink:
            service.process = subprocess.Popen(
                service.argv,
                env=env,
                cwd=self.root,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopped with its children
            )
        service.started = time.monotonic()
        self.services[name] = service
        return service

    def stop(self) -> list[str]:
        """SIGTERM to each service's PID (it stops its own children), SIGKILL to its
        process group after 10 s (`docker compose stop`'s default grace period) and to
        whatever is left in the group then; returns the services that needed the SIGKILL."""
        killed = []
        running = [s for s in self.services.values() if s.process]
        for service in running:
            if service.process.poll() is None:
                os.kill(service.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for service in running:
            try:
                service.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                killed.append(service.name)
            try:  # its group (task processes, workers) with it
                os.killpg(service.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            service.process.wait(timeout=10)
        return killed

    def leftovers(self, settle: float = 10.0) -> list[int]:
        """Process groups of the services with a live process still in them. A process
        SIGKILLed with its parent is a zombie until init reaps it (in a container that can
        take a moment): zombies are dead, and the check waits up to `settle` seconds for
        the rest to go."""
        groups = {service.process.pid for service in self.services.values()}
        deadline = time.monotonic() + settle
        while True:
            alive = sorted(
                {pgrp for pgrp, state in _processes() if pgrp in groups and state != "Z"}
            )
            if not alive or time.monotonic() > deadline:
                return alive
            time.sleep(0.2)

    def tail(self, name: str, lines: int = 40) -> str:
        return "\n".join(self.services[name].log.read_text(errors="replace").splitlines()[-lines:])

    # REST API v2 -----------------------------------------------------------------------

    def get(self, path: str, **params) -> dict:
        response = requests.get(
            f"{self.api}/api/v2{path}",
            params=params,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30,
        )
        response.raise_for_status()
        return response.json()

    def trigger(self, conf: dict) -> str:
        response = requests.post(
            f"{self.api}/api/v2/dags/crm_nightly/dagRuns",
            json={"logical_date": None, "conf": conf},
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        return response.json()["dag_run_id"]

    def run(self, run_id: str) -> dict:
        return self.get(f"/dags/crm_nightly/dagRuns/{run_id}")

    def wait_for_run(self, run_id: str, timeout: float = RUN_TIMEOUT) -> dict:
        """The run once it ended. One request a second while its tasks run (each costs the
        api-server CPU that the night's own tasks would use): their states, then the run's
        once none is left to run."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = {t: ti["state"] for t, ti in self.task_instances(run_id).items()}
            # No night here should wait for a retry: say which task failed, at once.
            retrying = [t for t, state in states.items() if state == "up_for_retry"]
            assert not retrying, f"{run_id}: {retrying} up for retry:\n" + self.tail(
                "airflow-scheduler"
            )
            if states and all(state in _TASK_ENDED for state in states.values()):
                run = self.run(run_id)
                if run["state"] in ("success", "failed"):
                    return run
            time.sleep(1)
        raise AssertionError(
            f"{run_id} not finished in {timeout} s:\n" + self.tail("airflow-scheduler")
        )

    def task_instances(self, run_id: str) -> dict[str, dict]:
        body = self.get(f"/dags/crm_nightly/dagRuns/{run_id}/taskInstances")
        return {ti["task_id"]: ti for ti in body["task_instances"]}


# Task instance states after which the task will not run again in this run.
_TASK_ENDED = {"success", "failed", "upstream_failed", "skipped", "removed"}


def _processes() -> list[tuple[int, str]]:
    """(process group, state) of every process, from /proc/<pid>/stat."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # it ended meanwhile
            continue
        # `pid (comm) state ppid pgrp ...`: comm may hold spaces and parentheses.
        fields = text[text.rindex(")") + 2 :].split()
        found.append((int(fields[2]), fields[0]))
    return found


def _wait(what: str, check, timeout: float = START_TIMEOUT, stack: Stack | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = check()
        except (requests.RequestException, OSError):
            result = None
        if result:
            return result
        if stack:
            for service in stack.services.values():
                if service.name not in AIRFLOW_SERVICES:
                    continue
                code = service.process.poll() if service.process else None
                assert code is None, f"{service.name} exited {code}:\n{stack.tail(service.name)}"
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def golden_pipeline_config(stack: Stack, config_dir: Path) -> None:
    """The production config (config/pipeline.production.yml: its warehouse and publish
    folders) with the golden dataset's source, currency and reference data instead."""
    config = yaml.safe_load((REPO / "config" / "pipeline.production.yml").read_text())
    reference = config_dir / "golden"
    shutil.copytree(GOLDEN_DIR / "reference", reference)
    config["reporting_currency"] = "EUR"
    config["warehouse"] = {k: str(stack.local(v)) for k, v in config["warehouse"].items()}
    config["reference"] = {p.stem: str(p) for p in sorted(reference.glob("*.csv"))}
    config["notifications"] = {
        "email": {"to": ["data-team@example.com"], "smtp_conn_id": "crm_smtp"},
        "marts_due_within": "5s",  # shorter than any night here: each one is late
    }
    config["sources"] = [
        {
            "name": "golden",
            "type": "canonical_csv",
            "landing_dir": str(stack.local("/data/landing/golden")),
        }
    ]
    (config_dir / "pipeline.production.yml").write_text(yaml.safe_dump(config))


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """PostgreSQL, airflow-init, then the three Airflow services, once for the module."""
    bin_dir = pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries not installed")
    t0 = time.monotonic()
    root = tmp_path_factory.mktemp("production")
    compose = yaml.safe_load(COMPOSE.read_text())
    api_port, health_port = _free_port(), _free_port()
    cluster = PgCluster(bin_dir).start()
    places = {
        "/opt/crm": str(REPO),
        "airflow-apiserver:8080": f"127.0.0.1:{api_port}",
        "localhost:8080": f"127.0.0.1:{api_port}",
        "localhost:8974": f"127.0.0.1:{health_port}",
        "postgres:5432": f"127.0.0.1:{cluster.port}",
    }
    smtp = SmtpSink()
    dotenv = make_env_file(REPO / ".env.example", root / ".env", smtp.port)
    stack = Stack(root, compose, dotenv, places, api=f"http://127.0.0.1:{api_port}", smtp=smtp)
    (root / "home").mkdir()
    try:
        # The postgres service: its user, password and database from the compose file.
        pg_env = {
            k: interpolate(str(v), dotenv)
            for k, v in compose["services"]["postgres"]["environment"].items()
        }
        _create_postgres_user(cluster, pg_env)
        stack.timings["postgres"] = time.monotonic() - t0
        golden_pipeline_config(stack, stack.local("/opt/crm/config"))

        # airflow-init: its command, to completion (the services wait for that).
        init = stack.start("airflow-init")
        code = init.process.wait(timeout=180)
        assert code == 0, stack.tail("airflow-init")
        stack.timings["airflow-init"] = time.monotonic() - init.started

        # The user drops the night's files into the landing folder (copy2 keeps the
        # files' times: settled, not still being written).
        shutil.copytree(
            GOLDEN_DIR / "landing", stack.local("/data/landing/golden"), dirs_exist_ok=True
        )

        t_services = time.monotonic()
        for name in AIRFLOW_SERVICES:
            stack.start(name)
        _wait(
            "api-server",
            lambda: requests.get(f"{stack.api}/api/v2/version", timeout=5).ok,
            stack=stack,
        )
        stack.timings["api-server ready"] = time.monotonic() - t_services
        _wait(
            "scheduler health",
            lambda: requests.get(f"http://{places['localhost:8974']}/health", timeout=5).ok,
            stack=stack,
        )
        stack.timings["scheduler ready"] = time.monotonic() - t_services
        stack.token = _login(stack)
        _wait("crm_nightly parsed", lambda: _dag_parsed(stack), stack=stack)
        stack.timings["dag-processor: crm_nightly parsed"] = time.monotonic() - t_services
        yield stack
    finally:
        killed = stack.stop()
        cluster.stop()
        smtp.shutdown()
        stack.timings["total"] = time.monotonic() - t0
        print(
            "production-mode timings (s):",
            json.dumps({k: round(v, 1) for k, v in stack.timings.items()}),
            "needed SIGKILL:" if killed else "",
            *killed,
        )
        assert stack.leftovers() == []


def _create_postgres_user(cluster: PgCluster, pg_env: dict[str, str]) -> None:
    import psycopg2

    con = psycopg2.connect(
        host="127.0.0.1", port=cluster.port, user=cluster.user, dbname="postgres"
    )
    con.autocommit = True
    with con.cursor() as cur:
        cur.execute(
            f'create role "{pg_env["POSTGRES_USER"]}" login password %s',
            [pg_env["POSTGRES_PASSWORD"]],
        )
        cur.execute(f'create database "{pg_env["POSTGRES_DB"]}" owner "{pg_env["POSTGRES_USER"]}"')
    con.close()


def _login(stack: Stack) -> str:
    """A REST API token for the admin user, with the password from .env."""
    user = stack.dotenv["AIRFLOW_USERS"].split(",")[0].split(":")[0]
    response = requests.post(
        f"{stack.api}/auth/token",
        json={"username": user, "password": stack.dotenv[f"AIRFLOW_PASSWORD_{user.upper()}"]},
        timeout=30,
    )
    assert response.status_code in (200, 201), response.text
    return response.json()["access_token"]


def _dag_parsed(stack: Stack) -> bool:
    response = requests.get(
        f"{stack.api}/api/v2/dags/crm_nightly",
        headers={"Authorization": f"Bearer {stack.token}"},
        timeout=10,
    )
    return response.status_code == 200


def _published(stack: Stack) -> Path:
    return stack.local("/data/published") / "sales_funnel.duckdb"


def _publish_info(path: Path) -> tuple[datetime, str]:
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute("select as_of_at, run_id from meta.publish_info").fetchall()[0]
    finally:
        con.close()


@pytest.fixture(scope="module")
def scheduled_run(stack):
    """The run the scheduler creates by itself once the DAG is deployed (not paused)."""
    runs = _wait(
        "a scheduled run",
        lambda: stack.get("/dags/crm_nightly/dagRuns", run_type="scheduled")["dag_runs"],
        stack=stack,
    )
    t0 = time.monotonic()
    run = stack.wait_for_run(runs[0]["dag_run_id"])
    stack.timings["scheduled night"] = time.monotonic() - t0
    return run


# --- the tests -----------------------------------------------------------------------


def test_the_scheduler_runs_the_night_on_its_schedule_and_publishes_it(stack, scheduled_run):
    # THEN the scheduler created the run (run type scheduled), and it succeeded
    assert scheduled_run["run_type"] == "scheduled"
    assert scheduled_run["state"] == "success", stack.tail("airflow-scheduler")
    tasks = stack.task_instances(scheduled_run["dag_run_id"])
    assert {t: ti["state"] for t, ti in tasks.items()} == {
        "extract_golden": "success",
        "dbt_build": "success",
        "publish": "success",
        "publish_docs": "success",
    }
    # THEN BI reads its marts: as of its data interval end, every golden deal
    as_of_at, run_id = _publish_info(_published(stack))
    interval_end = datetime.fromisoformat(scheduled_run["data_interval_end"])
    assert as_of_at == interval_end.replace(tzinfo=None)
    assert run_id == scheduled_run["dag_run_id"]
    import duckdb

    con = duckdb.connect(str(_published(stack)), read_only=True)
    try:
        deals = con.execute("select count(*) from marts.fct_deals").fetchall()[0][0]
    finally:
        con.close()
    assert deals == len(read_expected("fct_deals")[1])


def test_two_runs_triggered_together_run_one_after_the_other(stack, scheduled_run):
    # WHEN two nights are triggered at once through the REST API: the golden night, and
    # one without an as-of (`logical_date: null`: no data interval)
    first = stack.trigger({"as_of": AS_OF})
    second = stack.trigger({})
    t0 = time.monotonic()
    runs = [stack.wait_for_run(first), stack.wait_for_run(second)]
    stack.timings["two triggered nights"] = time.monotonic() - t0
    # THEN both succeed, the second starting only after the first ended (max_active_runs=1)
    assert [r["state"] for r in runs] == ["success", "success"], stack.tail("airflow-scheduler")
    assert runs[1]["start_date"] >= runs[0]["end_date"]
    # THEN the one without an as-of ran as of the schedule's latest time before its trigger
    from croniter import croniter

    schedule = yaml.safe_load(
        stack.local("/opt/crm/config").joinpath("pipeline.production.yml").read_text()
    )["schedule"]
    run_after = datetime.fromisoformat(runs[1]["run_after"])
    built = stack.get(
        f"/dags/crm_nightly/dagRuns/{second}/taskInstances/dbt_build/xcomEntries/return_value",
        deserialize="true",
    )["value"]
    expected = croniter(schedule, run_after).get_prev(datetime).strftime("%Y-%m-%d %H:%M:%S")
    assert (built if isinstance(built, dict) else json.loads(built))["as_of"] == expected
    # THEN the golden night's marts are the hand-computed ones; older than the scheduled
    # night, they were published as a backfill beside it (night/publish.py)
    backfill = stack.local("/data/published") / "backfill" / "sales_funnel.20260601T000000.duckdb"
    import duckdb

    con = duckdb.connect(str(backfill), read_only=True)
    try:
        assert con.execute("select run_id from meta.publish_info").fetchall()[0][0] == first
        for mart in GRAIN:
            rel = con.sql(f"select * from marts.{mart}")
            assert mart_differences(mart, rel.columns, rel.fetchall()) == [], mart
    finally:
        con.close()


def test_a_data_error_fails_on_the_first_try_and_keeps_the_published_marts(stack, scheduled_run):
    # GIVEN the published marts, and a stage mapping that lost the stage 'Discovery'
    published = _published(stack)
    before = hashlib.sha256(published.read_bytes()).hexdigest()
    mapping = stack.local("/opt/crm/config") / "golden" / "stage_mapping.csv"
    lines = mapping.read_text().splitlines(keepends=True)
    mapping.write_text("".join(line for line in lines if ",Discovery," not in line))
    as_of = datetime.fromisoformat(scheduled_run["data_interval_end"]) + timedelta(days=1)
    # WHEN a night runs on it
    run_id = stack.trigger({"as_of": as_of.isoformat()})
    t0 = time.monotonic()
    run = stack.wait_for_run(run_id)
    stack.timings["failing night"] = time.monotonic() - t0
    # THEN dbt_build failed on its first try, without a retry (its DAG has retries=2)
    assert run["state"] == "failed"
    tasks = stack.task_instances(run_id)
    assert tasks["extract_golden"]["state"] == "success"
    assert tasks["dbt_build"]["state"] == "failed"
    assert tasks["dbt_build"]["try_number"] == 1
    assert tasks["dbt_build"]["max_tries"] == 2
    assert tasks["publish"]["state"] == "upstream_failed"
    # THEN the failure callback reported it, naming the stage, in the task's log
    logs = stack.local("/opt/airflow/logs")
    task_logs = [
        p for p in logs.rglob("*") if p.is_file() and "dbt_build" in str(p) and run_id in str(p)
    ]
    text = "".join(p.read_text(errors="replace") for p in task_logs)
    assert f"crm_nightly failed: run={run_id} task=dbt_build try=1" in text, task_logs
    assert "Unmapped CRM stage" in text
    # THEN the team got an e-mail through the SMTP notifier and the connection from .env
    subject = f"Subject: crm_nightly failed: dbt_build in {run_id}"
    mails = [m for m in stack.smtp.messages if subject in m]
    assert len(mails) == 1 and "To: data-team@example.com" in mails[0], stack.smtp.messages
    # THEN yesterday's marts are still published, unchanged
    assert hashlib.sha256(published.read_bytes()).hexdigest() == before


def test_the_compose_healthchecks_pass_against_the_running_services(stack, scheduled_run):
    for name in AIRFLOW_SERVICES:
        check = stack.compose["services"][name]["healthcheck"]["test"]
        kind, *argv = check
        argv = [to_local(interpolate(a, {}), stack.service_places(name)) for a in argv]
        command = ["bash", "-c", argv[0]] if kind == "CMD-SHELL" else argv
        if kind == "CMD" and shutil.which(command[0]) is None:
            pytest.skip(f"{command[0]} is not installed here (the Airflow image has it)")
        result = subprocess.run(
            command, env=stack.service_env(name), capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, (name, command, result.stdout, result.stderr)


def test_a_night_not_published_in_time_raises_the_deadline_alert(stack, scheduled_run):
    # GIVEN notifications.marts_due_within: 5s, and a scheduled night that took longer
    run_id = scheduled_run["dag_run_id"]
    subject = f"Subject: crm_nightly marts late: {run_id} not published within 0:00:05"
    # THEN the DeadlineAlert's callback e-mailed the team about it
    _wait("the deadline alert", lambda: any(subject in m for m in stack.smtp.messages), 60)
