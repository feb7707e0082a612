"""``score --task TASK --run FILE --gold DIR``: validate one run, score it, print the scores as JSON.

Participants score their development runs with it; organizers re-check one run. It shares
``include.campaign.evaluation.evaluate`` with the scoring DAG, so the numbers are the official
ones. Output: ``{"task", "primary", "metrics": {name: value or null}}`` plus, when a metric
could not be computed, ``"not_computed": {name: reason}``. ``--per-item FILE`` also writes
the per-item values as CSV (one row per item, one column per metric).

Exit codes: 0 scored, 1 the run is invalid (the validation report goes to stderr), 2 a usage
or configuration error (unknown task, missing file, broken campaign or gold file).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

DEFAULT_CAMPAIGN = Path(__file__).resolve().parents[1] / "campaigns" / "imageclef2025.yaml"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "score", help="validate a run, then score it with its task's metrics and print JSON",
        description="Validate then score one run; print the scores as JSON "
                    "(exit 0 scored, 1 invalid run, 2 usage or configuration error).")
    parser.add_argument("--task", required=True, help="a task id of the campaign file")
    parser.add_argument("--run", required=True, help="the run file (zip, CSV, JSON or JSONL as the task expects)")
    parser.add_argument("--gold", required=True, help="the task's gold folder (e.g. concepts.csv, concepts_manual.csv)")
    parser.add_argument("--per-item", dest="per_item", help="also write the per-item values to this CSV file")
    parser.add_argument("--config", default=str(DEFAULT_CAMPAIGN), help="the campaign file (default: %(default)s)")
    parser.add_argument("--model-dir", dest="model_dir", help="where model metrics find their weights, <dir>/<model> "
                        "(default: CLEF_MODEL_DIR; `models CONFIG` lists them)")
    parser.set_defaults(handler=run)


def usage_error(message: str) -> int:
    print(f"score: {message}", file=sys.stderr)
    return 2


def find_task(config_path: str, task_id: str):
    """(campaign, task) from the campaign file; ``ValueError`` says what is wrong."""
    from include.campaign.config import ConfigError, load_campaign

    try:
        campaign = load_campaign(config_path)
    except ConfigError as error:
        raise ValueError(error.render()) from None
    task = next((t for t in campaign.tasks if t.id == task_id), None)
    if task is None:
        raise ValueError(f"no task {task_id!r} in {config_path}; tasks: {', '.join(t.id for t in campaign.tasks)}")
    return campaign, task


def scores_document(task, results) -> dict:
    """The printed JSON: every metric's exact value (null when not computed) and the reasons."""
    metrics, not_computed, breakdowns = {}, {}, {}
    for name, result in results.items():
        value = result.value
        if value is not None and not math.isfinite(float(value)):
            value = None
        metrics[name] = None if value is None else float(value)
        if metrics[name] is None:
            not_computed[name] = result.not_computed or "not computed: the metric returned no finite value"
        if result.breakdown:
            breakdowns[name] = {key: float(v) for key, v in result.breakdown.items()}
    document = {"task": task.id, "primary": task.primary_metric, "metrics": metrics}
    if not_computed:
        document["not_computed"] = not_computed
    if breakdowns:
        document["breakdown"] = breakdowns
    return document


def run(args: argparse.Namespace) -> int:
    from include.campaign.context import Settings
    from include.campaign.evaluation import ScoringError, evaluate, per_item_csv

    try:
        campaign, task = find_task(args.config, args.task)
    except ValueError as error:
        return usage_error(str(error))
    if not Path(args.run).is_file():
        return usage_error(f"run file {args.run} not found")
    if not Path(args.gold).is_dir():
        return usage_error(f"gold folder {args.gold} not found")
    try:
        evaluation = evaluate(task, args.run, args.gold, campaign.task_run_limits(task),
                              model_dir=getattr(args, "model_dir", None) or Settings.from_env().model_dir)
    except ScoringError as error:
        return usage_error(str(error))
    if evaluation.verdict == "invalid":
        print(evaluation.text, end="" if evaluation.text.endswith("\n") else "\n", file=sys.stderr)
        return 1
    if evaluation.verdict != "valid":
        return usage_error(evaluation.reason or "the run could not be scored")
    print(json.dumps(scores_document(task, evaluation.results), indent=2, ensure_ascii=False))
    if args.per_item:
        try:
            Path(args.per_item).write_text(per_item_csv(evaluation.results), encoding="utf-8")
        except OSError as error:
            return usage_error(f"cannot write {args.per_item}: {error.strerror}")
    return 0
