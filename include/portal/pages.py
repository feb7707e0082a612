"""What each page shows, gathered from the campaign file and the object store (no HTML here).

A team sees only its own objects: every key comes from ``Layout`` with the signed-in team's id,
never from the request. Scores and ranks appear only once a task's results are published.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from include.campaign import results, submission_check
from include.campaign.config import MILESTONE_LABELS
from include.campaign.context import CampaignContext
from include.campaign.layout import SPLITS
from include.campaign.release import SPLIT_LABELS, release_record, run_names
from include.campaign.evaluation.records import LEADERBOARD_EXPORTS
from include.campaign.teams import agreement_status, local_and_utc_text, may_receive_data

PUBLIC_DATES = ("registration_opens", "registration_closes", "dev_data_release", "test_data_release", "run_deadline", "results_release")


@dataclass(frozen=True)
class Moment:
    """A date as the page shows it: the campaign's zone (text) and ISO UTC for the visitor's zone."""

    label: str
    campaign_text: str
    iso_utc: str
    past: bool


def moment(ctx: CampaignContext, milestone: str, task_id: str) -> Moment:
    when = ctx.campaign.milestone_time(milestone, task_id)
    return Moment(MILESTONE_LABELS[milestone], local_and_utc_text(ctx.campaign, when), when.astimezone(dt.timezone.utc).isoformat(), when <= ctx.now())


def zone_note(ctx: CampaignContext) -> str:
    zone = ctx.campaign.timezone
    if zone in ("Etc/GMT+12",):
        return f"{zone} (Anywhere on Earth, UTC-12)"
    return zone


def test_phase(ctx: CampaignContext, task_id: str) -> bool:
    campaign = ctx.campaign
    return campaign.milestone_time("test_data_release", task_id) <= ctx.now() <= campaign.milestone_time("run_deadline", task_id)


def public_board(ctx: CampaignContext, task_id: str) -> dict[str, Any] | None:
    """The published leaderboard of a task, or None before publication."""
    if results.published(ctx, task_id) is None:
        return None
    return ctx.store.get_json_or_none(ctx.layout.public_leaderboard(task_id, LEADERBOARD_EXPORTS["json"][0]))


def campaign_page(ctx: CampaignContext) -> dict[str, Any]:
    tasks = []
    for task in ctx.campaign.tasks:
        limits = ctx.campaign.task_run_limits(task)
        tasks.append({
            "task": task,
            "dates": [moment(ctx, name, task.id) for name in PUBLIC_DATES],
            "max_bytes": limits.max_bytes,
            "registration_open": ctx.campaign.milestone_time("registration_opens", task.id) <= ctx.now() <= ctx.campaign.milestone_time("registration_closes", task.id),
            "published": results.published(ctx, task.id) is not None,
        })
    return {"tasks": tasks, "zone": zone_note(ctx), "any_open": any(item["registration_open"] for item in tasks)}


def team_page(ctx: CampaignContext, team: dict[str, Any], files_listed: int) -> dict[str, Any]:
    return {"team": team, "tasks": [_team_task(ctx, team, task_id, files_listed) for task_id in team["tasks"]]}


def _team_task(ctx: CampaignContext, team: dict[str, Any], task_id: str, files_listed: int) -> dict[str, Any]:
    task = ctx.campaign.task(task_id)
    allowed = may_receive_data(ctx, team, task_id)
    splits = []
    for split in SPLITS:
        record = release_record(ctx, task_id, split) if allowed else None
        if record is not None:
            splits.append({"split": split, "label": SPLIT_LABELS[split], "count": len(record["files"]), "files": record["files"][:files_listed]})
    receipts = submission_check.team_receipts(ctx, task_id, team["team_id"])
    checked = {(r["run"], r["version"]) for r in receipts}
    waiting = [{"run": v.key.rsplit("/", 1)[1], "received_at": v.last_modified.isoformat(), "size": v.size}
               for v in ctx.store.list_versions(ctx.layout.submissions(task_id, team["team_id"]))
               if (v.key.rsplit("/", 1)[1], submission_check.version_segment(v.version_id)) not in checked]
    return {
        "task": task,
        "agreement": agreement_status(ctx, team, task_id),
        "allowed": allowed,
        "splits": splits,
        "dates": [moment(ctx, name, task_id) for name in ("test_data_release", "run_deadline", "results_release")],
        "test_phase": allowed and test_phase(ctx, task_id),
        "slots": run_names(task.runs_allowed),
        "max_bytes": ctx.campaign.task_run_limits(task_id).max_bytes,
        "receipts": receipts,
        "waiting": waiting,  # uploads the submission check has not seen yet
        "results": own_results(ctx, task_id, team["team_id"]),
    }


def own_results(ctx: CampaignContext, task_id: str, team_id: str) -> dict[str, Any] | None:
    """The team's rows of the published leaderboard (its runs' scores and ranks), or None before publication."""
    board = public_board(ctx, task_id)
    if board is None:
        return None
    rows = [row for row in board.get("rows", []) if row.get("team") == team_id]
    return {"board": board, "rows": rows, "metrics": [m["name"] for m in board.get("metrics", [])]}
