"""``python -m devtools.devstack --rehearse``: BirdVision 2026 replayed live with the organizer's own data (issue 19, item 1).

The live stack (moto, aiosmtpd, Airflow standalone with its own scheduler) plays the campaign of
tests/organizers with the data folder of tests/e2e/test_rehearsal_birdvision.py, milestones two
minutes apart (on a loaded 2-core machine the first intake takes minutes), every DAG unpaused. ``--stand-ins`` uploads the folder's registrations and runs; the test
approves the results through the REST call of docs/organizers.md, then checks the stages the
devstack printed, what each wrote, and the results e-mails. Every wait is bounded; the devstack is
stopped with SIGTERM and its Airflow process group must be gone.
"""
from __future__ import annotations

import email
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from devtools.demo.live import AirflowApi
from devtools.devstack import free_port, process_group_alive
from tests.e2e.test_rehearsal_birdvision import OPTIONS, stage
from tests.organizers.conftest import BIRDVISION

PROJECT_ROOT = Path(__file__).resolve().parents[2]
WHOLE_REHEARSAL_SECONDS = 1500
PENDING = "/api/v2/dags/~/dagRuns/~/hitlDetails?response_received=false"


class Devstack:
    """The devstack's process, its printed lines collected by a thread."""

    def __init__(self, command: list[str], environment: dict[str, str]):
        self.process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self._new: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            self._new.put(line)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, pattern: str, deadline: float) -> re.Match:
        while (match := re.search(pattern, self.text)) is None:
            assert self.process.poll() is None, f"the devstack exited ({self.process.returncode}):\n{self.text[-4000:]}"
            assert time.monotonic() < deadline, f"no {pattern!r} in time:\n{self.text[-4000:]}"
            try:
                self._new.get(timeout=2)
            except queue.Empty:
                pass
        return match

    def stop(self) -> int:
        group = int(re.search(r"airflow standalone: process group (\d+)", self.text).group(1)) if "process group" in self.text else None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=90)
        finally:
            if self.process.poll() is None:
                self.process.kill()
            if group is not None:
                for _ in range(60):
                    if not process_group_alive(group):
                        break
                    time.sleep(0.5)
                if process_group_alive(group):
                    os.killpg(group, signal.SIGKILL)
                    raise AssertionError("Airflow standalone's process group outlived the devstack")
        return code


def approve_results(api: AirflowApi, deadline: float, stack: Devstack) -> int:
    """PATCH .../hitlDetails with Approve, as docs/organizers.md says, each time the results run waits,
    until the devstack prints that it succeeded: on a loaded machine Airflow may lose the approved
    try's end and ask again in a new try, and an organizer then approves again. Returns the approvals given."""
    given = 0
    while not re.search(r"birdvision2026_results\s+scheduled\s+success", stack.text):
        assert stack.process.poll() is None and time.monotonic() < deadline, f"the results never succeeded:\n{stack.text[-4000:]}"
        for detail in api._call("listing approvals", "GET", PENDING)["hitl_details"]:
            ti = detail["task_instance"]
            if ti["dag_id"] == "birdvision2026_results":
                path = f"/api/v2/dags/{ti['dag_id']}/dagRuns/{ti['dag_run_id']}/taskInstances/{ti['task_id']}/{ti['map_index']}/hitlDetails"
                api._call("approving the results", "PATCH", path, {"chosen_options": ["Approve"], "params_input": {}})
                given += 1
        time.sleep(5)
    return given


