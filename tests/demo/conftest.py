"""Fixtures for the demo-data tests: the ImageCLEF 2025 campaign, its demo data, and validated runs.

Validation costs a fraction of a second per run, so each task's runs are validated once per
session and shared by the validation and scoring tests.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from include.campaign.config import load_campaign
from devtools.demo import build_demo, write_tree

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CAMPAIGN_FILE = PROJECT_ROOT / "include" / "campaigns" / "imageclef2025.yaml"
SEED = 2025


def campaign_task_ids() -> list[str]:
    """For parametrizing: the tasks of the campaign file, read at collection time."""
    return [task.id for task in load_campaign(CAMPAIGN_FILE).tasks]


@pytest.fixture(scope="session")
def campaign():
    return load_campaign(CAMPAIGN_FILE)


@pytest.fixture(scope="session")
def demo(campaign):
    return build_demo(campaign, seed=SEED)


class ValidatedRuns:
    """Validates each task's runs on first request: run files and gold written to a temp folder."""

    def __init__(self, campaign, demo, root: Path):
        self.campaign, self.demo, self.root = campaign, demo, root
        self.cache: dict[str, list] = {}

    def gold_dir(self, task_id: str) -> Path:
        return self.root / task_id / "gold"

    def __call__(self, task_id: str) -> list:
        """``[(run, ValidationOutcome), ...]`` for the task, in upload order."""
        if task_id not in self.cache:
            from include.campaign.validation import validate_run

            task = self.campaign.task(task_id)
            gold = write_tree(self.demo.gold[task_id], self.gold_dir(task_id))
            outcomes = []
            for run in self.demo.runs[task_id]:
                # Named as the collection stores it: collected/<task>/<team>/<run>, no extension.
                path = self.root / task_id / "collected" / run.team.replace(" ", "_") / run.run_name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(run.data)
                outcomes.append((run, validate_run(task.run_format, path, gold)))
            self.cache[task_id] = outcomes
        return self.cache[task_id]


@pytest.fixture(scope="session")
def validated_runs(campaign, demo, tmp_path_factory):
    return ValidatedRuns(campaign, demo, tmp_path_factory.mktemp("demo-runs"))
