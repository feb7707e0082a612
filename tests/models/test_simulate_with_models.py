"""End to end: ``simulate`` with a model directory of small models ranks every one of the eleven tasks.

The directory is built by ``python -m devtools.tiny_models`` in its own process (the shipped MiniLM,
tiny random CLIP, RoBERTa and BLEURT models, a tiny MedCAT pack); the replay then runs every DAG of ImageCLEF 2025.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from include.campaign.config import load_campaign

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "include" / "campaigns" / "imageclef2025.yaml"


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("simulate-models")
    environ = {**os.environ, "PYTHONPATH": str(ROOT)}
    built = subprocess.run([sys.executable, "-m", "devtools.tiny_models", str(workdir / "models")], cwd=ROOT, env=environ,
                           capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-3000:]
    report_path = workdir / "report.json"
    result = subprocess.run([sys.executable, "-m", "devtools.simulate", str(CONFIG), "--workdir", str(workdir / "run"),
                             "--report", str(report_path), "--model-dir", str(workdir / "models")],
                            cwd=ROOT, env=environ, capture_output=True, text=True, timeout=1800)
    return {"result": result, "report": json.loads(report_path.read_text()) if report_path.exists() else None}


def test_every_task_is_ranked_by_its_primary_metric(simulated):
    result, report = simulated["result"], simulated["report"]
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for task in load_campaign(CONFIG).tasks:
        board = report["leaderboards"][task.id]
        ranked = [row for row in board["rows"] if row["status"] == "ranked"]
        assert board["ranked_by"] == task.primary_metric, (task.id, board.get("note"))
        assert ranked and all(row["metrics"][task.primary_metric] is not None for row in ranked), task.id
        assert f"{task.id}: ranked by {task.primary_metric}" in result.stdout
    assert report["mail_by_purpose"]["results"] > 0
