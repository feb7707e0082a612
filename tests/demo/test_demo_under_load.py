"""The live demo on a loaded machine reaches the results approval with every run scored.

``make demo`` twice lost its participants to one SQLite lock on a 2-core machine. This runs the same
stack (``python -m include.devstack``: moto, SMTP, Airflow standalone on the embedded PostgreSQL, the
stand-in participants and organizer) with a campaign cut down to two tasks (one needs signed
agreements, so the organizer's approvals go through the REST API), milestones 15 s apart, while
one busy-looping process per CPU keeps the machine loaded. It passes when ``approve_publication``
waits for the organizer, every collected run of both tasks is in the latest evaluation with none
missing, and no stand-in failed. Every wait is bounded; everything started is stopped.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from include.campaign.store import ObjectStore, S3Settings
from include.devstack import DEMO_ACCESS_KEY, DEMO_SECRET_KEY, PROJECT_ROOT, free_port
from tests.demo.conftest import CAMPAIGN_FILE

TASKS = ("gans-attribution", "multimodal-reasoning")  # one with agreements, one without; cheap metrics
BUCKET = "clef-campaign"
OVERALL_SECONDS = 600


def burn(stop) -> None:
    while not stop.is_set():
        sum(i * i for i in range(10_000))


@pytest.fixture
def loaded_machine():
    """One busy-looping process per CPU for the duration of the test."""
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    burners = [context.Process(target=burn, args=(stop,), daemon=True) for _ in range(os.cpu_count() or 2)]
    for burner in burners:
        burner.start()
    yield len(burners)
    stop.set()
    for burner in burners:
        burner.join(timeout=10)
        if burner.is_alive():
            burner.kill()


def small_campaign(folder: Path) -> Path:
    raw = yaml.safe_load(CAMPAIGN_FILE.read_text(encoding="utf-8"))
    raw["tasks"] = [task for task in raw["tasks"] if task["id"] in TASKS]
    assert len(raw["tasks"]) == len(TASKS)
    path = folder / CAMPAIGN_FILE.name
    path.write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


class Demo:
    """``python -m include.devstack`` in a subprocess, its output in a file, stopped with Ctrl-C."""

    def __init__(self, campaign: Path, demo_dir: Path):
        self.ui_port, self.s3_port = free_port(), free_port()
        self.output = demo_dir.parent / "devstack.out"
        env = dict(os.environ, CLEF_DEMO_UI_PORT=str(self.ui_port), PYTHONPATH=str(PROJECT_ROOT))
        command = [sys.executable, "-m", "include.devstack", "--campaign", str(campaign), "--minutes-apart", "0.25", "--start-in", "90",
                   "--scoring-minutes", "0.5", "--demo-dir", str(demo_dir), "--s3-port", str(self.s3_port)]
        self.process = subprocess.Popen(command, env=env, cwd=PROJECT_ROOT, stdout=self.output.open("w"), stderr=subprocess.STDOUT, start_new_session=True)

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def password(self) -> str | None:
        match = re.search(r"user: admin  password: (\S+)", self.text())
        return match.group(1) if match and not match.group(1).startswith("(") else None

    def airflow_group(self) -> int | None:
        match = re.search(r"airflow standalone: process group (\d+)", self.text())
        return int(match.group(1)) if match else None

    def stop(self) -> None:
        group = self.airflow_group()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=90)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)
        if group is not None:
            try:
                os.killpg(group, signal.SIGKILL)  # only if Ctrl-C left it behind
            except ProcessLookupError:
                pass


def api_get(ui: str, token: str, path: str) -> dict:
    request = urllib.request.Request(ui + path, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def login(ui: str, password: str) -> str:
    body = json.dumps({"username": "admin", "password": password}).encode()
    request = urllib.request.Request(ui + "/auth/token", data=body, method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())["access_token"]


def approval_waiting(ui: str, token: str, campaign_id: str) -> bool:
    runs = api_get(ui, token, f"/api/v2/dags/{campaign_id}_results/dagRuns?limit=10")["dag_runs"]
    for run in runs:
        instances = api_get(ui, token, f"/api/v2/dags/{campaign_id}_results/dagRuns/{run['dag_run_id']}/taskInstances")["task_instances"]
        if any(ti["task_id"] == "approve_publication" and ti["state"] == "deferred" for ti in instances):
            return True
    return False


def test_the_demo_reaches_the_results_approval_with_every_run_on_a_loaded_machine(tmp_path, loaded_machine):
    campaign = small_campaign(tmp_path)
    demo = Demo(campaign, tmp_path / "demo")
    started = time.monotonic()
    reached = False
    try:
        ui, token = f"http://127.0.0.1:{demo.ui_port}", None
        while time.monotonic() - started < OVERALL_SECONDS and demo.process.poll() is None:
            time.sleep(5)
            password = demo.password()
            if password is None:
                continue
            try:
                token = token or login(ui, password)
                reached = approval_waiting(ui, token, "imageclef2025")
            except OSError:
                continue  # the API server is still starting
            if reached:
                break
        elapsed = time.monotonic() - started
        output = demo.text()
        assert "demo stopped" not in output, output[-3000:]
        assert reached, f"no results approval within {elapsed:.0f} s (exit code {demo.process.poll()}):\n{output[-3000:]}"
        assert "participants: all registrations and runs are in" in output, output[-3000:]

        store = ObjectStore(S3Settings(bucket=BUCKET, endpoint_url=f"http://127.0.0.1:{demo.s3_port}", access_key_id=DEMO_ACCESS_KEY, secret_access_key=DEMO_SECRET_KEY))
        from include.campaign.config import load_campaign
        from include.campaign.context import CampaignContext
        from include.campaign import scoring
        from include.campaign.mail import SmtpSettings

        ctx = CampaignContext(load_campaign(tmp_path / "demo" / "campaigns" / campaign.name), store, SmtpSettings(host="127.0.0.1", port=9))
        for task_id in TASKS:
            collected = store.get_json(ctx.layout.collection_manifest(task_id))["collected"]
            version = scoring.latest_version(ctx, task_id)
            evaluation = store.get_json(ctx.layout.evaluations(task_id, version) + scoring.EVALUATION_FILE)
            assert collected, f"{task_id}: nothing collected"
            assert {(r["team"], r["run"]) for r in evaluation["runs"]} == {(r["team"], r["run"]) for r in collected}, task_id
            assert evaluation["missing"] == [], task_id
        print(f"results approval reached after {elapsed:.0f} s with {loaded_machine} busy processes", file=sys.stderr)
    finally:
        demo.stop()
