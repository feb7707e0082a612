"""The embedded stack on loopback: a moto S3 server, an SMTP server that records mail, and Airflow standalone.

``python -m devtools.devstack`` (what ``make demo`` runs) starts all three on 127.0.0.1, creates the
campaign bucket with versioning, points Airflow at this project's DAGs with the ``clef_s3`` and
``smtp_default`` connections, prints the UI address and the admin password, and stops everything on
Ctrl-C. ``--rehearse CAMPAIGN_FILE --data DIR`` plays an organizer's own campaign and data instead of
the demo (:mod:`devtools.rehearsal`). The test suite reuses :class:`MailRecorder` and :func:`start_s3_server` so that tests and the
demo talk to the same real servers.

Airflow's metadata database is PostgreSQL 16 from the ``pgserver`` wheel, started in ``.demo/``:
SQLite, ``airflow standalone``'s default, locks the whole file for each write, and while eleven
mapped tasks wrote their XComs the API server's POST of a DAG run waited out SQLite's 5 s and failed
(``benchmarks/metadata_db.py`` measures both). ``--database-url`` points Airflow at another database.

The stand-ins of the live demo (participants, organizer, watcher) run in threads watched by
:class:`StandIns`: the first one that fails stops the demo with its message and a non-zero exit.
``--leave-to-ui N`` leaves the agreements of the last N teams the stand-in organizer would approve
to the person at the UI (the Campaigns page's Registrations tab), who then decides as a real
organizer would.
"""
from __future__ import annotations

import argparse
import datetime as dt
import email
import email.policy
import json
import os
import signal
import secrets
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from devtools.s3_server import free_port, start_s3_server  # noqa: F401  (the S3 server of the stack, the tests and the benchmarks)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEMO_DIR = PROJECT_ROOT / ".demo"
DEMO_ACCESS_KEY = "clef-demo"
DEMO_SECRET_KEY = "clef-demo-secret"
# The principals that sign participants' links, as in docker-compose (moto accepts any key).
DEMO_UPLOAD_KEY = ("clef-demo-upload", "clef-demo-upload-secret")
DEMO_DOWNLOAD_KEY = ("clef-demo-download", "clef-demo-download-secret")


# --- S3 ------------------------------------------------------------------------------------------


def s3_connection_json(endpoint_url: str, access_key: str = DEMO_ACCESS_KEY, secret_key: str = DEMO_SECRET_KEY) -> str:
    """The ``clef_s3`` Airflow connection as JSON (``AIRFLOW_CONN_CLEF_S3``), with the link signers."""
    extra = {
        "endpoint_url": endpoint_url, "region_name": "us-east-1",
        "upload_access_key_id": DEMO_UPLOAD_KEY[0], "upload_secret_access_key": DEMO_UPLOAD_KEY[1],
        "download_access_key_id": DEMO_DOWNLOAD_KEY[0], "download_secret_access_key": DEMO_DOWNLOAD_KEY[1],
    }
    return json.dumps({"conn_type": "aws", "login": access_key, "password": secret_key, "extra": extra})


def smtp_connection_json(host: str, port: int, sender: str = "clef-campaign@localhost") -> str:
    """The ``smtp_default`` Airflow connection as JSON (``AIRFLOW_CONN_SMTP_DEFAULT``)."""
    return json.dumps(
        {"conn_type": "smtp", "host": host, "port": port, "extra": {"from_email": sender, "disable_tls": True, "disable_ssl": True, "timeout": 10, "retry_limit": 3}}
    )


# --- SMTP ----------------------------------------------------------------------------------------


@dataclass
class RecordedMessage:
    sender: str
    recipients: list[str]
    raw: bytes

    @property
    def message(self) -> email.message.EmailMessage:
        return email.message_from_bytes(self.raw, policy=email.policy.default)

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def body(self) -> str:
        return self.message.get_body(preferencelist=("plain",)).get_content()


@dataclass
class MailRecorder:
    """An aiosmtpd handler that keeps every message it receives, and optionally writes it to a folder."""

    folder: Path | None = None
    messages: list[RecordedMessage] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
        raw = envelope.original_content or envelope.content
        record = RecordedMessage(envelope.mail_from, list(envelope.rcpt_tos), bytes(raw))
        with self._lock:
            self.messages.append(record)
            if self.folder is not None:
                self.folder.mkdir(parents=True, exist_ok=True)
                stamp = time.strftime("%Y%m%dT%H%M%S")
                name = f"{stamp}-{len(self.messages):05d}-{_safe(record.recipients[0] if record.recipients else 'unknown')}.eml"
                (self.folder / name).write_bytes(record.raw)
        return "250 Message accepted for delivery"

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()

    def to(self, recipient: str) -> list[RecordedMessage]:
        return [m for m in self.messages if recipient.lower() in (r.lower() for r in m.recipients)]


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "@._-" else "_" for c in text)[:80]


