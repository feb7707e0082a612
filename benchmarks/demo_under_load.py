"""How far and how fast the live demo gets on a loaded machine: a measurement, not a test.

``make demo`` twice lost its participants to one SQLite lock on a 2-core machine. This runs the same
stack (``python -m devtools.devstack``: moto, SMTP, Airflow standalone on the embedded PostgreSQL, the
stand-in participants and organizer) with a campaign cut down to two tasks (one needs signed
agreements, so the organizer's approvals go through the REST API), milestones 30 s apart, while one
busy-looping process per CPU (``--burners``) loads the machine. It prints the time each stage was
reached (API up, runs uploaded, collection, scoring, results approval waiting), then checks that
every collected run is in the latest evaluation with none missing and that SIGTERM left nothing
running. Exit code 0 when the approval was reached within ``--max-minutes``.

On a machine already at a load of 15 to 20 (2 cores shared by eight engineers) scoring alone ran at
about one run a minute, so the approval took longer than a test may: hence a script.

    python benchmarks/demo_under_load.py --max-minutes 20
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

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from include.campaign.store import ObjectStore, S3Settings  # noqa: E402
from devtools.devstack import DEMO_ACCESS_KEY, DEMO_SECRET_KEY, PROJECT_ROOT, free_port, process_group_alive  # noqa: E402

TASKS = ("gans-attribution", "multimodal-reasoning")  # one with agreements, one without; cheap metrics
BUCKET = "clef-campaign"
CAMPAIGN_FILE = PROJECT_ROOT / "include" / "campaigns" / "imageclef2025.yaml"


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


def small_campaign(folder: Path) -> Path:
    raw = yaml.safe_load(CAMPAIGN_FILE.read_text(encoding="utf-8"))
    raw["tasks"] = [task for task in raw["tasks"] if task["id"] in TASKS]
    assert len(raw["tasks"]) == len(TASKS)
    path = folder / CAMPAIGN_FILE.name
    path.write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


class Demo:
    """``python -m devtools.devstack`` in a subprocess, its output in a file, stopped with Ctrl-C."""

    def __init__(self, campaign: Path, demo_dir: Path):
        self.ui_port, self.s3_port = free_port(), free_port()
        self.output, self.demo_dir = demo_dir.parent / "devstack.out", demo_dir
        env = dict(os.environ, CLEF_DEMO_UI_PORT=str(self.ui_port), PYTHONPATH=str(PROJECT_ROOT))
        command = [sys.executable, "-m", "devtools.devstack", "--campaign", str(campaign), "--minutes-apart", "0.5", "--start-in", "150",
                   "--scoring-minutes", "0", "--demo-dir", str(demo_dir), "--s3-port", str(self.s3_port)]
        self.process = subprocess.Popen(command, env=env, cwd=PROJECT_ROOT, stdout=self.output.open("w"), stderr=subprocess.STDOUT, start_new_session=True)

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def password(self) -> str | None:
        match = re.search(r"user: admin  password: (\S+)", self.text())
        return match.group(1) if match and not match.group(1).startswith("(") else None

    def airflow_group(self) -> int | None:
        match = re.search(r"airflow standalone: process group (\d+)", self.text())
        return int(match.group(1)) if match else None

    def stop(self) -> list[str]:
        """SIGTERM (what `kill` and `timeout` send), as a user would; returns what it left running."""
        group = self.airflow_group()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)
        left = [f"airflow process group {group}"] if group is not None and process_group_alive(group) else []
        left += [f"postgres {pid}" for pid in _postgres_pids(self.demo_dir)]
        if group is not None and process_group_alive(group):
            os.killpg(group, signal.SIGKILL)
        for pid in _postgres_pids(self.demo_dir):
            os.kill(pid, signal.SIGTERM)
        return left



def _postgres_pids(demo_dir: Path) -> list[int]:
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


def api_get(ui: str, token: str, path: str) -> dict:
    request = urllib.request.Request(ui + path, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def login(ui: str, password: str) -> str:
    body = json.dumps({"username": "admin", "password": password}).encode()
    request = urllib.request.Request(ui + "/auth/token", data=body, method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())["access_token"]


STAGES = [
    ("API server answers", lambda text, states: "Airflow UI:" in text and states is not None),
    ("all runs uploaded", lambda text, states: "participants: all registrations and runs are in" in text),
    ("runs collected", lambda text, states: states and states.get("run_collection") == "success"),
    ("scoring done", lambda text, states: states and states.get("scoring") == "success"),
    ("results approval waiting", lambda text, states: states and states.get("approval") in ("awaiting_input", "deferred")),
]


def dag_states(ui: str, token: str, campaign_id: str) -> dict[str, str]:
    states = {}
    for run in api_get(ui, token, f"/api/v2/dags/~/dagRuns?dag_id_pattern={campaign_id}_%25&limit=200")["dag_runs"]:
        states.setdefault(run["dag_id"].removeprefix(campaign_id + "_"), run["state"])
    runs = api_get(ui, token, f"/api/v2/dags/{campaign_id}_results/dagRuns?limit=5")["dag_runs"]
    for run in runs:
        for ti in api_get(ui, token, f"/api/v2/dags/{campaign_id}_results/dagRuns/{run['dag_run_id']}/taskInstances")["task_instances"]:
            if ti["task_id"] == "approve_publication":
                states["approval"] = ti["state"]
    return states


def every_run_scored(demo: "Demo", campaign: Path) -> list[str]:
    from include.campaign import evaluation
    from include.campaign.config import load_campaign
    from include.campaign.context import CampaignContext
    from include.campaign.mail import SmtpSettings

    store = ObjectStore(S3Settings(bucket=BUCKET, endpoint_url=f"http://127.0.0.1:{demo.s3_port}", access_key_id=DEMO_ACCESS_KEY, secret_access_key=DEMO_SECRET_KEY))
    ctx = CampaignContext(load_campaign(demo.demo_dir / "campaigns" / campaign.name), store, SmtpSettings(host="127.0.0.1", port=9))
    problems = []
    for task_id in TASKS:
        collected = store.get_json(ctx.layout.collection_manifest(task_id))["collected"]
        evaluation = store.get_json(ctx.layout.evaluations(task_id, evaluation.latest_version(ctx, task_id)) + evaluation.EVALUATION_FILE)
        if {(r["team"], r["run"]) for r in evaluation["runs"]} != {(r["team"], r["run"]) for r in collected} or evaluation["missing"]:
            problems.append(f"{task_id}: {len(collected)} collected, {len(evaluation['runs'])} evaluated, missing {evaluation['missing']}")
    return problems


def main(argv: list[str] | None = None) -> int:
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-minutes", type=float, default=20)
    parser.add_argument("--burners", type=int, default=os.cpu_count() or 2, help="busy-looping processes (0: the machine as it is)")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="demo-under-load-"))
    campaign = small_campaign(work)
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; {args.burners} burner(s); output in {work}", flush=True)
    with LoadedMachine(args.burners):
        demo = Demo(campaign, work / "demo")
        started, reached, token = time.monotonic(), {}, None
        ui = f"http://127.0.0.1:{demo.ui_port}"
        try:
            while time.monotonic() - started < args.max_minutes * 60 and demo.process.poll() is None and len(reached) < len(STAGES):
                time.sleep(5)
                text, states = demo.text(), None
                password = demo.password()
                if password:
                    try:
                        token = token or login(ui, password)
                        states = dag_states(ui, token, "imageclef2025")
                    except OSError:
                        states = None
                for name, test in STAGES:
                    if name not in reached and test(text, states):
                        reached[name] = time.monotonic() - started
                        print(f"{reached[name]:7.0f} s  {name}  (load {os.getloadavg()[0]:.1f})", flush=True)
            text = demo.text()
            failed = "demo stopped" in text
            problems = every_run_scored(demo, campaign) if "results approval waiting" in reached else []
        finally:
            left = demo.stop()
    print(f"stages reached: {len(reached)}/{len(STAGES)} in {time.monotonic() - started:.0f} s; stand-in failure: {failed}; "
          f"runs not scored: {problems or 'none'}; left running after SIGTERM: {left or 'nothing'}")
    if failed:
        print(text[text.index("demo stopped"):][:1000])
    return 0 if len(reached) == len(STAGES) and not failed and not problems and not left else 1


if __name__ == "__main__":
    sys.exit(main())
