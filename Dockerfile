# Image for the docker-compose stack: Airflow 3 with this project and its locked deps.
# (First draft: not buildable in the development sandbox, which has no Docker engine.)
FROM apache/airflow:3.3.2-python3.11
COPY --chown=airflow:root requirements.lock pyproject.toml /opt/crm/
RUN pip install --no-cache-dir --require-hashes -r /opt/crm/requirements.lock
COPY --chown=airflow:root . /opt/crm/
RUN pip install --no-cache-dir --no-deps -e /opt/crm
