"""``calendar CONFIG``: every milestone of every task in date order, in the campaign's zone and in UTC."""
from __future__ import annotations

import argparse

from include.campaign.timeline import own_zone_text, milestone_events, reminder_events
from include.commands._campaign_file import load_or_explain


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("calendar", help="list every milestone of every task in date order")
    parser.add_argument("config", help="the campaign file (YAML)")
    parser.add_argument("--reminders", action="store_true", help="also list the working-notes reminders")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    campaign = load_or_explain(args.config)
    if campaign is None:
        return 2
    events = milestone_events(campaign)
    if args.reminders:
        events = with_reminders(events, reminder_events(campaign))
    print(f"{campaign.name}: {len(events)} milestones ({campaign.timezone} | UTC)")
    for event in events:
        print(f"{own_zone_text(event.moment)} | {own_zone_text(event.moment_utc)} | {event.label}: {', '.join(event.task_ids)}")
    return 0


def with_reminders(milestones: list, reminders: list) -> list:
    """Milestones and reminders in date order; a reminder on a milestone's own moment and name (the
    notification) is that milestone, listed once."""
    listed = {(event.moment_utc, event.milestone, event.task_ids) for event in milestones}
    extra = [event for event in reminders if (event.moment_utc, event.milestone, event.task_ids) not in listed]
    return sorted(milestones + extra, key=lambda e: e.moment_utc)
