# The image of the docker-compose stack: Airflow 3 with this project and its runtime deps.
# Built once (docker-compose.yml's airflow-init); every Airflow service runs it.
FROM apache/airflow:3.3.2-python3.11

# Runtime dependencies only (no test or lint tools): requirements-runtime.lock is
# pyproject.toml's dependencies without the dev extra, every version pinned with its hash.
COPY --chown=airflow:0 requirements-runtime.lock /opt/crm/
RUN pip install --no-cache-dir --require-hashes -r /opt/crm/requirements-runtime.lock

# The project (.dockerignore keeps out .venv, var, .git, tests, devkit). Installed editable:
# night.REPO_ROOT must be /opt/crm, where dbt_project/ and config/ are.
COPY --chown=airflow:0 . /opt/crm/
RUN pip install --no-cache-dir --no-deps -e /opt/crm && chmod -R g=u /opt/crm

# The containers run as AIRFLOW_UID in group 0 (docker-compose.yml): group rights = owner's.
# Mount points of docker-compose.yml's volumes: a new volume takes their owner (airflow,
# group 0, group-writable, so any AIRFLOW_UID in group 0 can write).
USER root
RUN mkdir -p /data/landing /data/warehouse /data/published /opt/airflow/auth \
    && chown -R airflow:0 /data /opt/airflow/auth && chmod -R g+rwX /data /opt/airflow/auth
USER airflow
WORKDIR /opt/crm
