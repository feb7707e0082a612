"""The campaign's timeline: every milestone of every task as a moment in time, in order.

Tasks that share a moment for a milestone are grouped into one event, so one DAG run serves every
task due at that moment. The scheduling DAGs and the ``calendar`` command both read from here.
(Named ``timeline``, not ``calendar``, so that it never shadows the standard library's module.)
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from include.campaign.config import MILESTONE_LABELS, MILESTONES, Campaign

UTC = dt.timezone.utc


@dataclass(frozen=True)
class MilestoneEvent:
    moment: dt.datetime  # aware, in the campaign's time zone
    milestone: str
    task_ids: tuple[str, ...]

    @property
    def label(self) -> str:
        return MILESTONE_LABELS.get(self.milestone, self.milestone.replace("_", " "))

    @property
    def moment_utc(self) -> dt.datetime:
        return self.moment.astimezone(UTC)


def milestone_events(campaign: Campaign, milestones: tuple[str, ...] | None = None) -> list[MilestoneEvent]:
    """Every (moment, milestone) of the campaign with the tasks it concerns, in time order."""
    wanted = milestones or tuple(MILESTONES)
    grouped: dict[tuple[dt.datetime, str], list[str]] = {}
    for task in campaign.tasks:
        for milestone in wanted:
            moment = campaign.milestone_time(milestone, task)
            grouped.setdefault((moment, milestone), []).append(task.id)
    order = {name: index for index, name in enumerate(MILESTONES)}
    events = [MilestoneEvent(moment, milestone, tuple(ids)) for (moment, milestone), ids in grouped.items()]
    events.sort(key=lambda e: (e.moment_utc, order.get(e.milestone, 99), e.task_ids))
    return events


def reminder_events(campaign: Campaign) -> list[MilestoneEvent]:
    """Working-notes reminders: offsets before the deadline, on notification, before camera-ready."""
    events: list[MilestoneEvent] = []
    settings = campaign.reminders
    for event in milestone_events(campaign, ("working_notes_deadline", "notification", "camera_ready")):
        if event.milestone == "working_notes_deadline":
            offsets = settings.working_notes_days_before
        elif event.milestone == "camera_ready":
            offsets = settings.camera_ready_days_before
        else:
            offsets = (0,) if settings.on_notification else ()
        for days in offsets:
            name = f"{event.milestone}_minus_{days}d" if event.milestone != "notification" else "notification"
            moment = event.moment - dt.timedelta(days=days) if event.milestone != "notification" else event.moment
            events.append(MilestoneEvent(moment, name, event.task_ids))
    events.sort(key=lambda e: (e.moment_utc, e.milestone))
    return events


def own_zone_text(moment: dt.datetime) -> str:
    """``2025-05-10 23:59:59 CEST``: the moment in its own time zone (see ``teams.local_and_utc_text``
    for the campaign's zone and UTC together, as e-mails and pages show a moment)."""
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z")
