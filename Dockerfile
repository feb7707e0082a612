# The clef-campaign Airflow image: the official Airflow image plus this project's requirements and code.
# docker-compose.yaml builds it for every Airflow service; for Kubernetes, push it to a registry and
# name it in deploy/helm-values.yaml. The base tag pins Airflow and Python; tests/deploy checks that it
# matches the apache-airflow pin in requirements.txt.
#
# Two targets: `default` (the last stage, what `docker build .` makes: scheduler, API server, default
# workers; no torch) and `models` (the same plus requirements-models.txt: torch CPU build, transformers,
# bert-score, bleurt-pytorch, open_clip for image-text models in its layout, MedCAT), which compose's airflow-worker-models runs.
# Neither installs requirements-dev.txt (tests, demo), and the dev wing devtools/ never enters the image
# (.dockerignore; tests/dev_wing/test_dev_wing.py checks both).
FROM apache/airflow:3.3.2-python3.11 AS base

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

# The models worker: PyTorch's CPU wheels (TORCH_INDEX=https://download.pytorch.org/whl/cu126 for a GPU
# host) with the torchvision built for them, then open_clip (image-text models saved in its layout) and the rest of
# requirements-models.txt. Weights are never in the image: mount them at CLEF_MODEL_DIR
# (`python -m include.cli models CAMPAIGN` lists what to fetch).
FROM base AS models
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
COPY --chown=airflow:0 requirements-models.txt requirements-medcat.txt /opt/airflow/
RUN pip install --no-cache-dir --index-url "${TORCH_INDEX}" "torch==2.13.0" "torchvision==0.28.0" \
 && pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -r /opt/airflow/requirements-models.txt \
      "open-clip-torch==3.3.0" "timm==1.0.31" "ftfy==6.3.1"
# MedCAT without its declared dependencies: it declares pandas<3 but scores on our pandas 3 (see
# requirements-medcat.txt); its other runtime dependencies came with the lines above.
RUN pip install --no-cache-dir --no-deps -r /opt/airflow/requirements-medcat.txt
ENV CLEF_MODEL_DIR=/opt/airflow/models HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

FROM base AS default
