"""``check-staging CONFIG --endpoint URL [--bucket B]``: is the staged data ready for its release dates?

For every task of the campaign file (or those named with ``--task``) and each split, this runs the
checks the release and scoring run, on what is in the bucket now, and changes nothing:

- ``staging/<task>/<split>/MANIFEST.json`` and the staged files, with the release's own
  :func:`include.campaign.release.plan_release` (manifest syntax and fields, files missing,
  unlisted, of another size or sha256);
- files that the release would withhold as ground truth (marked ``ground_truth``, inside a
  ``gold`` folder, or equal to an object under ``gold/<task>/``): staged for release, never published;
- ``gold/<task>/test/``: every gold file the task's run format and metrics need
  (:func:`include.campaign.validation.gold.missing_gold_files`), then read with the validator's
  own loader (:func:`include.campaign.validation.gold.gold_entry`), so a malformed file is named.

Each problem names the object and the fix. Exit codes: 0 the staging is good, 1 problems were
found (all of them are printed), 2 a usage error (broken campaign file, unknown task, store unreachable).
See docs/organizers.md for the layout these checks expect.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "check-staging", help="check the staged data and gold of every task and split against the data contract",
        description="Check the manifests, staged files and gold in the campaign bucket as the release and scoring will "
                    "(exit 0 good, 1 problems found, 2 usage error). See docs/organizers.md.")
    parser.add_argument("config", help="the campaign file (YAML)")
    parser.add_argument("--endpoint", default=os.environ.get("CLEF_S3_ENDPOINT"),
                        help="the S3 endpoint URL (default: $CLEF_S3_ENDPOINT, else AWS S3); credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY")
    parser.add_argument("--bucket", default=os.environ.get("CLEF_BUCKET", "clef-campaign"), help="the campaign bucket (default: $CLEF_BUCKET or %(default)s)")
    parser.add_argument("--task", action="append", dest="tasks", help="check only this task (repeatable)")
    parser.add_argument("--split", choices=("dev", "test"), action="append", dest="splits", help="check only this split (repeatable)")
    parser.set_defaults(handler=run)


@dataclass
class SplitReport:
    """What the checks found for one task's split."""

    task: str
    split: str
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def render(self) -> list[str]:
        head = f"{self.task}/{self.split}: " + (f"{len(self.problems)} problem(s)" if self.problems else "OK")
        return [head] + [f"  - {line}" for line in self.problems] + [f"    {line}" for line in self.notes]


def run(args: argparse.Namespace) -> int:
    from include.commands._campaign_file import load_or_explain

    campaign = load_or_explain(args.config)
    if campaign is None:
        return 2
    unknown = [task for task in args.tasks or [] if task not in campaign.task_ids]
    if unknown:
        print(f"check-staging: no task {', '.join(unknown)} in {args.config}; tasks: {', '.join(campaign.task_ids)}", file=sys.stderr)
        return 2
    from include.campaign.store import StoreError

    try:
        ctx = _context(campaign, args)
        reports = check_campaign(ctx, args.tasks or campaign.task_ids, args.splits or ["dev", "test"])
    except StoreError as error:
        print(f"check-staging: the bucket {args.bucket} cannot be read: {error}", file=sys.stderr)
        return 2
    for report in reports:
        print("\n".join(report.render()))
    problems = sum(len(report.problems) for report in reports)
    print(f"{problems} problem(s) in {sum(1 for r in reports if r.problems)} of {len(reports)} task split(s)" if problems
          else f"staging of {campaign.id} in s3://{args.bucket} is ready ({len(reports)} task split(s) checked)")
    return 1 if problems else 0


def _context(campaign, args):
    from include.campaign.context import CampaignContext
    from include.campaign.mail import SmtpSettings
    from include.campaign.store import ObjectStore, S3Settings

    environ = {name: value for name, value in os.environ.items() if name != "AIRFLOW_CONN_CLEF_S3"}
    environ["CLEF_BUCKET"] = args.bucket
    if args.endpoint:
        environ["CLEF_S3_ENDPOINT"] = args.endpoint
    store = ObjectStore(S3Settings.from_env(environ))
    return CampaignContext(campaign, store, SmtpSettings(host="127.0.0.1"))  # nothing is mailed


def check_campaign(ctx, task_ids: list[str], splits: list[str]) -> list[SplitReport]:
    return [check_split(ctx, task_id, split) for task_id in task_ids for split in splits]


def check_split(ctx, task_id: str, split: str) -> SplitReport:
    report = SplitReport(task_id, split)
    _check_release(ctx, task_id, split, report)
    if split == "test":
        _check_gold(ctx, task_id, report)
    return report


def _check_release(ctx, task_id: str, split: str, report: SplitReport) -> None:
    from include.campaign.release import ReleaseError, plan_release

    try:
        plan = plan_release(ctx, task_id, split)
    except ReleaseError as error:
        lines = str(error).splitlines()
        report.problems += [line.strip() for line in lines[1:]] if len(lines) > 1 else lines
        return
    prefix = ctx.layout.staging(task_id, split)
    for item in plan.withheld:
        report.problems.append(f"{prefix}{item['path']}: ground truth staged for release ({item['reason']}); it would be withheld. "
                               f"{_withheld_fix(ctx, task_id, split, item['reason'])}")
    if not plan.published:
        report.problems.append(f"{prefix}: nothing to release; stage the participants' {split} data")
    report.notes.append(f"{len(plan.published)} file(s) to release, {len(plan.withheld)} withheld")


def _withheld_fix(ctx, task_id: str, split: str, reason: str) -> str:
    if reason.startswith("marked ground_truth"):
        return "Remove it from staging and MANIFEST.json, or set \"ground_truth\": false if participants should get it."
    if reason.startswith("inside a folder named gold"):
        return "Remove it from staging and MANIFEST.json, or stage it under another folder name if participants should get it."
    return (f"Labels participants receive (development labels) go in staging only: delete the gold copy named here "
            f"(gold/ is private); otherwise remove the file from staging and MANIFEST.json.")


def _check_gold(ctx, task_id: str, report: SplitReport) -> None:
    from include.campaign.layout import UnsafeKeyError, relative_path
    from include.campaign.validation.gold import GoldError, gold_entry, missing_gold_files

    task = ctx.campaign.task(task_id)
    prefix = ctx.layout.gold(task_id, "test")
    listing = [info for info in ctx.store.list_objects(prefix) if not info.key.endswith("/")]
    present = [info.key[len(prefix):] for info in listing]
    missing = missing_gold_files(task.run_format, present, task.metrics)
    report.problems += [f"{prefix}{name}: missing; {fix} (the {task.run_format} format, see docs/format-contract.md)" for name, fix in missing]
    if missing or not listing:
        return
    unsafe = []
    with tempfile.TemporaryDirectory(prefix="check-gold-") as folder:
        for info in listing:
            try:
                target = Path(folder) / relative_path(prefix, info.key, "gold object")
            except UnsafeKeyError as error:
                unsafe.append(str(error))
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            ctx.store.download(info.key, str(target))
        report.problems += unsafe
        if unsafe:
            return
        try:
            gold_entry(task.run_format, folder)
        except GoldError as error:
            report.problems.append(f"{prefix}: {str(error).replace(folder + '/', prefix)} (fix the file and upload it again)")
    report.notes.append(f"gold: {len(listing)} file(s) under {prefix}")
