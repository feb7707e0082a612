"""The test harness: real servers on loopback, shared by the whole test run.

- ``s3_endpoint``: one S3-only moto server (:mod:`devtools.s3_server`) on 127.0.0.1 (free port), reached by boto3 over HTTP.
- ``store``: an :class:`ObjectStore` on a fresh versioned bucket per test.
- ``smtp``: one aiosmtpd server on 127.0.0.1 that records messages; ``mailbox`` empties it per test.
- ``airflow_home``: a temporary ``AIRFLOW_HOME`` migrated with ``airflow db migrate`` (SQLite), DAGs
  folder at ``dags/``, examples off, connections as ``AIRFLOW_CONN_*`` JSON.

Nothing here patches boto3 or smtplib. Airflow's settings are read from the environment when
Airflow is first imported, so the environment is prepared in ``pytest_configure``, before any test
module imports it.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="clef-airflow-home-"))


def pytest_configure(config):
    os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(PROJECT_ROOT / "dags")
    os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(PROJECT_ROOT / "plugins")
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    # DAGs start unpaused, so asset events queue the runs of the DAGs that consume them.
    os.environ["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] = "False"
    os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_AIRFLOW_HOME / 'airflow.db'}"
    os.environ["AIRFLOW__LOGGING__BASE_LOG_FOLDER"] = str(_AIRFLOW_HOME / "logs")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "clef-test")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "clef-test-secret")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")]))
    # In-process DAG runs fork their task processes from this one. GNU OpenMP is not fork-safe: once a
    # test has run torch here with a thread team, a forked task that runs torch waits forever for a team
    # that does not exist in the child (the whole suite hung so). One OpenMP thread keeps this process
    # fork-safe; production never runs torch in a process that forks tasks (the scheduler and the
    # workers' supervisors do not import it: tests/models checks that).
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def pytest_unconfigure(config):
    shutil.rmtree(_AIRFLOW_HOME, ignore_errors=True)


# --- S3 ------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def s3_endpoint():
    from devtools.devstack import s3_connection_json, start_s3_server

    server, endpoint = start_s3_server()
    os.environ["AIRFLOW_CONN_CLEF_S3"] = s3_connection_json(endpoint, os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"])
    yield endpoint
    server.stop()


@pytest.fixture
def bucket_name(s3_endpoint, monkeypatch):
    name = f"clef-test-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("CLEF_BUCKET", name)
    return name


@pytest.fixture
def s3_settings(s3_endpoint, bucket_name):
    from include.campaign.store import S3Settings

    return S3Settings(
        bucket=bucket_name,
        endpoint_url=s3_endpoint,
        access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
        secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
    )


@pytest.fixture
def store(s3_settings):
    from include.campaign.store import ObjectStore

    object_store = ObjectStore(s3_settings)
    object_store.ensure_bucket(versioning=True)
    return object_store


# --- SMTP ----------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def smtp():
    """(recorder, port) of the session's SMTP server."""
    from devtools.devstack import MailRecorder, smtp_connection_json, start_smtp_server

    recorder = MailRecorder()
    controller, port = start_smtp_server(recorder)
    os.environ["AIRFLOW_CONN_SMTP_DEFAULT"] = smtp_connection_json("127.0.0.1", port)
    yield recorder, port
    controller.stop()


@pytest.fixture
def mailbox(smtp):
    recorder, _ = smtp
    recorder.clear()
    yield recorder
    recorder.clear()


@pytest.fixture
def smtp_settings(smtp):
    from include.campaign.mail import SmtpSettings

    _, port = smtp
    return SmtpSettings(host="127.0.0.1", port=port, sender="clef-test@localhost", timeout=5, attempts=2, backoff_seconds=0.1)


# --- Airflow -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def airflow_home():
    """A migrated SQLite metadata database in a temporary AIRFLOW_HOME (made once per test run)."""
    airflow = Path(sys.executable).with_name("airflow")
    result = subprocess.run([str(airflow), "db", "migrate"], env=dict(os.environ), capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return _AIRFLOW_HOME


# --- a real browser --------------------------------------------------------------------------------

CHROMIUM = Path("/usr/bin/chromium")  # Debian's, installed by scripts/install_chromium.sh; never a download
SCREENSHOTS = PROJECT_ROOT / "docs" / "screenshots"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@contextlib.contextmanager
def chromium_page(width: int, timezone_id: str, timeout_ms: int = 15000):
    """A Playwright page in Debian's headless chromium (``width`` x 900, the viewer in ``timezone_id``)."""
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.exists(), "Debian's chromium is missing: run scripts/install_chromium.sh (make test does)"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": 900}, timezone_id=timezone_id)
            page.set_default_timeout(timeout_ms)
            yield page
        finally:
            browser.close()
