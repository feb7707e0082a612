"""deploy/make_env.py: `.env` with fresh secrets for every variable docker-compose.yaml requires."""
from __future__ import annotations

import stat
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet

from deploy.make_env import EnvFileError, required_variables, write_env
from tests.deploy.deployment_files import COMPOSE_FILE, PROJECT_ROOT, env_example


def read_env(path) -> dict[str, str]:
    pairs = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.startswith("#"):
            name, value = line.split("=", 1)
            pairs[name] = value
    return pairs


def test_every_required_variable_gets_a_value_and_the_rest_is_copied(tmp_path):
    output = tmp_path / ".env"
    generated = write_env(output, uid=1234)
    values = read_env(output)
    required = required_variables(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert required, "docker-compose.yaml requires no variable: the secrets would have defaults"
    assert set(generated) == {name for name in required if not env_example()[name]}
    assert all(values[name] for name in required), "a required variable is still empty"
    assert values["AIRFLOW_UID"] == "1234"
    for name, value in env_example().items():
        if name not in generated and name != "AIRFLOW_UID":
            assert values[name] == value, f"{name} was changed"


def test_generated_secrets_are_usable_and_fresh(tmp_path):
    first, second = tmp_path / "first.env", tmp_path / "second.env"
    write_env(first)
    write_env(second)
    one, two = read_env(first), read_env(second)
    Fernet(one["AIRFLOW__CORE__FERNET_KEY"].encode())  # raises if Airflow could not use it
    assert len(one["CLEF_S3_ACCESS_KEY_ID"]) >= 3 and len(one["CLEF_S3_SECRET_ACCESS_KEY"]) >= 8, "MinIO's minimum lengths"
    for name in ("POSTGRES_PASSWORD", "REDIS_PASSWORD", "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__CORE__FERNET_KEY"):
        assert one[name] != two[name], f"{name} repeats between runs"
        assert one[name].replace("-", "").replace("_", "").replace("=", "").isalnum(), f"{name} needs quoting somewhere"


def test_the_file_is_private(tmp_path):
    output = tmp_path / ".env"
    write_env(output)
    assert stat.S_IMODE(output.stat().st_mode) == 0o600


def test_an_existing_env_is_never_overwritten(tmp_path):
    output = tmp_path / ".env"
    output.write_text("POSTGRES_PASSWORD=kept\n", encoding="utf-8")
    result = subprocess.run([sys.executable, str(PROJECT_ROOT / "deploy" / "make_env.py"), "--output", str(output)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.startswith("make_env: ") and "already exists" in result.stderr and "Traceback" not in result.stderr
    assert output.read_text(encoding="utf-8") == "POSTGRES_PASSWORD=kept\n"


def test_a_required_variable_missing_from_the_example_is_named(tmp_path):
    compose = tmp_path / "docker-compose.yaml"
    compose.write_text("x: ${NEW_SECRET:?set it}\ny: $${ESCAPED:?not a reference}\n", encoding="utf-8")
    example = tmp_path / ".env.example"
    example.write_text("OTHER=1\n", encoding="utf-8")
    with pytest.raises(EnvFileError, match=r"requires NEW_SECRET, which it does not declare"):
        write_env(tmp_path / ".env", compose_file=compose, example_file=example)
    assert not (tmp_path / ".env").exists()
