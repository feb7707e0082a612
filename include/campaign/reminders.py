"""Working-notes reminders: e-mail every team that had a run collected, naming its tasks and the dates.

Reminder names come from :func:`include.campaign.timeline.reminder_events`:
``working_notes_deadline_minus_<N>d``, ``notification`` and ``camera_ready_minus_<N>d``. The teams
are read from the collection manifests (``collected/<task>/manifest.json``) of the tasks the
reminder concerns, so a team that submitted nothing is not reminded.
"""
from __future__ import annotations

import re
from typing import Any

from include.campaign.context import CampaignContext
from include.campaign.teams import Notices, local_and_utc_text, load_team, task_dates, utc_stamp

_NAME = re.compile(r"^(?:(working_notes_deadline|camera_ready)_minus_(\d+)d|(notification))$")
REMINDER_DATES = ("working_notes_deadline", "notification", "camera_ready", "conference_start", "conference_end")


def parse_reminder(name: str) -> tuple[str, int]:
    """(milestone, days before it) of a reminder name; ``ValueError`` says which names exist."""
    match = _NAME.match(name or "")
    if match is None:
        raise ValueError(
            f"unknown reminder {name!r}: expected working_notes_deadline_minus_<days>d, notification, or camera_ready_minus_<days>d"
        )
    if match.group(3):
        return "notification", 0
    return match.group(1), int(match.group(2))


def teams_with_runs(ctx: CampaignContext, task_ids: list[str]) -> tuple[dict[str, list[str]], list[str]]:
    """team id → its tasks (in campaign order) with at least one collected run; and tasks with no manifest."""
    tasks_by_team: dict[str, list[str]] = {}
    not_collected = []
    for task_id in task_ids:
        key = ctx.layout.collection_manifest(task_id)
        if ctx.store.head(key) is None:
            not_collected.append(task_id)
            continue
        for team_id in sorted({entry["team"] for entry in ctx.store.get_json(key)["collected"]}):
            tasks_by_team.setdefault(team_id, []).append(task_id)
    return dict(sorted(tasks_by_team.items())), not_collected


def send(ctx: CampaignContext, reminder_name: str, task_ids: list[str]) -> dict[str, Any]:
    """E-mail one reminder to every team with a collected run in ``task_ids``; each team once."""
    milestone, days = parse_reminder(reminder_name)
    campaign = ctx.campaign
    tasks = [campaign.task(task_id) for task_id in task_ids]
    target = min(campaign.milestone_time(milestone, task.id) for task in tasks)
    tasks_by_team, not_collected = teams_with_runs(ctx, [task.id for task in tasks])
    notices = Notices(ctx, task_ids=tuple(task_ids))
    reminded, missing = [], []
    for team_id, team_tasks in tasks_by_team.items():
        team = load_team(ctx, team_id)
        if team is None:
            missing.append(team_id)
            continue
        listing = [{"task": campaign.task(task_id), "dates": task_dates(campaign, task_id, REMINDER_DATES)} for task_id in team_tasks]
        if notices.send("reminder", f"{reminder_name}.{utc_stamp(target)}.{team_id}", team["contact_email"],
                        team=team, tasks=listing, reminded_milestone=milestone, days=days, target=local_and_utc_text(campaign, target)):
            reminded.append(team_id)
    notices.raise_if_failed(f"reminder {reminder_name}")
    return {"reminder": reminder_name, "tasks": list(task_ids), "teams": reminded, "teams_without_record": missing, "tasks_not_collected": not_collected, "mail": notices.summary()}
