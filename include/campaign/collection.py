"""Run collection: freeze every team's runs as they stood at the task's deadline, and send receipts.

Participants upload runs with presigned PUT URLs to ``submissions/<task>/<team>/<run>`` in a
versioned bucket, and may overwrite a run as often as they like. At the deadline :func:`collect`
takes, for each (team, run), the newest version whose ``LastModified`` (the store's own clock) is
at or before the deadline, and copies that version to ``collected/<task>/<team>/<run>``. Versions
uploaded later are listed as late and not collected; uploads under a team id that may not take part
in the task are refused, and so is a run larger than the task's ``run_limits.max_bytes`` (from the
listing's size, before a byte of it is read); a team with more runs than the task allows keeps its most recent ones.
``collected/<task>/manifest.json`` records all of it, with sizes and sha256 sums, and contains no
time of its own, so a re-run writes the same bytes. Each team receives a receipt listing exactly
what was collected, late, refused or dropped.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from include.campaign.context import CampaignContext
from include.campaign.layout import UnsafeKeyError
from include.campaign.store import ObjectInfo
from include.campaign.teams import (
    Notices,
    agreement_status,
    approved_teams,
    copy_if_changed,
    local_and_utc_text,
    in_utc,
    load_team,
    put_json_if_changed,
    task_dates,
)


class CollectionError(RuntimeError):
    """The runs of a task cannot be collected now; the message says why and what to do."""


@dataclass(frozen=True)
class Upload:
    team: str
    run: str
    version: ObjectInfo

    @property
    def uploaded_at(self) -> datetime:
        return self.version.last_modified

    def entry(self) -> dict[str, Any]:
        return {"team": self.team, "run": self.run, "key": self.version.key, "size": self.version.size, "uploaded_at": in_utc(self.uploaded_at), "source_version": self.version.version_id}


def collect(ctx: CampaignContext, task_id: str) -> dict[str, Any]:
    """Collect the task's runs at its deadline; returns the manifest plus its key and the mail report."""
    task = ctx.campaign.task(task_id)
    deadline = ctx.campaign.milestone_time("run_deadline", task_id)
    if ctx.now() < deadline:
        raise CollectionError(
            f"{task_id}: the run deadline {local_and_utc_text(ctx.campaign, deadline)} has not passed yet "
            f"(now {local_and_utc_text(ctx.campaign, ctx.now())}); collecting now would miss runs still to come"
        )
    eligible = {team["team_id"]: team for team in approved_teams(ctx, task_id)}
    max_bytes = ctx.campaign.task_run_limits(task).max_bytes  # refused from the listing: never read, hashed or copied
    uploads, malformed = _uploads(ctx, task_id)
    kept, late, refused, dropped = [], [], list(malformed), []
    for (team_id, run), versions in sorted(uploads.items()):
        on_time = [v for v in versions if v.last_modified <= deadline]
        late += [Upload(team_id, run, v).entry() for v in versions if v.last_modified > deadline]
        if team_id not in eligible:
            refused += [dict(Upload(team_id, run, v).entry(), reason=_refusal(ctx, team_id, task_id)) for v in on_time]
        elif on_time and on_time[-1].size > max_bytes:  # versions are oldest first: the last one is the newest
            refused.append(dict(Upload(team_id, run, on_time[-1]).entry(), reason=_size_refusal(on_time[-1].size, max_bytes)))
        elif on_time:
            kept.append(Upload(team_id, run, on_time[-1]))
    kept, dropped = _enforce_limit(kept, task.runs_allowed)
    collected = [_freeze(ctx, task_id, upload) for upload in kept]
    _remove_stale(ctx, task_id, {entry["key"] for entry in collected})
    manifest = {
        "task": task_id,
        "deadline": in_utc(deadline),
        "runs_allowed": task.runs_allowed,
        "collected": collected,
        "late": late,
        "refused": refused,
        "dropped_over_limit": [upload.entry() for upload in dropped],
    }
    manifest_key = ctx.layout.collection_manifest(task_id)
    put_json_if_changed(ctx.store, manifest_key, manifest)
    notices = Notices(ctx)
    receipts = _send_receipts(ctx, task_id, manifest, eligible, notices)
    notices.raise_if_failed(f"run collection of {task_id}")
    return {**manifest, "manifest_key": manifest_key, "receipts": receipts, "mail": notices.summary()}


