"""Move a campaign's calendar onto the present, seconds apart, for a replay (``simulate``, ``make demo``).

A replay needs real time to decide what is early, late or on time (the object store's own upload
times against the milestones), but nobody wants to wait months. :func:`compress_calendar` rewrites
a campaign file's dates in two phases:

1. **opening**: registration opens, development and test data releases;
2. **closing**: registration closes, run deadlines, results, working notes, notification,
   camera-ready, conference.

Each phase's distinct moments keep their order (ties stay ties, a task's own dates stay its own) and
are spread ``step`` seconds apart from a start. The closing phase can be parked far in the future
while the opening phase plays, then moved to "a few seconds from now" once every run is uploaded,
so a slow machine never turns an on-time upload into a late one. Reminder offsets in days become 0,
since days mean nothing in a calendar of seconds.
"""
from __future__ import annotations

import copy
import datetime as dt
from typing import Any, Iterable

from include.campaign.config import Campaign, to_moment, MILESTONES

OPENING = ("registration_opens", "dev_data_release", "test_data_release")
CLOSING = tuple(m for m in MILESTONES if m not in OPENING)


def compress_calendar(raw: dict[str, Any], campaign: Campaign, phase: Iterable[str], start: dt.datetime, step: float) -> dict[str, Any]:
    """A copy of the campaign file's data with ``phase``'s milestones moved to ``start``, ``start+step``, ...

    ``raw`` is the parsed YAML of ``campaign``; milestones outside ``phase`` are left as they are.
    Every task's effective date for a phase milestone is written into that task (an override), and
    the global schedule gets the mapped global dates.
    """
    phase = tuple(phase)
    moments = sorted({_moment(campaign, m, task) for m in phase for task in (None, *campaign.tasks)})
    mapping = {moment: start + dt.timedelta(seconds=step * index) for index, moment in enumerate(moments)}
    data = copy.deepcopy(raw)
    for milestone in phase:
        data["schedule"][milestone] = mapping[_moment(campaign, milestone, None)].isoformat()
    for task, task_data in zip(campaign.tasks, data["tasks"]):
        overrides = task_data.setdefault("schedule", {}) or {}
        task_data["schedule"] = overrides
        for milestone in phase:
            if getattr(task.schedule, milestone) is not None:
                overrides[milestone] = mapping[_moment(campaign, milestone, task)].isoformat()
    return data


def _moment(campaign: Campaign, milestone: str, task) -> dt.datetime:
    return to_moment(campaign.raw_milestone(milestone, task), MILESTONES[milestone], campaign.zone).astimezone(dt.timezone.utc)


def replay_copy(raw: dict[str, Any], campaign: Campaign, now: dt.datetime, step: float, closing_start: dt.datetime | None = None) -> dict[str, Any]:
    """The campaign for a replay: opening phase from ``now + step``; closing phase at ``closing_start``
    (default: a day later, to be moved forward when the runs are in); reminders on the day itself."""
    data = compress_calendar(raw, campaign, OPENING, now + dt.timedelta(seconds=step), step)
    data = compress_calendar(data, campaign, CLOSING, closing_start or now + dt.timedelta(days=1), step)
    data["reminders"] = {"working_notes_days_before": [0], "on_notification": True, "camera_ready_days_before": [0]}
    return data


def delay_milestones(data: dict[str, Any], milestones: Iterable[str], delay: dt.timedelta) -> dict[str, Any]:
    """A copy with ``milestones`` (global and every task's own) moved ``delay`` later; order is kept
    when ``milestones`` are the tail of the calendar (e.g. everything after the run deadline)."""
    data = copy.deepcopy(data)
    wanted = tuple(milestones)
    for schedule in [data["schedule"], *((task.get("schedule") or {}) for task in data["tasks"])]:
        for milestone in wanted:
            if schedule.get(milestone) is not None:
                schedule[milestone] = (dt.datetime.fromisoformat(str(schedule[milestone])) + delay).isoformat()
    return data
