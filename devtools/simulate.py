"""``python -m devtools.simulate CONFIG``: replay a whole campaign with the demo data in one command, on loopback.

Starts an S3 endpoint (moto) and an SMTP server (kept messages under ``WORKDIR/mail``), migrates a
SQLite Airflow database in ``WORKDIR/airflow``, moves the campaign's calendar onto the present, and
runs every DAG in milestone order with ``dag.test()`` (see ``devtools/campaign_replay.py``).
Prints each DAG run as it ends, then per task the leaderboard's top five and the e-mails sent by
purpose. Exit 0 when every DAG run succeeded, 1 otherwise, 2 for a broken campaign file.

This command drives Airflow (lazily, after it has set up Airflow's environment) and uses the dev
wing's servers and demo data, so it lives in ``devtools/``, outside the production image, and not
among the organizers' commands of ``include/commands/``.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m devtools.simulate", description="replay a whole campaign with the demo data (S3, SMTP and Airflow on loopback)")
    parser.add_argument("config", help="the campaign file (YAML)")
    parser.add_argument("--workdir", help="where the Airflow home, mail and report go (default: a new temporary folder)")
    parser.add_argument("--report", help="also write the final state as JSON to this file")
    parser.add_argument("--step", type=float, default=2.0, help="seconds between consecutive milestones (default 2)")
    parser.add_argument("--seed", type=int, default=2025, help="the demo data's seed (default 2025)")
    parser.add_argument("--data", help="rehearse with your own data: a folder laid out as docs/organizers.md says (staging/, gold/, registrations/, runs/)")
    parser.add_argument("--model-dir", dest="model_dir", help="the model directory for the model-based metrics "
                        "(default: CLEF_MODEL_DIR; without one, their tasks say which models are missing)")
    return parser


def run(args: argparse.Namespace) -> int:
    from include.commands._campaign_file import load_or_explain

    if load_or_explain(args.config) is None:
        return 2
    if args.data and not (Path(args.data) / "staging").is_dir():
        print(f"simulate: {args.data} has no staging/ folder (see docs/organizers.md, Rehearse)", file=sys.stderr)
        return 2
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="clef-simulate-")).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    from devtools.devstack import MailRecorder, s3_connection_json, smtp_connection_json, start_s3_server, start_smtp_server

    s3_server, endpoint = start_s3_server()
    smtp, smtp_port = start_smtp_server(MailRecorder(folder=workdir / "mail"))
    try:
        _prepare_airflow(workdir, s3_connection_json(endpoint), smtp_connection_json("127.0.0.1", smtp_port))
        print(f"simulating {args.config} in {workdir} (S3 {endpoint}, SMTP 127.0.0.1:{smtp_port})", flush=True)
        return _simulate(args, workdir)
    finally:
        smtp.stop()
        s3_server.stop()


def _prepare_airflow(workdir: Path, s3_json: str, smtp_json: str) -> None:
    home = workdir / "airflow"
    home.mkdir(exist_ok=True)
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",  # so asset events queue the scoring run
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": os.environ.get("CLEF_SIMULATE_LOG_LEVEL", "ERROR"),
            "AIRFLOW_CONN_CLEF_S3": s3_json,
            "AIRFLOW_CONN_SMTP_DEFAULT": smtp_json,
            "CLEF_BUCKET": "clef-simulation",
            "CLEF_RETRY_DELAY_SECONDS": "2",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")])),
        }
    )
    airflow = Path(sys.executable).with_name("airflow")
    result = subprocess.run([str(airflow), "db", "migrate"], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"airflow db migrate failed:\n{result.stderr[-2000:]}")


def _simulate(args: argparse.Namespace, workdir: Path) -> int:
    from devtools.campaign_replay import Simulation, render_summary
    from include.campaign.context import MODEL_DIR_VARIABLE, CampaignContext, Settings
    from include.campaign.mail import SmtpSettings
    from include.campaign.store import ObjectStore, S3Settings

    store = ObjectStore(S3Settings.from_env())
    smtp = SmtpSettings.from_env()
    model_dir = Path(args.model_dir).resolve() if getattr(args, "model_dir", None) else Settings.from_env().model_dir
    os.environ[MODEL_DIR_VARIABLE] = str(model_dir or "")  # the DAGs' tasks read it through CampaignContext.settings
    print(f"model directory: {model_dir or 'none (model-based metrics will say which models are missing)'}", flush=True)
    simulation = Simulation(args.config, workdir, lambda campaign: CampaignContext(campaign, store, smtp),
                            step=args.step, seed=args.seed,
                            say=lambda line: print(line, flush=True), data=args.data)
    report = simulation.run()
    print(render_summary(report), flush=True)
    if args.report:
        Path(args.report).write_text(json.dumps(report.to_dict(), indent=2, default=str), encoding="utf-8")
    print(f"mail: {workdir / 'mail'}", flush=True)
    return 1 if report.failed else 0


def main(argv: list[str] | None = None) -> int:
    try:
        return run(build_parser().parse_args(argv))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
