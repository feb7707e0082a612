"""Working-notes reminders go to exactly the teams with a collected run, naming their tasks and dates."""
from __future__ import annotations

import pytest

from include.campaign import reminders
from include.campaign.timeline import reminder_events
from tests.lifecycle.conftest import bucket_state, register


def _manifest(ctx, task: str, collected_teams: list[str], late_teams: list[str] = ()) -> None:
    """A collection manifest as collect() writes it (its shape is tested in test_collection)."""
    entry = lambda team: {"team": team, "run": "run-01", "key": f"k/{team}", "size": 1, "sha256": "0" * 64, "uploaded_at": "2025-01-01T00:00:00+00:00", "source_version": "v"}  # noqa: E731
    ctx.store.put_json(ctx.layout.collection_manifest(task), {"task": task, "collected": [entry(t) for t in collected_teams], "late": [entry(t) for t in late_teams], "refused": [], "dropped_over_limit": []})


def test_reminders_reach_exactly_the_teams_with_runs_and_name_their_tasks(ctx, store, mailbox):
    both = register(ctx, "Both Tasks", "both@team.example.org", ["alpha", "beta"])
    beta_only = register(ctx, "Beta Only", "beta@team.example.org", ["beta"])
    register(ctx, "Only Late", "late@team.example.org", ["beta"])
    _manifest(ctx, "alpha", [both])
    _manifest(ctx, "beta", [both, beta_only, both], late_teams=["only-late"])
    mailbox.clear()

    result = reminders.send(ctx, "working_notes_deadline_minus_7d", ["alpha", "beta"])

    assert result["teams"] == [beta_only, both]
    assert sorted(m.recipients[0] for m in mailbox.messages) == ["beta@team.example.org", "both@team.example.org"]
    [mail] = mailbox.to("both@team.example.org")
    assert mail.subject == "Lifecycle Lab 2025: working notes due in 7 days"
    assert "Alpha detection (alpha)" in mail.body and "Beta captions (beta)" in mail.body
    deadline = ctx.campaign.milestone_time("working_notes_deadline").strftime("%Y-%m-%d %H:%M:%S UTC")
    assert f"working-notes deadline: {deadline}" in mail.body and "camera-ready working notes:" in mail.body
    assert "Alpha detection" not in mailbox.to("beta@team.example.org")[0].body

    count, before = len(mailbox.messages), bucket_state(store)
    reminders.send(ctx, "working_notes_deadline_minus_7d", ["alpha", "beta"])
    assert len(mailbox.messages) == count and bucket_state(store) == before

    reminders.send(ctx, "notification", ["alpha", "beta"])
    assert len(mailbox.messages) == count + 2
    assert mailbox.messages[-1].subject == "Lifecycle Lab 2025: notification of acceptance of working notes"


def test_every_reminder_the_calendar_plans_can_be_sent_and_unknown_names_are_refused(ctx, mailbox):
    team = register(ctx, "Solo", "solo@team.example.org", ["beta"])
    _manifest(ctx, "beta", [team])
    mailbox.clear()
    events = reminder_events(ctx.campaign)
    assert [e.milestone for e in events][:3] == ["working_notes_deadline_minus_14d", "working_notes_deadline_minus_7d", "working_notes_deadline_minus_1d"]
    for event in events:
        assert reminders.send(ctx, event.milestone, list(event.task_ids))["teams"] == [team]
    assert len(mailbox.messages) == len(events) == 5
    assert mailbox.messages[-1].subject == "Lifecycle Lab 2025: camera-ready working notes due in 3 days"
    with pytest.raises(ValueError, match="unknown reminder 'working_notes_minus_7d'"):
        reminders.send(ctx, "working_notes_minus_7d", ["beta"])


def test_a_task_not_collected_yet_is_reported_and_reminds_nobody(ctx, mailbox):
    result = reminders.send(ctx, "working_notes_deadline_minus_1d", ["alpha"])
    assert result["teams"] == [] and result["tasks_not_collected"] == ["alpha"] and mailbox.messages == []