def start_smtp_server(recorder: MailRecorder, port: int = 0):
    """An aiosmtpd server on 127.0.0.1; returns (controller, port)."""
    from aiosmtpd.controller import Controller

    port = port or free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    return controller, port


# --- the demo ------------------------------------------------------------------------------------


def start_metadata_database(folder: Path):
    """PostgreSQL from the ``pgserver`` wheel with its data in ``folder``; returns (server, SQLAlchemy URL).

    It listens on a Unix socket inside ``folder`` only (no TCP port to collide with), and stops when
    this process exits."""
    import pgserver

    server = pgserver.get_server(folder, cleanup_mode="stop")
    if not server.psql("SELECT 1 FROM pg_database WHERE datname = 'airflow';").strip().endswith("(1 row)"):
        server.psql("CREATE DATABASE airflow;")
    return server, server.get_uri("airflow").replace("postgresql://", "postgresql+psycopg2://", 1)


def airflow_environment(airflow_home: Path, s3_json: str, smtp_json: str, bucket: str, database_url: str | None = None) -> dict[str, str]:
    env = dict(os.environ)
    if database_url:
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = database_url
    env.update(
        {
            "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__API__HOST": "127.0.0.1",
            # a few task processes at a time: more only thrash a small machine (each imports pandas and GX)
            "AIRFLOW__CORE__PARALLELISM": env.get("CLEF_DEMO_PARALLELISM", "4"),
            "AIRFLOW__API__PORT": env.get("CLEF_DEMO_UI_PORT", "8080"),
            # on a busy 2-core machine the one API server answers task processes slowly: 5 s (the
            # default) failed tasks before they started; retries (5, backoff) stay Airflow's
            "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": env.get("AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT", "30"),
            # task processes report back to the API server: it listens on loopback at the port above
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{env.get('CLEF_DEMO_UI_PORT', '8080')}/execution/",
            "AIRFLOW_CONN_CLEF_S3": s3_json,
            "AIRFLOW_CONN_SMTP_DEFAULT": smtp_json,
            "CLEF_BUCKET": bucket,
            # the participants' portal (plugins/participant_portal.py): a fresh signing secret per demo
            "CLEF_PORTAL_SECRET": env.get("CLEF_PORTAL_SECRET") or secrets.token_hex(32),
            "CLEF_PORTAL_URL": env.get("CLEF_PORTAL_URL") or f"http://127.0.0.1:{env.get('CLEF_DEMO_UI_PORT', '8080')}/portal",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH", "")])),
            # airflow standalone starts its components as `airflow ...` subprocesses: find the venv's.
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
        }
    )
    return env


def create_bucket(endpoint_url: str, bucket: str) -> None:
    """The demo's bucket, made ready as a deployment's airflow-init makes it (``deploy/ensure_bucket.py``)."""
    from deploy.ensure_bucket import ensure_versioned_bucket
    from include.campaign.store import S3Settings

    ensure_versioned_bucket(S3Settings(bucket=bucket, endpoint_url=endpoint_url, access_key_id=DEMO_ACCESS_KEY, secret_access_key=DEMO_SECRET_KEY))


def wait_for_password(airflow_home: Path, timeout: float = 180.0) -> str | None:
    path = airflow_home / "simple_auth_manager_passwords.json.generated"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.is_file():
            try:
                return json.loads(path.read_text()).get("admin")
            except json.JSONDecodeError:
                pass
        time.sleep(1)
    return None


def wait_for_api(ui: str, timeout: float = 300.0) -> bool:
    """True once the API server answers ``/api/v2/version`` (it starts after the password file is
    written, and on a busy machine well after the scheduler)."""
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{ui}/api/v2/version", timeout=10):
                return True
        except OSError:  # refused while starting, or an HTTP error
            time.sleep(2)
    return False


