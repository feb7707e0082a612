"""docker-compose.yaml, deploy/helm-values.yaml and the Dockerfile, checked by parsing (no Docker engine).

What an organizer's `docker compose up` relies on: the services and their healthchecks, the start
order, CeleryExecutor everywhere, one value per shared secret, workers that can report back to the
API server, the project folders mounted and importable, the `clef_s3` and `smtp_default`
connections built from `.env`, a `models` queue, pinned images and no secret in any committed file.
"""
from __future__ import annotations

import json
import re
import shlex
import sys
from urllib.parse import urlsplit

import pytest
import yaml

from tests.deploy.deployment_files import (
    COMPOSE_FILE,
    PROJECT_ROOT,
    dockerfile_base_image,
    env_example,
    interpolate,
    load_compose,
    load_helm_values,
    references,
    requirement_pins,
)

AIRFLOW_COMPONENTS = ["airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer", "airflow-worker", "airflow-worker-models"]
AIRFLOW_SERVICES = AIRFLOW_COMPONENTS + ["airflow-init"]
BACKING_SERVICES = ["postgres", "redis", "minio", "minio-init", "mailpit"]
WORKERS = ["airflow-worker", "airflow-worker-models"]
ONE_SHOT_SERVICES = {"airflow-init", "airflow-cli", "minio-init"}
SHARED_SECRETS = ["AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API__SECRET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET"]
SECRET_NAME = re.compile(r"PASSWORD|SECRET|FERNET|TOKEN|_KEY$|_KEY_ID$")
PYTHON_VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"


@pytest.fixture(scope="module")
def compose() -> dict:
    return load_compose()


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


@pytest.fixture(scope="module")
def test_environ() -> dict[str, str]:
    """`.env.example` with every secret replaced by a recognisable marker (what make_env.py would fill)."""
    environ = env_example()
    environ.update({name: f"marker-{name}" for name in environ if SECRET_NAME.search(name)})
    return environ


def resolved_env(service: dict, environ: dict[str, str]) -> dict[str, str]:
    return {key: interpolate(str(value), environ) for key, value in service["environment"].items()}


def command_tokens(service: dict, environ: dict[str, str]) -> list[str]:
    command = service["command"]
    return shlex.split(interpolate(command, environ)) if isinstance(command, str) else [interpolate(str(part), environ) for part in command]


def container_ports(service: dict) -> set[int]:
    ports = {int(str(mapping).rsplit(":", 1)[-1]) for mapping in service.get("ports", [])}
    return ports | {int(port) for port in service.get("expose", [])}


def image_tag(image: str) -> str:
    name_and_tag = image.rsplit("/", 1)[-1]
    return name_and_tag.split(":", 1)[1] if ":" in name_and_tag else ""


def airflow_pin() -> str:
    pins = requirement_pins()
    assert "apache-airflow" in pins, "requirements.txt must pin apache-airflow==X.Y.Z"
    return pins["apache-airflow"]


# --- services, healthchecks, start order ---------------------------------------------------------


def test_every_component_of_the_stack_is_a_service(services):
    missing = set(AIRFLOW_SERVICES + BACKING_SERVICES) - set(services)
    assert not missing, f"docker-compose.yaml lacks services {sorted(missing)}"


def test_every_long_running_service_has_a_healthcheck(services):
    for name, service in services.items():
        if name in ONE_SHOT_SERVICES:
            continue
        test = service.get("healthcheck", {}).get("test")
        assert test and test[0] in ("CMD", "CMD-SHELL") and len(test) > 1, f"service {name}: no healthcheck command"


def test_components_start_after_the_database_broker_and_init(services):
    for name in AIRFLOW_COMPONENTS:
        depends_on = services[name]["depends_on"]
        assert depends_on["postgres"]["condition"] == "service_healthy", name
        assert depends_on["redis"]["condition"] == "service_healthy", name
        assert depends_on["airflow-init"]["condition"] == "service_completed_successfully", name


def test_workers_start_once_the_api_server_they_report_to_is_healthy(services):
    for name in WORKERS:
        assert services[name]["depends_on"]["airflow-apiserver"]["condition"] == "service_healthy", name


def test_init_waits_for_minio_because_it_creates_the_bucket(services):
    init = services["airflow-init"]
    assert init["depends_on"]["minio"]["condition"] == "service_healthy"
    assert init["depends_on"]["postgres"]["condition"] == "service_healthy"
    script = "\n".join(str(part) for part in init["command"])
    assert "/entrypoint python /opt/airflow/deploy/ensure_bucket.py" in script
    assert init["environment"]["_AIRFLOW_DB_MIGRATE"] == "true"
    assert init["environment"]["_AIRFLOW_WWW_USER_CREATE"] == "true"


