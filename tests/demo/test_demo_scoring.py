"""Every valid demo run scores with the CPU metrics; the perfect run gets the best possible value of
the task's primary CPU metric, the tie is a tie, and quality orders the runs as intended."""
from __future__ import annotations

import pytest

from include.metrics import METRICS, score_run

from .conftest import campaign_task_ids

# METEOR's fragmentation penalty keeps even an identical sentence below the metric's upper bound
# (0.5 * (1 / matched words) ** 3 is always subtracted), so there "best" means better than every other run.
BOUND_NOT_REACHABLE = {"vqa_meteor", "picto_meteor"}


def cpu_metrics(task) -> list[str]:
    return [name for name in task.metrics if METRICS[name].needs_model is None]


def best_possible(metric: str) -> float:
    spec = METRICS[metric]
    return spec.value_range[1] if spec.higher_is_better else spec.value_range[0]


def is_better(metric: str, first: float, second: float) -> bool:
    return first > second if METRICS[metric].higher_is_better else first < second


@pytest.fixture(scope="module")
def scores(campaign, validated_runs):
    """task id -> [(run, {metric: MetricResult})] for the valid runs, CPU metrics only."""
    cache: dict = {}

    def scored(task_id: str):
        if task_id not in cache:
            task = campaign.task(task_id)
            metrics = cpu_metrics(task) or list(task.metrics)
            cache[task_id] = [(run, score_run(task.run_format, metrics, outcome.run, outcome.gold))
                              for run, outcome in validated_runs(task_id) if outcome.run is not None]
        return cache[task_id]

    return scored


def tasks_with_cpu_metrics() -> list[str]:
    from include.campaign.config import load_campaign

    from .conftest import CAMPAIGN_FILE

    return [task.id for task in load_campaign(CAMPAIGN_FILE).tasks if cpu_metrics(task)]


@pytest.mark.parametrize("task_id", campaign_task_ids())
def test_every_valid_run_is_scored(task_id, campaign, scores, validated_runs):
    task = campaign.task(task_id)
    results = scores(task_id)
    assert [run for run, _ in results] == [run for run in (r for r, _ in validated_runs(task_id)) if run.expect_valid]
    for run, metrics in results:
        assert list(metrics) == (cpu_metrics(task) or list(task.metrics))
        for name, result in metrics.items():
            where = f"{task_id} {run.team}/{run.run_name}: {name}"
            if METRICS[name].needs_model is None:
                assert result.computed and result.value is not None, f"{where} {result.not_computed}"
            else:  # a task scored only by models (synthesis): a reason, never a number standing in for one
                assert result.value is None and result.not_computed.startswith("not computed"), where


@pytest.mark.parametrize("task_id", tasks_with_cpu_metrics())
def test_the_perfect_run_is_best_and_the_tie_is_a_tie(task_id, campaign, scores):
    primary = cpu_metrics(campaign.task(task_id))[0]
    by_role: dict[str, list[float]] = {}
    for run, result in scores(task_id):
        by_role.setdefault(run.role, []).append(result[primary].value)
    (perfect,) = by_role.pop("perfect")
    others = [value for values in by_role.values() for value in values]
    assert all(is_better(primary, perfect, value) or value == perfect for value in others), (primary, perfect, by_role)
    if primary in BOUND_NOT_REACHABLE:
        assert all(is_better(primary, perfect, value) for value in others), (primary, perfect, by_role)
    else:
        assert perfect == pytest.approx(best_possible(primary), abs=1e-12), f"{task_id}: {primary} of the perfect run"
    assert by_role["good"] == by_role["tie"], f"{task_id}: the tie on {primary} is broken: {by_role}"
    assert is_better(primary, perfect, by_role["good"][0]), f"{task_id}: the good run matches the perfect one"

