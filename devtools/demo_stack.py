"""Driving ``python -m devtools.devstack`` (what ``make demo`` runs) from outside, as a user would.

Shared by the regression test of the demo on a loaded machine (``tests/demo/test_demo_stack.py``)
and its benchmark (``benchmarks/demo_under_load.py``): a campaign cut down to a few tasks,
:class:`LoadedMachine` (one busy-looping process per CPU), :class:`DemoStack` (the devstack in a
subprocess with its output in a file, its password and process group read from that output, stopped
with SIGTERM), the stages the demo reaches as seen through Airflow's REST API, the check that every
collected run is in the latest evaluation, and what SIGTERM left running.
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
from typing import Callable

import yaml

from devtools.devstack import DEMO_ACCESS_KEY, DEMO_SECRET_KEY, PROJECT_ROOT, free_port, process_group_alive

BUCKET = "clef-campaign"
CAMPAIGN_FILE = PROJECT_ROOT / "include" / "campaigns" / "imageclef2025.yaml"


# --- load ------------------------------------------------------------------------------------------


def burn(stop) -> None:
    while not stop.is_set():
        sum(i * i for i in range(10_000))


class LoadedMachine:
    """``count`` busy-looping processes while the block runs."""

    def __init__(self, count: int):
        context = multiprocessing.get_context("spawn")
        self.stop = context.Event()
        self.burners = [context.Process(target=burn, args=(self.stop,), daemon=True) for _ in range(count)]

    def __enter__(self) -> "LoadedMachine":
        for burner in self.burners:
            burner.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for burner in self.burners:
            burner.join(timeout=10)
            if burner.is_alive():
                burner.kill()


# --- the demo in a subprocess ----------------------------------------------------------------------


def small_campaign(folder: Path, tasks: tuple[str, ...]) -> Path:
    """A copy of the ImageCLEF 2025 campaign file with only ``tasks``."""
    raw = yaml.safe_load(CAMPAIGN_FILE.read_text(encoding="utf-8"))
    raw["tasks"] = [task for task in raw["tasks"] if task["id"] in tasks]
    if len(raw["tasks"]) != len(tasks):
        raise ValueError(f"not all of {tasks} are tasks of {CAMPAIGN_FILE.name}")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / CAMPAIGN_FILE.name
    path.write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


class DemoStack:
    """``python -m devtools.devstack`` in a subprocess of its own session, its output in a file."""

    def __init__(self, campaign: Path, demo_dir: Path, minutes_apart: float = 0.5, start_in: float = 150, leave_to_ui: int = 0):
        self.campaign, self.demo_dir = campaign, demo_dir
        self.ui_port, self.s3_port = free_port(), free_port()
        self.ui = f"http://127.0.0.1:{self.ui_port}"
        self.output = demo_dir.parent / "devstack.out"
        env = dict(os.environ, CLEF_DEMO_UI_PORT=str(self.ui_port), PYTHONPATH=str(PROJECT_ROOT))
        command = [sys.executable, "-m", "devtools.devstack", "--campaign", str(campaign), "--minutes-apart", str(minutes_apart),
                   "--start-in", str(start_in), "--scoring-minutes", "0", "--demo-dir", str(demo_dir), "--s3-port", str(self.s3_port),
                   "--leave-to-ui", str(leave_to_ui)]
        with self.output.open("w") as out:
            self.process = subprocess.Popen(command, env=env, cwd=PROJECT_ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def password(self) -> str | None:
        match = re.search(r"user: admin  password: (\S+)", self.text())
        return match.group(1) if match and not match.group(1).startswith("(") else None

    def airflow_group(self) -> int | None:
        match = re.search(r"airflow standalone: process group (\d+)", self.text())
        return int(match.group(1)) if match else None

    def failure(self) -> str | None:
        """The devstack's "demo stopped: ..." paragraph, if a stand-in failed or Airflow did not start."""
        text = self.text()
        return text[text.index("demo stopped"):][:1500] if "demo stopped" in text else None

    def context(self):
        """A :class:`CampaignContext` on the demo's copy of the campaign and its S3 server."""
        from include.campaign.config import load_campaign
        from include.campaign.context import CampaignContext
        from include.campaign.mail import SmtpSettings
        from include.campaign.store import ObjectStore, S3Settings

        store = ObjectStore(S3Settings(bucket=BUCKET, endpoint_url=f"http://127.0.0.1:{self.s3_port}", access_key_id=DEMO_ACCESS_KEY, secret_access_key=DEMO_SECRET_KEY))
        return CampaignContext(load_campaign(self.demo_dir / "campaigns" / self.campaign.name), store, SmtpSettings(host="127.0.0.1", port=9))

    def stop(self) -> list[str]:
        """SIGTERM (what `kill` and `timeout` send), as a user would; returns what it left running
        (and then kills that, so that nothing outlives the caller)."""
        group = self.airflow_group()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)
        left = [f"airflow process group {group}"] if group is not None and process_group_alive(group) else []
        left += [f"postgres {pid}" for pid in postgres_pids(self.demo_dir)]
        if group is not None and process_group_alive(group):
            os.killpg(group, signal.SIGKILL)
        for pid in postgres_pids(self.demo_dir):
            os.kill(pid, signal.SIGTERM)
        return left


