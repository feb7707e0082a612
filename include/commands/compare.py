"""``compare --task T --gold G RUN_A RUN_B``: is run A significantly better than run B on the same items?

Participants compare two of their development runs; organizers check a pair of official runs.
Both runs are validated and scored with ``include.campaign.evaluation.evaluate`` (the official code),
then compared on the task's primary metric (``--metric`` for another one) with the tests the
leaderboards use (``include/campaign/significance.py``): a paired randomization test, a paired
bootstrap test with the interval of the difference, each run's bootstrap interval, and for
metrics with a per-item form Student's paired t-test. Output: JSON on stdout.

Exit codes: 0 compared, 1 a run is invalid (its validation report goes to stderr), 2 a usage or
configuration error (unknown task or metric, missing file, a metric not computed, no common items).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from include.commands.score import DEFAULT_CAMPAIGN, find_task


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare", help="score two runs on the same gold and test whether they differ significantly",
        description="Validate and score two runs, then compare them on one metric with a paired randomization "
                    "test, a paired bootstrap test and bootstrap intervals; print JSON "
                    "(exit 0 compared, 1 invalid run, 2 usage or configuration error).")
    parser.add_argument("--task", required=True, help="a task id of the campaign file")
    parser.add_argument("--gold", required=True, help="the task's gold folder (as for the score command)")
    parser.add_argument("run_a", metavar="RUN_A", help="the first run file")
    parser.add_argument("run_b", metavar="RUN_B", help="the second run file")
    parser.add_argument("--metric", help="the metric to compare on (default: the task's primary metric)")
    parser.add_argument("--resamples", type=int, default=None, help="resamples for each test (default: 10000)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: the leaderboards' seed)")
    parser.add_argument("--alpha", type=float, default=None, help="significance level (default: 0.05)")
    parser.add_argument("--config", default=str(DEFAULT_CAMPAIGN), help="the campaign file (default: %(default)s)")
    parser.set_defaults(handler=run)


class CompareError(ValueError):
    """A usage or configuration problem; exit code 2."""


class InvalidRun(ValueError):
    """A run failed validation; the message is its report; exit code 1."""


def run(args: argparse.Namespace) -> int:
    try:
        print(json.dumps(compare(args), indent=2, ensure_ascii=False))
    except InvalidRun as error:
        print(str(error), end="" if str(error).endswith("\n") else "\n", file=sys.stderr)
        return 1
    except CompareError as error:
        print(f"compare: {error}", file=sys.stderr)
        return 2
    return 0


def compare(args: argparse.Namespace) -> dict:
    from include.campaign import significance as stats
    from include.metrics.registry import get_metric

    try:
        campaign, task = find_task(args.config, args.task)
    except ValueError as error:
        raise CompareError(str(error)) from None
    metric = args.metric or task.primary_metric
    if metric not in task.metrics:
        raise CompareError(f"task {task.id} has no metric {metric!r}; its metrics: {', '.join(task.metrics)}")
    settings = _settings(args, stats)
    form = get_metric(metric).corpus_statistic or stats.MEAN
    try:
        stats.rule_for(form)
    except stats.StatisticsError as error:
        raise CompareError(f"{metric}: {error}; compare on another metric with --metric") from None
    if not Path(args.gold).is_dir():
        raise CompareError(f"gold folder {args.gold} not found")
    scored = {label: _score(campaign, task, path, args.gold, metric, form) for label, path in (("a", args.run_a), ("b", args.run_b))}
    (a, b), items = _aligned(scored, stats)
    return _document(task, metric, form, scored, a, b, items, settings, stats)


def _settings(args, stats) -> dict:
    settings = {"resamples": stats.DEFAULT_RESAMPLES if args.resamples is None else args.resamples,
                "seed": stats.DEFAULT_SEED if args.seed is None else args.seed,
                "alpha": stats.DEFAULT_ALPHA if args.alpha is None else args.alpha, "level": stats.DEFAULT_LEVEL}
    if settings["resamples"] < 1:
        raise CompareError("--resamples must be at least 1")
    if not 0 < settings["alpha"] < 1:
        raise CompareError("--alpha must be between 0 and 1")
    return settings


def _score(campaign, task, run_path: str, gold: str, metric: str, form: str) -> dict:
    """One run's value and item data (per-item scores or corpus components) for ``metric``."""
    import io

    import pandas as pd

    from include.campaign import significance as stats
    from include.campaign.context import Settings
    from include.campaign.evaluation import ScoringError, evaluate, per_item_csv

    if not Path(run_path).is_file():
        raise CompareError(f"run file {run_path} not found")
    try:
        evaluation = evaluate(task, run_path, gold, campaign.task_run_limits(task), model_dir=Settings.from_env().model_dir)
    except ScoringError as error:
        raise CompareError(str(error)) from None
    if evaluation.verdict == "invalid":
        raise InvalidRun(f"{run_path} is invalid:\n{evaluation.text}")
    if evaluation.verdict != "valid":
        raise CompareError(f"{run_path}: {evaluation.reason or 'the run could not be scored'}")
    result = evaluation.results[metric]
    if result.value is None:
        raise CompareError(f"{run_path}: {metric} {result.not_computed or 'was not computed'}")
    table = pd.read_csv(io.StringIO(per_item_csv(evaluation.results)), index_col="item", dtype={"item": str})
    data = stats.item_data(table, metric, form)
    why = "it has no per-item scores" if data is None or data.empty else stats.check_value(data.to_numpy(dtype=float), form, float(result.value))
    if why:
        raise CompareError(f"{run_path}: {metric} cannot be tested: {why}")
    return {"path": run_path, "value": float(result.value), "data": data}


