"""``validate --task TASK --run FILE --gold DIR | --inputs PATH``: check one run and print its report.

Participants run the same check on their development runs before they submit (``--gold``: the
development labels they received), and on their test runs with only what was released to them
(``--inputs``: the list of test items, or the folder of released test inputs; see
:func:`include.campaign.submission_check.released_inputs`), as the upload receipt will. Exit codes:
0 the run is valid, 1 it is invalid (the report says why), 2 a usage or configuration error (no
such task, run file or gold folder; a broken campaign file or gold file).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

DEFAULT_CAMPAIGN = Path(__file__).resolve().parents[1] / "campaigns" / "imageclef2025.yaml"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "validate", help="validate a run against its task's format and print the report",
        description="Validate one run file and print its report (exit 0 valid, 1 invalid, 2 usage error).")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--task", help="a task id of the campaign file (its run format and run limits are used)")
    target.add_argument("--format", dest="run_format", help="a run format name, used directly with default limits")
    parser.add_argument("--run", required=True, help="the run file (zip, CSV, JSON or JSONL as the task expects)")
    against = parser.add_mutually_exclusive_group(required=True)
    against.add_argument("--gold", help="the task's gold folder (or, for a development run, the dev gold)")
    against.add_argument("--inputs", help="for a test run: the released test inputs (the list of test items: CSV, JSON or "
                                          "one id per line; or, for formats with public input files, their folder)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON instead of text")
    parser.add_argument("--config", default=str(DEFAULT_CAMPAIGN), help="the campaign file (default: %(default)s)")
    parser.set_defaults(handler=run)


def usage_error(message: str) -> int:
    print(f"validate: {message}", file=sys.stderr)
    return 2


def format_and_limits(args: argparse.Namespace):
    """(run format, RunLimits, the campaign's task or None) for the task or format asked for; raises ValueError when unknown."""
    from include.campaign.validation import RunLimits
    from include.schemas import format_names

    if args.run_format:
        if args.run_format not in format_names():
            raise ValueError(f"unknown run format {args.run_format!r}; known formats: {', '.join(format_names())}")
        return args.run_format, RunLimits(), None
    from include.campaign.config import ConfigError, load_campaign

    try:
        campaign = load_campaign(args.config)
    except ConfigError as error:
        raise ValueError(error.render()) from None
    task = next((t for t in campaign.tasks if t.id == args.task), None)
    if task is None:
        raise ValueError(f"no task {args.task!r} in {args.config}; tasks: {', '.join(t.id for t in campaign.tasks)}")
    return task.run_format, campaign.task_run_limits(task), task


def against(args: argparse.Namespace, run_format: str):
    """The gold folder, or the public test inputs as gold tables; ValueError names what is wrong."""
    if args.inputs:
        from include.campaign.submission_check import released_inputs

        if not Path(args.inputs).exists():
            raise ValueError(f"inputs {args.inputs} not found")
        return released_inputs(run_format, args.inputs)
    if not Path(args.gold).is_dir():
        raise ValueError(f"gold folder {args.gold} not found")
    return args.gold


def run(args: argparse.Namespace) -> int:
    from include.campaign.validation import GoldError, validate_run

    try:
        run_format, limits, task = format_and_limits(args)
    except ValueError as error:
        return usage_error(str(error))
    if not Path(args.run).exists():
        return usage_error(f"run file {args.run} not found")
    try:
        gold = against(args, run_format)
        outcome = validate_run(run_format, args.run, gold, limits,
                               task.id if task else None, task.format_options if task else None)
    except GoldError as error:
        return usage_error(f"{'inputs' if args.inputs else 'gold folder'} problem: {error}")
    except ValueError as error:  # InputsError: inputs that cannot stand in for the gold
        return usage_error(str(error))
    if args.json:
        print(json.dumps(outcome.report, indent=2, ensure_ascii=False))
    else:
        print(outcome.text, end="")
    return 0 if outcome.valid else 1
