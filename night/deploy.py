"""Prepare a deployment before Airflow starts: what docker-compose.yml's airflow-init runs.

`python -m night.deploy` checks the pipeline config ($CRM_PIPELINE_CONFIG), creates the
folders it names (each source's landing folder, the warehouse, state and publish folders)
and Airflow's log folder, and writes the SimpleAuthManager's passwords file from the
environment, so the login is the one the operator chose in `.env`, not a random password
printed in a log, and it stays the same when the containers are recreated:

- `AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS` lists the users (`admin:admin,ann:viewer`);
- `AIRFLOW_PASSWORD_<USER>` is each one's password (`AIRFLOW_PASSWORD_ADMIN`, upper case,
  other characters than letters and digits as `_`).

Run as root (the compose init container), it hands the folders to `$AIRFLOW_UID` (group 0),
the user the other services run as. An invalid config or a user without a password fails
here, naming it, before any service starts.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from pathlib import Path

from night.config import ConfigError, PipelineConfig, load_config

log = logging.getLogger(__name__)

USERS_VAR = "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"
PASSWORDS_FILE_VAR = "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"
LOG_FOLDER_VAR = "AIRFLOW__LOGGING__BASE_LOG_FOLDER"


class DeployError(RuntimeError):
    """The deployment's environment is incomplete; the message names what to set."""


def password_var(username: str) -> str:
    """The environment variable holding a SimpleAuthManager user's password."""
    return "AIRFLOW_PASSWORD_" + re.sub(r"[^A-Za-z0-9]", "_", username).upper()


def passwords_from_env(env: dict[str, str]) -> dict[str, str]:
    """{username: password} for every configured user; a missing password is an error."""
    users = [u.split(":")[0].strip() for u in env.get(USERS_VAR, "").split(",") if u.strip()]
    if not users:
        raise DeployError(f"{USERS_VAR} names no user (e.g. admin:admin)")
    missing = [password_var(u) for u in users if not env.get(password_var(u))]
    if missing:
        raise DeployError(f"set {', '.join(missing)} in .env (the login password of each user)")
    return {u: env[password_var(u)] for u in users}


def data_folders(config: PipelineConfig) -> list[Path]:
    """Every folder the night reads or writes, from the config."""
    landing = [
        Path(s.settings["landing_dir"]) for s in config.sources if "landing_dir" in s.settings
    ]
    return [*landing, config.warehouse_path.parent, config.state_dir, config.publish_dir]


def _own(path: Path, uid: int | None) -> None:
    if uid is not None:
        os.chown(path, uid, 0)
        path.chmod(0o775 if path.is_dir() else 0o660)


def prepare(env: dict[str, str]) -> list[Path]:
    """Folders and the passwords file, as above; returns the folders created or kept."""
    config = load_config()
    passwords = passwords_from_env(env)
    uid = int(env["AIRFLOW_UID"]) if os.geteuid() == 0 and env.get("AIRFLOW_UID") else None
    folders = data_folders(config)
    if env.get(LOG_FOLDER_VAR):
        folders.append(Path(env[LOG_FOLDER_VAR]))
    passwords_file = Path(env.get(PASSWORDS_FILE_VAR) or "")
    if not env.get(PASSWORDS_FILE_VAR):
        raise DeployError(f"set {PASSWORDS_FILE_VAR}: the file the api-server reads logins from")
    folders.append(passwords_file.parent)
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
        _own(folder, uid)
    passwords_file.write_text(json.dumps(passwords) + "\n", encoding="utf-8")
    passwords_file.chmod(0o600)
    _own(passwords_file, uid)
    return folders


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        folders = prepare(dict(os.environ))
    except (ConfigError, DeployError) as exc:
        log.error("deployment not ready: %s", exc)
        return 1
    log.info("folders ready: %s", ", ".join(str(f) for f in folders))
    log.info("logins written for: %s", os.environ.get(USERS_VAR))
    return 0


if __name__ == "__main__":
    sys.exit(main())