def _aligned(scored: dict, stats) -> tuple[list, list[str]]:
    try:
        return stats.align([scored["a"]["data"], scored["b"]["data"]])
    except stats.StatisticsError as error:
        raise CompareError(str(error)) from None


def _document(task, metric, form, scored, a, b, items, settings, stats) -> dict:
    """The printed JSON: both values and intervals, the tests, and a one-line verdict."""
    resamples, seed, alpha, level = settings["resamples"], settings["seed"], settings["alpha"], settings["level"]
    low, high = stats.percentile_interval(stats.bootstrap_values([a, b], form, resamples, seed), level)
    permutation = stats.paired_permutation_test(a, b, form, resamples, seed)
    bootstrap = stats.paired_bootstrap_test(a, b, form, resamples, seed, level)
    tests = {"permutation": permutation.to_dict(), "bootstrap": bootstrap.to_dict()}
    if form == stats.MEAN:
        tests["t_test"] = stats.paired_t_test(a, b).to_dict()
    spec_higher = _higher_is_better(metric)
    better = "a" if (permutation.difference > 0) == spec_higher else "b"
    significant = permutation.p_value < alpha
    verdict = (f"run {better.upper()} is significantly better on {metric} (paired randomization test, p = {permutation.p_value:.4g} < {alpha})"
               if significant and permutation.difference != 0 else
               f"no significant difference on {metric} (paired randomization test, p = {permutation.p_value:.4g} >= {alpha})")
    return {
        "task": task.id, "metric": metric, "higher_is_better": spec_higher,
        "form": form, "items": len(items),
        "runs": {label: {"file": scored[label]["path"], "value": stats.value_of(data, form),
                         "interval": [float(low[i]), float(high[i])]}
                 for i, (label, data) in enumerate((("a", a), ("b", b)))},
        "difference": permutation.difference, "tests": tests, "significant": bool(significant and permutation.difference != 0),
        "verdict": verdict,
        "settings": {**settings, "interval": "percentile bootstrap of items", "note": "the value is computed on the items both runs share"},
    }


def _higher_is_better(metric: str) -> bool:
    from include.metrics.registry import get_metric

    return get_metric(metric).higher_is_better