def test_every_awaited_health_is_one_a_healthcheck_reports(services):
    for name, service in services.items():
        for target, rule in (service.get("depends_on") or {}).items():
            assert target in services, f"service {name} depends on unknown service {target}"
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in services[target], f"{name} waits for {target} to be healthy, but {target} has no healthcheck"


# --- the Airflow side -------------------------------------------------------------------------------


def test_airflow_services_run_the_image_built_from_this_project(services, test_environ):
    expected_tag = f"{airflow_pin()}-python{PYTHON_VERSION}"
    for name in AIRFLOW_SERVICES:
        service = services[name]
        target = "models" if name == "airflow-worker-models" else "default"  # the Dockerfile's stage with torch, or without
        assert service["build"] == {"context": ".", "dockerfile": "Dockerfile", "target": target}, name
        assert image_tag(interpolate(service["image"], test_environ)) == expected_tag, name
        assert image_tag(interpolate(service["image"], {})) == expected_tag, f"{name}: default image tag"


def test_every_component_runs_the_celery_executor_against_redis_and_postgres(services, test_environ):
    for name in AIRFLOW_SERVICES:
        environment = resolved_env(services[name], test_environ)
        assert environment["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        broker = urlsplit(environment["AIRFLOW__CELERY__BROKER_URL"])
        assert (broker.scheme, broker.hostname, broker.port, broker.password) == ("redis", "redis", 6379, "marker-REDIS_PASSWORD"), name
        for key in ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CELERY__RESULT_BACKEND"):
            database = urlsplit(environment[key])
            assert (database.hostname, database.password) == ("postgres", "marker-POSTGRES_PASSWORD"), f"{name} {key}"


@pytest.mark.parametrize("variable", SHARED_SECRETS)
def test_each_shared_secret_is_one_required_variable_in_every_component(services, variable):
    values = {name: services[name]["environment"].get(variable) for name in AIRFLOW_SERVICES}
    assert len(set(values.values())) == 1, f"{variable} differs between services: {values}"
    only = references(next(iter(values.values())) or "")
    assert [(ref.name, ref.required) for ref in only] == [(variable, True)], f"{variable} must be exactly ${{{variable}:?...}}"


def test_workers_can_report_back_to_the_execution_api(services, test_environ):
    apiserver_ports = container_ports(services["airflow-apiserver"])
    for name in AIRFLOW_SERVICES:
        url = urlsplit(resolved_env(services[name], test_environ)["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])
        assert url.hostname == "airflow-apiserver" and url.port in apiserver_ports and url.path == "/execution/", f"{name}: {url.geturl()}"


def test_project_folders_are_mounted_and_include_is_importable(services, test_environ):
    for name in AIRFLOW_SERVICES:
        service = services[name]
        mounts = {}
        for volume in service["volumes"]:
            source, target = interpolate(volume, test_environ).split(":")[:2]
            mounts[target] = source
        for folder in ("dags", "plugins", "include"):
            assert mounts.get(f"/opt/airflow/{folder}") == f"./{folder}", f"{name}: ./{folder} not mounted at /opt/airflow/{folder}"
        python_path = resolved_env(service, test_environ)["PYTHONPATH"].split(":")
        assert "/opt/airflow" in python_path, f"{name}: PYTHONPATH {python_path} does not make /opt/airflow/include importable"


def test_no_additional_requirements_at_start_up(services):
    for name, service in services.items():
        assert "_PIP_ADDITIONAL_REQUIREMENTS" not in (service.get("environment") or {}), f"{name}: requirements belong in the image"


# --- connections ------------------------------------------------------------------------------------


def test_object_store_connection_points_at_minio_with_keys_from_env(services, test_environ):
    minio_ports = container_ports(services["minio"])
    for name in AIRFLOW_SERVICES:
        environment = resolved_env(services[name], test_environ)
        connection = json.loads(environment["AIRFLOW_CONN_CLEF_S3"])
        assert connection["conn_type"] == "aws", name
        assert (connection["login"], connection["password"]) == ("marker-CLEF_S3_ACCESS_KEY_ID", "marker-CLEF_S3_SECRET_ACCESS_KEY"), name
        endpoint = urlsplit(connection["extra"]["endpoint_url"])
        assert endpoint.hostname == "minio" and endpoint.port in minio_ports, f"{name}: endpoint {endpoint.geturl()}"
        assert connection["extra"]["config_kwargs"]["signature_version"] == "s3v4", name
        assert environment["CLEF_BUCKET"] == "clef-campaign", name
    minio_env = resolved_env(services["minio"], test_environ)
    assert (minio_env["MINIO_ROOT_USER"], minio_env["MINIO_ROOT_PASSWORD"]) == ("marker-CLEF_S3_ACCESS_KEY_ID", "marker-CLEF_S3_SECRET_ACCESS_KEY")


def test_smtp_connection_points_at_mailpit_by_default(services, test_environ):
    mailpit_ports = container_ports(services["mailpit"])
    for name in AIRFLOW_SERVICES:
        connection = json.loads(resolved_env(services[name], test_environ)["AIRFLOW_CONN_SMTP_DEFAULT"])
        assert connection["conn_type"] == "smtp", name
        assert connection["host"] == "mailpit" and connection["port"] in mailpit_ports, name
        assert connection["password"] == "marker-CLEF_SMTP_PASSWORD", name
        # The SMTP hook reads these with bool(): they must be JSON booleans, not strings.
        assert connection["extra"]["disable_ssl"] is True and connection["extra"]["disable_tls"] is True, name
        assert connection["extra"]["from_email"], name
    # Without any .env value the defaults still make valid JSON (ports, booleans).
    defaults = {name: "x" for name in test_environ if SECRET_NAME.search(name)}
    json.loads(interpolate(services["airflow-worker"]["environment"]["AIRFLOW_CONN_SMTP_DEFAULT"], defaults))


def test_presigned_links_have_their_own_signers_from_env(services, test_environ):
    for name in AIRFLOW_SERVICES:
        extra = json.loads(resolved_env(services[name], test_environ)["AIRFLOW_CONN_CLEF_S3"])["extra"]
        for kind in ("upload", "download"):
            signer = (extra[f"{kind}_access_key_id"], extra[f"{kind}_secret_access_key"])
            assert signer == (f"marker-CLEF_S3_{kind.upper()}_ACCESS_KEY_ID", f"marker-CLEF_S3_{kind.upper()}_SECRET_ACCESS_KEY"), f"{name}: {kind} signer"


def test_minio_init_creates_the_signers_with_the_policies_of_deploy_minio(services, test_environ):
    init = services["minio-init"]
    assert init["image"] == services["minio"]["image"], "minio-init runs mc from the pinned MinIO image"
    assert init["depends_on"]["minio"]["condition"] == "service_healthy"
    mounts = {parts[1]: parts[0] for parts in (interpolate(volume, test_environ).split(":") for volume in init["volumes"])}
    assert mounts["/opt/clef/minio"].endswith("/deploy/minio")
    assert "/opt/clef/minio/init.sh" in command_tokens(init, test_environ)
    environment = resolved_env(init, test_environ)
    minio_env = resolved_env(services["minio"], test_environ)
    assert (environment["MINIO_ROOT_USER"], environment["MINIO_ROOT_PASSWORD"]) == (minio_env["MINIO_ROOT_USER"], minio_env["MINIO_ROOT_PASSWORD"])
    assert urlsplit(environment["MINIO_URL"]).hostname == "minio"
    extra = json.loads(resolved_env(services["airflow-worker"], test_environ)["AIRFLOW_CONN_CLEF_S3"])["extra"]
    for kind in ("upload", "download"):
        assert environment[f"CLEF_S3_{kind.upper()}_ACCESS_KEY_ID"] == extra[f"{kind}_access_key_id"], "minio-init creates the users the DAGs sign with"
        assert environment[f"CLEF_S3_{kind.upper()}_SECRET_ACCESS_KEY"] == extra[f"{kind}_secret_access_key"]
    assert environment["CLEF_BUCKET"] == resolved_env(services["airflow-worker"], test_environ)["CLEF_BUCKET"]
    assert services["airflow-init"]["depends_on"]["minio-init"]["condition"] == "service_completed_successfully", (
        "airflow-init (and so every component) starts once the signers exist")


# What may listen beyond this machine: what participants reach, MinIO's S3 API (their links) and the
# participants' portal.
PUBLIC_CONTAINER_PORTS = {("minio", 9000), ("participant-portal", 8000)}


def test_uis_and_consoles_listen_on_loopback_only(services, test_environ):
    for name, service in services.items():
        for mapping in service.get("ports", []):
            text = interpolate(str(mapping), test_environ)
            container_port = int(text.rsplit(":", 1)[-1])
            if (name, container_port) in PUBLIC_CONTAINER_PORTS:
                continue
            assert text.startswith("127.0.0.1:"), f"service {name} publishes {text} on every interface"
    for name, port in (("airflow-apiserver", 8080), ("minio", 9001), ("mailpit", 8025)):
        assert port in container_ports(services[name]), f"{name} no longer publishes {port}: update this test"


# --- workers and queues -----------------------------------------------------------------------------


def test_default_and_models_queues_have_their_own_workers(services, test_environ):
    default_worker = command_tokens(services["airflow-worker"], test_environ)
    models_worker = command_tokens(services["airflow-worker-models"], test_environ)
    assert default_worker[:2] == ["celery", "worker"] and models_worker[:2] == ["celery", "worker"]
    assert default_worker[default_worker.index("-q") + 1] == "default"
    assert models_worker[models_worker.index("-q") + 1] == "models"
    assert resolved_env(services["airflow-worker"], test_environ)["AIRFLOW__OPERATORS__DEFAULT_QUEUE"] == "default"


def test_workers_can_be_scaled_out(services):
    for name in WORKERS:
        assert "container_name" not in services[name], f"{name}: a container_name forbids --scale"
        assert not services[name].get("ports"), f"{name}: a host port forbids --scale"


def commented_block_after(lines: list[str], start: int, marker: str) -> list[str]:
    """The `# ...` lines that follow the first line containing ``marker`` after ``start``, uncommented."""
    index = next(i for i in range(start, len(lines)) if marker in lines[i])
    block = []
    for line in lines[index + 1 :]:
        stripped = line.strip()
        if not stripped.startswith("#"):
            break
        block.append(line.replace("# ", "", 1))
    return block


def test_models_worker_carries_a_commented_gpu_reservation():
    lines = COMPOSE_FILE.read_text(encoding="utf-8").splitlines()
    service_start = lines.index("  airflow-worker-models:")
    next_service = next(i for i in range(service_start + 1, len(lines)) if re.match(r"^  [a-z]", lines[i]))
    block = commented_block_after(lines, service_start, "GPU")
    assert block, "airflow-worker-models: no commented GPU block"
    assert service_start < next_service - len(block), "the GPU block must sit inside airflow-worker-models"
    reservation = yaml.safe_load("\n".join(line[4:] for line in block))
    devices = reservation["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]


# --- pinned images, secrets -------------------------------------------------------------------------


def test_every_image_is_pinned_to_a_version(services):
    for name, service in services.items():
        image = interpolate(service["image"], {})
        tag = image_tag(image)
        assert tag and tag != "latest" and re.search(r"\d", tag), f"service {name}: image {image} is not pinned to a version"


def test_secret_variables_have_no_default_in_the_compose_file():
    for ref in references(COMPOSE_FILE.read_text(encoding="utf-8")):
        if SECRET_NAME.search(ref.name):
            assert ref.required or ref.default == "", f"${{{ref.name}}} must be required (:?) or default to empty"


def test_secret_values_in_services_come_only_from_variables(services):
    for name, service in services.items():
        for key, value in (service.get("environment") or {}).items():
            if SECRET_NAME.search(key):
                refs = references(str(value))
                assert len(refs) == 1 and f"${{{refs[0].name}" in str(value) and str(value).startswith("${") and str(value).endswith("}"), (
                    f"service {name}: {key} must be a single ${{VARIABLE}}, not {value!r}"
                )


def test_env_example_documents_every_variable_and_commits_no_secret():
    declared = env_example()
    used = {ref.name for ref in references(COMPOSE_FILE.read_text(encoding="utf-8"))}
    assert not used - set(declared), f".env.example does not document {sorted(used - set(declared))}"
    committed = {name: value for name, value in declared.items() if SECRET_NAME.search(name) and value.strip()}
    assert not committed, f".env.example commits secret values for {sorted(committed)}"


def docker_context_patterns() -> list[str]:
    lines = (PROJECT_ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_build_context_is_an_allow_list_without_dot_env():
    patterns = docker_context_patterns()
    assert patterns[0] == "*", ".dockerignore must exclude everything first"
    allowed = [pattern[1:] for pattern in patterns if pattern.startswith("!")]
    assert not [pattern for pattern in allowed if ".env" in pattern], ".env must never enter the build context"
    for path in ("requirements.txt", "include/", "dags/", "plugins/", "deploy/ensure_bucket.py"):
        assert path in allowed, f"{path} is not sent to the build"


# --- Dockerfile -------------------------------------------------------------------------------------


def test_dockerfile_base_image_matches_the_pinned_airflow_and_python():
    assert dockerfile_base_image() == f"apache/airflow:{airflow_pin()}-python{PYTHON_VERSION}"
    assert PYTHON_VERSION == "3.11", "the project runs on Python 3.11"


def test_dockerfile_installs_requirements_and_makes_include_importable():
    text = (PROJECT_ROOT / "Dockerfile").read_text(encoding="utf-8")
    install = next(line for line in text.splitlines() if line.startswith("RUN pip install"))
    assert "-r /opt/airflow/requirements.txt" in install and '"apache-airflow==${AIRFLOW_VERSION}"' in install
    assert "COPY --chown=airflow:0 requirements.txt /opt/airflow/requirements.txt" in text
    # The code (and deploy/ensure_bucket.py, which airflow-init runs from /opt/airflow/deploy/)
    # arrives through the allow-listed context.
    assert "COPY --chown=airflow:0 . /opt/airflow/" in text
    assert re.search(r"^ENV PYTHONPATH=/opt/airflow$", text, re.MULTILINE)


# --- Helm values ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def helm() -> dict:
    return load_helm_values()


def test_helm_runs_the_same_image_airflow_and_executor(helm, services, test_environ):
    assert helm["executor"] == resolved_env(services["airflow-scheduler"], test_environ)["AIRFLOW__CORE__EXECUTOR"]
    assert helm["airflowVersion"] == airflow_pin()
    assert helm["defaultAirflowTag"] == image_tag(interpolate(services["airflow-scheduler"]["image"], {}))


def test_helm_sets_the_same_plain_settings_as_compose(helm, services, test_environ):
    compose_env = resolved_env(services["airflow-scheduler"], test_environ)
    helm_env = {entry["name"]: entry["value"] for entry in helm["env"]}
    for key, value in helm_env.items():
        assert key in compose_env, f"helm env {key} has no counterpart in docker-compose.yaml"
        assert value == compose_env[key], f"{key}: helm {value!r}, compose {compose_env[key]!r}"
    for key in ("PYTHONPATH", "CLEF_BUCKET", "AIRFLOW__OPERATORS__DEFAULT_QUEUE", "AIRFLOW__API_AUTH__JWT_ISSUER"):
        assert key in helm_env, f"helm env lacks {key}"


def test_helm_takes_shared_secrets_and_connections_from_kubernetes_secrets(helm):
    from_secrets = {entry["envName"]: entry for entry in helm["secret"]}
    for variable in SHARED_SECRETS + ["AIRFLOW_CONN_CLEF_S3", "AIRFLOW_CONN_SMTP_DEFAULT"]:
        assert variable in from_secrets, f"helm secret list lacks {variable}"
        assert from_secrets[variable]["secretName"] and from_secrets[variable]["secretKey"] == variable
    for variable in SHARED_SECRETS:
        assert helm["enableBuiltInSecretEnvVars"][variable] is False, f"the chart's own {variable} would shadow ours"
    assert helm["data"]["metadataSecretName"]
    assert helm["webserver"]["defaultUser"]["enabled"] is False, "the chart's default user has a known password"


def test_helm_has_a_models_worker_set_beside_the_default_workers(helm):
    celery = helm["workers"]["celery"]
    assert celery["enableDefault"] is True and celery["queue"] == "default"
    assert [worker_set["queue"] for worker_set in celery["sets"]] == ["models"]


def test_helm_code_comes_from_the_image(helm):
    assert helm["dags"]["persistence"]["enabled"] is False and helm["dags"]["gitSync"]["enabled"] is False
    assert helm["defaultAirflowRepository"].endswith("clef-campaign-airflow")


# Chart values that would carry a secret itself rather than the name of a Kubernetes Secret.
LITERAL_SECRET_VALUES = {"fernetKey", "apiSecretKey", "jwtSecret", "webserverSecretKey", "brokerUrl", "pass"}


def test_helm_values_hold_no_secret_value():
    def walk(node, path=""):
        if isinstance(node, dict):
            for key, value in node.items():
                yield from walk(value, f"{path}.{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                yield from walk(value, f"{path}[{index}]")
        else:
            yield path, node

    for path, value in walk(load_helm_values()):
        leaf = path.rsplit(".", 1)[-1]
        if leaf in LITERAL_SECRET_VALUES or "password" in leaf.lower():
            assert value in (None, "", False), f"deploy/helm-values.yaml{path} holds a secret value"