def test_the_devstack_rehearses_birdvision_live_with_the_organizer_s_data(tmp_path):
    config = tmp_path / "birdvision2026.yaml"
    config.write_text(BIRDVISION.replace("    metrics: [concept_f1]\n", "    metrics: [concept_f1]\n" + OPTIONS, 1))
    stage(tmp_path / "data")
    port = free_port()
    environment = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "CLEF_DEMO_UI_PORT": str(port)}
    environment.pop("AIRFLOW_HOME", None)
    # the embedded PostgreSQL runs as its own system user: its folder must not be under pytest's private tmp_path
    demo_dir = Path(tempfile.mkdtemp(prefix="clef-rehearse-"))
    demo_dir.chmod(0o755)
    command = [sys.executable, "-m", "devtools.devstack", "--rehearse", str(config), "--data", str(tmp_path / "data"), "--stand-ins",
               "--minutes-apart", "2", "--start-in", "100", "--scoring-minutes", "2", "--demo-dir", str(demo_dir)]
    deadline = time.monotonic() + WHOLE_REHEARSAL_SECONDS
    stack = Devstack(command, environment)
    try:
        password = stack.wait_for(r"user: admin  password: (\S+)", deadline).group(1)
        stack.wait_for(r"the results approval waits for you", deadline)  # printed once the API answers
        assert approve_results(AirflowApi(f"http://127.0.0.1:{port}", "admin", password), deadline, stack) >= 1
        stack.wait_for(r"outbox/results\s+\+\d", deadline)
    finally:
        code = stack.stop()
        print(stack.text)  # shown when the test fails
        mails = [email.message_from_bytes(p.read_bytes()) for p in (demo_dir / "mail").glob("*.eml")]
        shutil.rmtree(demo_dir, ignore_errors=True)
    out = stack.text
    assert code == 0, out[-4000:]
    assert "BirdVision 2026 (rehearsal copy" in out and "rehearsal data: 17 staged, gold and agreement files uploaded" in out
    assert "stand-ins: 2 registration(s)" in out and "participants: 5 run(s) uploaded" in out
    for stage_name in ("registration", "registration_intake", "data_release", "run_collection", "scoring", "results"):
        assert re.search(rf"birdvision2026_{stage_name}\s+\S+\s+success", out), f"{stage_name} never succeeded:\n{out}"
    assert not re.search(r"birdvision2026_\w+\s+\S+\s+failed", out), out
    for written in (r"releases/bird-tags\s+\+\d", r"registrations/teams\s+\+2", r"collected/bird-tags\s+\+\d", r"leaderboards/bird-quiz\s+\+\d"):
        assert re.search(written, out), f"no {written!r} among what the stages wrote:\n{out}"

    results = {m["To"] for m in mails if "results" in (m["Subject"] or "").lower()}
    assert {"wrens@birds.example.org", "owls@birds.example.org"} <= results, sorted(m["Subject"] for m in mails)


def test_a_rehearsal_that_cannot_start_says_why_before_starting_anything(tmp_path, capsys):
    from devtools.devstack import main

    config = tmp_path / "birdvision2026.yaml"
    config.write_text(BIRDVISION)
    demo_dir = tmp_path / "demo"
    assert main(["--rehearse", str(config), "--demo-dir", str(demo_dir)]) == 2
    assert "--rehearse needs --data DIR" in capsys.readouterr().err
    assert main(["--rehearse", str(config), "--data", str(tmp_path), "--demo-dir", str(demo_dir)]) == 2
    assert f"{tmp_path} has no staging/ folder (see docs/organizers.md, Rehearse)" in capsys.readouterr().err
    assert main(["--data", str(tmp_path), "--demo-dir", str(demo_dir)]) == 2
    assert "--data and --stand-ins go with --rehearse CAMPAIGN_FILE" in capsys.readouterr().err
    (tmp_path / "staging").mkdir()
    (tmp_path / "runs" / "bird-tags" / "nobody").mkdir(parents=True)
    (tmp_path / "runs" / "bird-tags" / "nobody" / "run-01").write_bytes(b"ID,CUIs\n")
    assert main(["--rehearse", str(config), "--data", str(tmp_path), "--demo-dir", str(demo_dir)]) == 2
    assert "no registrations/nobody.json for the team of this run" in capsys.readouterr().err
    config.write_text(BIRDVISION.replace("timezone: Europe/Zurich", "timezone: Mars/Olympus"))
    assert main(["--rehearse", str(config), "--data", str(tmp_path), "--demo-dir", str(demo_dir)]) == 2
    assert "Mars/Olympus" in capsys.readouterr().err
    assert not demo_dir.exists(), "nothing started"
