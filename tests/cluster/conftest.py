"""One live replay on the local cluster and one ``dag.test()`` replay of the same campaign, shared by the cluster tests.

The ``dag.test()`` replay (``python -m devtools.simulate``, its own moto S3, SMTP and SQLite) runs
in a subprocess while the cluster plays the campaign live, so the two take the time of the longer one.
"""
from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from devtools.cluster import LocalCluster
from tests.cluster.campaign import live_campaign_copy, write_small_campaign
from tests.cluster.live_replay import LiveReplay

ROOT = Path(__file__).resolve().parents[2]
# Seconds from "cluster ready" to "registration opens": the dag-processor parses the DAG files first.
LEAD_SECONDS = 45
# Scoring instances per queue: the ~80 default-queue runs of the campaign go in batches of 14 or so.
MAX_SCORING_INSTANCES = 6
REPLAY_TIMEOUT = 15 * 60


@pytest.fixture(scope="module")
def replays(tmp_path_factory):
    work = tmp_path_factory.mktemp("cluster")
    source = write_small_campaign(work / "campaign")
    baseline = _start_baseline(source, work / "baseline")
    log_lines: list[str] = []
    say = lambda line: (log_lines.append(line), print(line, flush=True))  # noqa: E731
    try:
        with LocalCluster(campaigns_dir=work / "live", workdir=work / "run", default_workers=2, default_concurrency=2,
                          models_concurrency=1, paused_at_creation=False, heartbeat_timeout=30, retry_delay_seconds=5,
                          mail_dir=work / "live-mail", extra_env={"CLEF_SCORING_MAX_INSTANCES": str(MAX_SCORING_INSTANCES)},
                          say=say) as cluster:
            start = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) + dt.timedelta(seconds=LEAD_SECONDS)
            demo_file = live_campaign_copy(source, work / "live", start)
            outcome = LiveReplay(cluster, demo_file, say).run(kill_one_of=[w.name for w in cluster.workers("default")], timeout=REPLAY_TIMEOUT)
            default_hostnames = sorted(w.hostname for w in cluster.workers("default"))
            models_hostname = cluster.workers("models")[0].hostname
    finally:
        report, mails = _finish_baseline(baseline, work / "baseline")
    return {"live": outcome, "baseline": report, "baseline_mails": mails, "default_hostnames": default_hostnames,
            "models_hostname": models_hostname, "log": log_lines}


def _start_baseline(source: Path, workdir: Path) -> subprocess.Popen:
    workdir.mkdir(parents=True, exist_ok=True)
    log = (workdir / "simulate.log").open("wb")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_HOME"))}
    return subprocess.Popen([sys.executable, "-m", "devtools.simulate", str(source), "--workdir", str(workdir), "--report", str(workdir / "report.json")],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def _finish_baseline(process: subprocess.Popen, workdir: Path, timeout: float = 900):
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=30)
        raise
    report_path = workdir / "report.json"
    if process.returncode != 0 or not report_path.exists():
        raise AssertionError(f"the dag.test() replay failed (exit {process.returncode}):\n{(workdir / 'simulate.log').read_text()[-3000:]}")
    mails = [email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in sorted((workdir / "mail").glob("*.eml"))]
    return json.loads(report_path.read_text()), mails
