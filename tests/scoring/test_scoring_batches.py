"""The scoring DAG's mapped instances: which runs the models queue scores too, and how runs are batched past max_map_length."""
from __future__ import annotations

import math
from pathlib import Path

import pytest

from include.campaign import evaluation
from include.campaign.config import load_campaign
from include.metrics.registry import METRICS
from include.models import parts

CAMPAIGN = load_campaign(Path(__file__).resolve().parents[2] / "include" / "campaigns" / "imageclef2025.yaml")


def runs(count: int, task: str = "gans-detection", per_team: int = 10) -> list[dict]:
    return [{"task": task, "team": f"team-{i // per_team:03d}", "run": f"run-{i % per_team + 1:02d}", "key": f"k{i}"} for i in range(count)]


@pytest.mark.parametrize("task", CAMPAIGN.tasks, ids=lambda task: task.id)
def test_a_task_has_a_model_part_exactly_when_one_of_its_metrics_needs_a_model(task):
    needs_model = any(METRICS[name].needs_model for name in task.metrics)
    assert parts.has_model_part(task) == needs_model
    split = parts.metric_parts(task)
    assert sorted(split["default"] + split["models"]) == sorted(task.metrics)
    assert all(METRICS[name].needs_model for name in split["models"])
    assert not any(METRICS[name].needs_model for name in split["default"])


def test_caption_prediction_has_a_model_part_and_concept_detection_none():
    assert parts.has_model_part(CAMPAIGN.task("caption-prediction"))
    assert not parts.has_model_part(CAMPAIGN.task("caption-concept-detection"))
    assert parts.part_metrics(CAMPAIGN.task("caption-concept-detection"), parts.CPU_PART) == list(CAMPAIGN.task("caption-concept-detection").metrics)


@pytest.mark.parametrize("count, limit, instances", [(1, 256, 1), (25, 256, 1), (49, 256, 1), (50, 256, 2), (300, 256, 12), (10000, 256, 256), (60, 2, 2)])
def test_the_models_queue_scores_at_least_25_runs_per_instance_within_the_limit(count, limit, instances):
    assert parts.model_instances(count, limit) == instances
    batches = evaluation.batches(runs(count), parts.model_instances(count, limit))
    size = math.ceil(count / instances)
    assert len(batches) == math.ceil(count / size) <= limit
    assert all(len(b["runs"]) >= min(count, 25) for b in batches[:-1]) and [i for b in batches for i in b["runs"]] == runs(count)


@pytest.mark.parametrize("count, limit, size", [(1, 256, 1), (256, 256, 1), (257, 256, 2), (300, 256, 2), (1024, 256, 4), (5000, 256, 20), (5000, 1024, 5), (7, 3, 3)])
def test_batches_keep_every_run_once_in_order_within_the_limit(count, limit, size):
    items = runs(count)
    batches = evaluation.batches(items, limit)
    assert len(batches) <= limit and len(batches) == math.ceil(count / size)
    assert all(len(b["runs"]) == size for b in batches[:-1]) and 1 <= len(batches[-1]["runs"]) <= size
    assert [item for b in batches for item in b["runs"]] == items


def test_a_batch_is_labelled_with_its_first_and_last_run():
    single, = evaluation.batches(runs(1), 256)
    assert single["label"] == "gans-detection: team-000/run-01"
    first = evaluation.batches(runs(50), 5)[0]
    assert first["label"] == "gans-detection: team-000/run-01 … team-000/run-10 (10 runs)"
    mixed = evaluation.batches(runs(2) + runs(2, task="caption-concept-detection"), 1)[0]
    assert mixed["label"] == "gans-detection: team-000/run-01 … caption-concept-detection: team-000/run-02 (4 runs)"


def test_no_runs_no_batches():
    assert evaluation.batches([], 256) == []


def test_the_instance_limit_never_exceeds_max_map_length_and_refuses_nonsense():
    assert evaluation.max_instances(1024) == evaluation.DEFAULT_MAX_INSTANCES == 16
    assert evaluation.max_instances(1024, "2000") == 1024
    assert evaluation.max_instances(100, "256") == 100
    assert evaluation.max_instances(8) == 8
    assert evaluation.max_instances(1024, "") == 16
    with pytest.raises(evaluation.ScoringError, match="at least 1"):
        evaluation.max_instances(1024, "0")
