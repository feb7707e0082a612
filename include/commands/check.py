"""``check CONFIG``: validate a campaign file and print a one-screen summary (exit 0) or every error (exit 2)."""
from __future__ import annotations

import argparse

from include.campaign.timeline import own_zone_text
from include.commands._campaign_file import load_or_explain


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("check", help="check a campaign file and summarise it")
    parser.add_argument("config", help="the campaign file (YAML)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    campaign = load_or_explain(args.config)
    if campaign is None:
        return 2
    print(summary(campaign))
    return 0


def summary(campaign) -> str:
    lines = [
        f"{campaign.name} ({campaign.id}): OK",
        f"lab: {campaign.lab}",
        f"time zone: {campaign.timezone}; {len(campaign.organizers)} organizers; contact {campaign.contact_email}",
        f"registration: {own_zone_text(campaign.milestone_time('registration_opens'))} to {own_zone_text(campaign.milestone_time('registration_closes'))}",
        f"run deadline: {own_zone_text(campaign.milestone_time('run_deadline'))}; results: {own_zone_text(campaign.milestone_time('results_release'))}",
        f"{len(campaign.tasks)} tasks:",
    ]
    width = max(len(task.id) for task in campaign.tasks)
    for task in campaign.tasks:
        overrides = [name for name, value in task.schedule.model_dump().items() if value is not None]
        extra = f"; own dates: {', '.join(overrides)}" if overrides else ""
        agreement = "; signed agreement" if task.requires_agreement else ""
        lines.append(
            f"  {task.id:<{width}}  {task.run_format:<26} primary {task.primary_metric} "
            f"(+{len(task.metrics) - 1}); {task.runs_allowed} runs{agreement}{extra}"
        )
    return "\n".join(lines)