def postgres_pids(demo_dir: Path) -> list[int]:
    """The PostgreSQL processes serving ``demo_dir``'s embedded database."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if command and command[0].endswith(b"/postgres") and str(demo_dir / "postgres").encode() in command:
                pids.append(int(entry.name))
    return pids


# --- what the demo reached, through Airflow's REST API ----------------------------------------------


def api_get(ui: str, token: str, path: str) -> dict:
    request = urllib.request.Request(ui + path, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def login(ui: str, password: str, username: str = "admin") -> str:
    body = json.dumps({"username": username, "password": password}).encode()
    request = urllib.request.Request(ui + "/auth/token", data=body, method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())["access_token"]


STAGES: list[tuple[str, Callable[[str, dict | None], bool]]] = [
    ("API server answers", lambda text, states: "Airflow UI:" in text and states is not None),
    ("all runs uploaded", lambda text, states: "participants: all registrations and runs are in" in text),
    ("runs collected", lambda text, states: bool(states) and states.get("run_collection") == "success"),
    ("scoring done", lambda text, states: bool(states) and states.get("scoring") == "success"),
    ("results approval waiting", lambda text, states: bool(states) and states.get("approval") in ("awaiting_input", "deferred")),
]


def dag_states(ui: str, token: str, campaign_id: str) -> dict[str, str]:
    """The newest run's state of each of the campaign's DAGs (by the name after the campaign id), and
    ``approval``: the state of the results DAG's ``approve_publication`` task."""
    states = {}
    for run in api_get(ui, token, f"/api/v2/dags/~/dagRuns?dag_id_pattern={campaign_id}_%25&limit=200&order_by=-start_date")["dag_runs"]:
        states.setdefault(run["dag_id"].removeprefix(campaign_id + "_"), run["state"])
    for run in api_get(ui, token, f"/api/v2/dags/{campaign_id}_results/dagRuns?limit=5")["dag_runs"]:
        for ti in api_get(ui, token, f"/api/v2/dags/{campaign_id}_results/dagRuns/{run['dag_run_id']}/taskInstances")["task_instances"]:
            if ti["task_id"] == "approve_publication":
                states["approval"] = ti["state"]
    return states


class StageWatch:
    """Which of :data:`STAGES` the demo has reached, and when (seconds since the watch began)."""

    def __init__(self, demo: DemoStack, campaign_id: str, say: Callable[[str], None] = print):
        self.demo, self.campaign_id, self.say = demo, campaign_id, say
        self.started, self.reached, self._token = time.monotonic(), {}, None

    @property
    def done(self) -> bool:
        return len(self.reached) == len(STAGES)

    def poll(self) -> dict | None:
        """One look at the devstack's output and the REST API; returns the DAG states (None while the API is not up)."""
        text, states, password = self.demo.text(), None, self.demo.password()
        if password:
            try:
                self._token = self._token or login(self.demo.ui, password)
                states = dag_states(self.demo.ui, self._token, self.campaign_id)
            except OSError:
                states = None
        for name, test in STAGES:
            if name not in self.reached and test(text, states):
                self.reached[name] = time.monotonic() - self.started
                self.say(f"{self.reached[name]:7.0f} s  {name}  (load {os.getloadavg()[0]:.1f})")
        return states


def runs_not_scored(demo: DemoStack, tasks: tuple[str, ...]) -> list[str]:
    """Per task, what differs between the collected runs and the latest evaluation (and its ``missing``)."""
    from include.campaign.evaluation import EVALUATION_FILE, latest_version

    ctx = demo.context()
    store, problems = ctx.store, []
    for task_id in tasks:
        collected = store.get_json(ctx.layout.collection_manifest(task_id))["collected"]
        evaluation = store.get_json(ctx.layout.evaluations(task_id, latest_version(ctx, task_id)) + EVALUATION_FILE)
        if {(r["team"], r["run"]) for r in evaluation["runs"]} != {(r["team"], r["run"]) for r in collected} or evaluation["missing"]:
            problems.append(f"{task_id}: {len(collected)} collected, {len(evaluation['runs'])} evaluated, missing {evaluation['missing']}")
        if not collected:
            problems.append(f"{task_id}: no run collected")
    return problems
