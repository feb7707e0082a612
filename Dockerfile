# The clef-campaign Airflow image: the official Airflow image plus this project's requirements and code.
# docker-compose.yaml builds it for every Airflow service; for Kubernetes, push it to a registry and
# name it in deploy/helm-values.yaml. The base tag pins Airflow and Python; tests/deploy checks that it
# matches the apache-airflow pin in requirements.txt.
# Only requirements.txt (what the workers run) is installed: requirements-dev.txt (tests, demo) and
# the dev wing devtools/ never enter the image (tests/dev_wing/test_dev_wing.py checks both).
FROM apache/airflow:3.3.2-python3.11

# The image installs Python packages as its `airflow` user. Naming apache-airflow==${AIRFLOW_VERSION}
# (set by the base image) stops pip from moving Airflow while it resolves our requirements.
USER airflow
COPY --chown=airflow:0 requirements.txt /opt/airflow/requirements.txt
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -r /opt/airflow/requirements.txt

# The code travels with the image (what the Helm chart runs): .dockerignore lets through only
# include/, dags/, plugins/ and deploy/ensure_bucket.py, so one COPY takes what exists of them (an
# empty plugins/ is not in git). docker-compose.yaml mounts the same folders over these copies, so
# edits show up without a rebuild.
COPY --chown=airflow:0 . /opt/airflow/

# `import include.campaign...` (and `dags.clef_dag_support`) work in every component and task.
ENV PYTHONPATH=/opt/airflow