def write_demo_campaign(source: Path, target_dir: Path, start: "dt.datetime", step_seconds: float, scoring_minutes: float = 4) -> Path:
    """A copy of ``source`` whose milestones are ``step_seconds`` apart from ``start`` (intake every minute),
    with ``scoring_minutes`` more between the run deadline and the results."""
    import yaml

    from include.campaign.config import load_campaign
    from devtools.compressed_calendar import CLOSING, OPENING, delay_milestones, replay_copy

    campaign = load_campaign(source)
    raw = yaml.safe_load(source.read_text(encoding="utf-8"))
    closing_start = start + dt.timedelta(seconds=step_seconds * len(OPENING))
    data = replay_copy(raw, campaign, start - dt.timedelta(seconds=step_seconds), step_seconds, closing_start=closing_start)
    # Scoring every run of eleven tasks takes the embedded stack a few minutes: results come after.
    after_deadline = CLOSING[CLOSING.index("results_release"):]
    data = delay_milestones(data, after_deadline, dt.timedelta(minutes=scoring_minutes))
    data["intake_every_minutes"] = 1
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / source.name
    target.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    load_campaign(target)  # the copy must pass the same check
    return target


def print_calendar(path: Path, kind: str = "demo copy") -> None:
    from include.campaign.timeline import milestone_events
    from include.campaign.config import load_campaign

    campaign = load_campaign(path)
    print(f"{campaign.name} ({kind} {path}), times in UTC:", flush=True)
    for event in milestone_events(campaign):
        print(f"  {event.moment_utc:%H:%M:%S}  {event.label}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Start S3, SMTP and Airflow standalone on loopback with this project's DAGs, and replay a demo campaign live.")
    parser.add_argument("--bucket", default=os.environ.get("CLEF_BUCKET", "clef-campaign"))
    parser.add_argument("--s3-port", type=int, default=int(os.environ.get("CLEF_DEMO_S3_PORT", "0")))
    parser.add_argument("--smtp-port", type=int, default=int(os.environ.get("CLEF_DEMO_SMTP_PORT", "0")))
    parser.add_argument("--campaign", default=str(PROJECT_ROOT / "include" / "campaigns" / "imageclef2025.yaml"), help="the campaign whose demo copy plays live")
    parser.add_argument("--minutes-apart", type=float, default=1.0, help="minutes between consecutive milestones of the demo copy")
    parser.add_argument("--no-demo", action="store_true", help="only the stack, with the campaign files of include/campaigns/ as they are (DAGs paused)")
    parser.add_argument("--start-in", type=float, default=150, help="seconds from now to the first milestone (Airflow needs a minute or two to start)")
    parser.add_argument("--scoring-minutes", type=float, default=4, help="extra minutes between the run deadline and the results, for scoring")
    parser.add_argument("--demo-dir", type=Path, default=DEMO_DIR, help="where the demo keeps everything (wiped at start)")
    parser.add_argument("--leave-to-ui", type=int, default=0, metavar="N",
                        help="the stand-in organizer leaves the agreements of the last N teams it would approve to you (Campaigns > Registrations)")
    parser.add_argument("--database-url", default=os.environ.get("CLEF_DEMO_DATABASE_URL"),
                        help="Airflow's metadata database (SQLAlchemy URL); default: an embedded PostgreSQL in .demo/postgres")
    parser.add_argument("--rehearse", metavar="CAMPAIGN_FILE", help="rehearse your own campaign live with the data of --data (docs/organizers.md, Rehearse)")
    parser.add_argument("--data", type=Path, help="with --rehearse: your data folder (staging/, gold/, registrations/, runs/ as docs/organizers.md says)")
    parser.add_argument("--stand-ins", action="store_true", help="with --rehearse: stand-ins upload the folder's registrations and runs and approve their agreements")
    args = parser.parse_args(argv)
    if args.rehearse or args.data or args.stand_ins:
        from devtools.rehearsal import RehearsalError, check_arguments, fail

        try:
            if not args.rehearse or args.no_demo:
                raise RehearsalError("--data and --stand-ins go with --rehearse CAMPAIGN_FILE, which does not go with --no-demo")
            check_arguments(args.rehearse, args.data)
        except RehearsalError as error:
            return fail(str(error))

    # `kill` and `timeout` send SIGTERM: stop as on Ctrl-C, so that Airflow and PostgreSQL stop too.
    signal.signal(signal.SIGTERM, _interrupt)
    demo_dir = args.demo_dir.resolve()
    try:
        fresh_demo_dir(demo_dir)  # each demo starts from nothing: the S3 server is in memory too
    except FileExistsError as exc:
        print(f"devstack: {exc}", file=sys.stderr)
        return 1
    airflow_home, mail_dir = demo_dir / "airflow", demo_dir / "mail"
    airflow_home.mkdir(parents=True, exist_ok=True)
    database, database_url = (None, args.database_url) if args.database_url else start_metadata_database(demo_dir / "postgres")
    s3_server, endpoint = start_s3_server(args.s3_port)
    create_bucket(endpoint, args.bucket)
    recorder = MailRecorder(folder=mail_dir)
    smtp, smtp_port = start_smtp_server(recorder, args.smtp_port)
    env = airflow_environment(airflow_home, s3_connection_json(endpoint), smtp_connection_json("127.0.0.1", smtp_port), args.bucket, database_url)
    live = None  # what plays once the API answers: live(ui, password, stand_ins)
    start = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) + dt.timedelta(seconds=args.start_in)
    if args.rehearse:
        from devtools.rehearsal import prepare

        demo_file, rehearsal = prepare(args.rehearse, args.data, args.stand_ins, demo_dir, start, args.minutes_apart, args.scoring_minutes,
                                       lambda path: campaign_context(path, endpoint, args.bucket, smtp_port))
        live = rehearsal.start
    elif not args.no_demo:
        demo_file = write_demo_campaign(Path(args.campaign), demo_dir / "campaigns", start, args.minutes_apart * 60, args.scoring_minutes)
        demo_ctx = load_demo_data(demo_file, endpoint, args.bucket, smtp_port)
        live = lambda ui, password, stand_ins: start_live_demo(demo_ctx, ui, password, stand_ins, leave_to_ui=args.leave_to_ui)  # noqa: E731
    if live is not None:
        env["CLEF_CAMPAIGNS_DIR"] = str(demo_file.parent)
        env["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] = "False"
    print(f"S3 (moto) at {endpoint}, bucket {args.bucket} (versioned); access key {DEMO_ACCESS_KEY}", flush=True)
    print(f"SMTP on 127.0.0.1:{smtp_port}; every message lands in {mail_dir}", flush=True)
    print(f"Airflow's metadata database: {'PostgreSQL in ' + str(demo_dir / 'postgres') if database else _without_password(database_url)}", flush=True)
    print("Starting Airflow standalone (first start migrates its database: a minute or two)...", flush=True)
    log = (demo_dir / "airflow-standalone.log").open("ab")
    airflow = subprocess.Popen([str(Path(sys.executable).with_name("airflow")), "standalone"], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    print(f"airflow standalone: process group {airflow.pid}", flush=True)
    stand_ins = StandIns()
    try:
        password = wait_for_password(airflow_home)
        ui = f"http://127.0.0.1:{env['AIRFLOW__API__PORT']}"
        print(f"Airflow UI: {ui}  user: admin  password: {password or '(see ' + str(airflow_home) + ')'}", flush=True)
        print(f"Participants' portal: {env['CLEF_PORTAL_URL']}/  (register, sign in, download, upload, receipts)", flush=True)
        print(f"Organizers' Campaigns page: {ui}/plugin/campaigns  (Campaigns in the UI's menu: timeline, registrations, submissions, evaluations, mail)", flush=True)
        print(f"Airflow's own log: {demo_dir / 'airflow-standalone.log'}. Ctrl-C stops everything.", flush=True)
        if live is not None:
            if not password:
                print(f"demo stopped: Airflow wrote no admin password within 180 s; see {demo_dir / 'airflow-standalone.log'}", file=sys.stderr, flush=True)
                return 1
            if not wait_for_api(ui):
                print(f"demo stopped: the Airflow API at {ui} did not answer within 300 s; see {demo_dir / 'airflow-standalone.log'}", file=sys.stderr, flush=True)
                return 1
            live(ui, password, stand_ins)
        return supervise(airflow, stand_ins, demo_dir / "airflow-standalone.log")
    except KeyboardInterrupt:
        print("\nStopping Airflow, SMTP and S3...", flush=True)
        return 0
    finally:
        stand_ins.stop.set()
        stop_process_group(airflow)
        smtp.stop()
        s3_server.stop()
        if database is not None:
            database.cleanup()


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


DEMO_DIR_MARKER = ".clef-demo"


def fresh_demo_dir(path: Path) -> None:
    """Empty ``path`` for a new demo. Only the project's own ``.demo/``, a folder an earlier demo made
    (it holds the marker file) or an empty one is wiped: a mistyped ``--demo-dir`` deletes nothing else."""
    import shutil

    ours = path == DEMO_DIR.resolve() or (path / DEMO_DIR_MARKER).is_file()
    if path.exists() and any(path.iterdir()) and not ours:
        raise FileExistsError(f"{path} is not empty and was not made by a demo ({DEMO_DIR_MARKER} missing); choose another --demo-dir")
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    (path / DEMO_DIR_MARKER).write_text("made by python -m devtools.devstack; wiped by the next demo\n")


def campaign_context(campaign_file: Path, endpoint: str, bucket: str, smtp_port: int):
    """The campaign of ``campaign_file`` on the devstack's S3 and SMTP servers."""
    from include.campaign.config import load_campaign
    from include.campaign.context import CampaignContext
    from include.campaign.mail import SmtpSettings
    from include.campaign.store import ObjectStore, S3Settings

    store = ObjectStore(S3Settings(bucket=bucket, endpoint_url=endpoint, access_key_id=DEMO_ACCESS_KEY, secret_access_key=DEMO_SECRET_KEY))
    return CampaignContext(load_campaign(campaign_file), store, SmtpSettings(host="127.0.0.1", port=smtp_port))


def load_demo_data(demo_file: Path, endpoint: str, bucket: str, smtp_port: int):
    from devtools.demo import build_demo, load_demo

    ctx = campaign_context(demo_file, endpoint, bucket, smtp_port)
    campaign = ctx.campaign
    demo = build_demo(campaign)
    load_demo(ctx, demo)
    print_calendar(demo_file)
    print(f"demo data staged: {sum(len(files) for files in demo.staging.values())} files, gold for {len(demo.gold)} tasks, "
          f"{len(demo.registrations)} registrations and {sum(len(r) for r in demo.runs.values())} runs waiting to be submitted", flush=True)
    return ctx, demo


def start_live_demo(demo_ctx, ui: str, password: str, stand_ins: "StandIns", leave_to_ui: int = 0) -> None:
    from devtools.demo.live import AirflowApi, Organizer, Participants, watch_dag_runs

    ctx, demo = demo_ctx
    say = lambda line: print(line, flush=True)  # noqa: E731
    stand_ins.start("the DAG-run watcher", watch_dag_runs, AirflowApi(ui, "admin", password), ctx.campaign.id, say, stand_ins.stop)
    stand_ins.start("the stand-in organizer", Organizer(ctx, demo, AirflowApi(ui, "admin", password), say, leave=leave_to_ui).play)
    stand_ins.start("the stand-in participants", Participants(ctx, demo, say).play)


class StandIns:
    """The demo's stand-in threads. The first to raise records why and wakes :func:`supervise`.

    ``stop`` is set when the demo ends, for the threads that loop until then."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.failed = threading.Event()
        self.failure: str | None = None
        self._lock = threading.Lock()

    def start(self, name: str, target, *args) -> threading.Thread:
        thread = threading.Thread(target=self._run, args=(name, target, args), name=name, daemon=True)
        thread.start()
        return thread

    def _run(self, name: str, target, args: tuple) -> None:
        try:
            target(*args)
        except BaseException as exc:  # noqa: BLE001 (whatever it is, the demo must stop and say it)
            import traceback

            traceback.print_exc(file=sys.stderr)
            with self._lock:
                if self.failure is None:
                    self.failure = f"{name} failed: {exc}" if str(exc) else f"{name} failed: {type(exc).__name__}"
            self.failed.set()


def supervise(airflow: subprocess.Popen, stand_ins: StandIns, log_path: Path, poll_seconds: float = 1.0) -> int:
    """Wait until Airflow exits (its code, or 1) or a stand-in fails (2, with the stand-in's message).

    The caller stops Airflow afterwards."""
    while airflow.poll() is None:
        if stand_ins.failed.wait(poll_seconds):
            print(f"\ndemo stopped: {stand_ins.failure}\n"
                  f"Nothing after this point would have been real. Airflow's log: {log_path}", file=sys.stderr, flush=True)
            return 2
    print(f"airflow standalone exited with code {airflow.returncode}; see {log_path}", file=sys.stderr, flush=True)
    return airflow.returncode or 1


def stop_process_group(process: subprocess.Popen, grace_seconds: float = 30) -> None:
    """SIGTERM to the process's group (airflow standalone and its components); whatever of the group
    is still there ``grace_seconds`` later gets SIGKILL."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    while process_group_alive(process.pid) and time.monotonic() < deadline:
        try:
            process.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            pass
    if process_group_alive(process.pid):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=grace_seconds)


def process_group_alive(group: int) -> bool:
    """True while any process of the group still runs (signal 0 only asks)."""
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def _without_password(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


if __name__ == "__main__":
    sys.exit(main())
