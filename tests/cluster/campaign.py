"""The small campaign both cluster replays play: three ImageCLEF 2025 tasks, one needing models, six teams per task.

:func:`write_small_campaign` copies ``include/campaigns/imageclef2025.yaml`` with three of its tasks:
caption concept detection and GANs detection (metrics on the ``default`` queue) and caption
prediction (BERTScore and other model metrics: the ``models`` queue). The demo data of
:mod:`devtools.demo` gives each task runs from six registered teams.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import yaml

from include.campaign.config import load_campaign

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "include" / "campaigns" / "imageclef2025.yaml"
TASKS = ("caption-concept-detection", "caption-prediction", "gans-detection")
MODEL_TASK = "caption-prediction"


def write_small_campaign(folder: Path) -> Path:
    """The campaign file of the cluster replays, checked like any campaign file."""
    raw = yaml.safe_load(SOURCE.read_text(encoding="utf-8"))
    raw["tasks"] = [task for task in raw["tasks"] if task["id"] in TASKS]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / SOURCE.name
    path.write_text(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True), encoding="utf-8")
    load_campaign(path)
    return path


def live_campaign_copy(source: Path, target_dir: Path, start: dt.datetime, step_seconds: float = 60, tail_seconds: float = 20) -> Path:
    """The demo copy ``make demo`` plays (milestones ``step_seconds`` apart from ``start``), with the
    milestones after the results release ``tail_seconds`` apart: they only send working-notes reminders.

    Results come a step after the run deadline: their DAG waits (a sensor) until scoring is done."""
    from devtools.compressed_calendar import CLOSING
    from devtools.devstack import write_demo_campaign

    path = write_demo_campaign(source, target_dir, start, step_seconds, scoring_minutes=0)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    tail = CLOSING[CLOSING.index("results_release") + 1:]
    for schedule in [data["schedule"], *((task.get("schedule") or {}) for task in data["tasks"])]:
        if schedule.get("results_release") is None:
            continue
        results = dt.datetime.fromisoformat(str(schedule["results_release"]))
        for index, milestone in enumerate(tail, start=1):
            if schedule.get(milestone) is not None:
                schedule[milestone] = (results + dt.timedelta(seconds=tail_seconds * index)).isoformat()
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    load_campaign(path)
    return path
