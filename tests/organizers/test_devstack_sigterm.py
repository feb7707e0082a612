"""SIGTERM to the devstack stops Airflow standalone and every process it started."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from devtools.devstack import process_group_alive

PROJECT_ROOT = Path(__file__).resolve().parents[2]



def test_sigterm_stops_airflow_standalone_and_its_process_group(tmp_path):
    environment = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    command = [sys.executable, "-m", "devtools.devstack", "--no-demo", "--demo-dir", str(tmp_path / "demo"), "--database-url", f"sqlite:///{tmp_path / 'airflow.db'}"]
    stack = subprocess.Popen(command, cwd=PROJECT_ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    group = None
    try:
        deadline = time.monotonic() + 120
        while group is None and time.monotonic() < deadline:
            line = stack.stdout.readline()
            if not line:
                break
            match = re.search(r"airflow standalone: process group (\d+)", line)
            group = int(match.group(1)) if match else None
        assert group is not None, "the devstack never started Airflow standalone"
        time.sleep(3)
        stack.send_signal(signal.SIGTERM)
        assert stack.wait(timeout=60) == 0
        for _ in range(40):
            if not process_group_alive(group):
                break
            time.sleep(0.5)
        assert not process_group_alive(group), "Airflow standalone's process group outlived the devstack"
    finally:
        if stack.poll() is None:
            stack.kill()
        if group is not None and process_group_alive(group):
            os.killpg(group, signal.SIGKILL)