def _uploads(ctx: CampaignContext, task_id: str) -> tuple[dict[tuple[str, str], list[ObjectInfo]], list[dict[str, Any]]]:
    """Versions by (team, run), oldest first; keys that are not ``<team>/<run>`` are refused."""
    prefix = ctx.layout.submissions(task_id)
    uploads: dict[tuple[str, str], list[ObjectInfo]] = {}
    malformed = []
    for version in ctx.store.list_versions(prefix):
        parts = version.key[len(prefix):].split("/")
        if len(parts) != 2 or not all(parts):
            malformed.append({"team": parts[0], "run": "/".join(parts[1:]), "key": version.key, "size": version.size, "uploaded_at": in_utc(version.last_modified),
                              "source_version": version.version_id, "reason": "not of the form submissions/<task>/<team>/<run>"})
            continue
        uploads.setdefault((parts[0], parts[1]), []).append(version)
    return uploads, malformed


def _refusal(ctx: CampaignContext, team_id: str, task_id: str) -> str:
    try:
        team = load_team(ctx, team_id)
    except UnsafeKeyError:
        team = None
    if team is None:
        return f"no registered team {team_id!r}"
    if task_id not in team["tasks"]:
        return f"team {team_id} is not registered for {task_id}"
    return f"team {team_id}'s user agreement for {task_id} is {agreement_status(ctx, team, task_id)}, not approved"


def _size_refusal(size: int, max_bytes: int) -> str:
    return (f"{size:,} bytes, over this task's size limit of {max_bytes:,} bytes per run (run_limits.max_bytes); "
            "not collected: upload a smaller run before the deadline, or ask the organizers")


def _enforce_limit(kept: list[Upload], runs_allowed: int) -> tuple[list[Upload], list[Upload]]:
    """Per team, the ``runs_allowed`` most recently uploaded runs stay; the rest are dropped."""
    by_team: dict[str, list[Upload]] = {}
    for upload in kept:
        by_team.setdefault(upload.team, []).append(upload)
    stay, dropped = [], []
    for team_id in sorted(by_team):
        newest_first = sorted(by_team[team_id], key=lambda u: (u.uploaded_at, u.run), reverse=True)
        stay += newest_first[:runs_allowed]
        dropped += newest_first[runs_allowed:]
    order = lambda u: (u.team, u.run)  # noqa: E731
    return sorted(stay, key=order), sorted(dropped, key=order)


def _freeze(ctx: CampaignContext, task_id: str, upload: Upload) -> dict[str, Any]:
    target = ctx.layout.collected_run(task_id, upload.team, upload.run)
    copy_if_changed(ctx.store, upload.version.key, target, upload.version.etag, upload.version.version_id)
    return {
        "team": upload.team,
        "run": upload.run,
        "key": target,
        "size": upload.version.size,
        "sha256": ctx.store.sha256(upload.version.key, upload.version.version_id),
        "uploaded_at": in_utc(upload.uploaded_at),
        "source_version": upload.version.version_id,
    }


def _remove_stale(ctx: CampaignContext, task_id: str, wanted: set[str]) -> None:
    """Frozen copies that this collection did not select (left by a run with other settings)."""
    manifest_key = ctx.layout.collection_manifest(task_id)
    for info in list(ctx.store.list_objects(ctx.layout.collected(task_id))):
        if info.key != manifest_key and info.key not in wanted:
            ctx.store.delete(info.key)


def _send_receipts(ctx: CampaignContext, task_id: str, manifest: dict[str, Any], eligible: dict[str, dict[str, Any]], notices: Notices) -> list[str]:
    """Every team of the task, and every registered team whose uploads were refused, gets a receipt."""
    recipients = dict(eligible)
    for entry in manifest["refused"]:
        if entry["team"] not in recipients:
            try:
                team = load_team(ctx, entry["team"])
            except UnsafeKeyError:
                team = None
            if team is not None:
                recipients[entry["team"]] = team
    task = ctx.campaign.task(task_id)
    deadline = local_and_utc_text(ctx.campaign, ctx.campaign.milestone_time("run_deadline", task_id))
    sent = []
    for team_id, team in sorted(recipients.items()):
        mine = {part: [_readable(ctx, e) for e in manifest[part] if e["team"] == team_id] for part in ("collected", "late", "refused", "dropped_over_limit")}
        if notices.send("run-receipt", f"{task_id}.{team_id}", team["contact_email"], team=team, task=task, deadline=deadline, runs_allowed=task.runs_allowed,
                        dates=task_dates(ctx.campaign, task_id, ("results_release", "working_notes_deadline")), **mine):
            sent.append(team_id)
    return sent


def _readable(ctx: CampaignContext, entry: dict[str, Any]) -> dict[str, Any]:
    """A manifest entry with its upload time as participants read it (campaign zone and UTC)."""
    return dict(entry, uploaded=local_and_utc_text(ctx.campaign, datetime.fromisoformat(entry["uploaded_at"])))
