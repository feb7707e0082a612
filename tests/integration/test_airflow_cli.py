"""What an organizer sees from Airflow's own command line on this project."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.airflow
STAGES = ("registration", "data_release", "run_collection", "working_notes")


def _airflow(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CLEF_CAMPAIGNS_DIR"}
    airflow = Path(sys.executable).with_name("airflow")
    return subprocess.run([str(airflow), *args], env=env, capture_output=True, text=True, timeout=600)


def test_dags_list_shows_the_imageclef2025_stage_dags_with_their_next_run_dates(airflow_home):
    serialized = _airflow("dags", "reserialize")
    assert serialized.returncode == 0, serialized.stderr[-2000:]
    listed = _airflow("dags", "list", "-o", "json", "--columns", "dag_id,next_dagrun_logical_date")
    assert listed.returncode == 0, listed.stderr[-2000:]
    rows = json.loads(next(line for line in listed.stdout.splitlines() if line.startswith("[")))
    next_runs = {row["dag_id"]: row["next_dagrun_logical_date"] for row in rows}
    for stage in STAGES:
        assert next_runs.get(f"imageclef2025_{stage}"), (stage, next_runs)
    # a late deployment starts from the first milestone it missed
    assert next_runs["imageclef2025_registration"].startswith("2024-12-20 00:00:00")
    assert next_runs["imageclef2025_data_release"].startswith("2025-01-24 00:00:00")
    assert next_runs["imageclef2025_run_collection"].startswith("2025-05-10 23:59:59")
    # the 15-minute intake has no catch-up (closing runs a final intake): its 2025 window is over
    assert "imageclef2025_registration_intake" in next_runs and next_runs["imageclef2025_registration_intake"] is None
